package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/lifeboat-backup/lifeboat/engine/pitr"
	"github.com/lifeboat-backup/lifeboat/engine/repo"
	"github.com/lifeboat-backup/lifeboat/engine/storage"
	"github.com/lifeboat-backup/lifeboat/policies"
)

func (a *app) binlogCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "binlog",
		Short: "Continuous binary-log archive of MySQL/MariaDB targets (point-in-time restores)",
	}
	cmd.AddCommand(a.binlogArchiveCmd())
	return cmd
}

func (a *app) binlogArchiveCmd() *cobra.Command {
	var target, spool string
	cmd := &cobra.Command{
		Use:   "archive POLICY [--target NAME]",
		Short: "Follow a mysql target's binary log into the repository until stopped",
		Long: `Follow the binary log of a mysql target that has an archive block, as a replica would
(mariadb-binlog in raw remote mode), and store it in the policy's repository in segments cut
every archive.max_delay or archive.segment_size: encrypted like snapshot data, so the host key
suffices and nothing stored can be read back with it. Runs until stopped (SIGTERM); a lost
connection, a server restart or a binlog rotation is followed, and a restart of the archiver
resumes where the archive ends. systemd install writes lifeboat-binlog@POLICY.service for it.

When the server no longer has the binary log the archive needs (purged before it was archived,
or its history changed), the archiver stores what the server still has, reports the gap and
exits 13; point-in-time restores work again from the next snapshot. Metrics go to
metrics.textfile with -binlog-TARGET before .prom.

Exit codes: 0 stopped, 1 failure, 2 bad usage, 10 no repository, 13 gap in the binary log.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := a.loadPolicy(args[0], target)
			if err != nil {
				return err
			}
			a.policy = p
			t, err := archiveTarget(p, target)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			r, err := a.openRepo(ctx)
			if err != nil {
				return err
			}
			defer r.Bucket().Close()
			return a.binlogArchive(ctx, p, t, r, spool)
		},
	}
	cmd.Flags().StringVar(&target, "target", "", "the mysql target (may be left out when one target has an archive block)")
	cmd.Flags().StringVar(&spool, "spool", "", "private working directory (default: STATE/binlog/POLICY-TARGET)")
	return cmd
}

// binlogArchive runs target t's archiver into r until ctx ends.
func (a *app) binlogArchive(ctx context.Context, p *policies.Policy, t *policies.Target, r *repo.Repository, spool string) error {
	var pw string
	if !t.PasswordFile.IsZero() {
		b, err := t.PasswordFile.Read()
		if err != nil {
			return fmt.Errorf("target %s: password: %w", t.Name, err)
		}
		pw = string(b)
	}
	if spool == "" {
		spool = filepath.Join(stateDir(), "binlog", p.Name+"-"+t.Name)
	}
	var metrics string
	if m := p.Metrics.Textfile; m != "" {
		metrics = strings.TrimSuffix(m, ".prom") + "-binlog-" + t.Name + ".prom"
	}
	level := slog.LevelInfo
	if a.quiet {
		level = slog.LevelWarn
	}
	log := slog.New(slog.NewTextHandler(a.stderr, &slog.HandlerOptions{Level: level}))
	return pitr.RunArchive(ctx, pitr.ArchiveOptions{Policy: p.Name, Target: *t, Password: pw, Repo: r,
		Spool: spool, Metrics: metrics, Log: log})
}

// daemonArchive is the daemon's log archiver of one target (binlog
// archive for mysql, wal receive for postgres): the
// policy's own repository and key file (the daemon serves several
// policies at once, so the global flags and the environment do not
// apply).
func (a *app) daemonArchive(ctx context.Context, p *policies.Policy, target string) error {
	t, err := p.Target(target)
	if err != nil {
		return err
	}
	prim := p.Repositories.Primary
	if prim.KeyFile == "" {
		return fmt.Errorf("policy %s: the daemon's log archiver needs repositories.primary.key_file (the host key)", p.Name)
	}
	data, err := prim.KeyFile.Read()
	if err != nil {
		return fmt.Errorf("policy %s: repositories.primary.key_file: %w", p.Name, err)
	}
	creds, err := repo.ParseCredentials(data)
	if err != nil {
		return fmt.Errorf("policy %s: repositories.primary.key_file: %w", p.Name, err)
	}
	b, err := storage.OpenWith(ctx, prim.URL, storage.OpenOptions{Ping: true})
	if err != nil {
		return err
	}
	defer b.Close()
	r, err := repo.OpenUnindexed(ctx, b, creds)
	if err != nil {
		return fmt.Errorf("%s: %w", storage.Redact(prim.URL), err)
	}
	if t.Kind == policies.KindPostgres {
		return a.walReceive(ctx, p, t, r, "", "")
	}
	return a.binlogArchive(ctx, p, t, r, "")
}

// archiveTarget is the target named (or the policy's one target with an
// archive block).
func archiveTarget(p *policies.Policy, name string) (*policies.Target, error) {
	if name != "" {
		t, err := p.Target(name)
		if err != nil {
			return nil, usageError{err}
		}
		if t.Kind != policies.KindMySQL || t.Archive == nil {
			return nil, usagef("target %s has no archive block (a mysql target with archive: {max_delay: 10s})", name)
		}
		return t, nil
	}
	var found []*policies.Target
	for i := range p.Targets {
		if p.Targets[i].Kind == policies.KindMySQL && p.Targets[i].Archive != nil {
			found = append(found, &p.Targets[i])
		}
	}
	switch len(found) {
	case 0:
		return nil, usagef("policy %s has no mysql target with an archive block", p.Name)
	case 1:
		return found[0], nil
	}
	return nil, usagef("policy %s has %d targets with an archive block: give --target", p.Name, len(found))
}

// stateDir is where lifeboat keeps state between runs on this host.
func stateDir() string {
	if d := os.Getenv("STATE_DIRECTORY"); d != "" {
		return d
	}
	return filepath.Dir(defaultJournal())
}
