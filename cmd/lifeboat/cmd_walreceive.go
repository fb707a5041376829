package main

import (
	"context"
	"log/slog"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/lifeboat-backup/lifeboat/engine/logarchive"
	"github.com/lifeboat-backup/lifeboat/engine/repo"
	"github.com/lifeboat-backup/lifeboat/policies"
	"github.com/lifeboat-backup/lifeboat/targets/postgres"
	"github.com/lifeboat-backup/lifeboat/targets/postgres/wal"
)

func (a *app) walReceiveCmd() *cobra.Command {
	var target, spool, slot string
	cmd := &cobra.Command{
		Use:   "receive --policy P [--target T]",
		Short: "Stream a postgres target's WAL into the archive until stopped (RPO of seconds, docs/pitr.md)",
		Long: `Stream the WAL of a postgres target that has an archive block (archive: {max_delay: 10s}) with
pg_receivewal over a physical replication slot (created if missing; the server keeps the WAL
the receiver has not got), and store it in the policy's archive as wal push would: every
completed segment, and every archive.max_delay the segment being written as a partial version,
so the archive is at most max_delay plus an upload behind the server, whether the server
switches segments or not. wal fetch serves the newest partial version of a segment that is not
archived whole, so recovery reaches the last streamed commit. The host key suffices.

Runs until stopped (SIGTERM); a lost connection or a server restart is followed, and a restart
of the receiver resumes where its spool ends. systemd install writes
lifeboat-walreceive@POLICY.service for it; the daemon runs it too. The user needs the
REPLICATION attribute (and a replication line in pg_hba.conf). Metrics go to metrics.textfile
with -walreceive-TARGET before .prom.

When WAL is lost before it was streamed (the slot was dropped and the server removed the WAL,
or the receiver resumes past the end of the archive), the receiver stores what the server still
has, reports the gap and exits 13; point-in-time restores work again from the next base.

Exit codes: 0 stopped, 1 failure, 2 bad usage, 10 no repository, 13 gap in the WAL archive.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			t, err := a.walTarget(target)
			if err != nil {
				return err
			}
			if t.Archive == nil {
				return usagef("target %s has no archive block (archive: {max_delay: 10s})", t.Name)
			}
			r, err := a.openRepo(cmd.Context())
			if err != nil {
				return err
			}
			defer r.Bucket().Close()
			return a.walReceive(cmd.Context(), a.policy, t, r, spool, slot)
		},
	}
	cmd.Flags().StringVar(&target, "target", "", "the policy's postgres target (may be left out with one target)")
	cmd.Flags().StringVar(&spool, "spool", "", "private working directory (default: STATE/walreceive/POLICY-TARGET)")
	cmd.Flags().StringVar(&slot, "slot", "", "physical replication slot (default: lifeboat_POLICY_TARGET)")
	return cmd
}

var slotChars = regexp.MustCompile(`[^a-z0-9_]`)

// walSlot is the default replication slot of a policy's target: lower
// case letters, digits and _, at most 63 characters.
func walSlot(policy, target string) string {
	s := slotChars.ReplaceAllString(strings.ToLower("lifeboat_"+policy+"_"+target), "_")
	return s[:min(len(s), 63)]
}

// walReceive runs target t's WAL receiver into r until ctx ends.
func (a *app) walReceive(ctx context.Context, p *policies.Policy, t *policies.Target, r *repo.Repository, spool, slot string) error {
	conn, err := targetConn(t)
	if err != nil {
		return err
	}
	bin, err := postgres.Binary("", "pg_receivewal")
	if err != nil {
		return err
	}
	if spool == "" {
		spool = filepath.Join(stateDir(), "walreceive", p.Name+"-"+t.Name)
	}
	if slot == "" {
		slot = walSlot(p.Name, t.Name)
	}
	level := slog.LevelInfo
	if a.quiet {
		level = slog.LevelWarn
	}
	log := slog.New(slog.NewTextHandler(a.stderr, &slog.HandlerOptions{Level: level})).With("target", t.Name)
	rc := &wal.Receiver{Archive: logarchive.New(r), Target: t.Name, Binary: bin, Conn: conn.URL(""),
		Env: conn.Env(), Slot: slot, Spool: spool, MaxDelay: t.Archive.MaxDelay.D(), Log: log}
	var metrics string
	if m := p.Metrics.Textfile; m != "" {
		metrics = strings.TrimSuffix(m, ".prom") + "-walreceive-" + t.Name + ".prom"
	}
	write := func() {
		if metrics == "" {
			return
		}
		if err := wal.WriteReceiveMetrics(metrics, p.Name, t.Name, rc.Status(), time.Now()); err != nil {
			log.Warn("wal receive metrics", "file", metrics, "error", err)
		}
	}
	mctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(5 * time.Second)
		defer tick.Stop()
		for {
			write()
			select {
			case <-mctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	log.Info("wal receive", "slot", slot, "spool", spool, "max_delay", t.Archive.MaxDelay.D())
	err = rc.Run(ctx)
	stop()
	<-done
	write()
	return err
}
