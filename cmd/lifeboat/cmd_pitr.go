package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/lifeboat-backup/lifeboat/engine/logarchive"
	"github.com/lifeboat-backup/lifeboat/engine/repo"
	"github.com/lifeboat-backup/lifeboat/engine/snapshot"
	"github.com/lifeboat-backup/lifeboat/targets/postgres/physical"
)

// pitrFlags are restore's point-in-time recovery flags.
type pitrFlags struct {
	until     string
	toDatadir string
	start     bool
	pgOptions []string
	noArchive bool
}

// restorePGPITR restores the newest physical base of a postgres target
// from before the --until point into an empty data directory, writes the
// recovery settings and, with --start, recovers.
func (a *app) restorePGPITR(ctx context.Context, o restoreOptions, pf pitrFlags) error {
	t, err := a.walTarget(o.target)
	if err != nil {
		return err
	}
	if pf.until == "" {
		pf.until = "latest"
	}
	point := physical.ParseTarget(logarchive.ParseUntil(pf.until, a.policy.Retention.Location()))
	restoreCmd, err := a.restoreCommand(t.Name)
	if err != nil {
		return err
	}
	dir, err := filepath.Abs(pf.toDatadir)
	if err != nil {
		return err
	}
	return a.withRepo(ctx, readLock, "restore", func(ctx context.Context, r *repo.Repository) error {
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
		st, err := untarBase(ctx, r.SnapshotReader(base), dir, owner)
		if err != nil {
			return err
		}
		if err := physical.WriteRecovery(dir, point.Recovery(restoreCmd, pf.noArchive), owner); err != nil {
			return err
		}
		d := base.RecoveryPoint.Details
		a.printf("restored base %s (taken %s, WAL %s..%s on timeline %s) to %s: %d files, %s in %.1fs\n",
			base.ID.Short(), base.RecoveryPoint.Time.Local().Format(time.RFC3339), d["start_lsn"], d["end_lsn"], d["timeline"],
			dir, st.Files, formatBytes(st.Bytes), time.Since(started).Seconds())
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
	})
}

// untarBase unpacks the base's base.tar into dir.
func untarBase(ctx context.Context, s snapshot.Reader, dir string, owner physical.Owner) (physical.UntarStats, error) {
	tr := s.Tree(ctx)
	for {
		n, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return physical.UntarStats{}, fmt.Errorf("snapshot %s has no %s: not a physical base", s.Info().ID.Short(), physical.Entry)
		}
		if err != nil {
			return physical.UntarStats{}, err
		}
		if n.Path != physical.Entry {
			continue
		}
		rd := s.Open(ctx, n)
		defer rd.Close()
		return physical.Untar(ctx, rd, dir, owner)
	}
}

// restoreCommand is the restore_command the recovered server runs: this
// binary, the policy, the target and the owner key, all by absolute path.
func (a *app) restoreCommand(target string) (string, error) {
	bin, err := os.Executable()
	if err != nil {
		return "", err
	}
	pol, err := filepath.Abs(a.v.GetString("policy"))
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
	return strings.Join([]string{q(bin), "--policy", q(pol), "--key-file", q(key), "wal", "fetch", "--target", q(target), "%f", "%p"}, " "), nil
}
