package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/lifeboat-backup/lifeboat/engine"
	"github.com/lifeboat-backup/lifeboat/engine/pitr"
	"github.com/lifeboat-backup/lifeboat/engine/repo"
	"github.com/lifeboat-backup/lifeboat/engine/snapshot"
	"github.com/lifeboat-backup/lifeboat/internal/humanize"
	"github.com/lifeboat-backup/lifeboat/internal/scratch/mariadb"
	"github.com/lifeboat-backup/lifeboat/policies"
	"github.com/lifeboat-backup/lifeboat/restore"
	"github.com/lifeboat-backup/lifeboat/targets/mysql/binlog"
	"github.com/lifeboat-backup/lifeboat/targets/mysql/physical"
)

// restoreDatadir restores a physical mysql base (restore SNAPSHOT
// --to-datadir DIR): unpacked and prepared into the empty DIR, owned by
// the server's user.
func (a *app) restoreDatadir(ctx context.Context, ref string, o restoreOptions) error {
	dir, err := filepath.Abs(o.pitr.toDatadir)
	if err != nil {
		return err
	}
	return a.withEngine(ctx, readLock, "restore", func(ctx context.Context, e engine.Engine) error {
		sn, err := findPerTarget(ctx, e, ref, o.target, o.host)
		if err != nil {
			return err
		}
		if sn.Kind == policies.KindPostgres {
			return usagef("snapshot %s is a postgres snapshot: a postgres base is restored into a data directory with --until (e.g. --until latest --to-datadir DIR)", sn.ID.Short())
		}
		if !physical.IsBase(sn) {
			return usagef("snapshot %s is not a physical mysql base (method: physical): --to-datadir takes those (restore dumps with --to mysql://)", sn.ID.Short())
		}
		if !e.CanReadData() {
			return fmt.Errorf("restore snapshot %s: %w", sn.ID.Short(), repo.ErrNoDataKey)
		}
		a.announce(sn)
		owner, err := physical.OwnerFor(dir)
		if err != nil {
			return err
		}
		start := time.Now()
		st, err := a.restoreBase(ctx, e, sn, dir, owner)
		if err != nil {
			return err
		}
		if a.json {
			return a.emit(map[string]any{"message_type": "summary", "snapshot": sn.ID.String(), "datadir": dir,
				"files": st.Files, "bytes": st.Bytes, "owner_uid": owner.UID, "duration_seconds": time.Since(start).Seconds()})
		}
		a.printf("restored physical base %s (binlog %s:%s, GTID %s) to %s: %d files, %s in %.1fs\n", sn.ID.Short(),
			sn.RecoveryPoint.Details["binlog_file"], sn.RecoveryPoint.Details["binlog_position"], sn.RecoveryPoint.Details["gtid_binlog_pos"],
			dir, st.Files, humanize.Bytes(st.Bytes), time.Since(start).Seconds())
		a.printf("start it as the directory's owner (uid %d): mariadbd --datadir=%s (the backup's InnoDB settings are in backup-my.cnf there)\n", owner.UID, dir)
		return nil
	})
}

// restoreBase unpacks and prepares physical base sn into dir, with
// progress on a terminal.
func (a *app) restoreBase(ctx context.Context, e engine.Engine, sn *snapshot.Snapshot, dir string, owner physical.Owner) (physical.ExtractStats, error) {
	var st physical.ExtractStats
	p := &snapshot.Progress{}
	stop := a.restoreProgress(p, "files", 0, sn.Stats.BytesIn) // payload of the stream, a little less than its size
	defer stop()
	err := snapshot.WithReader(ctx, e, sn, func(s snapshot.Reader) (err error) {
		st, err = physical.RestoreSnapshot(ctx, s, dir, physical.RestoreOptions{Owner: owner, Progress: p})
		return err
	})
	return st, err
}

// pitrDatadir is a point-in-time restore into an empty data directory:
// the plan's base (physical: unpacked and prepared; logical: a new data
// directory it is loaded into), then a temporary mariadbd on it (loopback,
// socket in a temp dir, no binary log) replays the archived transactions
// up to the point and shuts down cleanly.
func (a *app) pitrDatadir(ctx context.Context, e engine.Engine, pl *pitr.Plan, st *pitr.Binlog, dir string) error {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	owner, err := physical.OwnerFor(dir)
	if err != nil {
		return err
	}
	start := time.Now()
	base := "logical"
	var files int
	var bytes int64
	if physical.IsBase(pl.Base) {
		base = "physical"
		xs, err := a.restoreBase(ctx, e, pl.Base, dir, owner)
		if err != nil {
			return err
		}
		files, bytes = xs.Files, xs.Bytes
	} else {
		if err := physical.PrepareDir(dir, owner); err != nil {
			return err
		}
		if err := mariadb.Install(ctx, mariadb.Options{}, dir); err != nil {
			return fmt.Errorf("restore: %w", err)
		}
	}
	a.printf("  %s base %s in %s (%.1fs)\n", base, pl.Base.ID.Short(), dir, time.Since(start).Seconds())
	tmp, err := os.MkdirTemp("", "lifeboat-pitr-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	mo := mariadb.Options{Dir: tmp, StartTimeout: 30 * time.Minute}
	if cnf := filepath.Join(dir, "backup-my.cnf"); physical.IsBase(pl.Base) {
		mo.DefaultsFile = cnf
	}
	srv, err := mariadb.StartOn(ctx, mo, dir)
	if err != nil {
		return fmt.Errorf("restore: start a temporary server on %s: %w", dir, err)
	}
	stopped := false
	defer func() {
		if !stopped {
			srv.Stop()
		}
	}()
	url := fmt.Sprintf("mysql://%s@%s/", srv.User, srv.Addr)
	if !physical.IsBase(pl.Base) {
		err := snapshot.WithReader(ctx, e, pl.Base, func(s snapshot.Reader) error {
			p := &snapshot.Progress{}
			stop := a.restoreProgress(p, "tables", 0, 0)
			defer stop()
			rs, err := restore.MySQL(ctx, s, restore.MySQLOptions{DSN: url, Password: srv.Password, NoBinlog: true, Progress: p})
			if err == nil {
				files, bytes = rs.Tables, rs.Bytes
			}
			return err
		})
		if err != nil {
			return fmt.Errorf("restore: load base %s into %s: %w", pl.Base.ID.Short(), dir, err)
		}
		a.printf("  loaded %d tables, %s (%.1fs)\n", files, humanize.Bytes(bytes), time.Since(start).Seconds())
	}
	replayStart := time.Now()
	r, err := pitr.Replay(ctx, pl, st, binlog.ApplyOptions{DSN: url, Password: srv.Password, NoBinlog: true})
	if err != nil {
		return fmt.Errorf("point-in-time restore: the base snapshot %s is restored to %s, replaying the binary log failed after %d transactions: %w", pl.Base.ID.Short(), dir, r.Transactions, err)
	}
	if err := srv.DropUser(ctx); err != nil {
		return fmt.Errorf("restore: drop the temporary account %s: %w", srv.User, err)
	}
	stopped = true
	if err := srv.Shutdown(30 * time.Minute); err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	if err := physical.Chown(dir, owner); err != nil {
		return err
	}
	if a.json {
		return a.emit(map[string]any{"message_type": "pitr_summary", "target": pl.Base.Target, "point": pl.Point.String(),
			"base_snapshot": pl.Base.ID.String(), "base_method": base, "from": pl.From.String(), "replay": r, "datadir": dir,
			"last_position": r.LastEnd.String(), "replay_seconds": time.Since(replayStart).Seconds(),
			"duration_seconds": time.Since(start).Seconds()})
	}
	a.printReplay("replayed", r)
	a.printf("  datadir %s ready (owner uid %d, mode 0750; the temporary server shut down cleanly) in %.1fs: start mariadbd --datadir=%s as its owner\n",
		dir, owner.UID, time.Since(start).Seconds(), dir)
	return nil
}
