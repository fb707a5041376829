package drill

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/lifeboat-backup/lifeboat/engine/logarchive"
	"github.com/lifeboat-backup/lifeboat/engine/repo"
	"github.com/lifeboat-backup/lifeboat/engine/snapshot"
	"github.com/lifeboat-backup/lifeboat/internal/scratch/mariadb"
	"github.com/lifeboat-backup/lifeboat/internal/scratch/pgscratch"
	"github.com/lifeboat-backup/lifeboat/policies"
	"github.com/lifeboat-backup/lifeboat/restore"
	"github.com/lifeboat-backup/lifeboat/targets/mysql"
	"github.com/lifeboat-backup/lifeboat/targets/mysql/physical"
	"github.com/lifeboat-backup/lifeboat/targets/postgres"
	pgphysical "github.com/lifeboat-backup/lifeboat/targets/postgres/physical"
)

// Errors of a drill; the CLI maps ErrObjectiveViolated to exit 3 and
// everything else (ErrCheckFailed included) to exit 1.
var (
	ErrCheckFailed       = errors.New("drill check failed")
	ErrObjectiveViolated = errors.New("recovery objective violated")
)

// Schema is the version of the Report JSON schema
// (docs/drills.md). Fields are only ever added.
const Schema = 1

// Run statuses (Report.Status).
const (
	Passed            = "passed"
	CheckFailed       = "check_failed"
	ObjectiveViolated = "objective_violated"
	Errored           = "error"
)

// Options configure a drill.
type Options struct {
	Policy *policies.Policy
	// From names the repository the drill restores from ("primary" or a
	// secondary's name), for the report.
	From string
	// Targets restricts the drill to these targets; empty: all.
	Targets []string
	// TempDir is where the scratch directory is made; default os.TempDir.
	TempDir string
	// Log receives progress notes (nil: none).
	Log io.Writer
	// Now is the clock (tests); default time.Now.
	Now func() time.Time
	// KeepScratch tells Run not to tear down (debugging); never in CLI
	// defaults.
	KeepScratch bool
	// Scratch, when set, is called with the scratch directory and the
	// scratch server's pid (0: none) once they exist (tests).
	Scratch func(dir string, pid int)
	// Archived, when set, gives the newest event a target's log archive
	// holds (ok false: none). The RPO of a target with an archive is
	// measured from it: a point-in-time restore reaches that far.
	Archived func(ctx context.Context, target string) (newest time.Time, ok bool, err error)
	// RestoreCommand gives the restore_command of a postgres target's WAL
	// archive (lifeboat wal fetch naming this binary, the policy and the
	// owner key): physical bases are recovered with it. nil: physical
	// bases are not drilled.
	RestoreCommand func(target string) (string, error)
	// LogArchive and Snapshots give the native repository's log archive
	// and snapshots: mysql targets with a binlog archive are drilled to a
	// point with them (drill.pitr). nil: not a native repository.
	LogArchive *logarchive.Archive
	Snapshots  func(ctx context.Context) ([]*snapshot.Snapshot, error)
	// Rand picks the random recovery point of drill.pitr (a value in
	// [0, 1)); default math/rand/v2.
	Rand func() float64
}

// Measure is one measured duration against its objective.
type Measure struct {
	Seconds   float64 `json:"seconds"`
	Objective float64 `json:"objective_seconds,omitempty"` // 0: no objective
	Met       bool    `json:"met"`                         // true when there is no objective
}

// Phase is one itemized step of the drill's wall time.
type Phase struct {
	Name    string  `json:"name"` // "restore media", "scratch server", "checks", "teardown"
	Target  string  `json:"target,omitempty"`
	Seconds float64 `json:"seconds"`
	InRTO   bool    `json:"in_rto"` // counted in RTO (teardown is not)
}

// Target is what the drill restored of one target.
type Target struct {
	Name          string    `json:"name"`
	Kind          string    `json:"kind"`
	Skipped       string    `json:"skipped,omitempty"` // why the target was not drilled
	Snapshot      string    `json:"snapshot,omitempty"`
	SnapshotTime  time.Time `json:"snapshot_time,omitzero"`
	RecoveryPoint time.Time `json:"recovery_point,omitzero"`
	RPOSeconds    float64   `json:"rpo_seconds,omitempty"`
	// ArchivedUntil: the newest event of the target's log archive, which
	// RPOSeconds is measured from when it is after the recovery point.
	ArchivedUntil time.Time `json:"archived_until,omitzero"`
	// PITRPoint: the point a base was recovered or replayed to (drill.pitr:
	// a random time between the base and ArchivedUntil; else latest), and
	// what the server reported reaching.
	PITRPoint   string  `json:"pitr_point,omitempty"`
	Reached     string  `json:"reached,omitempty"`
	RestoreSecs float64 `json:"restore_seconds,omitempty"`
	Files       int64   `json:"files,omitempty"`
	Bytes       int64   `json:"bytes,omitempty"`
	Databases   int     `json:"databases,omitempty"`
	Tables      int     `json:"tables,omitempty"`
	Error       string  `json:"error,omitempty"`
}

// CheckResult is the outcome of one health check.
type CheckResult struct {
	Name    string  `json:"name"`
	Kind    string  `json:"kind"`
	Target  string  `json:"target,omitempty"`
	OK      bool    `json:"ok"`
	Value   string  `json:"value,omitempty"`
	Message string  `json:"message,omitempty"`
	Seconds float64 `json:"seconds"`
}

// Report is the record of one drill (JSON schema: docs/drills.md).
type Report struct {
	Schema     int               `json:"schema"`
	Kind       string            `json:"kind"` // "drill" or "spot_check"
	Policy     string            `json:"policy"`
	Host       string            `json:"host"`
	From       string            `json:"from"`
	Start      time.Time         `json:"start"`
	End        time.Time         `json:"end"`
	Status     string            `json:"status"`
	RTO        Measure           `json:"rto"`
	RPO        Measure           `json:"rpo"`
	Phases     []Phase           `json:"phases"`
	Targets    []Target          `json:"targets"`
	Checks     []CheckResult     `json:"checks"`
	SpotChecks []SpotCheckResult `json:"spot_checks,omitempty"`
	Errors     []string          `json:"errors,omitempty"`
	Notes      []string          `json:"notes,omitempty"`
}

// Err returns the error matching the report's status: nil when passed.
func (r *Report) Err() error {
	switch r.Status {
	case Passed:
		return nil
	case ObjectiveViolated:
		var v []string
		if !r.RPO.Met {
			v = append(v, fmt.Sprintf("RPO %s > objective %s", secs(r.RPO.Seconds), secs(r.RPO.Objective)))
		}
		if !r.RTO.Met {
			v = append(v, fmt.Sprintf("RTO %s > objective %s", secs(r.RTO.Seconds), secs(r.RTO.Objective)))
		}
		return fmt.Errorf("drill %s: %w: %s", r.Policy, ErrObjectiveViolated, strings.Join(v, "; "))
	case CheckFailed:
		var f []string
		for _, c := range r.Checks {
			if !c.OK {
				f = append(f, fmt.Sprintf("%q: %s", c.Name, c.Message))
			}
		}
		for _, s := range r.SpotChecks {
			for _, p := range s.Problems {
				f = append(f, fmt.Sprintf("spot check %s: %s", s.Target, p))
			}
		}
		return fmt.Errorf("drill %s: %w: %s", r.Policy, ErrCheckFailed, strings.Join(f, "; "))
	}
	return fmt.Errorf("drill %s failed: %s", r.Policy, strings.Join(r.Errors, "; "))
}

func secs(s float64) string {
	return (time.Duration(s * float64(time.Second))).Round(time.Millisecond).String()
}

// drill is one running drill.
type drill struct {
	o       Options
	p       *policies.Policy
	r       snapshot.Repository
	rep     *Report
	dir     string
	server  *mariadb.Server // scratch server started here
	dsn     string          // where mysql targets are restored
	pw      string
	dirs    map[string]string // files target -> restore root
	mysqlOK map[string]bool   // mysql target restored
	// physical: a mysql target whose latest snapshot is a physical base
	// runs on its own server, started on the restored data directory.
	physical map[string]*mariadb.Server
	pg       pgDrill
	now      func() time.Time
}

// pgDrill is the PostgreSQL side of a drill.
type pgDrill struct {
	server *pgscratch.Server         // scratch server started here
	conn   *postgres.Conn            // where postgres targets are restored
	binDir string                    // client programs ("" : PATH)
	dbs    map[string][]string       // postgres target -> databases restored
	owner  map[string]string         // database -> postgres target restored into it
	pitr   []*pitrServer             // clusters recovered from physical bases
	conns  map[string]*postgres.Conn // physical target -> its recovered cluster
}

func (d *drill) logf(format string, args ...any) {
	if d.o.Log != nil {
		fmt.Fprintf(d.o.Log, format+"\n", args...)
	}
}

func (d *drill) phase(name, target string, start time.Time, inRTO bool) {
	d.rep.Phases = append(d.rep.Phases, Phase{Name: name, Target: target, Seconds: d.now().Sub(start).Seconds(), InRTO: inRTO})
}

// Run restores the latest snapshot of each target of o.Policy from r
// (the native repository or a restic one) into a scratch place (a
// MariaDB server it starts, or the policy's scratch DSN; a temporary
// directory), runs the policy's drill checks, tears everything down
// (also when ctx is cancelled), and measures RTO and RPO against the
// policy's objectives. The report is returned also with an error; its Err
// tells the outcome. The error returned is only about the drill itself
// (no snapshot, cannot restore, interrupted).
func Run(ctx context.Context, r snapshot.Repository, o Options) (rep *Report, err error) {
	p := o.Policy
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.From == "" {
		o.From = "primary"
	}
	if o.Rand == nil {
		o.Rand = rand.Float64
	}
	d := &drill{o: o, p: p, r: r, now: o.Now, dirs: map[string]string{}, mysqlOK: map[string]bool{}, physical: map[string]*mariadb.Server{},
		pg: pgDrill{dbs: map[string][]string{}, owner: map[string]string{}, conns: map[string]*postgres.Conn{}}}
	start := d.now()
	d.rep = &Report{Schema: Schema, Kind: "drill", Policy: p.Name, Host: p.Host, From: o.From, Start: start.UTC(),
		Phases: []Phase{}, Targets: []Target{}, Checks: []CheckResult{}}
	rep = d.rep
	defer func() { // after teardown, on every way out
		rep.End = d.now().UTC()
		if err != nil {
			rep.Status = Errored
			rep.Errors = append(rep.Errors, err.Error())
		}
	}()
	if !r.CanReadData() {
		return rep, fmt.Errorf("drill: %w: the policy's key_file is a host key, which cannot restore; give the owner key with --key-file or LIFEBOAT_KEY_FILE", repo.ErrNoDataKey)
	}
	for _, name := range o.Targets {
		if _, err := p.Target(name); err != nil {
			return rep, err
		}
	}
	d.dir, err = os.MkdirTemp(o.TempDir, "lifeboat-drill-")
	if err != nil {
		return rep, err
	}
	defer func() {
		if o.KeepScratch {
			rep.Notes = append(rep.Notes, "scratch kept: "+d.dir)
			return
		}
		t := d.now()
		d.teardown()
		d.phase("teardown", "", t, false)
	}()
	if o.Scratch != nil {
		o.Scratch(d.dir, 0)
	}

	// Restore.
	restored := 0
	var rpo float64
	for _, t := range p.Targets {
		if len(o.Targets) > 0 && !contains(o.Targets, t.Name) {
			continue
		}
		dt := Target{Name: t.Name, Kind: t.Kind}
		if t.Kind != policies.KindFiles && t.Kind != policies.KindMySQL && t.Kind != policies.KindPostgres {
			dt.Skipped = "drills restore files, mysql and postgres targets; " + t.Kind + " is not drilled yet"
			rep.Notes = append(rep.Notes, "target "+t.Name+": "+dt.Skipped)
			rep.Targets = append(rep.Targets, dt)
			continue
		}
		phys := t.Kind == policies.KindPostgres && t.Method == pgphysical.Method
		sn, err := r.FindSnapshot(ctx, "latest", func(s *snapshot.Snapshot) bool {
			return s.Target == t.Name && s.Host == p.Host && (!phys || pgphysical.IsBase(s, t.Name))
		})
		if errors.Is(err, repo.ErrNotFound) {
			return rep, fmt.Errorf("target %s: no snapshot of host %s to drill: %w", t.Name, p.Host, err)
		}
		if err != nil { // the repository cannot be read (wrong password, unreachable)
			return rep, fmt.Errorf("target %s: %w", t.Name, err)
		}
		dt.Snapshot, dt.SnapshotTime = sn.ID.String(), sn.Time.UTC()
		// The archive's end before the restore: a PITR drill picks its
		// point before it, and the RPO is measured from it.
		var newest time.Time
		archived := false
		if o.Archived != nil {
			var aerr error
			if newest, archived, aerr = o.Archived(ctx, t.Name); aerr != nil {
				rep.Notes = append(rep.Notes, fmt.Sprintf("target %s: log archive: %v", t.Name, aerr))
				archived = false
			}
		}
		if phys && archived {
			dt.ArchivedUntil = newest.UTC()
		}
		t0 := d.now()
		switch {
		case phys:
			err = d.restorePostgresPhysical(ctx, &t, sn, &dt)
		case t.Kind == policies.KindMySQL && p.Drill.PITR && t.Archive != nil && o.LogArchive != nil && o.Snapshots != nil:
			err = d.restoreMySQLPITR(ctx, &t, newest, archived, &dt)
		case t.Kind == policies.KindFiles:
			err = d.restoreFiles(ctx, &t, sn, &dt)
		case t.Kind == policies.KindMySQL:
			err = snapshot.WithReader(ctx, d.r, sn, func(s snapshot.Reader) error { return d.restoreMySQL(ctx, &t, s, &dt) })
		case t.Kind == policies.KindPostgres:
			err = snapshot.WithReader(ctx, d.r, sn, func(s snapshot.Reader) error { return d.restorePostgres(ctx, &t, s, &dt) })
		}
		if ctx.Err() != nil {
			return rep, ctx.Err()
		}
		dt.RestoreSecs = d.now().Sub(t0).Seconds()
		// After the restore: another engine's snapshot learns its
		// recovery point (the database's consistent point) on reading.
		rp := sn.RecoveryPoint.Time
		if rp.IsZero() {
			rp = sn.Time
		}
		if dt.RecoveryPoint.IsZero() { // a PITR drill set its point
			dt.RecoveryPoint = rp.UTC()
		}
		dt.RPOSeconds = start.Sub(rp).Seconds()
		if archived && newest.After(rp) {
			dt.ArchivedUntil = newest.UTC()
			dt.RPOSeconds = start.Sub(newest).Seconds()
			rep.Notes = append(rep.Notes, fmt.Sprintf("target %s: RPO measured from its log archive (newest archived event %s), not from the snapshot", t.Name, newest.UTC().Format(time.RFC3339)))
		}
		rpo = max(rpo, dt.RPOSeconds)
		if err != nil {
			dt.Error = err.Error()
			d.logf("target %s: restore FAILED: %v", t.Name, err)
		} else {
			restored++
			d.logf("target %s: restored snapshot %s in %s", t.Name, sn.ID.Short(), secs(dt.RestoreSecs))
		}
		d.phase("restore "+t.Name, t.Name, t0, true)
		rep.Targets = append(rep.Targets, dt)
	}

	// Checks.
	t0 := d.now()
	allOK := true
	for _, t := range rep.Targets {
		if t.Error != "" {
			allOK = false
		}
	}
	for _, c := range p.Drill.Checks {
		if c.Target != "" && len(o.Targets) > 0 && !contains(o.Targets, c.Target) {
			continue
		}
		if c.Target == "" && len(o.Targets) > 0 && c.Kind() != policies.CheckCommand && c.Kind() != policies.CheckHTTP {
			continue
		}
		res := d.check(ctx, c)
		if ctx.Err() != nil {
			return rep, ctx.Err()
		}
		if res.OK {
			d.logf("check %q: ok (%s)", c.Name, res.Value)
		} else {
			allOK = false
			d.logf("check %q: FAILED: %s", c.Name, res.Message)
		}
		rep.Checks = append(rep.Checks, res)
	}
	d.phase("checks", "", t0, true)
	end := d.now()

	rep.RTO = measure(end.Sub(start).Seconds(), p.Objectives.RTO.D())
	rep.RPO = measure(rpo, p.Objectives.RPO.D())
	switch {
	case !allOK:
		rep.Status = CheckFailed
		// RTO is not reached while checks fail: report the time spent,
		// but never as met.
		rep.RTO.Met = false
	case !rep.RTO.Met || !rep.RPO.Met:
		rep.Status = ObjectiveViolated
	default:
		rep.Status = Passed
	}
	if restored == 0 && allOK {
		rep.Notes = append(rep.Notes, "no target was restored")
	}
	return rep, nil
}

func measure(s float64, obj time.Duration) Measure {
	m := Measure{Seconds: s, Objective: obj.Seconds(), Met: true}
	if obj > 0 && s > obj.Seconds() {
		m.Met = false
	}
	return m
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// teardown stops the scratch servers and removes the scratch directory.
// It runs on success, failure and cancellation alike.
func (d *drill) teardown() {
	for name, s := range d.physical {
		s.Stop()
		d.logf("server on the restored data directory of %s stopped", name)
	}
	if d.server != nil {
		d.server.Stop()
		d.logf("scratch server stopped")
	}
	if d.pg.server != nil {
		d.pg.server.Stop()
		d.logf("scratch postgres stopped")
	}
	for _, s := range d.pg.pitr {
		ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
		if err := pgphysical.Stop(ctx, d.pg.binDir, s.data, s.owner); err != nil && s.conn != nil {
			d.rep.Errors = append(d.rep.Errors, "teardown: "+err.Error())
		}
		cancel()
	}
	if d.dir != "" {
		if err := os.RemoveAll(d.dir); err != nil {
			d.rep.Errors = append(d.rep.Errors, "teardown: "+err.Error())
		}
	}
}

func (d *drill) restoreFiles(ctx context.Context, t *policies.Target, sn *snapshot.Snapshot, dt *Target) error {
	dest := filepath.Join(d.dir, "files", t.Name)
	if err := os.MkdirAll(dest, 0o700); err != nil {
		return err
	}
	d.dirs[t.Name] = dest
	st, err := d.r.RestoreFiles(ctx, sn, dest, snapshot.RestoreOptions{})
	if err != nil {
		return err
	}
	dt.Files, dt.Bytes = st.Files, st.Bytes
	return nil
}

// scratchServer starts (once) the server mysql targets are restored into.
func (d *drill) scratchServer(ctx context.Context) error {
	if d.dsn != "" {
		return nil
	}
	srv := d.p.Drill.MySQL
	if srv.DSN != "" {
		d.dsn = srv.DSN
		if srv.PasswordFile != "" {
			b, err := srv.PasswordFile.Read()
			if err != nil {
				return fmt.Errorf("drill.mysql.password_file: %w", err)
			}
			d.pw = strings.TrimRight(string(b), "\r\n")
		}
		d.logf("restoring into the scratch server of drill.mysql.dsn")
		return nil
	}
	t0 := d.now()
	dir := filepath.Join(d.dir, "mariadb")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	s, err := mariadb.Start(ctx, mariadb.Options{Server: srv.ServerBinary, Dir: dir})
	if err != nil {
		return fmt.Errorf("scratch server (drill.mysql.server_binary): %w", err)
	}
	d.server, d.dsn, d.pw = s, s.DSN(), s.Password
	if d.o.Scratch != nil {
		d.o.Scratch(d.dir, s.Pid())
	}
	d.logf("scratch server started on %s (pid %d)", s.Addr, s.Pid())
	d.phase("scratch server", "", t0, true)
	return nil
}

func (d *drill) restoreMySQL(ctx context.Context, t *policies.Target, s snapshot.Reader, dt *Target) error {
	if physical.IsBase(s.Info()) {
		return d.restorePhysical(ctx, t, s, dt)
	}
	if err := d.scratchServer(ctx); err != nil {
		return err
	}
	if d.server == nil {
		// An existing scratch server: its copies of the databases go.
		dbs, err := restore.MySQLDatabases(ctx, s)
		if err != nil {
			return err
		}
		db, err := d.open(ctx)
		if err != nil {
			return err
		}
		defer db.Close()
		for _, x := range dbs {
			if _, err := db.ExecContext(ctx, "DROP DATABASE IF EXISTS "+mysql.QuoteName(x)); err != nil {
				return fmt.Errorf("scratch server: %w", err)
			}
		}
	}
	// Same database names as the source: checks name their tables.
	st, err := restore.MySQL(ctx, s, restore.MySQLOptions{DSN: d.dsn, Password: d.pw})
	if err != nil {
		return err
	}
	d.mysqlOK[t.Name] = true
	dt.Databases, dt.Tables, dt.Bytes = st.Databases, st.Tables, st.Bytes
	return nil
}

// restorePhysical restores a physical base into a data directory under
// the drill's directory (unpacked, prepared) and starts a server on it
// (loopback, a throw-away account): the time until it answers is part of
// the restore, as it is for an operator.
func (d *drill) restorePhysical(ctx context.Context, t *policies.Target, s snapshot.Reader, dt *Target) error {
	dir := filepath.Join(d.dir, fmt.Sprintf("physical-%d", len(d.physical)))
	data := filepath.Join(dir, "db")
	st, err := physical.RestoreSnapshot(ctx, s, data, physical.RestoreOptions{Owner: physical.Owner{UID: os.Geteuid(), GID: os.Getegid()}})
	if err != nil {
		return err
	}
	srv, err := mariadb.StartOn(ctx, mariadb.Options{Server: d.p.Drill.MySQL.ServerBinary, Dir: dir,
		DefaultsFile: filepath.Join(data, "backup-my.cnf"), StartTimeout: 30 * time.Minute}, data)
	if err != nil {
		return fmt.Errorf("target %s: %w", t.Name, err)
	}
	d.physical[t.Name] = srv
	if d.o.Scratch != nil {
		d.o.Scratch(d.dir, srv.Pid())
	}
	d.logf("server on the restored physical base of %s started on %s (pid %d)", t.Name, srv.Addr, srv.Pid())
	d.mysqlOK[t.Name] = true
	dt.Bytes = st.Bytes
	return nil
}

func (d *drill) open(ctx context.Context) (*sql.DB, error) {
	cfg, err := mysql.ParseDSN(d.dsn, d.pw)
	if err != nil {
		return nil, err
	}
	return mysql.Open(ctx, cfg, 2)
}

// check runs one health check with its timeout.
func (d *drill) check(ctx context.Context, c policies.DrillCheck) CheckResult {
	res := CheckResult{Name: c.Name, Kind: c.Kind(), Target: c.Target}
	t0 := d.now()
	timeout := c.Timeout.D()
	if timeout <= 0 {
		timeout = 5 * time.Minute
	}
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var err error
	switch c.Kind() {
	case policies.CheckSQL:
		res.Value, err = d.sqlCheck(cctx, c)
	case policies.CheckPath:
		res.Value, err = d.pathCheck(c)
	case policies.CheckCommand:
		res.Value, err = d.commandCheck(cctx, c)
	case policies.CheckHTTP:
		res.Value, err = httpCheck(cctx, c)
	default:
		err = errors.New("check has none of sql, path, command, http")
	}
	if err != nil && cctx.Err() == context.DeadlineExceeded && ctx.Err() == nil {
		err = fmt.Errorf("timed out after %s: %w", timeout, err)
	}
	res.OK = err == nil
	if err != nil {
		res.Message = err.Error()
	}
	res.Seconds = d.now().Sub(t0).Seconds()
	return res
}

// sqlTarget is the target an sql check runs against: its own, else the
// policy's first mysql or postgres target.
func (d *drill) sqlTarget(c policies.DrillCheck) (*policies.Target, error) {
	name := c.Target
	if name == "" {
		for _, t := range d.p.Targets {
			if t.Kind == policies.KindMySQL || t.Kind == policies.KindPostgres {
				name = t.Name
				break
			}
		}
	}
	t, err := d.p.Target(name)
	if err != nil {
		return nil, err
	}
	if !d.mysqlOK[name] && len(d.pg.dbs[name]) == 0 {
		return nil, fmt.Errorf("target %s was not restored", name)
	}
	return t, nil
}

func (d *drill) sqlCheck(ctx context.Context, c policies.DrillCheck) (string, error) {
	t, err := d.sqlTarget(c)
	if err != nil {
		return "", err
	}
	var v sql.NullString
	if t.Kind == policies.KindPostgres {
		if v, err = d.pgQuery(ctx, t, c.Database, c.SQL); err != nil {
			return "", err
		}
	} else {
		var db *sql.DB
		if srv := d.physical[t.Name]; srv != nil {
			db, err = srv.DB()
		} else {
			db, err = d.open(ctx)
		}
		if err != nil {
			return "", err
		}
		defer db.Close()
		if err := db.QueryRowContext(ctx, c.SQL).Scan(&v); err != nil {
			return "", fmt.Errorf("%s: %w", c.SQL, err)
		}
	}
	return checkValue(c, v)
}

// checkValue compares an sql check's value with min, max and expect.
func checkValue(c policies.DrillCheck, v sql.NullString) (string, error) {
	if !v.Valid {
		if c.Min != nil || c.Max != nil || c.Expect != "" {
			return "NULL", fmt.Errorf("%s returned NULL", c.SQL)
		}
		return "NULL", nil
	}
	val := v.String
	if c.Expect != "" && val != c.Expect {
		return val, fmt.Errorf("%s returned %q, expected %q", c.SQL, val, c.Expect)
	}
	if c.Min != nil || c.Max != nil {
		f, err := strconv.ParseFloat(strings.TrimSpace(val), 64)
		if err != nil {
			return val, fmt.Errorf("%s returned %q, not a number", c.SQL, val)
		}
		if c.Min != nil && f < *c.Min {
			return val, fmt.Errorf("%s returned %s, below the minimum %s", c.SQL, val, fmtNum(*c.Min))
		}
		if c.Max != nil && f > *c.Max {
			return val, fmt.Errorf("%s returned %s, above the maximum %s", c.SQL, val, fmtNum(*c.Max))
		}
	}
	return val, nil
}

func fmtNum(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }

// pathRoot is where a path check's path is resolved: the restored target,
// and below the single root's name when the target has one path (the
// snapshot stores /var/www/media as "media/...", checks say "catalog").
func (d *drill) pathCheck(c policies.DrillCheck) (string, error) {
	name := c.Target
	if name == "" {
		for _, t := range d.p.Targets {
			if t.Kind == policies.KindFiles {
				name = t.Name
				break
			}
		}
	}
	root, ok := d.dirs[name]
	if !ok {
		return "", fmt.Errorf("target %s was not restored", name)
	}
	rel := filepath.FromSlash(strings.Trim(c.Path, "/"))
	cands := []string{filepath.Join(root, rel)}
	if t, err := d.p.Target(name); err == nil && len(t.Paths) == 1 {
		cands = append([]string{filepath.Join(root, filepath.Base(t.Paths[0]), rel)}, cands...)
	}
	var p string
	for _, cand := range cands {
		if _, err := os.Lstat(cand); err == nil {
			p = cand
			break
		}
	}
	if p == "" {
		return "", fmt.Errorf("%s is missing in the restored %s", c.Path, name)
	}
	var n, size int64
	err := filepath.WalkDir(p, func(_ string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if e.Type().IsRegular() {
			n++
			if fi, err := e.Info(); err == nil {
				size += fi.Size()
			}
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	val := fmt.Sprintf("%d files, %d bytes", n, size)
	if c.MinFiles > 0 && n < int64(c.MinFiles) {
		return val, fmt.Errorf("%s has %d files, fewer than min_files %d", c.Path, n, c.MinFiles)
	}
	if c.MinSize > 0 && size < int64(c.MinSize) {
		return val, fmt.Errorf("%s holds %d bytes, less than min_size %d", c.Path, size, int64(c.MinSize))
	}
	return val, nil
}

// commandCheck runs argv in the scratch directory. The environment tells
// it where things were restored: LIFEBOAT_DRILL_DIR (scratch directory),
// LIFEBOAT_DRILL_MYSQL_DSN and LIFEBOAT_DRILL_MYSQL_PASSWORD (the scratch
// server), LIFEBOAT_DRILL_POSTGRES_URL and LIFEBOAT_DRILL_POSTGRES_PASSWORD
// (the scratch PostgreSQL, no database in the URL),
// LIFEBOAT_DRILL_FILES_<TARGET> (a files target's restore root; TARGET
// upper-cased, - and . as _).
func (d *drill) commandCheck(ctx context.Context, c policies.DrillCheck) (string, error) {
	cmd := exec.CommandContext(ctx, c.Command[0], c.Command[1:]...)
	cmd.Dir = d.dir
	cmd.Env = append(os.Environ(), "LIFEBOAT_DRILL_DIR="+d.dir)
	if d.dsn != "" {
		cmd.Env = append(cmd.Env, "LIFEBOAT_DRILL_MYSQL_DSN="+d.dsn, "LIFEBOAT_DRILL_MYSQL_PASSWORD="+d.pw)
	}
	pgc := d.pg.conn
	if pgc == nil && len(d.pg.pitr) > 0 {
		pgc = d.pg.pitr[0].conn
	}
	if pgc != nil {
		cmd.Env = append(cmd.Env, "LIFEBOAT_DRILL_POSTGRES_URL="+pgc.String(), "LIFEBOAT_DRILL_POSTGRES_PASSWORD="+pgc.Password)
	}
	for name, dir := range d.dirs {
		key := strings.NewReplacer("-", "_", ".", "_").Replace(strings.ToUpper(name))
		cmd.Env = append(cmd.Env, "LIFEBOAT_DRILL_FILES_"+key+"="+dir)
	}
	cmd.WaitDelay = 2 * time.Second
	out, err := cmd.CombinedOutput()
	tail := strings.TrimSpace(string(out))
	if len(tail) > 500 {
		tail = "..." + tail[len(tail)-500:]
	}
	if err != nil {
		if tail != "" {
			return tail, fmt.Errorf("%s: %v: %s", strings.Join(c.Command, " "), err, tail)
		}
		return "", fmt.Errorf("%s: %v", strings.Join(c.Command, " "), err)
	}
	return "exit 0", nil
}

func httpCheck(ctx context.Context, c policies.DrillCheck) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.HTTP, nil)
	if err != nil {
		return "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	val := resp.Status
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return val, fmt.Errorf("%s answered %s", c.HTTP, resp.Status)
	}
	if c.Expect != "" && !strings.Contains(string(body), c.Expect) {
		return val, fmt.Errorf("%s: body does not contain %q", c.HTTP, c.Expect)
	}
	return val, nil
}

// scratchPostgres starts (once) the PostgreSQL server postgres targets
// are restored into, or takes drill.postgres.dsn.
func (d *drill) scratchPostgres(ctx context.Context) error {
	if d.pg.conn != nil {
		return nil
	}
	srv := d.p.Drill.Postgres
	if srv.DSN != "" {
		pw := ""
		if srv.PasswordFile != "" {
			b, err := srv.PasswordFile.Read()
			if err != nil {
				return fmt.Errorf("drill.postgres.password_file: %w", err)
			}
			pw = strings.TrimRight(string(b), "\r\n")
		}
		c, err := postgres.ParseDSN(srv.DSN, pw)
		if err != nil {
			return fmt.Errorf("drill.postgres.dsn: %w", err)
		}
		d.pg.conn = c
		d.logf("restoring into the scratch server of drill.postgres.dsn")
		return nil
	}
	t0 := d.now()
	dir := filepath.Join(d.dir, "postgres")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	if os.Geteuid() == 0 {
		// The server runs as the postgres user, which must enter the
		// scratch directory (not list it; what is below stays 0700).
		if err := os.Chmod(d.dir, 0o711); err != nil {
			return err
		}
	}
	s, err := pgscratch.Start(ctx, pgscratch.Options{Server: srv.ServerBinary, Dir: dir})
	if err != nil {
		return fmt.Errorf("scratch postgres (drill.postgres.server_binary): %w", err)
	}
	d.pg.server, d.pg.binDir = s, s.BinDir()
	if d.pg.conn, err = postgres.ParseDSN(s.URL(), s.Password); err != nil {
		return err
	}
	if d.o.Scratch != nil {
		d.o.Scratch(d.dir, s.Pid())
	}
	d.logf("scratch postgres started on %s:%d (pid %d)", s.Host, s.Port, s.Pid())
	d.phase("scratch postgres", "", t0, true)
	return nil
}

// restorePostgres restores a postgres snapshot under its databases'
// original names (checks name them). With the snapshot's globals the
// roles come first and ownership and grants are kept; without, objects
// belong to the scratch superuser and grants are left out.
func (d *drill) restorePostgres(ctx context.Context, t *policies.Target, s snapshot.Reader, dt *Target) error {
	if err := d.scratchPostgres(ctx); err != nil {
		return err
	}
	dbs, globals, err := restore.PostgresDatabases(ctx, s)
	if err != nil {
		return err
	}
	// Checks name databases by their original names, so two targets
	// cannot share one: the second would fail as "already exists" (or,
	// on drill.postgres.dsn, drop the first's copy under its checks).
	for _, x := range dbs {
		if other, ok := d.pg.owner[x]; ok {
			return fmt.Errorf("database %q is in targets %s and %s, restored into the same scratch PostgreSQL under their original names: drill the two targets in separate policies",
				x, other, t.Name)
		}
	}
	for _, x := range dbs {
		d.pg.owner[x] = t.Name
	}
	if d.pg.server == nil {
		if err := d.pgDrop(ctx, dbs); err != nil {
			return err
		}
	}
	opts := restore.PostgresOptions{DSN: d.pg.conn.String(), Password: d.pg.conn.Password, BinDir: d.pg.binDir,
		Jobs: t.Jobs, TempDir: d.dir, Globals: globals}
	if !globals {
		opts.NoOwner, opts.NoPrivileges = true, true
	}
	st, err := restore.Postgres(ctx, s, opts)
	if err != nil {
		return err
	}
	if len(st.Warnings) > 0 {
		d.rep.Notes = append(d.rep.Notes, fmt.Sprintf("target %s: %d warnings while restoring roles (first: %s)", t.Name, len(st.Warnings), st.Warnings[0]))
	}
	d.pg.dbs[t.Name] = st.Databases
	dt.Databases, dt.Bytes = len(st.Databases), st.Bytes
	return nil
}

// pgDrop drops an existing scratch server's copies of dbs.
func (d *drill) pgDrop(ctx context.Context, dbs []string) error {
	psql, err := postgres.Binary(d.pg.binDir, "psql")
	if err != nil {
		return err
	}
	se, err := postgres.OpenSession(ctx, psql, d.pg.conn, "postgres")
	if err != nil {
		return fmt.Errorf("scratch postgres: %w", err)
	}
	defer se.Close()
	for _, x := range dbs {
		if err := se.Exec("DROP DATABASE IF EXISTS " + postgres.QuoteIdent(x) + " WITH (FORCE)"); err != nil {
			return fmt.Errorf("scratch postgres: %w", err)
		}
	}
	if _, err := se.Query("SELECT 1"); err != nil {
		return fmt.Errorf("scratch postgres: drop the previous drill's databases: %w", err)
	}
	return nil
}

// pgNull is what psql prints for NULL in a check's value.
const pgNull = "\x1a"

// pgQuery runs an sql check with psql in a restored database of postgres
// target t: database when given, else the first of the target's databases
// (policy order) that was restored, else the first restored by name. It
// returns the first column of the first row.
func (d *drill) pgQuery(ctx context.Context, t *policies.Target, database, q string) (sql.NullString, error) {
	dbs := d.pg.dbs[t.Name]
	db := dbs[0]
	for _, want := range t.Databases {
		if slices.Contains(dbs, want) {
			db = want
			break
		}
	}
	if database != "" {
		if !slices.Contains(dbs, database) {
			return sql.NullString{}, fmt.Errorf("%s: database %q is not in the restored snapshot of %s (it has %s)", q, database, t.Name, strings.Join(dbs, ", "))
		}
		db = database
	}
	psql, err := postgres.Binary(d.pg.binDir, "psql")
	if err != nil {
		return sql.NullString{}, err
	}
	conn := d.pg.conn
	if c, ok := d.pg.conns[t.Name]; ok {
		conn = c
	}
	cmd := exec.CommandContext(ctx, psql, "-X", "-w", "-q", "--csv", "-t", "-P", "null="+pgNull,
		"-v", "ON_ERROR_STOP=1", "-d", conn.URL(db), "-f", "-")
	cmd.Env = conn.Env()
	cmd.Stdin = strings.NewReader(q)
	cmd.WaitDelay = 2 * time.Second
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String())
		if msg == "" {
			msg = err.Error()
		}
		return sql.NullString{}, fmt.Errorf("%s (database %s): %s", q, db, msg)
	}
	r := csv.NewReader(&out)
	r.FieldsPerRecord = -1
	rec, err := r.Read()
	if err == io.EOF {
		return sql.NullString{}, fmt.Errorf("%s (database %s) returned no rows", q, db)
	}
	if err != nil {
		return sql.NullString{}, fmt.Errorf("%s (database %s): psql output: %w", q, db, err)
	}
	if len(rec) != 1 {
		return sql.NullString{}, fmt.Errorf("%s (database %s) returned %d columns, expected 1", q, db, len(rec))
	}
	return sql.NullString{String: rec[0], Valid: rec[0] != pgNull}, nil
}
