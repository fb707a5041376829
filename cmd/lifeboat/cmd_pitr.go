package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/lifeboat-backup/lifeboat/engine"
	"github.com/lifeboat-backup/lifeboat/internal/humanize"

	"github.com/lifeboat-backup/lifeboat/engine/logarchive"
	"github.com/lifeboat-backup/lifeboat/engine/repo"
	"github.com/lifeboat-backup/lifeboat/targets/postgres/physical"
)

// addPITRFlags adds the point-in-time recovery flags (restore, failover).
func addPITRFlags(f *pflag.FlagSet, o *pitrFlags) {
	f.StringVar(&o.until, "until", "", "point-in-time restore to TIME (RFC 3339, or YYYY-MM-DD HH:MM:SS in the policy's time zone, up to and including that second) or latest; postgres also an LSN or a restore point name (docs/pitr.md)")
	f.StringVar(&o.toDatadir, "to-datadir", "", "the empty data directory to restore into: PostgreSQL with --until; MySQL/MariaDB a physical SNAPSHOT, or with --until any base plus the binary log")
	f.BoolVar(&o.start, "start", false, "with --until: start the server and wait until recovery finished")
	f.StringArrayVar(&o.pgOptions, "pg-option", nil, "with --start: a server option for pg_ctl -o (e.g. \"-p 5433\"), repeatable")
	f.BoolVar(&o.noArchive, "no-archive", false, "with --until: archive_mode off in the restored cluster (drills and copies)")
}

// pitrFlags are restore's point-in-time recovery flags.
type pitrFlags struct {
	until     string
	toDatadir string
	start     bool
	pgOptions []string
	noArchive bool
	policy    string // the policy file restore_command names
}

// restorePGPITR restores the newest physical base of a postgres target
// from before the --until point into an empty data directory, writes the
// recovery settings and, with --start, recovers.
// from names the repository: "" for the primary (or --repo), else a
// secondary of the policy (failover).
func (a *app) restorePGPITR(ctx context.Context, o restoreOptions, pf pitrFlags, from string) error {
	t, err := a.walTarget(o.target)
	if err != nil {
		return err
	}
	if pf.until == "" {
		pf.until = "latest"
	}
	point := physical.ParseTarget(logarchive.ParseUntil(pf.until, a.policy.Retention.Location()))
	// restore_command reads the same repository: a secondary's or a
	// --repo URL is named in it, the primary comes from the policy.
	var repoURL string
	if from != "" {
		sec, err := a.policy.Secondary(from)
		if err != nil {
			return usageError{err}
		}
		repoURL = sec.URL
	} else if f := a.flags.Lookup("repo"); f != nil && f.Changed {
		repoURL = f.Value.String()
	}
	if pf.policy == "" {
		pf.policy = a.v.GetString("policy")
	}
	restoreCmd, err := a.restoreCommand(pf.policy, t.Name, repoURL)
	if err != nil {
		return err
	}
	dir, err := filepath.Abs(pf.toDatadir)
	if err != nil {
		return err
	}
	ctx, e, done, err := a.engineAt(ctx, from, readLock, "restore")
	if err != nil {
		return err
	}
	defer done()
	n, ok := e.(engine.Native)
	if !ok {
		return usagef("restore --until works on native repositories only")
	}
	return lockLost(ctx, func(r *repo.Repository) error {
		if !r.CanReadData() {
			return fmt.Errorf("restore: %w", repo.ErrNoDataKey)
		}
		snaps, err := r.Snapshots(ctx)
		if err != nil {
			return err
		}
		base, err := physical.ChooseBase(snaps, t.Name, point)
		if err != nil {
			return err
		}
		owner, err := physical.OwnerFor(dir)
		if err != nil {
			return err
		}
		if err := physical.PrepareDir(dir, owner); err != nil {
			return err
		}
		started := time.Now()
		st, err := physical.UntarBase(ctx, r.SnapshotReader(base), dir, owner)
		if err != nil {
			return err
		}
		if err := physical.WriteRecovery(dir, point.Recovery(restoreCmd, pf.noArchive), owner); err != nil {
			return err
		}
		d := base.RecoveryPoint.Details
		a.printf("restored base %s (taken %s, WAL %s..%s on timeline %s) to %s: %d files, %s in %.1fs\n",
			base.ID.Short(), base.RecoveryPoint.Time.Local().Format(time.RFC3339), d["start_lsn"], d["end_lsn"], d["timeline"],
			dir, st.Files, humanize.Bytes(st.Bytes), time.Since(started).Seconds())
		a.printf("recovery to %s; restore_command = '%s'\n", point.Until, restoreCmd)
		if !pf.start {
			a.printf("start the server on %s (as its owner) to recover: it reads the policy, the lifeboat binary and the owner key named in restore_command\n", dir)
			if a.json {
				return a.emit(map[string]any{"message_type": "summary", "base": base.ID.String(), "datadir": dir,
					"files": st.Files, "bytes": st.Bytes, "until": pf.until, "started": false})
			}
			return nil
		}
		reached, err := physical.Start(ctx, physical.StartOptions{DataDir: dir, Owner: owner, Options: pf.pgOptions})
		if err != nil {
			return err
		}
		a.printf("recovery finished: %s (%.1fs in all)\n", reached, time.Since(started).Seconds())
		if a.json {
			return a.emit(map[string]any{"message_type": "summary", "base": base.ID.String(), "datadir": dir,
				"files": st.Files, "bytes": st.Bytes, "until": pf.until, "started": true, "reached": reached,
				"duration_seconds": time.Since(started).Seconds()})
		}
		return nil
	}(n.R))
}

// restoreCommand is the restore_command the recovered server runs: this
// binary, the policy, the target and the owner key, all by absolute path.
func (a *app) restoreCommand(policyPath, target, repoURL string) (string, error) {
	bin, err := os.Executable()
	if err != nil {
		return "", err
	}
	pol, err := filepath.Abs(policyPath)
	if err != nil {
		return "", err
	}
	key := a.v.GetString("key-file")
	if key == "" && a.policy != nil {
		key = string(a.policy.Repositories.Primary.KeyFile)
	}
	if key == "" || strings.HasPrefix(key, "env:") {
		return "", usagef("restore --until needs the owner key as a file (--key-file or LIFEBOAT_KEY_FILE): restore_command names it")
	}
	if key, err = filepath.Abs(key); err != nil {
		return "", err
	}
	q := physical.ShellQuote
	args := []string{q(bin), "--policy", q(pol), "--key-file", q(key)}
	if repoURL != "" {
		args = append(args, "--repo", q(repoURL))
	}
	args = append(args, "wal", "fetch", "--target", q(target), "%f", "%p")
	return strings.Join(args, " "), nil
}
