package restore

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"database/sql"
	"fmt"
	"io"
	"path"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	driver "github.com/go-sql-driver/mysql"
	"golang.org/x/sync/errgroup"

	"github.com/lifeboat-backup/lifeboat/engine/repo"
	"github.com/lifeboat-backup/lifeboat/engine/snapshot"
	"github.com/lifeboat-backup/lifeboat/targets/mysql"
	"github.com/lifeboat-backup/lifeboat/targets/mysql/physical"
)

// MySQLOptions configure a restore of a mysql snapshot into a server.
type MySQLOptions struct {
	// DSN of the destination server (mysql://user@host:port/ or
	// user@tcp(host:port)/); Password overrides one in it.
	DSN      string
	Password string
	// Databases restores only these databases (names as stored).
	Databases []string
	// Tables restores only the tables matching one of these path.Match
	// patterns of "db.table" (names as stored), with their triggers;
	// views, routines and events are not restored then.
	Tables []string
	// Rename maps stored database names to the names to restore under.
	// Views, triggers and routines that name their database explicitly
	// (`old`.) are rewritten to the new name.
	Rename map[string]string
	// Jobs is the number of tables loaded in parallel (default GOMAXPROCS).
	Jobs int
	// DeferIndexesFrom: InnoDB tables with at least this many bytes of
	// data get their secondary indexes and foreign keys after their rows
	// (0: 4 MiB; negative: never).
	DeferIndexesFrom int64
	// PieceBytes: InnoDB tables with a primary key and at least 4 pieces
	// of data are cut into pieces of about this size at row boundaries,
	// loaded by all connections, each in its own transaction (0: 8 MiB;
	// negative: never).
	PieceBytes int64
	// NoBinlog loads without writing the binary log (SET sql_log_bin = 0,
	// needs the SUPER or BINLOG ADMIN privilege), as myloader does by
	// default: replicas of the destination do not get the restored data.
	NoBinlog bool
	// Users also creates the snapshot's user accounts and grants after the
	// databases (mysql.UsersFile, see mysqlUsers); a snapshot without them
	// fails (ErrNoUsers) before anything is created.
	Users    bool
	Progress *snapshot.Progress
}

// MySQLStats summarize a database restore.
type MySQLStats struct {
	Databases int   `json:"databases"`
	Tables    int   `json:"tables"`
	Objects   int   `json:"objects"` // views, triggers, routines, events
	Bytes     int64 `json:"bytes"`   // table data bytes loaded
	// Warnings the server raised while loading (at most 3 per table),
	// e.g. an ENUM's empty error value, which loads back as itself.
	Warnings []string `json:"warnings,omitempty"`
	// Users is the number of accounts and roles created (with Users).
	Users int `json:"users,omitempty"`
}

// mysqlDB is one database of a snapshot and where it goes.
type mysqlDB struct {
	*mysql.DB
	target string // database name on the destination
	// alter adds a table's deferred indexes and foreign keys after its data.
	alter map[string]string
	pk    map[string]bool // InnoDB with a primary key
	// autoInc: the table has an AUTO_INCREMENT column.
	autoInc map[string]bool
}

// sessionSetup makes a restore session take the dump's bytes and values
// exactly: no FK or unique checks while loading, zero dates and zero
// auto-increment values allowed, timestamps in UTC (as dumped).
var sessionSetup = []string{
	"SET SESSION foreign_key_checks = 0",
	"SET SESSION unique_checks = 0",
	"SET SESSION sql_mode = 'NO_AUTO_VALUE_ON_ZERO,NO_ENGINE_SUBSTITUTION'",
	"SET SESSION time_zone = '+00:00'",
}

var loadSeq atomic.Int64

// MySQL restores a snapshot made by targets/mysql into a server: creates
// the databases (under their new names), runs the table schemas, loads
// the tables' data in parallel with LOAD DATA LOCAL INFILE streamed from
// the repository (no temporary files; each table in one transaction), then
// creates routines, views, triggers and events. It refuses to start when
// a destination database already holds a table or view of the same name.
func MySQL(ctx context.Context, s snapshot.Reader, opts MySQLOptions) (*MySQLStats, error) {
	sn := s.Info()
	if sn.Kind != "mysql" {
		return nil, fmt.Errorf("snapshot %s is a %s snapshot, not mysql: restore it to a directory", sn.ID.Short(), sn.Kind)
	}
	if physical.IsBase(sn) {
		return nil, fmt.Errorf("snapshot %s is a physical base (mariabackup), not a dump: restore it into an empty data directory with --to-datadir DIR", sn.ID.Short())
	}
	if opts.Jobs <= 0 {
		opts.Jobs = runtime.GOMAXPROCS(0)
	}
	opts.Jobs = jobs(s, opts.Jobs)
	if opts.Progress == nil {
		opts.Progress = &snapshot.Progress{}
	}
	if opts.DeferIndexesFrom == 0 {
		opts.DeferIndexesFrom = deferIndexesFrom
	}
	if opts.PieceBytes == 0 {
		opts.PieceBytes = pieceBytes
	}
	dbs, users, err := readMySQLTree(ctx, s, opts)
	if err != nil {
		return nil, err
	}
	if opts.Users && users == nil {
		return nil, fmt.Errorf("snapshot %s %w", sn.ID.Short(), ErrNoUsers)
	}
	cfg, err := mysql.ParseDSN(opts.DSN, opts.Password)
	if err != nil {
		return nil, err
	}
	db, err := mysql.Open(ctx, cfg, opts.Jobs+1)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	if err := checkConflicts(ctx, db, dbs); err != nil {
		return nil, err
	}
	st := &MySQLStats{}
	setup := slices.Clone(sessionSetup)
	if opts.NoBinlog {
		setup = append(setup, "SET SESSION sql_log_bin = 0")
	}
	ctl, err := session(ctx, db, setup, "SET NAMES utf8mb4")
	if err != nil {
		return nil, err
	}
	defer ctl.Close()
	// Databases and table schemas.
	for _, d := range dbs {
		text, err := snapshot.ReadNode(ctx, s, d.Create)
		if err != nil {
			return nil, err
		}
		if _, err := ctl.ExecContext(ctx, mysql.CreateDatabaseAs(d.target, text)); err != nil {
			return nil, fmt.Errorf("create database %s: %w", mysql.QuoteName(d.target), err)
		}
		st.Databases++
		if _, err := ctl.ExecContext(ctx, "USE "+mysql.QuoteName(d.target)); err != nil {
			return nil, err
		}
		for _, t := range d.Tables {
			big := opts.DeferIndexesFrom > 0 && d.Data[t] != nil && d.Data[t].Size >= opts.DeferIndexesFrom
			later, pk, autoInc, err := createTable(ctx, s, ctl, d.Schema[t], big)
			d.pk[t], d.autoInc[t] = pk, autoInc
			if err != nil {
				return nil, fmt.Errorf("create table %s.%s: %w", mysql.QuoteName(d.target), mysql.QuoteName(t), err)
			}
			if len(later) > 0 {
				d.alter[t] = "ALTER TABLE " + mysql.QuoteName(d.target) + "." + mysql.QuoteName(t) + " " + strings.Join(later, ", ")
			}
			st.Tables++
		}
	}
	// Data, in parallel.
	lockMode, maxPacket := autoIncLockMode(ctx, ctl)
	n, err := loadData(ctx, s, db, setup, dbs, opts, loadMode{autoIncLock: lockMode == 0 || lockMode == 1, autoIncInsert: lockMode == 1, maxPacket: maxPacket}, st)
	if err != nil {
		return nil, err
	}
	st.Bytes = n
	// Routines first (views may call functions), then views (retried in
	// rounds, as views may use views), triggers and events.
	for _, d := range dbs {
		if _, err := ctl.ExecContext(ctx, "USE "+mysql.QuoteName(d.target)); err != nil {
			return nil, err
		}
		for _, suffix := range []string{mysql.SuffixFunction, mysql.SuffixProcedure} {
			for _, n := range d.Objects[suffix] {
				if err := runObject(ctx, s, ctl, n, d.Name, d.target); err != nil {
					return nil, fmt.Errorf("restore %s: %w", n.Path, err)
				}
				st.Objects++
			}
		}
		pending := d.Objects[mysql.SuffixView]
		for len(pending) > 0 {
			var failed []*snapshot.Node
			var lastErr error
			for _, n := range pending {
				if err := runObject(ctx, s, ctl, n, d.Name, d.target); err != nil {
					failed, lastErr = append(failed, n), fmt.Errorf("restore %s: %w", n.Path, err)
					continue
				}
				st.Objects++
			}
			if len(failed) == len(pending) {
				return nil, lastErr
			}
			pending = failed
		}
		for _, suffix := range []string{mysql.SuffixTrigger, mysql.SuffixEvent} {
			for _, n := range d.Objects[suffix] {
				if err := runObject(ctx, s, ctl, n, d.Name, d.target); err != nil {
					return nil, fmt.Errorf("restore %s: %w", n.Path, err)
				}
				st.Objects++
			}
		}
	}
	if opts.Users {
		if st.Users, err = mysqlUsers(ctx, s, users, opts); err != nil {
			return nil, fmt.Errorf("databases restored, user accounts not: %w", err)
		}
	}
	return st, nil
}

// readMySQLTree reads the snapshot's databases (those of opts.Databases,
// or all) with their destination names, and its UsersFile (nil: none).
func readMySQLTree(ctx context.Context, s snapshot.Reader, opts MySQLOptions) ([]*mysqlDB, *snapshot.Node, error) {
	sn := s.Info()
	layout, err := mysql.ReadLayout(s.Tree(ctx).Next)
	if err != nil {
		return nil, nil, fmt.Errorf("snapshot %s: %w", sn.ID.Short(), err)
	}
	var dbs []*mysqlDB
	for _, d := range layout.DBs {
		if len(opts.Databases) > 0 && !slices.Contains(opts.Databases, d.Name) {
			continue
		}
		md := &mysqlDB{DB: d, target: d.Name, alter: map[string]string{}, pk: map[string]bool{}, autoInc: map[string]bool{}}
		if t, ok := opts.Rename[d.Name]; ok && t != "" {
			md.target = t
		}
		dbs = append(dbs, md)
	}
	for _, want := range opts.Databases {
		if !slices.ContainsFunc(dbs, func(d *mysqlDB) bool { return d.Name == want }) {
			return nil, nil, fmt.Errorf("database %q: %w in snapshot %s", want, repo.ErrNotFound, sn.ID.Short())
		}
	}
	if len(opts.Tables) > 0 {
		dbs, err = selectTables(ctx, s, dbs, opts.Tables)
	}
	return dbs, layout.Users, err
}

// selectTables keeps the tables of dbs matching one of patterns ("db.table",
// path.Match) and their triggers, and drops views, routines, events and
// databases left without a table.
func selectTables(ctx context.Context, s snapshot.Reader, dbs []*mysqlDB, patterns []string) ([]*mysqlDB, error) {
	for _, p := range patterns {
		if _, err := path.Match(p, ""); err != nil {
			return nil, fmt.Errorf("--tables %q: %w", p, err)
		}
	}
	match := func(name string) bool {
		return slices.ContainsFunc(patterns, func(p string) bool { ok, _ := path.Match(p, name); return ok })
	}
	var out []*mysqlDB
	for _, d := range dbs {
		var keep []string
		for _, t := range d.Tables {
			if match(d.Name + "." + t) {
				keep = append(keep, t)
			} else {
				delete(d.Schema, t)
				delete(d.Data, t)
			}
		}
		if len(keep) == 0 {
			continue
		}
		d.Tables = keep
		var triggers []*snapshot.Node
		for _, n := range d.Objects[mysql.SuffixTrigger] {
			text, err := snapshot.ReadNode(ctx, s, n)
			if err != nil {
				return nil, err
			}
			t, err := triggerTable(text)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", n.Path, err)
			}
			if d.Schema[t] != nil {
				triggers = append(triggers, n)
			}
		}
		d.Objects = map[string][]*snapshot.Node{mysql.SuffixTrigger: triggers}
		out = append(out, d)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("--tables %s: no table of the snapshot matches", strings.Join(patterns, ","))
	}
	return out, nil
}

// triggerTable is the table a stored trigger is defined on.
func triggerTable(stored []byte) (string, error) {
	o, err := mysql.ParseObject(stored)
	if err != nil {
		return "", err
	}
	return mysql.TriggerTable(o.Stmt)
}

// checkConflicts fails if a destination database has a table or view the
// restore would create.
func checkConflicts(ctx context.Context, db *sql.DB, dbs []*mysqlDB) error {
	targetsSeen := map[string]bool{}
	for _, d := range dbs {
		if targetsSeen[d.target] {
			return fmt.Errorf("two databases would be restored into %s", mysql.QuoteName(d.target))
		}
		targetsSeen[d.target] = true
		rows, err := db.QueryContext(ctx, "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = ?", d.target)
		if err != nil {
			return fmt.Errorf("check destination %s: %w", mysql.QuoteName(d.target), err)
		}
		var clash []string
		for rows.Next() {
			var n string
			if err := rows.Scan(&n); err != nil {
				rows.Close()
				return err
			}
			if d.Schema[n] != nil || slices.ContainsFunc(d.Objects[mysql.SuffixView], func(v *snapshot.Node) bool {
				name, _, _ := mysql.ParseEntryName(v.Path[strings.LastIndexByte(v.Path, '/')+1:])
				return name == n
			}) {
				clash = append(clash, n)
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		if len(clash) > 0 {
			slices.Sort(clash)
			more := ""
			if len(clash) > 5 {
				more = fmt.Sprintf(" and %d more", len(clash)-5)
				clash = clash[:5]
			}
			return fmt.Errorf("destination database %s already has %s%s: drop them or restore under another name",
				mysql.QuoteName(d.target), strings.Join(clash, ", "), more)
		}
	}
	return nil
}

// session takes a connection and sets it up for restoring.
func session(ctx context.Context, db *sql.DB, setup []string, names string) (*sql.Conn, error) {
	c, err := db.Conn(ctx)
	if err != nil {
		return nil, err
	}
	for _, q := range append([]string{names}, setup...) {
		if _, err := c.ExecContext(ctx, q); err != nil {
			c.Close()
			return nil, fmt.Errorf("%s: %w", q, err)
		}
	}
	return c, nil
}

// runObject runs a stored .sql entry on c (whose current database is the
// destination), rewriting `from`. to `to`. when the database is renamed.
func runObject(ctx context.Context, s snapshot.Reader, c *sql.Conn, n *snapshot.Node, from, to string) error {
	text, err := snapshot.ReadNode(ctx, s, n)
	if err != nil {
		return err
	}
	o, err := mysql.ParseObject(text)
	if err != nil {
		return err
	}
	if from != to && from != "" {
		o.Stmt = strings.ReplaceAll(o.Stmt, mysql.QuoteName(from)+".", mysql.QuoteName(to)+".")
	}
	return execObject(ctx, c, o)
}

// execObject runs an object's session settings and statement on c, then
// restores the restore's own settings.
func execObject(ctx context.Context, c *sql.Conn, o *mysql.Object) error {
	for _, s := range o.Setup {
		if _, err := c.ExecContext(ctx, s); err != nil {
			return fmt.Errorf("%s: %w", s, err)
		}
	}
	_, err := c.ExecContext(ctx, o.Stmt)
	// Back to the restore's own settings for whatever runs next.
	for _, s := range append([]string{"SET NAMES utf8mb4"}, sessionSetup...) {
		if _, e := c.ExecContext(ctx, s); e != nil && err == nil {
			err = e
		}
	}
	return err
}

// deferIndexesFrom is the default MySQLOptions.DeferIndexesFrom: from this
// size on, adding the indexes after the rows (InnoDB builds each sorted, in
// one pass, instead of inserting every row into it) beats the cost of an
// extra ALTER TABLE.
const deferIndexesFrom = 4 << 20

// createTable runs a stored CREATE TABLE on c. With deferIndexes, an
// InnoDB table is created without its plain and spatial secondary keys and
// its foreign keys, returned as ALTER TABLE clauses that add them back (in
// their order, so SHOW CREATE TABLE comes out the same).
// It also tells whether the table is InnoDB with a primary key (rows
// then have no order of their own, and the table may be loaded in pieces)
// and whether it has an AUTO_INCREMENT column.
func createTable(ctx context.Context, s snapshot.Reader, c *sql.Conn, n *snapshot.Node, deferIndexes bool) (later []string, pk, autoInc bool, err error) {
	text, err := snapshot.ReadNode(ctx, s, n)
	if err != nil {
		return nil, false, false, err
	}
	o, err := mysql.ParseObject(text)
	if err != nil {
		return nil, false, false, err
	}
	pk = strings.Contains(o.Stmt, "\n  PRIMARY KEY (") && strings.Contains(o.Stmt, "\n) ENGINE=InnoDB")
	autoInc = hasAutoIncrement(o.Stmt)
	if deferIndexes {
		o.Stmt, later = splitIndexes(o.Stmt)
	}
	return later, pk, autoInc, execObject(ctx, c, o)
}

// splitIndexes takes the plain (KEY) and SPATIAL KEY indexes and the
// FOREIGN KEY constraints out of an InnoDB table's SHOW CREATE TABLE and
// returns them as ALTER TABLE clauses. Unique keys stay (they are not
// sorted after plain ones), and so do FULLTEXT keys (sorted after them),
// so adding the rest back in their order keeps the index order; InnoDB
// lists foreign keys by name. Anything not in SHOW CREATE TABLE's layout
// is left as it is.
func splitIndexes(create string) (string, []string) {
	lines := strings.Split(create, "\n")
	if len(lines) < 3 || !strings.HasPrefix(lines[0], "CREATE TABLE ") || !strings.HasSuffix(lines[0], " (") {
		return create, nil
	}
	end := slices.IndexFunc(lines, func(l string) bool { return strings.HasPrefix(l, ")") })
	if end < 0 || !strings.Contains(lines[end], "ENGINE=InnoDB") {
		return create, nil
	}
	var keep, later []string
	for _, l := range lines[1:end] {
		def := strings.TrimSuffix(l, ",")
		if strings.HasPrefix(def, "  KEY `") || strings.HasPrefix(def, "  SPATIAL KEY `") || isForeignKey(def) {
			later = append(later, "ADD "+strings.TrimPrefix(def, "  "))
			continue
		}
		keep = append(keep, def)
	}
	if len(later) == 0 || len(keep) == 0 {
		return create, nil
	}
	out := append([]string{lines[0]}, strings.Join(keep, ",\n"))
	return strings.Join(append(out, lines[end:]...), "\n"), later
}

// isForeignKey tells a "  CONSTRAINT `name` FOREIGN KEY (...)" line.
func isForeignKey(def string) bool {
	rest, ok := strings.CutPrefix(def, "  CONSTRAINT `")
	if !ok {
		return false
	}
	for i := 0; i < len(rest); i++ { // the name, `` for a backtick
		if rest[i] != '`' {
			continue
		}
		if i+1 < len(rest) && rest[i+1] == '`' {
			i++
			continue
		}
		return strings.HasPrefix(rest[i+1:], " FOREIGN KEY (")
	}
	return false
}

// pieceBytes is the default MySQLOptions.PieceBytes: the size of the
// pieces a big table is loaded in, each by whichever connection is free.
// A restore holds at most one piece per connection plus one being cut per
// table being cut (at most one per connection, see loadData).
const pieceBytes = 8 << 20

// loadJob is a table to stream into the server, or one piece of a big one
// (then piece holds the rows and load is shared by the table's pieces).
type loadJob struct {
	d     *mysqlDB
	table string
	piece []byte
	load  *pieceLoad
	// loaded, when not nil, is closed once the piece is in.
	loaded chan struct{}
}

// pieceLoad tracks a table loaded in pieces: pending counts the pieces
// not yet loaded plus one for the cutting, so that whoever brings it to
// zero adds the table's deferred indexes.
type pieceLoad struct {
	cols    []string
	pending atomic.Int64
	// insert: load the pieces as multi-row INSERT (see mysql_insert.go).
	insert bool
}

// loadMode is how pieces load on this server.
type loadMode struct {
	// autoIncLock: a LOAD DATA into a table with an AUTO_INCREMENT column
	// holds the table's AUTO-INC lock to its end
	// (innodb_autoinc_lock_mode 0 or 1).
	autoIncLock bool
	// autoIncInsert: pieces of tables with an AUTO_INCREMENT column load
	// as INSERT (innodb_autoinc_lock_mode 1).
	autoIncInsert bool
	maxPacket     int64 // the server's max_allowed_packet
}

// loadData loads every table's rows with opts.Jobs connections: big
// InnoDB tables with a primary key are cut into pieces at row boundaries
// (largest table first) and loaded by all connections; the others each
// stream straight from the repository in one transaction.
//
// On a server with the AUTO-INC table lock, when two or more big tables
// have an AUTO_INCREMENT column, those tables load in lanes instead: up
// to opts.Jobs of them at once (largest first), each with one piece at a
// time, as LOAD DATA. The lock then never makes a connection wait, and
// LOAD DATA costs the server far less CPU per row than the multi-row
// INSERTs that let pieces of one such table load at once (see
// mysql_insert.go; 100k-order shop cut in 2 MiB pieces: 12.6-15.6 s of
// server CPU against 20.9-21.6 s, docs/benchmarks.md). A single big
// AUTO_INCREMENT table still loads as INSERT on all connections.
func loadData(ctx context.Context, s snapshot.Reader, db *sql.DB, setup []string, dbs []*mysqlDB, opts MySQLOptions, mode loadMode, st *MySQLStats) (int64, error) {
	jobs := make(chan loadJob)
	g, gctx := errgroup.WithContext(ctx)
	var total atomic.Int64
	var warnMu sync.Mutex
	warn := func(ws []string) {
		warnMu.Lock()
		st.Warnings = append(st.Warnings, ws...)
		warnMu.Unlock()
	}
	for range opts.Jobs {
		g.Go(func() error {
			c, err := session(gctx, db, setup, "SET NAMES binary")
			if err != nil {
				return err
			}
			defer c.Close()
			stmts := insertStmts{}
			defer stmts.close()
			for j := range jobs {
				name := mysql.QuoteName(j.d.target) + "." + mysql.QuoteName(j.table)
				if j.load == nil {
					n, warns, err := loadStream(gctx, s, c, j.d, j.table, opts.Progress)
					if err != nil {
						return err
					}
					warn(warns)
					total.Add(n)
				} else if j.piece != nil {
					warns, err := loadPiece(gctx, c, stmts, name, j.load, j.piece, mode.maxPacket)
					if err != nil {
						return err
					}
					warn(warns)
					total.Add(int64(len(j.piece)))
					if j.loaded != nil {
						close(j.loaded)
					}
				}
				if j.load != nil && j.load.pending.Add(-1) > 0 {
					continue // more pieces of the table to come or loading
				}
				if q := j.d.alter[j.table]; q != "" {
					if _, err := c.ExecContext(gctx, q); err != nil {
						return fmt.Errorf("restore %s: add the secondary indexes and foreign keys after the data: %w", name, err)
					}
				}
				opts.Progress.Files.Add(1)
			}
			return nil
		})
	}
	g.Go(func() error {
		defer close(jobs)
		send := func(j loadJob) error {
			select {
			case jobs <- j:
				return nil
			case <-gctx.Done():
				return gctx.Err()
			}
		}
		var small []loadJob
		var big []loadJob
		for _, d := range dbs {
			for _, t := range d.Tables {
				if n := d.Data[t]; n == nil {
					continue
				} else if opts.Jobs > 1 && opts.PieceBytes > 0 && d.pk[t] && n.Size >= 4*opts.PieceBytes {
					big = append(big, loadJob{d: d, table: t})
				} else {
					small = append(small, loadJob{d: d, table: t})
				}
			}
		}
		slices.SortStableFunc(big, func(a, b loadJob) int { return cmp.Compare(b.d.Data[b.table].Size, a.d.Data[a.table].Size) })
		var laned, shared []loadJob
		for _, j := range big {
			if mode.autoIncLock && j.d.autoInc[j.table] {
				laned = append(laned, j)
			} else {
				shared = append(shared, j)
			}
		}
		if len(laned) < 2 {
			shared, laned = big, nil
		}
		lg, lctx := errgroup.WithContext(gctx)
		next := make(chan loadJob, len(laned))
		for _, j := range laned {
			next <- j
		}
		close(next)
		for range min(opts.Jobs, len(laned)) {
			lg.Go(func() error {
				for j := range next {
					if err := cutPieces(lctx, s, j, false, true, opts.PieceBytes, opts.Progress, send); err != nil {
						return err
					}
				}
				return nil
			})
		}
		lg.Go(func() error {
			for _, j := range shared {
				insert := mode.autoIncInsert && j.d.autoInc[j.table]
				if err := cutPieces(lctx, s, j, insert, false, opts.PieceBytes, opts.Progress, send); err != nil {
					return err
				}
			}
			for _, j := range small {
				if err := send(j); err != nil {
					return err
				}
			}
			return nil
		})
		return lg.Wait()
	})
	if err := g.Wait(); err != nil {
		return 0, err
	}
	return total.Load(), nil
}

// cutPieces reads a table's data and sends it in pieces of about size
// bytes ending at a row boundary (a raw newline only ends a row: one in a
// value is escaped), then a last job without rows that counts the cutting
// as done. With serial, a piece is sent only once the one before it is
// loaded (the next one is cut meanwhile).
func cutPieces(ctx context.Context, s snapshot.Reader, j loadJob, insert, serial bool, size int64, p *snapshot.Progress, send func(loadJob) error) error {
	n := j.d.Data[j.table]
	content := s.Open(ctx, n)
	defer content.Close()
	cr := &countingReader{r: content, p: p}
	br := bufio.NewReaderSize(cr, 256<<10)
	cols, err := mysql.ReadHeader(br)
	if err != nil {
		return fmt.Errorf("restore %s: %w", n.Path, err)
	}
	load := &pieceLoad{cols: cols, insert: insert}
	load.pending.Store(1)
	var prev chan struct{} // the last piece sent, with serial
	for {
		piece := make([]byte, size, size+64<<10)
		k, err := io.ReadFull(br, piece)
		piece = piece[:k]
		if err == nil {
			var rest []byte
			rest, err = br.ReadBytes('\n')
			piece = append(piece, rest...)
		}
		if err != nil && err != io.EOF && err != io.ErrUnexpectedEOF {
			return fmt.Errorf("restore %s: %w", n.Path, err)
		}
		if len(piece) > 0 {
			if piece[len(piece)-1] != '\n' {
				return fmt.Errorf("restore %s: data does not end with a newline", n.Path)
			}
			job := loadJob{d: j.d, table: j.table, piece: piece, load: load}
			if serial {
				if prev != nil {
					select {
					case <-prev:
					case <-ctx.Done():
						return ctx.Err()
					}
				}
				job.loaded = make(chan struct{})
				prev = job.loaded
			}
			load.pending.Add(1)
			if err := send(job); err != nil {
				return err
			}
		}
		if err != nil {
			break
		}
	}
	if cr.n != n.Size {
		return fmt.Errorf("restore %s: content is %d bytes, metadata says %d", n.Path, cr.n, n.Size)
	}
	return send(loadJob{d: j.d, table: j.table, load: load})
}

// loadStream streams one table's data into the server in one transaction.
func loadStream(ctx context.Context, s snapshot.Reader, c *sql.Conn, d *mysqlDB, table string, p *snapshot.Progress) (int64, []string, error) {
	n := d.Data[table]
	name := mysql.QuoteName(d.target) + "." + mysql.QuoteName(table)
	content := s.Open(ctx, n)
	defer content.Close()
	cr := &countingReader{r: content, p: p}
	br := bufio.NewReaderSize(cr, 256<<10)
	cols, err := mysql.ReadHeader(br)
	if err != nil {
		return 0, nil, fmt.Errorf("restore %s: %w", n.Path, err)
	}
	warns, err := loadRows(ctx, c, name, cols, br, func() error {
		if cr.n != n.Size {
			return fmt.Errorf("content is %d bytes, metadata says %d", cr.n, n.Size)
		}
		return nil
	})
	return cr.n, warns, err
}

// pieceAttempts bounds how often a piece is loaded.
const pieceAttempts = 5

// loadPiece loads one piece of a table (as prepared INSERTs when
// load.insert and no row is near maxPacket, else with LOAD DATA),
// again when the server rolled it back as a deadlock victim (1213) or
// after a lock wait timeout (1205): pieces of one table load on several
// connections at once, and InnoDB may pick one of them to roll back. The
// piece is in memory, so it is simply loaded again, up to pieceAttempts
// times.
func loadPiece(ctx context.Context, c *sql.Conn, stmts insertStmts, name string, load *pieceLoad, piece []byte, maxPacket int64) ([]string, error) {
	insert := load.insert && insertFits(piece, maxPacket/2)
	for attempt := 1; ; attempt++ {
		var warns []string
		var err error
		if insert {
			warns, err = insertRows(ctx, c, stmts, name, load.cols, piece)
		} else {
			warns, err = loadRows(ctx, c, name, load.cols, bytes.NewReader(piece), nil)
		}
		if err == nil || attempt == pieceAttempts || !isRetryable(err) {
			return warns, err
		}
	}
}

// loadRows runs LOAD DATA LOCAL INFILE of rows into table name (quoted),
// in one transaction, committed if check (may be nil) passes.
func loadRows(ctx context.Context, c *sql.Conn, name string, cols []string, rows io.Reader, check func() error) ([]string, error) {
	quoted := make([]string, len(cols))
	for i, col := range cols {
		quoted[i] = mysql.QuoteName(col)
	}
	handler := fmt.Sprintf("lifeboat-%d", loadSeq.Add(1))
	driver.RegisterReaderHandler(handler, func() io.Reader { return rows })
	defer driver.DeregisterReaderHandler(handler)
	if _, err := c.ExecContext(ctx, "BEGIN"); err != nil {
		return nil, err
	}
	q := "LOAD DATA LOCAL INFILE 'Reader::" + handler + "' INTO TABLE " + name +
		" CHARACTER SET binary (" + strings.Join(quoted, ", ") + ")"
	_, err := c.ExecContext(ctx, q)
	if err == nil && check != nil {
		err = check()
	}
	var warns []string
	if err == nil {
		warns, err = loadWarnings(ctx, c)
		for i, w := range warns {
			warns[i] = name + ": " + w
		}
	}
	if err != nil {
		_, _ = c.ExecContext(context.WithoutCancel(ctx), "ROLLBACK")
		if strings.Contains(err.Error(), "not allowed") || strings.Contains(err.Error(), "local_infile") {
			err = fmt.Errorf("%w (the server must allow LOAD DATA LOCAL: SET GLOBAL local_infile = 1)", err)
		}
		return nil, fmt.Errorf("load %s: %w", name, err)
	}
	if _, err := c.ExecContext(ctx, "COMMIT"); err != nil {
		return nil, fmt.Errorf("load %s: commit: %w", name, err)
	}
	return warns, nil
}

// loadWarnings returns the warnings of the last LOAD DATA (converted
// values, duplicate keys), at most 3.
func loadWarnings(ctx context.Context, c *sql.Conn) ([]string, error) {
	rows, err := c.QueryContext(ctx, "SHOW WARNINGS LIMIT 3")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var msgs []string
	for rows.Next() {
		var level, msg string
		var code int
		if err := rows.Scan(&level, &code, &msg); err != nil {
			return nil, err
		}
		msgs = append(msgs, fmt.Sprintf("%s %d: %s", level, code, msg))
	}
	return msgs, rows.Err()
}

// MySQLDatabases lists the databases of a mysql snapshot, by their names on
// the source (a drill drops a scratch server's earlier copies of them).
func MySQLDatabases(ctx context.Context, s snapshot.Reader) ([]string, error) {
	dbs, _, err := readMySQLTree(ctx, s, MySQLOptions{})
	if err != nil {
		return nil, err
	}
	names := make([]string, len(dbs))
	for i, x := range dbs {
		names[i] = x.target
	}
	return names, nil
}
