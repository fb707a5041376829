// Package postgres backs up PostgreSQL databases with pg_dump: one
// custom-format archive per database streamed from pg_dump's stdout into
// the repository (no local copy), each from the snapshot exported by a
// transaction held for the whole backup (pg_export_snapshot, pg_dump
// --snapshot), with the WAL LSN at that snapshot as the recovery point.
// Passwords reach pg_dump and psql through PGPASSWORD in their
// environment only.
package postgres

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/lifeboat-backup/lifeboat/engine/snapshot"
	"github.com/lifeboat-backup/lifeboat/internal/inflight"
	"github.com/lifeboat-backup/lifeboat/targets"
)

var envList = os.Environ

// Options configure a dump.
type Options struct {
	// DSN of the server: postgres://user@host:5432/[dbname]. The dbname,
	// if any, is the one the control session connects to (default
	// postgres); it does not select what is dumped.
	DSN string
	// Password, if not in the DSN (else PGPASSWORD or ~/.pgpass apply).
	Password string
	// Databases to dump; empty: every database that allows connections
	// but the templates and "postgres".
	Databases []string
	// ExcludeTables are pg_dump --exclude-table patterns (table or
	// schema.table, * and ? wildcards), applied to every database.
	ExcludeTables []string
	// Jobs is how many data pg_dumps run at once (default 1; each is one
	// connection; the pre-data and post-data ones run beside them). With
	// Jobs > 1 each database is dumped as a pre-data archive, a data-only
	// archive, a table archive (data and post-data) for each of the
	// 4 * Jobs largest tables and a post-data archive of the others, all
	// from the same snapshot, so one database is dumped in parallel and
	// restored in parallel without a local copy; with 1, as one whole
	// archive.
	Jobs int
	// Globals adds pg_dumpall --globals-only (roles, tablespaces) as
	// globals.sql; it needs a superuser (role passwords are left out).
	Globals bool
	// BinDir holds pg_dump, pg_dumpall and psql (default: PATH).
	BinDir string
}

// Source dumps databases of a PostgreSQL server. It has the method set
// of engine.Source, engine.RecoveryPointer and engine.AllOrNothing.
type Source struct {
	opts Options
	conn *Conn

	mu      sync.Mutex
	rpTime  time.Time
	details map[string]string
}

// New checks the options; it does not connect.
func New(opts Options) (*Source, error) {
	if opts.DSN == "" {
		return nil, errors.New("postgres: no DSN")
	}
	c, err := ParseDSN(opts.DSN, opts.Password)
	if err != nil {
		return nil, err
	}
	if opts.Jobs <= 0 {
		opts.Jobs = 1
	}
	for _, p := range opts.ExcludeTables {
		if p == "" || strings.HasPrefix(p, "-") {
			return nil, fmt.Errorf("postgres: bad exclude pattern %q", p)
		}
	}
	return &Source{opts: opts, conn: c}, nil
}

// Kind implements engine.Source.
func (s *Source) Kind() string { return "postgres" }

// AllOrNothing implements engine.AllOrNothing: a failing pg_dump fails
// the backup.
func (s *Source) AllOrNothing() bool { return true }

// Paths implements engine.Source: the server without the password, one
// path per selected database (or the server alone for all).
func (s *Source) Paths() []string {
	return targets.DatabasePaths(s.conn.String(), s.opts.Databases)
}

// RecoveryPoint implements engine.RecoveryPointer: the moment of the
// exported snapshot and the WAL LSN at it.
func (s *Source) RecoveryPoint() (time.Time, map[string]string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rpTime, s.details
}

// Binary returns the path of a PostgreSQL client program.
func Binary(binDir, name string) (string, error) {
	if binDir != "" {
		p := filepath.Join(binDir, name)
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("postgres: %s not found in %s", name, binDir)
		}
		return p, nil
	}
	p, err := exec.LookPath(name)
	if err != nil {
		return "", fmt.Errorf("postgres: %s not found on PATH (install postgresql-client-15 or newer, at least the server's version)", name)
	}
	return unwrap(p, name), nil
}

// libRoot holds Debian's versioned PostgreSQL programs (N/bin/NAME).
var libRoot = "/usr/lib/postgresql"

// unwrap returns the program Debian's pg_wrapper would run for path, a
// link to it: the newest installed version's, which the wrapper picks
// for psql and, with a remote server, the dump programs (all read older
// servers). The wrapper is a Perl script deciding anew at each start,
// 0.3-0.6 s of a loaded machine per program, and a backup or restore
// starts several. With PGCLUSTER set (the wrapper's choice of a local
// cluster's version) or no versioned program, path itself.
func unwrap(path, name string) string {
	if os.Getenv("PGCLUSTER") != "" {
		return path
	}
	real, err := filepath.EvalSymlinks(path)
	if err != nil || filepath.Base(real) != "pg_wrapper" {
		return path
	}
	best, bestV := "", -1.0
	cands, _ := filepath.Glob(filepath.Join(libRoot, "*", "bin", name))
	for _, c := range cands {
		v, err := strconv.ParseFloat(filepath.Base(filepath.Dir(filepath.Dir(c))), 64)
		if err != nil || v <= bestV {
			continue
		}
		if st, err := os.Stat(c); err != nil || st.IsDir() || st.Mode()&0o111 == 0 {
			continue
		}
		best, bestV = c, v
	}
	if best == "" {
		return path
	}
	return best
}

// Session is a psql process holding one connection, fed statements one
// at a time (for the snapshot transaction and restore's checks).
type Session struct {
	cmd    *exec.Cmd
	in     io.WriteCloser
	out    *bufio.Reader
	stderr *bytes.Buffer
	what   string
}

// OpenSession starts psql on database db of c.
func OpenSession(ctx context.Context, psql string, c *Conn, db string) (*Session, error) {
	cmd := exec.CommandContext(ctx, psql, "-X", "-w", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d", c.URL(db))
	cmd.Env = c.Env()
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	s := &Session{cmd: cmd, in: in, out: bufio.NewReader(out), stderr: &bytes.Buffer{}, what: c.URL(db)}
	cmd.Stderr = s.stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("postgres: start psql: %w", err)
	}
	// Fail early on a bad password or an absent database.
	if _, err := s.Query("SELECT 1"); err != nil {
		return nil, err
	}
	return s, nil
}

// Exec sends a statement that returns no rows.
func (s *Session) Exec(stmt string) error {
	if _, err := io.WriteString(s.in, stmt+";\n"); err != nil {
		return s.fail(err)
	}
	return nil
}

// Query sends a statement returning one row of one column and returns it.
func (s *Session) Query(stmt string) (string, error) {
	if _, err := io.WriteString(s.in, stmt+";\n"); err != nil {
		return "", s.fail(err)
	}
	line, err := s.out.ReadString('\n')
	if err != nil {
		return "", s.fail(err)
	}
	return strings.TrimSuffix(line, "\n"), nil
}

// fail ends psql and returns its error message.
func (s *Session) fail(err error) error {
	s.in.Close()
	werr := s.cmd.Wait()
	msg := strings.TrimSpace(s.stderr.String())
	if msg == "" {
		msg = fmt.Sprint(errors.Join(err, werr))
	}
	return fmt.Errorf("postgres: %s: %s", s.what, msg)
}

// Close ends the session (rolling back an open transaction).
func (s *Session) Close() error {
	s.in.Close()
	return s.cmd.Wait()
}

// dump is one run of Walk.
type dump struct {
	s     *Source
	mtime time.Time
	sem   chan struct{}

	streams inflight.Streams // entries emitted and not yet read
}

// Walk implements engine.Source. It opens a repeatable-read transaction
// per database (a snapshot cannot be imported in another database),
// exports their snapshots and reads the WAL LSN and the database's
// properties in each, then emits globals.sql (with Globals), one
// DB.database.json (DatabaseProps) and one DB.dump per database, read when the
// engine opens it from a pg_dump --snapshot process streaming the custom
// format. Walk holds the snapshots until every dump was read, and fails
// when any pg_dump fails. The recovery point is the first database's
// snapshot (time and LSN); details also hold "lsn:DB" per database.
func (s *Source) Walk(ctx context.Context, warn func(string, error), fn func(snapshot.Entry, func() (io.ReadCloser, error)) error) error {
	psql, err := Binary(s.opts.BinDir, "psql")
	if err != nil {
		return err
	}
	pgDump, err := Binary(s.opts.BinDir, "pg_dump")
	if err != nil {
		return err
	}
	var pgDumpAll string
	if s.opts.Globals {
		if pgDumpAll, err = Binary(s.opts.BinDir, "pg_dumpall"); err != nil {
			return err
		}
	}
	ctl, err := OpenSession(ctx, psql, s.conn, s.controlDB())
	if err != nil {
		return err
	}
	defer ctl.Close()
	version, err := ctl.Query("SHOW server_version")
	if err != nil {
		return err
	}
	numStr, err := ctl.Query("SHOW server_version_num")
	if err != nil {
		return err
	}
	num, err := strconv.Atoi(numStr)
	if err != nil {
		return fmt.Errorf("postgres: server_version_num %q: %w", numStr, err)
	}
	dbs, err := s.databases(ctl)
	if err != nil {
		return err
	}
	// A snapshot can only be imported in its own database: one held
	// transaction per database, all begun before the first export so the
	// databases are as close in time as PostgreSQL allows.
	sessions := make([]*Session, len(dbs))
	defer func() {
		for _, se := range sessions {
			if se != nil {
				se.Close()
			}
		}
	}()
	for i, db := range dbs {
		if sessions[i], err = OpenSession(ctx, psql, s.conn, db); err != nil {
			return err
		}
	}
	snapshots := map[string]string{}
	props := map[string][]byte{}
	tables := map[string][]table{}
	split := s.opts.Jobs > 1
	format := "custom"
	if split {
		format = "custom-tables"
	}
	details := map[string]string{"server": s.conn.String(), "server_version": version, "format": format,
		"databases": strings.Join(dbs, ",")}
	var rpTime time.Time
	for i, se := range sessions {
		if err := se.Exec("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"); err != nil {
			return err
		}
		line, err := se.Query(`SELECT pg_export_snapshot() || ' ' ||
			(CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() ELSE pg_current_wal_lsn() END)::text || ' ' ||
			pg_is_in_recovery()::text || ' ' || to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`)
		if err != nil {
			return err
		}
		f := strings.Fields(line)
		if len(f) != 4 {
			return fmt.Errorf("postgres: unexpected snapshot row %q", line)
		}
		t, err := time.Parse(time.RFC3339Nano, f[3])
		if err != nil {
			return fmt.Errorf("postgres: snapshot time %q: %w", f[3], err)
		}
		snapshots[dbs[i]] = f[0]
		if props[dbs[i]], err = readProps(se, num, dbs[i]); err != nil {
			return err
		}
		if split {
			if tables[dbs[i]], err = listTables(se, dbs[i]); err != nil {
				return err
			}
		}
		details["lsn:"+dbs[i]] = f[1]
		if i == 0 {
			// The recovery point is the first (oldest) snapshot.
			rpTime, details["lsn"], details["in_recovery"] = t, f[1], f[2]
		}
	}
	s.mu.Lock()
	s.rpTime, s.details = rpTime, details
	s.mu.Unlock()

	d := &dump{s: s, mtime: rpTime, sem: make(chan struct{}, s.opts.Jobs)}
	type item struct {
		path string
		mem  []byte // content held in memory, or
		open func() (io.ReadCloser, error)
	}
	var items []item
	if s.opts.Globals {
		items = append(items, item{GlobalsFile, nil, func() (io.ReadCloser, error) {
			return d.run(ctx, GlobalsFile, false, pgDumpAll, "-w", "--globals-only", "--no-role-passwords", "-d", s.conn.URL(s.controlDB()))
		}})
	}
	for _, db := range dbs {
		items = append(items, item{path: EncodeName(db) + SuffixProps, mem: props[db]})
		// -Z0: the repository compresses (zstd) and deduplicates; a
		// gzipped archive would cost pg_dump and pg_restore CPU and
		// leave the repository nothing to compress or deduplicate.
		base := []string{"-w", "-Fc", "-Z0", "--snapshot=" + snapshots[db], "-d", s.conn.URL(db)}
		for _, p := range s.opts.ExcludeTables {
			base = append(base, "--exclude-table="+p)
		}
		add := func(suffix, what string, data bool, args ...string) {
			args = append(slices.Clone(base), args...)
			items = append(items, item{EncodeName(db) + suffix, nil, func() (io.ReadCloser, error) {
				return d.run(ctx, what, data, pgDump, args...)
			}})
		}
		if !split {
			add(SuffixDump, "pg_dump of "+db, true)
			continue
		}
		// Each of the largest tables has an archive of its own, with its
		// data and post-data (indexes, constraints), so a restore loads
		// them largest first on Jobs connections and builds a table's
		// indexes as soon as its rows are in. Everything else is in data
		// archive 0 (sequences, large objects, extension configuration,
		// the smaller tables, tables created since the listing) and the
		// post-data archive.
		own := ownTables(tables[db], s.opts.Jobs)
		var exclude []string
		for _, t := range own {
			exclude = append(exclude, "--exclude-table="+t)
		}
		add(SuffixPre, "pg_dump --section=pre-data of "+db, false, "--section=pre-data")
		add(SuffixPost, "pg_dump --section=post-data of "+db, false, append([]string{"--section=post-data"}, exclude...)...)
		add(DataSuffix(0), "pg_dump --section=data of "+db, true, append([]string{"--section=data"}, exclude...)...)
		for i, t := range own {
			add(TableSuffix(i), fmt.Sprintf("pg_dump --section=data --section=post-data --table=%s of %s", t, db), true,
				"--section=data", "--section=post-data", "--table="+t)
		}
	}
	slices.SortFunc(items, func(a, b item) int { return snapshot.ComparePaths(a.path, b.path) })
	for _, it := range items {
		ent := snapshot.Entry{Path: it.path, Type: snapshot.TypeFile, Mode: 0o600, ModTime: d.mtime}
		if it.mem != nil {
			// In memory: no program to wait for.
			ent.Size = int64(len(it.mem))
			if err := fn(ent, func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(it.mem)), nil }); err != nil {
				return err
			}
			continue
		}
		d.streams.Begin()
		if err := fn(ent, it.open); err != nil {
			d.streams.Finish(nil)
			return err
		}
	}
	return d.streams.Wait(ctx)
}

// table is a table to dump: its pg_dump pattern matching exactly it, its
// size, and whether it is a partition.
type table struct {
	pattern   string
	size      int64
	partition bool
}

// listTables lists the ordinary tables of the session's database (not
// the catalogs', not extension members) with their size on disk.
func listTables(se *Session, db string) ([]table, error) {
	line, err := se.Query(`SELECT coalesce(string_agg(encode(convert_to(n.nspname, 'UTF8'), 'hex') || '.' ||
		encode(convert_to(c.relname, 'UTF8'), 'hex') || '.' || coalesce(pg_table_size(c.oid), 0) || '.' ||
		c.relispartition::text, ',' ORDER BY c.oid), '')
		FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE c.relkind = 'r' AND c.relpersistence <> 't' AND n.nspname NOT IN ('pg_catalog', 'information_schema')
		AND n.nspname NOT LIKE 'pg\_toast%' AND n.nspname NOT LIKE 'pg\_temp\_%'
		AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')`)
	if err != nil {
		return nil, err
	}
	var out []table
	for _, f := range strings.Split(line, ",") {
		if f == "" {
			continue
		}
		p := strings.Split(f, ".")
		if len(p) != 4 {
			return nil, fmt.Errorf("postgres: list tables of %q: unexpected %q", db, f)
		}
		schema, err1 := hex.DecodeString(p[0])
		name, err2 := hex.DecodeString(p[1])
		size, err3 := strconv.ParseInt(p[2], 10, 64)
		if err := errors.Join(err1, err2, err3); err != nil {
			return nil, fmt.Errorf("postgres: list tables of %q: %w", db, err)
		}
		out = append(out, table{pattern: exactPattern(string(schema)) + "." + exactPattern(string(name)), size: size,
			partition: p[3] == "true"})
	}
	return out, nil
}

// exactPattern is a pg_dump name pattern matching exactly name: inside
// double quotes the pattern characters (* ? . and regular expression
// ones) are literal.
func exactPattern(name string) string { return `"` + strings.ReplaceAll(name, `"`, `""`) + `"` }

// ownTables picks the tables that get an archive of their own: the 4 *
// jobs largest, largest first, but no partitions (a partition's index is
// attached to its partitioned table's, which is built with the other
// tables' post-data). A few archives per connection let the restore
// balance its connections and start a table's indexes while the other
// connections still load; each costs the backup one more pg_dump (a
// catalog read), so not every table gets one.
func ownTables(tables []table, jobs int) []string {
	ts := slices.DeleteFunc(slices.Clone(tables), func(t table) bool { return t.partition })
	slices.SortStableFunc(ts, func(a, b table) int { return cmp.Compare(b.size, a.size) })
	var out []string
	for _, t := range ts[:min(len(ts), 4*jobs)] {
		out = append(out, t.pattern)
	}
	return out
}

// readProps reads the properties of the session's database as JSON.
func readProps(se *Session, num int, db string) ([]byte, error) {
	line, err := se.Query(PropsQuery(num))
	if err != nil {
		return nil, err
	}
	var p DatabaseProps
	if err := json.Unmarshal([]byte(line), &p); err != nil {
		return nil, fmt.Errorf("postgres: properties of database %q: %w", db, err)
	}
	b, err := json.MarshalIndent(&p, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

func (s *Source) controlDB() string {
	if db := s.conn.Database(); db != "" {
		return db
	}
	return "postgres"
}

// databases lists the databases to dump, checking that named ones exist.
func (s *Source) databases(ctl *Session) ([]string, error) {
	line, err := ctl.Query(`SELECT coalesce(string_agg(encode(convert_to(datname, 'UTF8'), 'hex'), ',' ORDER BY datname), '')
		FROM pg_database WHERE datallowconn AND NOT datistemplate`)
	if err != nil {
		return nil, err
	}
	var have []string
	for _, h := range strings.Split(line, ",") {
		if h == "" {
			continue
		}
		b, err := hex.DecodeString(h)
		if err != nil {
			return nil, fmt.Errorf("postgres: list databases: %w", err)
		}
		have = append(have, string(b))
	}
	var out []string
	if len(s.opts.Databases) == 0 {
		for _, n := range have {
			if n != "postgres" {
				out = append(out, n)
			}
		}
		if len(out) == 0 {
			return nil, errors.New("postgres: no database to back up (postgres and templates are left out unless named in databases)")
		}
		return out, nil
	}
	for _, n := range s.opts.Databases {
		if !slices.Contains(have, n) {
			return nil, fmt.Errorf("postgres: database %q does not exist (or does not allow connections)", n)
		}
		out = append(out, n)
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// run starts a dump program and returns its stdout; reading it to the
// end returns the program's failure (with its stderr) instead of EOF.
// Programs dumping data (whole or data-only archives) run at most Jobs at
// once; the others (schema sections, globals: catalog reads, mostly
// waiting on the server) start when the engine opens them, so their
// fixed cost overlaps the data dumps.
func (d *dump) run(ctx context.Context, what string, data bool, bin string, args ...string) (io.ReadCloser, error) {
	if data {
		select {
		case d.sem <- struct{}{}:
		case <-ctx.Done():
			d.streams.Finish(ctx.Err())
			return nil, ctx.Err()
		}
	}
	release := func() {
		if data {
			<-d.sem
		}
	}
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = d.s.conn.Env()
	stderr := &bytes.Buffer{}
	cmd.Stderr = stderr
	out, err := cmd.StdoutPipe()
	if err == nil {
		err = cmd.Start()
	}
	if err != nil {
		release()
		err = fmt.Errorf("postgres: %s: %w", what, err)
		d.streams.Finish(err)
		return nil, err
	}
	return &procReader{what: what, cmd: cmd, out: out, stderr: stderr, d: d, release: release}, nil
}

// procReader reads a dump program's stdout.
type procReader struct {
	what    string
	cmd     *exec.Cmd
	out     io.ReadCloser
	stderr  *bytes.Buffer
	d       *dump
	release func() // frees the program's place among the Jobs
	err     error
	done    bool
}

func (p *procReader) Read(b []byte) (int, error) {
	if p.err != nil {
		return 0, p.err
	}
	n, err := p.out.Read(b)
	if err == io.EOF {
		p.err = p.end(nil)
		if p.err == nil {
			p.err = io.EOF
		}
		return n, p.err
	}
	if err != nil {
		p.err = p.end(err)
	}
	return n, err
}

// end waits for the program and reports it once.
func (p *procReader) end(readErr error) error {
	if p.done {
		return nil
	}
	p.done = true
	if readErr != nil && p.cmd.Process != nil {
		_ = p.cmd.Process.Kill()
	}
	err := p.cmd.Wait()
	p.release()
	if err == nil && readErr != nil {
		err = readErr
	}
	if err != nil {
		msg := strings.TrimSpace(p.stderr.String())
		if msg != "" {
			err = fmt.Errorf("postgres: %s failed: %s (%v)", p.what, msg, err)
		} else {
			err = fmt.Errorf("postgres: %s failed: %w", p.what, err)
		}
	}
	p.d.streams.Finish(err)
	return err
}

func (p *procReader) Close() error {
	if !p.done {
		p.out.Close()
		err := p.end(errors.New("not read to the end"))
		if p.err == nil {
			p.err = err
		}
	}
	return nil
}
