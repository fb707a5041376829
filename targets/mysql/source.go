package mysql

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"path"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	driver "github.com/go-sql-driver/mysql"

	"github.com/lifeboat-backup/lifeboat/engine/snapshot"
	"github.com/lifeboat-backup/lifeboat/internal/inflight"
	"github.com/lifeboat-backup/lifeboat/targets"
)

// LockMode says how the dump gets one consistent point in time.
type LockMode string

const (
	// LockFTWRL: FLUSH TABLES WITH READ LOCK, one consistent-snapshot
	// transaction per worker, binlog position read, UNLOCK TABLES.
	LockFTWRL LockMode = "ftwrl"
	// LockBackup: on MariaDB, BACKUP STAGE START + BLOCK_COMMIT instead of
	// FTWRL (does not wait for long-running SELECTs to finish); on MySQL 8,
	// LOCK INSTANCE FOR BACKUP for the whole dump (DDL waits, so no table
	// changes under the reads) plus FTWRL for the consistent point.
	LockBackup LockMode = "backup_lock"
	// LockSingle takes no lock: one connection, one transaction (for
	// servers that forbid FTWRL such as managed RDS). Only InnoDB tables
	// are consistent; the dump runs on one connection.
	LockSingle LockMode = "single"
)

// Options configure a dump.
type Options struct {
	// DSN of the server: mysql://user@host:port/ or user@tcp(host:port)/.
	DSN string
	// Password, if not in the DSN; takes precedence over one in it.
	Password string
	// Databases to dump; empty: all but the system schemas.
	Databases []string
	// ExcludeTables are path.Match patterns matched against "db.table"
	// and "table".
	ExcludeTables []string
	// Jobs is the number of worker connections (default GOMAXPROCS, at
	// most 16); LockSingle uses one.
	Jobs     int
	LockMode LockMode
	// SplitBytes: an InnoDB table whose primary key starts with an integer
	// column and whose data is larger than this is read in ranges of
	// about this size by as many worker connections as are free, and
	// stored as one stream, in key order as if read whole. 0: 64 MiB;
	// negative: never split.
	SplitBytes int64
	// Users also dumps the user accounts and roles (not the system ones)
	// and their grants, read while the lock is held (in the transaction
	// for LockSingle), as the top-level UsersFile. Needs SELECT on
	// mysql.user (and the mysql database for SHOW GRANTS FOR).
	Users bool
}

// defaultSplitBytes is Options.SplitBytes when 0.
const defaultSplitBytes = 64 << 20

// systemSchemas are never dumped unless named in Databases.
var systemSchemas = []string{"information_schema", "mysql", "performance_schema", "sys"}

// Source dumps databases of a MySQL or MariaDB server. It has the method
// set of engine.Source (with an unnamed opener type, as targets do not
// import engine) and of engine.RecoveryPointer.
type Source struct {
	opts Options
	cfg  *driver.Config

	mu      sync.Mutex
	rpTime  time.Time
	details map[string]string
}

// New checks the options; it does not connect.
func New(opts Options) (*Source, error) {
	if opts.DSN == "" {
		return nil, errors.New("mysql: no DSN")
	}
	cfg, err := ParseDSN(opts.DSN, opts.Password)
	if err != nil {
		return nil, err
	}
	switch opts.LockMode {
	case "":
		opts.LockMode = LockFTWRL
	case LockFTWRL, LockBackup, LockSingle:
	default:
		return nil, fmt.Errorf("mysql: unknown lock mode %q (ftwrl, backup_lock or single)", opts.LockMode)
	}
	for _, p := range opts.ExcludeTables {
		if _, err := path.Match(p, ""); err != nil {
			return nil, fmt.Errorf("mysql: exclude pattern %q: %w", p, err)
		}
	}
	if opts.Jobs <= 0 {
		opts.Jobs = min(runtime.GOMAXPROCS(0), 16)
	}
	if opts.LockMode == LockSingle {
		opts.Jobs = 1
	}
	if opts.SplitBytes == 0 {
		opts.SplitBytes = defaultSplitBytes
	}
	return &Source{opts: opts, cfg: cfg}, nil
}

// Kind implements engine.Source.
func (s *Source) Kind() string { return "mysql" }

// AllOrNothing implements engine.AllOrNothing: a dump is one consistent
// whole, read completely each time; a table that cannot be read fails it.
func (s *Source) AllOrNothing() bool { return true }

// Paths implements engine.Source: the server without the password, one
// path per selected database (or the server alone for all).
func (s *Source) Paths() []string {
	return targets.DatabasePaths(RedactConfig(s.cfg), s.opts.Databases)
}

// RecoveryPoint implements engine.RecoveryPointer: the moment of the
// consistent snapshot and the binlog file/position and GTID set at it.
func (s *Source) RecoveryPoint() (time.Time, map[string]string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rpTime, s.details
}

// Table is one base table to dump.
type table struct {
	db, name string
	columns  []string // stored (not generated) columns in order
	engine   string
	size     int64 // DATA_LENGTH, the server's estimate
}

// dump is one run of Walk.
type dump struct {
	s       *Source
	db      *sql.DB
	ctl     *sql.Conn
	workers chan *sql.Conn
	all     []*sql.Conn
	mtime   time.Time
	mariadb bool
	users   []byte // UsersFile's content, with Options.Users

	streams inflight.Streams // entries emitted and not yet read
}

// Walk implements engine.Source. It takes the consistent snapshot, then
// emits per database a directory with its CREATE DATABASE, per table its
// schema and data, and its views, triggers, routines and events. Data is
// read when the engine opens an entry, from a worker connection's
// snapshot transaction. Any object that cannot be read fails the whole
// walk (a database dump with a table missing is not a backup): Walk
// waits for every entry it emitted to be read and returns the first
// error.
func (s *Source) Walk(ctx context.Context, warn func(string, error), fn func(snapshot.Entry, func() (io.ReadCloser, error)) error) error {
	db, err := Open(ctx, s.cfg, s.opts.Jobs+1)
	if err != nil {
		return err
	}
	defer db.Close()
	d := &dump{s: s, db: db}
	defer d.close()
	plan, err := d.start(ctx)
	if err != nil {
		return err
	}
	usersDone := !s.opts.Users
	for _, p := range plan {
		// UsersFile goes at its place in the sorted tree.
		if !usersDone && EncodeName(p.name) > UsersFile {
			if err := d.emitUsers(fn); err != nil {
				return err
			}
			usersDone = true
		}
		if err := d.emit(p, fn); err != nil {
			return err
		}
	}
	if !usersDone {
		if err := d.emitUsers(fn); err != nil {
			return err
		}
	}
	// Wait for the engine to read every entry emitted.
	return d.streams.Wait(ctx)
}

// close ends the worker transactions once no reader holds a connection.
func (d *dump) close() {
	if d.workers != nil {
		for range d.all {
			<-d.workers
		}
	}
	for _, c := range d.all {
		_, _ = c.ExecContext(context.Background(), "ROLLBACK")
		c.Close()
	}
	if d.ctl != nil {
		d.ctl.Close()
	}
}

// start opens the worker connections, takes the consistent snapshot and
// lists what to dump.
func (d *dump) start(ctx context.Context) ([]*dbPlan, error) {
	s := d.s
	var err error
	if d.ctl, err = d.db.Conn(ctx); err != nil {
		return nil, connectError(s.cfg, err)
	}
	var version string
	if err := d.ctl.QueryRowContext(ctx, "SELECT VERSION()").Scan(&version); err != nil {
		return nil, fmt.Errorf("mysql: %w", err)
	}
	d.mariadb = strings.Contains(strings.ToLower(version), "mariadb")
	// Worker sessions: raw bytes, UTC timestamps, repeatable read.
	for range s.opts.Jobs {
		c, err := d.db.Conn(ctx)
		if err != nil {
			return nil, connectError(s.cfg, err)
		}
		d.all = append(d.all, c)
		for _, q := range []string{
			"SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ",
			"SET NAMES binary",
			"SET SESSION time_zone = '+00:00'",
			"SET SESSION net_write_timeout = 3600",
			"SET SESSION wait_timeout = 86400",
		} {
			if _, err := c.ExecContext(ctx, q); err != nil {
				return nil, fmt.Errorf("mysql: %s: %w", q, err)
			}
		}
	}
	details := map[string]string{"server": RedactConfig(s.cfg), "server_version": version, "lock_mode": string(s.opts.LockMode)}
	var plan []*dbPlan
	if s.opts.LockMode == LockSingle {
		plan, err = d.snapshotSingle(ctx, details)
	} else {
		plan, err = d.snapshotLocked(ctx, details)
	}
	if err != nil {
		return nil, err
	}
	d.workers = make(chan *sql.Conn, len(d.all))
	for _, c := range d.all {
		d.workers <- c
	}
	return plan, nil
}

// lockStatement is a statement that takes a dump's lock, and what it
// needs (for its error).
type lockStatement struct{ sql, needs string }

// lockStatements says how a dump with a lock of mode (LockFTWRL or
// LockBackup) gets its consistent point on MariaDB or MySQL: the
// statements that lock, in order, and the one that unlocks once the
// snapshot transactions have started and everything is listed. On MySQL
// the instance backup lock is not undone by it: the control connection
// holds it until the dump ends and the connection closes.
func lockStatements(mode LockMode, mariadb bool) ([]lockStatement, string) {
	ftwrl := lockStatement{"FLUSH TABLES WITH READ LOCK", "needs the RELOAD privilege; --lock-mode single avoids it"}
	switch {
	case mode == LockBackup && mariadb:
		// BLOCK_COMMIT runs the stages before it (FLUSH, BLOCK_DDL) too.
		return []lockStatement{{"BACKUP STAGE START", "needs the RELOAD privilege"},
			{"BACKUP STAGE BLOCK_COMMIT", "needs the RELOAD privilege"}}, "BACKUP STAGE END"
	case mode == LockBackup:
		return []lockStatement{{"LOCK INSTANCE FOR BACKUP", "needs the BACKUP_ADMIN privilege, MySQL 8"}, ftwrl}, "UNLOCK TABLES"
	}
	return []lockStatement{ftwrl}, "UNLOCK TABLES"
}

// snapshotLocked takes the lock, starts the workers' snapshot
// transactions, reads the binlog position and lists every object while
// DDL is blocked, then unlocks. So the list is exactly what the
// transactions see: a table created after the unlock is not in it (its
// reading would fail with error 1412), and every table in it existed at
// the snapshot point.
func (d *dump) snapshotLocked(ctx context.Context, details map[string]string) ([]*dbPlan, error) {
	lock, unlock := lockStatements(d.s.opts.LockMode, d.mariadb)
	lockStart := time.Now()
	for _, q := range lock {
		if _, err := d.ctl.ExecContext(ctx, q.sql); err != nil {
			return nil, fmt.Errorf("mysql: %s (%s): %w", q.sql, q.needs, err)
		}
	}
	plan, err := func() ([]*dbPlan, error) {
		if err := d.startTransactions(ctx); err != nil {
			return nil, err
		}
		d.setRecoveryPoint(time.Now(), details)
		if err := d.binlogLocked(ctx, details); err != nil {
			return nil, err
		}
		plan, err := d.list(ctx)
		if err != nil {
			return nil, err
		}
		return plan, d.readUsers(ctx)
	}()
	if _, uerr := d.ctl.ExecContext(context.WithoutCancel(ctx), unlock); uerr != nil && err == nil {
		err = fmt.Errorf("mysql: %s: %w", unlock, uerr)
	}
	details["lock_seconds"] = strconv.FormatFloat(time.Since(lockStart).Seconds(), 'f', 3, 64)
	return plan, err
}

// snapshotSingle starts the one worker's transaction without a lock. DDL
// is not blocked, so the tables are listed before and after the
// transaction starts; if they differ (a table was created or dropped
// just then) it starts again, so that the list matches the snapshot.
func (d *dump) snapshotSingle(ctx context.Context, details map[string]string) ([]*dbPlan, error) {
	const attempts = 5
	for range attempts {
		before, err := d.tableSet(ctx)
		if err != nil {
			return nil, err
		}
		if err := d.startTransactions(ctx); err != nil {
			return nil, err
		}
		d.setRecoveryPoint(time.Now(), details)
		if err := d.binlogSnapshot(ctx, details); err != nil {
			return nil, err
		}
		plan, err := d.list(ctx)
		if err != nil {
			return nil, err
		}
		after, err := d.tableSet(ctx)
		if err != nil {
			return nil, err
		}
		if slices.Equal(before, after) {
			return plan, d.readUsers(ctx)
		}
		for _, c := range d.all {
			if _, err := c.ExecContext(ctx, "ROLLBACK"); err != nil {
				return nil, fmt.Errorf("mysql: ROLLBACK: %w", err)
			}
		}
	}
	return nil, fmt.Errorf("mysql: tables were created or dropped each time the snapshot started (%d attempts); DDL is running: retry later or use --lock-mode ftwrl", attempts)
}

func (d *dump) startTransactions(ctx context.Context) error {
	for _, c := range d.all {
		if _, err := c.ExecContext(ctx, "START TRANSACTION WITH CONSISTENT SNAPSHOT"); err != nil {
			return fmt.Errorf("mysql: START TRANSACTION WITH CONSISTENT SNAPSHOT: %w", err)
		}
	}
	return nil
}

func (d *dump) setRecoveryPoint(t time.Time, details map[string]string) {
	d.mtime = t.UTC()
	d.s.mu.Lock()
	d.s.rpTime, d.s.details = t.UTC(), details
	d.s.mu.Unlock()
}

// tableSet lists every table and view of the server as "db.name" lines.
func (d *dump) tableSet(ctx context.Context) ([]string, error) {
	set, err := queryStrings(ctx, d.ctl, "SELECT CONCAT(TABLE_SCHEMA, '.', TABLE_NAME, '.', TABLE_TYPE) FROM information_schema.TABLES ORDER BY 1")
	if err != nil {
		return nil, fmt.Errorf("mysql: list tables: %w", err)
	}
	return set, nil
}

// binlogLocked reads the binlog position while commits are blocked.
func (d *dump) binlogLocked(ctx context.Context, details map[string]string) error {
	q := "SHOW MASTER STATUS"
	rows, err := d.ctl.QueryContext(ctx, q)
	var me *driver.MySQLError
	if errors.As(err, &me) && me.Number == 1064 && !d.mariadb {
		// MySQL 8.4 removed SHOW MASTER STATUS (8.2 added this name).
		q = "SHOW BINARY LOG STATUS"
		rows, err = d.ctl.QueryContext(ctx, q)
	}
	if err != nil {
		if isAccessDenied(err) {
			details["binlog"] = "unknown (no privilege for " + q + ")"
			return nil
		}
		return fmt.Errorf("mysql: %s: %w", q, err)
	}
	row, err := scanMap(rows)
	if err != nil {
		return fmt.Errorf("mysql: %s: %w", q, err)
	}
	if row == nil {
		details["binlog"] = "off"
	} else {
		details["binlog_file"] = row["File"]
		details["binlog_position"] = row["Position"]
		if g := strings.ReplaceAll(row["Executed_Gtid_Set"], "\n", ""); g != "" {
			details["gtid_executed"] = g
		}
	}
	if d.mariadb {
		var g sql.NullString
		if err := d.ctl.QueryRowContext(ctx, "SELECT @@GLOBAL.gtid_binlog_pos").Scan(&g); err == nil && g.String != "" {
			details["gtid_binlog_pos"] = g.String
		}
	}
	return nil
}

// binlogSnapshot reads the binlog position of the first worker's
// transaction (MariaDB's binlog_snapshot_* status; MySQL has none).
func (d *dump) binlogSnapshot(ctx context.Context, details map[string]string) error {
	if !d.mariadb {
		details["binlog"] = "unknown (single-transaction mode on MySQL)"
		return nil
	}
	rows, err := d.all[0].QueryContext(ctx, "SHOW SESSION STATUS LIKE 'binlog_snapshot_%'")
	if err != nil {
		return fmt.Errorf("mysql: binlog snapshot status: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var k, v string
		if err := rows.Scan(&k, &v); err != nil {
			return err
		}
		switch strings.ToLower(k) {
		case "binlog_snapshot_file":
			if v == "" {
				details["binlog"] = "off"
			} else {
				details["binlog_file"] = v
			}
		case "binlog_snapshot_position":
			if details["binlog"] != "off" {
				details["binlog_position"] = v
			}
		}
	}
	return rows.Err()
}

func isAccessDenied(err error) bool {
	var me *driver.MySQLError
	return errors.As(err, &me) && (me.Number == 1227 || me.Number == 1045 || me.Number == 1142 || me.Number == 1044)
}

// scanMap reads the first row of rows as column -> text (nil: no row).
func scanMap(rows *sql.Rows) (map[string]string, error) {
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return nil, err
	}
	if !rows.Next() {
		return nil, rows.Err()
	}
	vals := make([]sql.NullString, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	if err := rows.Scan(ptrs...); err != nil {
		return nil, err
	}
	m := make(map[string]string, len(cols))
	for i, c := range cols {
		m[c] = vals[i].String
	}
	return m, rows.Close()
}

// databases lists the databases to dump, sorted by their path element.
func (d *dump) databases(ctx context.Context) ([]string, error) {
	rows, err := d.ctl.QueryContext(ctx, "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA")
	if err != nil {
		return nil, fmt.Errorf("mysql: list databases: %w", err)
	}
	var have []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			rows.Close()
			return nil, err
		}
		have = append(have, n)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	var out []string
	if len(d.s.opts.Databases) == 0 {
		for _, n := range have {
			if !slices.Contains(systemSchemas, strings.ToLower(n)) {
				out = append(out, n)
			}
		}
	} else {
		for _, n := range d.s.opts.Databases {
			if !slices.Contains(have, n) {
				return nil, fmt.Errorf("mysql: database %q does not exist (or the user may not see it)", n)
			}
			out = append(out, n)
		}
	}
	slices.SortFunc(out, func(a, b string) int { return strings.Compare(EncodeName(a), EncodeName(b)) })
	return slices.Compact(out), nil
}

func (d *dump) excluded(db, tbl string) bool {
	for _, p := range d.s.opts.ExcludeTables {
		if ok, _ := path.Match(p, db+"."+tbl); ok {
			return true
		}
		if ok, _ := path.Match(p, tbl); ok {
			return true
		}
	}
	return false
}

// entry is one file to emit below a database directory.
type entry struct {
	base string
	size int64
	open func() (io.ReadCloser, error)
}

// dbPlan is what to emit for one database: its directory's entries,
// sorted by name.
type dbPlan struct {
	name    string
	entries []entry
}

// list reads the databases, their tables' columns and every CREATE
// statement; table data is read later, when the engine opens the entries.
func (d *dump) list(ctx context.Context) ([]*dbPlan, error) {
	names, err := d.databases(ctx)
	if err != nil {
		return nil, err
	}
	plan := make([]*dbPlan, 0, len(names))
	for _, n := range names {
		p, err := d.listDatabase(ctx, n)
		if err != nil {
			return nil, err
		}
		plan = append(plan, p)
	}
	return plan, nil
}

func (d *dump) listDatabase(ctx context.Context, name string) (*dbPlan, error) {
	var entries []entry
	addSQL := func(base string, data []byte) {
		entries = append(entries, entry{base: base, size: int64(len(data)), open: func() (io.ReadCloser, error) {
			return io.NopCloser(bytes.NewReader(data)), nil
		}})
	}
	var createDB string
	if err := d.ctl.QueryRowContext(ctx, "SHOW CREATE DATABASE "+QuoteName(name)).Scan(new(string), &createDB); err != nil {
		return nil, fmt.Errorf("mysql: SHOW CREATE DATABASE %s: %w", QuoteName(name), err)
	}
	addSQL(DatabaseFile, (&Object{Kind: "database", Name: name, Stmt: createDB}).Format())

	tables, views, err := d.tables(ctx, name)
	if err != nil {
		return nil, err
	}
	for _, t := range tables {
		var create string
		if err := d.ctl.QueryRowContext(ctx, "SHOW CREATE TABLE "+QuoteName(name)+"."+QuoteName(t.name)).Scan(new(string), &create); err != nil {
			return nil, fmt.Errorf("mysql: SHOW CREATE TABLE %s.%s: %w", QuoteName(name), QuoteName(t.name), err)
		}
		addSQL(EncodeName(t.name)+SuffixSchema, (&Object{Kind: "table", Name: t.name,
			Setup: []string{"SET NAMES utf8mb4"}, Stmt: create}).Format())
		t := t
		entries = append(entries, entry{base: EncodeName(t.name) + SuffixData, open: func() (io.ReadCloser, error) {
			return d.openTable(ctx, t)
		}})
	}
	for _, v := range views {
		o, err := d.showCreate(ctx, "view", name, v)
		if err != nil {
			return nil, err
		}
		addSQL(EncodeName(v)+SuffixView, o.Format())
	}
	for _, k := range []struct{ kind, query, suffix string }{
		{"trigger", "SELECT TRIGGER_NAME FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = ?", SuffixTrigger},
		{"procedure", "SELECT ROUTINE_NAME FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = ? AND ROUTINE_TYPE = 'PROCEDURE'", SuffixProcedure},
		{"function", "SELECT ROUTINE_NAME FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = ? AND ROUTINE_TYPE = 'FUNCTION'", SuffixFunction},
		{"event", "SELECT EVENT_NAME FROM information_schema.EVENTS WHERE EVENT_SCHEMA = ?", SuffixEvent},
	} {
		names, err := queryStrings(ctx, d.ctl, k.query, name)
		if err != nil {
			return nil, fmt.Errorf("mysql: list %ss of %s: %w", k.kind, QuoteName(name), err)
		}
		for _, n := range names {
			o, err := d.showCreate(ctx, k.kind, name, n)
			if err != nil {
				return nil, err
			}
			addSQL(EncodeName(n)+k.suffix, o.Format())
		}
	}
	slices.SortFunc(entries, func(a, b entry) int { return strings.Compare(a.base, b.base) })
	return &dbPlan{name: name, entries: entries}, nil
}

// emit hands one database's directory and entries to the engine; each
// entry's reading is tracked so that Walk can wait for all of them.
func (d *dump) emit(p *dbPlan, fn func(snapshot.Entry, func() (io.ReadCloser, error)) error) error {
	dir := EncodeName(p.name)
	dirEntry := snapshot.Entry{Path: dir, Type: snapshot.TypeDir, Mode: 0o700, ModTime: d.mtime}
	if err := fn(dirEntry, nil); err != nil {
		return err
	}
	for _, e := range p.entries {
		ent := snapshot.Entry{Path: dir + "/" + e.base, Type: snapshot.TypeFile, Mode: 0o600, ModTime: d.mtime, Size: e.size}
		d.streams.Begin()
		open := e.open
		tracked := func() (io.ReadCloser, error) {
			rc, err := open()
			if err != nil {
				d.streams.Finish(fmt.Errorf("%s: %w", ent.Path, err))
				return nil, err
			}
			return &trackedReader{rc: rc, done: func(err error) {
				if err != nil {
					err = fmt.Errorf("%s: %w", ent.Path, err)
				}
				d.streams.Finish(err)
			}}, nil
		}
		if err := fn(ent, tracked); err != nil {
			d.streams.Finish(nil)
			return err
		}
	}
	return nil
}

// readUsers reads UsersFile's content with Options.Users.
func (d *dump) readUsers(ctx context.Context) error {
	if !d.s.opts.Users {
		return nil
	}
	b, err := dumpUsers(ctx, d.ctl, d.mariadb)
	d.users = b
	return err
}

// emitUsers hands UsersFile to the engine.
func (d *dump) emitUsers(fn func(snapshot.Entry, func() (io.ReadCloser, error)) error) error {
	b := d.users
	ent := snapshot.Entry{Path: UsersFile, Type: snapshot.TypeFile, Mode: 0o600, ModTime: d.mtime, Size: int64(len(b))}
	return fn(ent, func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil })
}

// trackedReader reports the first read error (or success) when closed.
type trackedReader struct {
	rc   io.ReadCloser
	err  error
	eof  bool
	once sync.Once
	done func(error)
}

func (t *trackedReader) Read(p []byte) (int, error) {
	n, err := t.rc.Read(p)
	if err == io.EOF {
		t.eof = true
	} else if err != nil && t.err == nil {
		t.err = err
	}
	return n, err
}

func (t *trackedReader) Close() error {
	err := t.rc.Close()
	t.once.Do(func() {
		e := t.err
		if e == nil && err != nil {
			e = err
		}
		if e == nil && !t.eof {
			e = errors.New("not read to the end")
		}
		t.done(e)
	})
	return err
}

func queryStrings(ctx context.Context, c *sql.Conn, q string, args ...any) ([]string, error) {
	rows, err := c.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

// tables lists the base tables (with their stored columns) and views of db.
func (d *dump) tables(ctx context.Context, db string) ([]*table, []string, error) {
	rows, err := d.ctl.QueryContext(ctx, "SELECT TABLE_NAME, TABLE_TYPE, COALESCE(ENGINE, ''), COALESCE(DATA_LENGTH, 0) FROM information_schema.TABLES WHERE TABLE_SCHEMA = ?", db)
	if err != nil {
		return nil, nil, fmt.Errorf("mysql: list tables of %s: %w", QuoteName(db), err)
	}
	var tables []*table
	var views []string
	for rows.Next() {
		var name, typ, eng string
		var size int64
		if err := rows.Scan(&name, &typ, &eng, &size); err != nil {
			rows.Close()
			return nil, nil, err
		}
		switch {
		case d.excluded(db, name):
		case typ == "VIEW":
			views = append(views, name)
		case typ == "BASE TABLE":
			tables = append(tables, &table{db: db, name: name, engine: eng, size: size})
		}
		// SYSTEM VIEW, SEQUENCE (MariaDB): not yet.
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, nil, err
	}
	byName := map[string]*table{}
	for _, t := range tables {
		byName[t.name] = t
	}
	rows, err = d.ctl.QueryContext(ctx, `SELECT TABLE_NAME, COLUMN_NAME, EXTRA FROM information_schema.COLUMNS
		WHERE TABLE_SCHEMA = ? ORDER BY TABLE_NAME, ORDINAL_POSITION`, db)
	if err != nil {
		return nil, nil, fmt.Errorf("mysql: list columns of %s: %w", QuoteName(db), err)
	}
	defer rows.Close()
	for rows.Next() {
		var tn, cn, extra string
		if err := rows.Scan(&tn, &cn, &extra); err != nil {
			return nil, nil, err
		}
		t := byName[tn]
		if t == nil {
			continue
		}
		ex := strings.ToUpper(extra)
		if strings.Contains(ex, "VIRTUAL GENERATED") || strings.Contains(ex, "STORED GENERATED") || strings.Contains(ex, "PERSISTENT GENERATED") {
			continue
		}
		t.columns = append(t.columns, cn)
	}
	if err := rows.Err(); err != nil {
		return nil, nil, err
	}
	for _, t := range tables {
		if len(t.columns) == 0 {
			return nil, nil, fmt.Errorf("mysql: table %s.%s has no columns to dump", QuoteName(db), QuoteName(t.name))
		}
	}
	return tables, views, nil
}

// showCreate reads the CREATE statement of a view, trigger, routine or
// event with the session settings it needs.
func (d *dump) showCreate(ctx context.Context, kind, db, name string) (*Object, error) {
	q := "SHOW CREATE " + strings.ToUpper(kind) + " " + QuoteName(db) + "." + QuoteName(name)
	rows, err := d.ctl.QueryContext(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("mysql: %s: %w", q, err)
	}
	m, err := scanMap(rows)
	if err != nil || m == nil {
		return nil, fmt.Errorf("mysql: %s: %v", q, cmpErr(err, "no row (missing privilege?)"))
	}
	o := &Object{Kind: kind, Name: name, Setup: []string{"SET NAMES utf8mb4"}}
	if mode, ok := m["sql_mode"]; ok {
		o.Setup = append(o.Setup, "SET SESSION sql_mode = "+QuoteString(mode))
	}
	if tz, ok := m["time_zone"]; ok {
		o.Setup = append(o.Setup, "SET SESSION time_zone = "+QuoteString(tz))
	}
	for _, col := range []string{"Create View", "SQL Original Statement", "Create Procedure", "Create Function", "Create Event"} {
		if v, ok := m[col]; ok {
			o.Stmt = v
		}
	}
	if o.Stmt == "" {
		return nil, fmt.Errorf("mysql: %s: no statement returned (missing privilege?)", q)
	}
	return o, nil
}

func cmpErr(err error, msg string) any {
	if err != nil {
		return err
	}
	return msg
}
