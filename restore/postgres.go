package restore

import (
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
	"slices"
	"strings"
	"sync"
	"syscall"

	"golang.org/x/sync/errgroup"
	"golang.org/x/sys/unix"

	"github.com/lifeboat-backup/lifeboat/engine/snapshot"
	"github.com/lifeboat-backup/lifeboat/targets/postgres"
)

// PostgresOptions configure a restore of a postgres snapshot into a server.
type PostgresOptions struct {
	// DSN of the destination server: postgres://user@host:port/[dbname].
	// With a dbname, the one database restored (the snapshot's only one,
	// or the one named in Databases) is restored under that name.
	// Password overrides one in it.
	DSN      string
	Password string
	// Databases restores only these databases (names as stored).
	Databases []string
	// Rename maps stored database names to the names to restore under.
	Rename map[string]string
	// Jobs > 1 restores a split snapshot's data archives Jobs at once,
	// each streamed into a pg_restore of its own, and its post-data
	// archive (small) with pg_restore --jobs from a temporary file. A
	// whole archive needs a seekable file for pg_restore --jobs: it is
	// first written to a temporary file in TempDir (default
	// os.TempDir()). Jobs <= 1 streams every archive from the repository
	// into pg_restore's stdin (no local copy).
	Jobs    int
	TempDir string
	// Globals runs the snapshot's globals.sql (roles) with psql first;
	// errors such as "role already exists" become warnings.
	Globals bool
	// NoOwner restores without the dump's ownership (pg_restore
	// --no-owner): objects belong to the restoring user. Needed when the
	// dump's roles do not exist on the destination.
	NoOwner bool
	// NoPrivileges leaves out the dump's grants (pg_restore
	// --no-privileges, and the grants on the database itself): for
	// destinations without the dump's roles.
	NoPrivileges bool
	// NoDatabaseProperties creates the databases with the server's
	// defaults (encoding, locale) and leaves out the recorded owner,
	// comment, connection limit, settings and grants of the databases
	// themselves (snapshots made before they were recorded have none).
	NoDatabaseProperties bool
	// BinDir holds pg_restore and psql (default: PATH).
	BinDir   string
	Progress *snapshot.Progress
}

// PostgresStats summarize a database restore.
type PostgresStats struct {
	Databases []string `json:"databases"` // names restored under
	Bytes     int64    `json:"bytes"`     // archive bytes read
	Globals   bool     `json:"globals"`
	Warnings  []string `json:"warnings,omitempty"`
}

// pgDB is one database of a snapshot and the name it is restored under.
type pgDB struct {
	*postgres.Database
	target string
}

// Postgres restores a snapshot made by targets/postgres into a server:
// per database CREATE DATABASE (under its new name, with the original's
// encoding and locale), pg_restore of its custom-format archive, streamed
// or, with Jobs > 1, from a temporary file in parallel, then the
// original's owner, comment, connection limit, settings and grants of
// the database itself. It refuses to start when a destination database
// exists, and drops the databases it created when a restore fails.
func Postgres(ctx context.Context, s snapshot.Reader, opts PostgresOptions) (*PostgresStats, error) {
	sn := s.Info()
	if sn.Kind != "postgres" {
		return nil, fmt.Errorf("snapshot %s is a %s snapshot, not postgres: restore it to a directory", sn.ID.Short(), sn.Kind)
	}
	if opts.Progress == nil {
		opts.Progress = &snapshot.Progress{}
	}
	conn, err := postgres.ParseDSN(opts.DSN, opts.Password)
	if err != nil {
		return nil, err
	}
	psql, err := postgres.Binary(opts.BinDir, "psql")
	if err != nil {
		return nil, err
	}
	pgRestore, err := postgres.Binary(opts.BinDir, "pg_restore")
	if err != nil {
		return nil, err
	}
	ctl := &pgCtl{ctx: ctx, psql: psql, conn: conn}
	defer ctl.close()
	// psql starts and logs in while the snapshot's tree is read.
	opened := make(chan error, 1)
	go func() {
		_, err := ctl.session()
		opened <- err
	}()
	dbs, globals, err := readPostgresTree(ctx, s, opts, conn.Database())
	if serr := <-opened; err == nil {
		err = serr
	}
	if err != nil {
		return nil, err
	}
	se := ctl.se
	for _, d := range dbs {
		n, err := se.Query("SELECT count(*) FROM pg_database WHERE datname = " + quoteLiteral(d.target))
		if err != nil {
			return nil, err
		}
		if n != "0" {
			return nil, fmt.Errorf("database %q already exists on %s: drop it, or restore under another name with --rename %s=NEW",
				d.target, conn.String(), d.Name)
		}
	}
	st := &PostgresStats{}
	if opts.Globals && globals != nil {
		warns, err := runGlobals(ctx, s, psql, conn, globals)
		if err != nil {
			return nil, err
		}
		st.Globals, st.Warnings = true, append(st.Warnings, warns...)
	}
	user, err := se.Query("SELECT current_user")
	if err != nil {
		return nil, err
	}
	roles, err := pgRoles(se)
	if err != nil {
		return nil, err
	}
	var created []string
	fail := func(err error) (*PostgresStats, error) {
		for _, name := range created {
			drop := "DROP DATABASE IF EXISTS " + postgres.QuoteIdent(name)
			if derr := ctl.exec(postgres.Plain(drop)); derr != nil {
				return nil, fmt.Errorf("%w (dropping the partial database %q failed too: %v)", err, name, derr)
			}
		}
		return nil, err
	}
	for _, d := range dbs {
		var props *postgres.DatabaseProps
		if d.Props != nil && !opts.NoDatabaseProperties {
			if props, err = readPostgresProps(ctx, s, d.Props); err != nil {
				return fail(err)
			}
		}
		create := "CREATE DATABASE " + postgres.QuoteIdent(d.target) + " TEMPLATE template0"
		if props != nil {
			create += props.CreateOptions()
		}
		if err := ctl.exec(postgres.Plain(create)); err != nil {
			if props != nil {
				err = fmt.Errorf("%w (the original's encoding %s, locale provider %s, LC_COLLATE %s, LC_CTYPE %s must exist here; --no-db-properties uses the server's defaults)",
					err, props.Encoding, props.LocaleProvider, props.Collate, props.Ctype)
			}
			return fail(fmt.Errorf("create database %q: %w", d.target, err))
		}
		created = append(created, d.target)
		var n int64
		if d.Whole != nil {
			n, err = pgRestoreArchive(ctx, s, pgRestore, conn, d, d.Whole, opts, opts.Jobs)
		} else {
			n, err = pgRestoreSplit(ctx, s, pgRestore, conn, d, opts)
		}
		st.Bytes += n
		if err != nil {
			return fail(err)
		}
		if props != nil {
			stmts, warns, err := props.Statements(postgres.Apply{Database: d.target, Owner: user, Roles: roles,
				NoOwner: opts.NoOwner, NoPrivileges: opts.NoPrivileges})
			if err == nil {
				err = ctl.exec(stmts...)
			}
			if err != nil {
				return fail(fmt.Errorf("database %q: the original's properties: %w", d.target, err))
			}
			st.Warnings = append(st.Warnings, warns...)
		}
		opts.Progress.Files.Add(1)
		st.Databases = append(st.Databases, d.target)
	}
	return st, nil
}

// readPostgresTree finds the databases (and globals) of a snapshot to
// restore, in the order of postgres.ReadLayout.
func readPostgresTree(ctx context.Context, s snapshot.Reader, opts PostgresOptions, dsnDB string) ([]*pgDB, *snapshot.Node, error) {
	sn := s.Info()
	l, err := postgres.ReadLayout(s.Tree(ctx))
	if err != nil {
		return nil, nil, fmt.Errorf("snapshot %s: %w", sn.ID.Short(), err)
	}
	all, globals := l.Databases, l.Globals
	var dbs []*pgDB
	has := func(name string) bool {
		return slices.ContainsFunc(all, func(d *postgres.Database) bool { return d.Name == name })
	}
	for _, want := range opts.Databases {
		if !has(want) {
			return nil, nil, fmt.Errorf("snapshot %s holds no database %q", sn.ID.Short(), want)
		}
	}
	for _, d := range all {
		if len(opts.Databases) == 0 || slices.Contains(opts.Databases, d.Name) {
			target := d.Name
			if t, ok := opts.Rename[d.Name]; ok && t != "" {
				target = t
			}
			dbs = append(dbs, &pgDB{Database: d, target: target})
		}
	}
	for from := range opts.Rename {
		if !has(from) {
			return nil, nil, fmt.Errorf("--rename %s: snapshot %s holds no database %q", from, sn.ID.Short(), from)
		}
	}
	if len(dbs) == 0 {
		return nil, nil, fmt.Errorf("snapshot %s holds no database to restore", sn.ID.Short())
	}
	if dsnDB != "" {
		if len(dbs) != 1 {
			return nil, nil, fmt.Errorf("the destination names database %q but snapshot %s holds %d databases: pick one with --databases, or leave the name out and use --rename",
				dsnDB, sn.ID.Short(), len(dbs))
		}
		dbs[0].target = dsnDB
	}
	seen := map[string]bool{}
	for _, d := range dbs {
		if seen[d.target] {
			return nil, nil, fmt.Errorf("two databases would be restored as %q", d.target)
		}
		seen[d.target] = true
	}
	return dbs, globals, nil
}

// pgRestoreSplit restores a database dumped in parts: the pre-data
// archive (tables without indexes or constraints), then the data-only
// and table archives, up to Jobs at once, largest first, each streamed
// from the repository into a pg_restore of its own (a table archive's
// data, then at once its indexes and constraints: postgres.SplitTOC),
// then the post-data archive (the other tables' indexes, constraints,
// triggers: small, so with Jobs > 1 it is staged and pg_restore --jobs
// builds the indexes in parallel), then the rest of the table archives
// (foreign keys, triggers, comments), Jobs at once, from their tables of
// contents held in memory.
func pgRestoreSplit(ctx context.Context, s snapshot.Reader, pgRestore string, conn *postgres.Conn, d *pgDB, opts PostgresOptions) (int64, error) {
	total, err := pgRestoreArchive(ctx, s, pgRestore, conn, d, d.Pre, opts, 1)
	if err != nil {
		return total, err
	}
	n := max(jobs(s, opts.Jobs), 1)
	// Tree order for a sequential reader (one at a time), else largest
	// first, so the last archive to finish is a small one.
	loads := slices.Concat(d.Data, d.Tables)
	if n > 1 {
		slices.SortStableFunc(loads, func(a, b *snapshot.Node) int { return cmp.Compare(b.Size, a.Size) })
	}
	tocs := map[*snapshot.Node]*postgres.TableTOC{}
	var mu sync.Mutex
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(n)
	for _, node := range loads {
		g.Go(func() error {
			var k int64
			var err error
			if slices.Contains(d.Tables, node) {
				var toc *postgres.TableTOC
				k, toc, err = pgRestoreTable(gctx, s, pgRestore, conn, d, node, opts)
				mu.Lock()
				tocs[node] = toc
				mu.Unlock()
			} else {
				k, err = pgRestoreArchive(gctx, s, pgRestore, conn, d, node, opts, 1)
			}
			mu.Lock()
			total += k
			mu.Unlock()
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return total, err
	}
	k, err := pgRestorePost(ctx, s, pgRestore, conn, d, opts, n)
	total += k
	if err != nil {
		return total, err
	}
	g, gctx = errgroup.WithContext(ctx)
	g.SetLimit(n)
	for _, node := range d.Tables {
		toc := tocs[node]
		if len(toc.Later) == 0 {
			continue
		}
		g.Go(func() error {
			return pgRestoreRun(gctx, pgRestore, conn, d, node, bytes.NewReader(toc.Head), toc.Later, opts)
		})
	}
	return total, g.Wait()
}

// pgRestoreTable restores a table archive's data, indexes and
// constraints (toc.Now), streamed, its rows with COPY FREEZE where the
// archive's format allows (postgres.FreezeCopy), and returns the archive
// bytes read and its table of contents for the rest (toc.Later).
func pgRestoreTable(ctx context.Context, s snapshot.Reader, pgRestore string, conn *postgres.Conn, d *pgDB, node *snapshot.Node, opts PostgresOptions) (int64, *postgres.TableTOC, error) {
	content := s.Open(ctx, node)
	defer content.Close()
	counter := &countingReader{r: content, p: opts.Progress}
	toc, err := postgres.ReadTableTOC(ctx, pgRestore, counter)
	if err != nil {
		return counter.n, nil, fmt.Errorf("restore database %q as %q: %s: %w", d.Name, d.target, node.Path, err)
	}
	// The table is new (pre-data made it): its rows load frozen, in one
	// transaction with its indexes and constraints.
	head, frozen := postgres.FreezeCopy(toc.Head)
	var extra []string
	if frozen {
		extra = []string{"--single-transaction"}
	}
	if err := pgRestoreRun(ctx, pgRestore, conn, d, node, io.MultiReader(bytes.NewReader(head), counter), toc.Now, opts, extra...); err != nil {
		return counter.n, nil, err
	}
	// pg_restore stops reading after the last item; the rest must be
	// the archive's end.
	if _, err := io.Copy(io.Discard, counter); err != nil {
		return counter.n, nil, fmt.Errorf("restore %s: %w", node.Path, err)
	}
	if counter.n != node.Size {
		return counter.n, nil, fmt.Errorf("restore %s: archive is %d bytes, metadata says %d", node.Path, counter.n, node.Size)
	}
	return counter.n, toc, nil
}

// postPeekMax bounds the post-data archive read into memory to list it.
const postPeekMax = 16 << 20

// pgRestorePost restores the post-data archive with jobs > 1: read into
// memory and listed (postgres.ListTOC), it is left out when it holds no
// item (every table had a table archive), streamed into one pg_restore
// when it builds at most one index or constraint, and otherwise staged
// for pg_restore --jobs (as it is when it cannot be listed or is large).
func pgRestorePost(ctx context.Context, s snapshot.Reader, pgRestore string, conn *postgres.Conn, d *pgDB, opts PostgresOptions, jobs int) (int64, error) {
	node := d.Post
	if jobs <= 1 || node.Size > postPeekMax {
		return pgRestoreArchive(ctx, s, pgRestore, conn, d, node, opts, jobs)
	}
	content := s.Open(ctx, node)
	counter := &countingReader{r: content, p: opts.Progress}
	b, err := io.ReadAll(io.LimitReader(counter, postPeekMax+1))
	content.Close()
	if err != nil {
		return counter.n, fmt.Errorf("restore %s: %w", node.Path, err)
	}
	if counter.n != node.Size {
		return counter.n, fmt.Errorf("restore %s: archive is %d bytes, metadata says %d", node.Path, counter.n, node.Size)
	}
	list, ok, _ := postgres.ListTOC(b)
	builds := 0
	for _, line := range strings.Split(string(list), "\n") {
		if kind := postgres.ListKind(line); strings.HasPrefix(kind, "INDEX ") || strings.HasPrefix(kind, "CONSTRAINT ") {
			builds++
		}
	}
	switch {
	case ok && len(list) == 0:
		return counter.n, nil
	case ok && builds <= 1:
		return counter.n, pgRestoreRun(ctx, pgRestore, conn, d, node, bytes.NewReader(b), nil, opts)
	}
	name, remove, err := stageArchive(opts.TempDir, bytes.NewReader(b))
	if err != nil {
		return counter.n, fmt.Errorf("restore %s: temporary archive: %w", d.Name, err)
	}
	defer remove()
	return counter.n, pgRestoreRun(ctx, pgRestore, conn, d, node, nil, nil, opts, fmt.Sprintf("--jobs=%d", jobs), name)
}

// stageArchive writes r to a temporary file in dir ("": the system's)
// and returns its name and a function that removes it.
func stageArchive(dir string, r io.Reader) (name string, remove func(), err error) {
	f, err := os.CreateTemp(dir, "lifeboat-pgrestore-*.dump")
	if err != nil {
		return "", nil, err
	}
	remove = func() { _ = os.Remove(f.Name()) }
	_, err = io.Copy(f, r)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		remove()
		return "", nil, err
	}
	return f.Name(), remove, nil
}

// pgRestoreArchive runs pg_restore of one archive of d into its database
// and returns the archive bytes read: streamed into pg_restore's stdin,
// or with jobs > 1 staged in a temporary file for pg_restore --jobs.
func pgRestoreArchive(ctx context.Context, s snapshot.Reader, pgRestore string, conn *postgres.Conn, d *pgDB, node *snapshot.Node, opts PostgresOptions, jobs int) (int64, error) {
	content := s.Open(ctx, node)
	defer content.Close()
	counter := &countingReader{r: content, p: opts.Progress}
	var stdin io.Reader = counter
	var extra []string
	if jobs > 1 {
		name, remove, err := stageArchive(opts.TempDir, counter)
		if err != nil {
			return counter.n, fmt.Errorf("restore %s: temporary archive: %w", d.Name, err)
		}
		defer remove()
		extra = []string{fmt.Sprintf("--jobs=%d", jobs), name}
		stdin = nil
	}
	if err := pgRestoreRun(ctx, pgRestore, conn, d, node, stdin, nil, opts, extra...); err != nil {
		return counter.n, err
	}
	if counter.n != node.Size {
		return counter.n, fmt.Errorf("restore %s: archive is %d bytes, metadata says %d", node.Path, counter.n, node.Size)
	}
	return counter.n, nil
}

// pgRestoreRun runs one pg_restore into d's database: of the archive on
// stdin (nil: a file in extra), with list (not nil) as its --use-list.
func pgRestoreRun(ctx context.Context, pgRestore string, conn *postgres.Conn, d *pgDB, node *snapshot.Node, stdin io.Reader, list []byte, opts PostgresOptions, extra ...string) error {
	args := []string{"-w", "--exit-on-error", "-d", conn.URL(d.target)}
	if opts.NoOwner {
		args = append(args, "--no-owner")
	}
	if opts.NoPrivileges {
		args = append(args, "--no-privileges")
	}
	if list != nil {
		arg, remove, err := postgres.UseList(opts.TempDir, list)
		if err != nil {
			return fmt.Errorf("restore %s: %w", node.Path, err)
		}
		defer remove()
		args = append(args, arg)
	}
	cmd := exec.CommandContext(ctx, pgRestore, append(args, extra...)...)
	cmd.Env = conn.Env()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	fail := func(err error) error {
		msg := strings.TrimSpace(stderr.String())
		if msg == "" {
			msg = err.Error()
		}
		return fmt.Errorf("restore database %q as %q: pg_restore of %s: %s", d.Name, d.target, node.Path, msg)
	}
	if stdin == nil {
		if err := cmd.Run(); err != nil {
			return fail(err)
		}
		return nil
	}
	// The archive goes through a pipe of pipeBuf bytes, written pipeBuf
	// at a time (exec's own: 64 KiB, written 32 KiB at a time).
	pr, pw, err := os.Pipe()
	if err != nil {
		return fail(err)
	}
	growPipe(pw)
	cmd.Stdin = pr
	err = cmd.Start()
	pr.Close()
	if err != nil {
		pw.Close()
		return fail(err)
	}
	copied := make(chan error, 1)
	go func() {
		_, err := io.CopyBuffer(pw, stdin, make([]byte, pipeBuf))
		pw.Close()
		copied <- err
	}()
	werr := cmd.Wait()
	cerr := <-copied
	if werr != nil {
		return fail(werr)
	}
	// pg_restore stops reading after the last item it restores: a write
	// into the closed pipe is no error.
	if cerr != nil && !errors.Is(cerr, syscall.EPIPE) {
		return fail(cerr)
	}
	return nil
}

// pipeBuf is the buffer of a pipe into pg_restore, and the size of the
// writes into it.
const pipeBuf = 1 << 20

// growPipe makes a pipe's buffer pipeBuf bytes (64 KiB by default), so
// that a writer feeding a reader that takes 4 KiB at a time (pg_restore's
// stdio) blocks and wakes once per pipeBuf, not every 64 KiB. Best
// effort: a smaller limit (fs.pipe-max-size) leaves the default.
func growPipe(w *os.File) {
	if c, err := w.SyscallConn(); err == nil {
		_ = c.Control(func(fd uintptr) { _, _ = unix.FcntlInt(fd, unix.F_SETPIPE_SZ, pipeBuf) })
	}
}

// readPostgresProps reads a database's recorded properties.
func readPostgresProps(ctx context.Context, s snapshot.Reader, n *snapshot.Node) (*postgres.DatabaseProps, error) {
	content := s.Open(ctx, n)
	defer content.Close()
	b, err := io.ReadAll(io.LimitReader(content, 16<<20))
	if err != nil {
		return nil, fmt.Errorf("restore %s: %w", n.Path, err)
	}
	var p postgres.DatabaseProps
	if err := json.Unmarshal(b, &p); err != nil {
		return nil, fmt.Errorf("restore %s: %w", n.Path, err)
	}
	return &p, nil
}

// pgRoles lists the roles of the server.
func pgRoles(ctl *postgres.Session) (map[string]bool, error) {
	line, err := ctl.Query(`SELECT coalesce(string_agg(encode(convert_to(rolname, 'UTF8'), 'hex'), ','), '') FROM pg_roles`)
	if err != nil {
		return nil, err
	}
	roles := map[string]bool{}
	for _, h := range strings.Split(line, ",") {
		b, err := hex.DecodeString(h)
		if err != nil {
			return nil, fmt.Errorf("list roles: %w", err)
		}
		if len(b) > 0 {
			roles[string(b)] = true
		}
	}
	return roles, nil
}

// pgCtl is restore's control session: one psql connection to the
// server's postgres database for the checks, CREATE DATABASE, the
// databases' properties and the drops after a failure, instead of a
// process and a login per step.
type pgCtl struct {
	ctx  context.Context
	psql string
	conn *postgres.Conn
	se   *postgres.Session // nil: none open (not yet, or ended by an error)
}

// session returns the open session, or opens one.
func (c *pgCtl) session() (*postgres.Session, error) {
	if c.se == nil {
		se, err := postgres.OpenSession(c.ctx, c.psql, c.conn, "postgres")
		if err != nil {
			return nil, err
		}
		c.se = se
	}
	return c.se, nil
}

// exec runs statements one at a time and returns the first error,
// naming the statement by its label (setting values, which can be
// secrets, redacted, also from the server's message). A failing
// statement ends psql (ON_ERROR_STOP); the next exec opens a new session.
func (c *pgCtl) exec(stmts ...postgres.Statement) error {
	for _, q := range stmts {
		se, err := c.session()
		if err != nil {
			return err
		}
		err = se.Exec(q.SQL)
		if err == nil {
			_, err = se.Query("SELECT 1") // the statement's error, if any
		}
		if err != nil {
			_ = se.Close() // psql has ended: reap it
			c.se = nil
			return fmt.Errorf("%s: %s", q.Label, q.Redact(err.Error()))
		}
	}
	return nil
}

func (c *pgCtl) close() {
	if c.se != nil {
		_ = c.se.Close()
	}
}

// runGlobals runs globals.sql with psql, without stopping on errors.
func runGlobals(ctx context.Context, s snapshot.Reader, psql string, conn *postgres.Conn, n *snapshot.Node) ([]string, error) {
	cmd := exec.CommandContext(ctx, psql, "-X", "-w", "-q", "-d", conn.URL("postgres"), "-f", "-")
	cmd.Env = conn.Env()
	content := s.Open(ctx, n)
	defer content.Close()
	cmd.Stdin = content
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("restore globals: psql: %v: %s", err, strings.TrimSpace(stderr.String()))
	}
	var warns []string
	for _, l := range strings.Split(strings.TrimSpace(stderr.String()), "\n") {
		if l != "" {
			warns = append(warns, "globals: "+l)
		}
	}
	return warns, nil
}

type countingReader struct {
	r io.Reader
	n int64
	p *snapshot.Progress
}

func (c *countingReader) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	c.n += int64(n)
	if c.p != nil {
		c.p.Bytes.Add(int64(n))
	}
	return n, err
}

func quoteLiteral(s string) string { return `'` + strings.ReplaceAll(s, `'`, `''`) + `'` }

// PostgresDatabases lists the databases of a postgres snapshot by their
// names on the source, and whether it holds the cluster's globals (roles).
func PostgresDatabases(ctx context.Context, s snapshot.Reader) (names []string, globals bool, err error) {
	dbs, g, err := readPostgresTree(ctx, s, PostgresOptions{}, "")
	if err != nil {
		return nil, false, err
	}
	for _, x := range dbs {
		names = append(names, x.target)
	}
	return names, g != nil, nil
}
