package drill

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/lifeboat-backup/lifeboat/engine/logarchive"
	"github.com/lifeboat-backup/lifeboat/engine/pitr"
	"github.com/lifeboat-backup/lifeboat/engine/snapshot"
	"github.com/lifeboat-backup/lifeboat/internal/scratch/scratchproc"
	"github.com/lifeboat-backup/lifeboat/policies"
	"github.com/lifeboat-backup/lifeboat/targets/mysql/binlog"
	"github.com/lifeboat-backup/lifeboat/targets/postgres"
	"github.com/lifeboat-backup/lifeboat/targets/postgres/physical"
)

// pitrServer is a cluster recovered from a physical base by the drill.
type pitrServer struct {
	data  string
	owner physical.Owner
	conn  *postgres.Conn
}

// pickPoint is the drill's recovery point of a target whose archive
// reaches newest past its base's recovery point from: a random time
// between the two (drill.pitr), else the end of the archive.
func (d *drill) pickPoint(from, newest time.Time, ok bool) logarchive.Until {
	if !d.p.Drill.PITR || !ok || !newest.After(from) {
		return logarchive.Until{Latest: true, Raw: "latest"}
	}
	pt := from.Add(time.Duration(d.o.Rand() * float64(newest.Sub(from)))).UTC()
	return logarchive.Until{Time: pt, Raw: pt.Format(time.RFC3339Nano)}
}

// restorePostgresPhysical recovers a physical base of t into a scratch
// data directory with the WAL archive (restore_command: wal fetch of
// this lifeboat) to a random recent point (drill.pitr) or the end of the
// archive, starts it on a private socket and lists its databases for
// the checks.
func (d *drill) restorePostgresPhysical(ctx context.Context, t *policies.Target, base *snapshot.Snapshot, dt *Target) error {
	if d.o.RestoreCommand == nil {
		return errors.New("a physical base is drilled by `lifeboat drill` (its restore_command names the lifeboat binary, the policy and the owner key)")
	}
	rc, err := d.o.RestoreCommand(t.Name)
	if err != nil {
		return err
	}
	newest, ok := dt.ArchivedUntil, !dt.ArchivedUntil.IsZero()
	until := d.pickPoint(base.RecoveryPoint.Time, newest, ok)
	if until.Latest && d.p.Drill.PITR {
		d.rep.Notes = append(d.rep.Notes, fmt.Sprintf("target %s: no archived WAL after the base: recovered to the end of the archive", t.Name))
	}
	dir := filepath.Join(d.dir, "pitr-"+t.Name)
	if os.Geteuid() == 0 {
		// The server runs as the postgres user, which must enter the
		// scratch directory (what is below stays 0700).
		if err := os.Chmod(d.dir, 0o711); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(dir, 0o711); err != nil {
		return err
	}
	data, sock := filepath.Join(dir, "data"), filepath.Join(dir, "sock")
	owner, err := physical.OwnerFor(data)
	if err != nil {
		return err
	}
	if err := physical.PrepareDir(data, owner); err != nil {
		return err
	}
	if err := physical.PrepareDir(sock, owner); err != nil {
		return err
	}
	var st physical.UntarStats
	err = snapshot.WithReader(ctx, d.r, base, func(s snapshot.Reader) error {
		st, err = physical.UntarBase(ctx, s, data, owner)
		return err
	})
	if err != nil {
		return err
	}
	// Only the drill connects: local socket, trust (the socket directory
	// is the server user's, 0700); no TCP client is let in.
	hba := filepath.Join(data, "pg_hba.conf")
	if err := os.WriteFile(hba, []byte("# lifeboat drill: local connections only\nlocal all all trust\n"), 0o600); err != nil {
		return err
	}
	if os.Geteuid() == 0 {
		if err := os.Chown(hba, owner.UID, owner.GID); err != nil {
			return err
		}
	}
	point := physical.ParseTarget(until)
	if err := physical.WriteRecovery(data, point.Recovery(rc, true), owner); err != nil {
		return err
	}
	port, err := scratchproc.FreePort()
	if err != nil {
		return err
	}
	srv := &pitrServer{data: data, owner: owner}
	d.pg.pitr = append(d.pg.pitr, srv)
	reached, err := physical.Start(ctx, physical.StartOptions{DataDir: data, Owner: owner, Timeout: 30 * time.Minute,
		Options: []string{fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off", port, sock)}})
	if err != nil {
		return err
	}
	dt.PITRPoint, dt.Reached = until.Raw, reached.String()
	if !until.Latest {
		dt.RecoveryPoint = until.Time
	}
	dt.Bytes = st.Bytes
	d.logf("target %s: base %s recovered to %s: %s", t.Name, base.ID.Short(), until.Raw, reached)
	user := "postgres"
	if u, err := url.Parse(t.DSN); err == nil && u.User != nil && u.User.Username() != "" {
		user = u.User.Username()
	}
	q := url.Values{"host": {sock}, "port": {fmt.Sprint(port)}}
	if srv.conn, err = postgres.ParseDSN("postgres://"+url.PathEscape(user)+"@/?"+q.Encode(), ""); err != nil {
		return err
	}
	out, err := d.pgList(ctx, srv.conn)
	if err != nil {
		return err
	}
	d.pg.dbs[t.Name] = out
	d.pg.conns[t.Name] = srv.conn
	dt.Databases = len(out)
	return nil
}

// pgList lists the databases of a recovered cluster.
func (d *drill) pgList(ctx context.Context, c *postgres.Conn) ([]string, error) {
	psql, err := postgres.Binary(d.pg.binDir, "psql")
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, psql, "-X", "-w", "-A", "-t", "-d", c.URL("postgres"), "-c",
		"SELECT datname FROM pg_database WHERE NOT datistemplate ORDER BY datname")
	cmd.Env = c.Env()
	out, err := cmd.CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("recovered cluster: list databases: %v: %s", err, strings.TrimSpace(string(out)))
	}
	return strings.Fields(string(out)), nil
}

// restoreMySQLPITR restores a mysql target with a binlog archive to a
// random point between its newest snapshot and the archive's end
// (drill.pitr), as `restore --until` does: the snapshot pitr.Choose picks
// for the point (a logical one loaded into the scratch server, a physical
// base started on its own server), then the archived binary log replayed
// into that server up to the point.
func (d *drill) restoreMySQLPITR(ctx context.Context, t *policies.Target, newest time.Time, archived bool, dt *Target) error {
	st := pitr.NewBinlog(d.o.LogArchive, t.Name)
	segs, err := st.List(ctx)
	if err != nil {
		return err
	}
	snaps, err := d.o.Snapshots(ctx)
	if err != nil {
		return err
	}
	snaps = slices.DeleteFunc(snaps, func(s *snapshot.Snapshot) bool { return s.Target != t.Name || s.Host != d.p.Host })
	var from time.Time
	for _, s := range snaps {
		if _, ok := pitr.SnapshotPos(s); ok && s.Suspect == "" && s.RecoveryPoint.Time.After(from) {
			from = s.RecoveryPoint.Time
		}
	}
	if from.IsZero() {
		return fmt.Errorf("target %s: no snapshot of host %s with a binlog position to replay the archive on", t.Name, d.p.Host)
	}
	until := d.pickPoint(from, newest, archived)
	point := binlog.Point{Latest: true}
	if until.Latest {
		d.rep.Notes = append(d.rep.Notes, fmt.Sprintf("target %s: no archived binary log after the snapshot: replayed to the end of the archive", t.Name))
	} else {
		// The binary log's resolution is the second: a point between
		// the snapshot's second and the archive's last.
		pt := until.Time.Truncate(time.Second)
		point = binlog.Point{Time: pt}
		until = logarchive.Until{Time: pt, Raw: pt.Format(time.RFC3339)}
	}
	pl, err := pitr.Choose(snaps, t.Name, segs, point)
	if err != nil {
		return fmt.Errorf("point-in-time restore of %s to %s refused: %w", t.Name, point, err)
	}
	dt.Snapshot, dt.SnapshotTime = pl.Base.ID.String(), pl.Base.Time.UTC()
	err = snapshot.WithReader(ctx, d.r, pl.Base, func(s snapshot.Reader) error { return d.restoreMySQL(ctx, t, s, dt) })
	if err != nil {
		return err
	}
	dsn, pw := d.dsn, d.pw
	if srv := d.physical[t.Name]; srv != nil {
		dsn, pw = srv.DSN(), srv.Password
	}
	r, err := pitr.Replay(ctx, pl, st, binlog.ApplyOptions{DSN: dsn, Password: pw, NoBinlog: true})
	if err != nil {
		return fmt.Errorf("snapshot %s restored, replaying the binary log failed after %d transactions: %w", pl.Base.ID.Short(), r.Transactions, err)
	}
	dt.PITRPoint = until.Raw
	dt.Reached = fmt.Sprintf("replayed %d transactions from %d segments from %s, last at %s (%s)", r.Transactions, r.Segments,
		pl.From, r.LastTime.UTC().Format(time.RFC3339), r.LastEnd)
	if !until.Latest {
		dt.RecoveryPoint = until.Time
	}
	d.logf("target %s: snapshot %s + binary log to %s: %s", t.Name, pl.Base.ID.Short(), until.Raw, dt.Reached)
	return nil
}
