package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/lifeboat-backup/lifeboat/engine/logarchive"
	"github.com/lifeboat-backup/lifeboat/internal/atomicfile"
	"github.com/lifeboat-backup/lifeboat/policies"
	"github.com/lifeboat-backup/lifeboat/targets/postgres"
	"github.com/lifeboat-backup/lifeboat/targets/postgres/wal"
)

// exitAbortRecovery is wal fetch's code for any failure but "not found"
// (set in app.run for commands annotated annotAbortRecovery): above 125,
// so PostgreSQL stops recovery instead of taking the archive as ended
// and promoting early.
const exitAbortRecovery = 126

const annotAbortRecovery = "lifeboat-abort-recovery"

func (a *app) walCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "wal",
		Short: "PostgreSQL WAL archive: archive_command and restore_command (docs/pitr.md)",
	}
	var target string
	var parallel int
	push := &cobra.Command{
		Use:   "push --policy P --target T PATH",
		Short: "Archive one WAL file (archive_command = 'lifeboat wal push --policy P --target T %p')",
		Long: `Archive the WAL file PATH (PostgreSQL's %p) into the policy's repository, sealed to the owner
key (the host key suffices to write). Idempotent: a file archived already with the same content
succeeds, one with other content under the same name fails naming it. Any failure is a non-zero
exit, so PostgreSQL keeps the file and asks again. With --parallel N (default 4) up to N-1 other
files PostgreSQL marked ready (pg_wal/archive_status) are pushed at the same time, so a burst of
WAL does not pile up in pg_wal.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			t, err := a.walTarget(target)
			if err != nil {
				return err
			}
			r, err := a.openRepo(cmd.Context())
			if err != nil {
				return err
			}
			defer r.Bucket().Close()
			res, err := wal.Push(cmd.Context(), logarchive.New(r), t.Name, args[0], parallel)
			for _, e := range res.Failed {
				fmt.Fprintf(a.stderr, "warning: %v (PostgreSQL will ask for it again)\n", e)
			}
			if err != nil {
				return err
			}
			if tf := a.policy.Metrics.Textfile; tf != "" {
				// The push succeeded whatever happens to its metrics.
				path := strings.TrimSuffix(tf, ".prom") + "-wal-" + t.Name + ".prom"
				if err := writeWALMetrics(path, a.policy.Name, t.Name, res, time.Now()); err != nil {
					fmt.Fprintf(a.stderr, "warning: metrics %s: %v\n", path, err)
				}
			}
			if !a.quiet && a.json {
				return a.emit(res)
			}
			return nil
		},
	}
	push.Flags().IntVar(&parallel, "parallel", 4, "push up to this many ready WAL files at once")
	fetch := &cobra.Command{
		Use:   "fetch --policy P --target T NAME PATH",
		Short: "Restore one archived WAL file (restore_command = 'lifeboat wal fetch --policy P --target T %f %p')",
		Long: `Write the archived WAL file NAME (PostgreSQL's %f) to PATH (%p). Needs the owner key (exit 12
with the host key). Exit 1: the archive holds no such file (PostgreSQL's "not found": it tries
its other sources or ends recovery). Any other failure (also a bad policy or usage) exits 126,
which makes PostgreSQL stop recovery rather than take the archive as ended.`,
		Args:        cobra.ExactArgs(2),
		Annotations: map[string]string{annotAbortRecovery: "1"},
		RunE: func(cmd *cobra.Command, args []string) error {
			t, err := a.walTarget(target)
			if err != nil {
				return err
			}
			r, err := a.openRepo(cmd.Context())
			if err != nil {
				return err
			}
			defer r.Bucket().Close()
			served, _, err := wal.Fetch(cmd.Context(), logarchive.New(r), t.Name, args[0], args[1])
			if err == nil && served != args[0] {
				// In the server log: recovery ends in this segment.
				fmt.Fprintf(a.stderr, "lifeboat: %s is not archived whole; served its streamed version %s\n", args[0], served)
			}
			return err
		},
	}
	var every time.Duration
	sw := &cobra.Command{
		Use:   "switch --policy P --target T [--every 10s]",
		Short: "Force a WAL segment switch every --every while WAL is written (an RPO archive_timeout does not keep)",
		Long: `Connect to the target's server (its dsn and password_file) and call pg_switch_wal() every --every
(default 10s), which closes the current segment when WAL was written since the last switch and does
nothing otherwise; PostgreSQL then archives it with wal push. archive_timeout should do this, but
on a busy host PostgreSQL 15 was seen not to switch for 26 s with archive_timeout = 10s
(docs/pitr.md, "RPO"). Runs until stopped (a systemd service, Restart=always). The user needs
EXECUTE on pg_switch_wal (superuser, or GRANT EXECUTE ON FUNCTION pg_switch_wal() TO it).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			t, err := a.walTarget(target)
			if err != nil {
				return err
			}
			if every < time.Second {
				return usagef("--every must be at least 1s")
			}
			conn, err := targetConn(t)
			if err != nil {
				return err
			}
			psql, err := postgres.Binary("", "psql")
			if err != nil {
				return err
			}
			se, err := postgres.OpenSession(cmd.Context(), psql, conn, "postgres")
			if err != nil {
				return err
			}
			defer se.Close()
			a.printf("switching WAL segments of %s every %s\n", t.Name, every)
			return (&wal.Switcher{DB: se, Every: every, OnSwitch: func(seg string) {
				if !a.quiet {
					fmt.Fprintf(a.stdout, "%s closed %s\n", time.Now().UTC().Format(time.RFC3339), seg)
				}
			}}).Run(cmd.Context())
		},
	}
	sw.Flags().DurationVar(&every, "every", 10*time.Second, "switch when WAL was written and this much time passed")
	for _, c := range []*cobra.Command{push, fetch, sw} {
		c.Flags().StringVar(&target, "target", "", "the policy's postgres target (may be left out with one target)")
		cmd.AddCommand(c)
	}
	cmd.AddCommand(a.walReceiveCmd())
	return cmd
}

// walTarget is the policy's postgres target called name.
func (a *app) walTarget(name string) (*policies.Target, error) {
	if a.policy == nil {
		return nil, usagef("--policy is required (the WAL archive belongs to a policy's postgres target)")
	}
	t, err := a.policy.Target(name)
	if err != nil {
		return nil, usageError{err}
	}
	if t.Kind != policies.KindPostgres {
		return nil, usagef("target %q is %s, not postgres", t.Name, t.Kind)
	}
	return t, nil
}

// targetConn is the connection to postgres target t's server: its dsn,
// with the password of its password_file (SecretRef.Read drops the line
// end).
func targetConn(t *policies.Target) (*postgres.Conn, error) {
	var pw string
	if !t.PasswordFile.IsZero() {
		b, err := t.PasswordFile.Read()
		if err != nil {
			return nil, fmt.Errorf("target %s: password: %w", t.Name, err)
		}
		pw = string(b)
	}
	conn, err := postgres.ParseDSN(t.DSN, pw)
	if err != nil {
		return nil, usageError{err}
	}
	return conn, nil
}

// writeWALMetrics writes wal push's gauges as a Prometheus textfile
// (metrics.textfile with -wal-TARGET before .prom). Only a successful push
// writes it: time() - lifeboat_wal_archive_last_segment_timestamp_seconds
// is the archive's lag, and it grows while pushes fail.
func writeWALMetrics(path, policy, target string, res wal.PushResult, now time.Time) error {
	labels := fmt.Sprintf(`{policy=%q,target=%q}`, policy, target)
	var b strings.Builder
	gauge := func(name, help string, v float64) {
		fmt.Fprintf(&b, "# HELP %s %s\n# TYPE %s gauge\n%s%s %g\n", name, help, name, name, labels, v)
	}
	gauge("lifeboat_wal_archive_last_segment_timestamp_seconds", "last write of the newest WAL file archived (unix seconds): time() minus this is the archive lag", float64(res.LastWrite.Unix()))
	gauge("lifeboat_wal_archive_last_push_timestamp_seconds", "end of the last successful wal push (unix seconds)", float64(now.Unix()))
	return atomicfile.WriteFile(path, []byte(b.String()), 0o644)
}
