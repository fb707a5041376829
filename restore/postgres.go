package restore

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strings"

	"github.com/lifeboat-backup/lifeboat/engine/repo"
	"github.com/lifeboat-backup/lifeboat/targets"
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
	// Jobs > 1 runs pg_restore --jobs N, which needs a seekable archive:
	// each database's archive is first written to a temporary file in
	// TempDir (default os.TempDir()). Jobs <= 1 streams the archive from
	// the repository into pg_restore's stdin (no local copy).
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
	Progress *Progress
}

// PostgresStats summarize a database restore.
type PostgresStats struct {
	Databases []string `json:"databases"` // names restored under
	Bytes     int64    `json:"bytes"`     // archive bytes read
	Globals   bool     `json:"globals"`
	Warnings  []string `json:"warnings,omitempty"`
}

type pgDB struct {
	name, target string
	node         *repo.Node
	props        *repo.Node // DB.database.json; nil in old snapshots
}

// Postgres restores a snapshot made by targets/postgres into a server:
// per database CREATE DATABASE (under its new name, with the original's
// encoding and locale), pg_restore of its custom-format archive, streamed
// or, with Jobs > 1, from a temporary file in parallel, then the
// original's owner, comment, connection limit, settings and grants of
// the database itself. It refuses to start when a destination database
// exists, and drops the databases it created when a restore fails.
func Postgres(ctx context.Context, s Snapshot, opts PostgresOptions) (*PostgresStats, error) {
	sn := s.Info()
	if sn.Kind != "postgres" {
		return nil, fmt.Errorf("snapshot %s is a %s snapshot, not postgres: restore it to a directory", sn.ID.Short(), sn.Kind)
	}
	if opts.Progress == nil {
		opts.Progress = &Progress{}
	}
	conn, err := postgres.ParseDSN(opts.DSN, opts.Password)
	if err != nil {
		return nil, err
	}
	dbs, globals, err := readPostgresTree(ctx, s, opts, conn.Database())
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
	ctl, err := postgres.OpenSession(ctx, psql, conn, "postgres")
	if err != nil {
		return nil, err
	}
	defer ctl.Close()
	for _, d := range dbs {
		n, err := ctl.Query("SELECT count(*) FROM pg_database WHERE datname = " + quoteLiteral(d.target))
		if err != nil {
			return nil, err
		}
		if n != "0" {
			return nil, fmt.Errorf("database %q already exists on %s: drop it, or restore under another name with --rename %s=NEW",
				d.target, conn.String(), d.name)
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
	user, err := ctl.Query("SELECT current_user")
	if err != nil {
		return nil, err
	}
	roles, err := pgRoles(ctl)
	if err != nil {
		return nil, err
	}
	var created []string
	fail := func(err error) (*PostgresStats, error) {
		for _, name := range created {
			if derr := ctl.Exec("DROP DATABASE IF EXISTS " + quoteIdent(name)); derr != nil {
				return nil, fmt.Errorf("%w (dropping the partial database %q failed too: %v)", err, name, derr)
			}
		}
		_, _ = ctl.Query("SELECT 1") // wait for the drops
		return nil, err
	}
	for _, d := range dbs {
		var props *postgres.DatabaseProps
		if d.props != nil && !opts.NoDatabaseProperties {
			if props, err = readPostgresProps(ctx, s, d.props); err != nil {
				return fail(err)
			}
		}
		create := "CREATE DATABASE " + quoteIdent(d.target) + " TEMPLATE template0"
		if props != nil {
			create += props.CreateOptions()
		}
		if err := pgExec(ctx, psql, conn, create); err != nil {
			if props != nil {
				err = fmt.Errorf("%w (the original's encoding %s, locale provider %s, LC_COLLATE %s, LC_CTYPE %s must exist here; --no-db-properties uses the server's defaults)",
					err, props.Encoding, props.LocaleProvider, props.Collate, props.Ctype)
			}
			return fail(fmt.Errorf("create database %q: %w", d.target, err))
		}
		created = append(created, d.target)
		n, err := pgRestoreDB(ctx, s, pgRestore, conn, d, opts)
		st.Bytes += n
		if err != nil {
			return fail(err)
		}
		if props != nil {
			stmts, warns, err := props.Statements(postgres.Apply{Database: d.target, Owner: user, Roles: roles,
				NoOwner: opts.NoOwner, NoPrivileges: opts.NoPrivileges})
			if err == nil {
				err = pgExec(ctx, psql, conn, stmts...)
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

// readPostgresTree finds the databases (and globals) of a snapshot.
func readPostgresTree(ctx context.Context, s Snapshot, opts PostgresOptions, dsnDB string) ([]*pgDB, *repo.Node, error) {
	sn := s.Info()
	tr := s.Tree(ctx)
	var all []*pgDB
	var globals *repo.Node
	props := map[string]*repo.Node{}
	for {
		n, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, nil, err
		}
		switch {
		case n.Type == targets.TypeFile && n.Path == postgres.GlobalsFile:
			globals = n
		case n.Type == targets.TypeFile && !strings.Contains(n.Path, "/") && strings.HasSuffix(n.Path, postgres.SuffixProps):
			name, err := postgres.DecodeName(strings.TrimSuffix(n.Path, postgres.SuffixProps))
			if err != nil {
				return nil, nil, err
			}
			props[name] = n
		case n.Type == targets.TypeFile && !strings.Contains(n.Path, "/") && strings.HasSuffix(n.Path, postgres.SuffixDump):
			name, err := postgres.DecodeName(strings.TrimSuffix(n.Path, postgres.SuffixDump))
			if err != nil {
				return nil, nil, err
			}
			all = append(all, &pgDB{name: name, target: name, node: n})
		default:
			return nil, nil, fmt.Errorf("snapshot %s: unexpected entry %q", sn.ID.Short(), n.Path)
		}
	}
	for _, d := range all {
		d.props = props[d.name]
		delete(props, d.name)
	}
	for name := range props {
		return nil, nil, fmt.Errorf("snapshot %s: properties of database %q but no archive", sn.ID.Short(), name)
	}
	var dbs []*pgDB
	for _, want := range opts.Databases {
		if !slices.ContainsFunc(all, func(d *pgDB) bool { return d.name == want }) {
			return nil, nil, fmt.Errorf("snapshot %s holds no database %q", sn.ID.Short(), want)
		}
	}
	for _, d := range all {
		if len(opts.Databases) == 0 || slices.Contains(opts.Databases, d.name) {
			if t, ok := opts.Rename[d.name]; ok && t != "" {
				d.target = t
			}
			dbs = append(dbs, d)
		}
	}
	for from := range opts.Rename {
		if !slices.ContainsFunc(all, func(d *pgDB) bool { return d.name == from }) {
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

// pgRestoreDB runs pg_restore of one archive into its (new, empty)
// database and returns the archive bytes read.
func pgRestoreDB(ctx context.Context, s Snapshot, pgRestore string, conn *postgres.Conn, d *pgDB, opts PostgresOptions) (int64, error) {
	args := []string{"-w", "--exit-on-error", "-d", conn.URL(d.target)}
	if opts.NoOwner {
		args = append(args, "--no-owner")
	}
	if opts.NoPrivileges {
		args = append(args, "--no-privileges")
	}
	content := s.Open(ctx, d.node)
	defer content.Close()
	counter := &countingReader{r: content, p: opts.Progress}
	var stdin io.Reader = counter
	if opts.Jobs > 1 {
		f, err := os.CreateTemp(opts.TempDir, "lifeboat-pgrestore-*.dump")
		if err != nil {
			return 0, fmt.Errorf("restore %s: temporary archive: %w", d.name, err)
		}
		defer os.Remove(f.Name())
		_, err = io.Copy(f, counter)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return counter.n, fmt.Errorf("restore %s: temporary archive: %w", d.name, err)
		}
		args = append(args, fmt.Sprintf("--jobs=%d", opts.Jobs), f.Name())
		stdin = nil
	}
	cmd := exec.CommandContext(ctx, pgRestore, args...)
	cmd.Env = conn.Env()
	if stdin != nil {
		cmd.Stdin = stdin
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String())
		if msg == "" {
			msg = err.Error()
		}
		return counter.n, fmt.Errorf("restore database %q as %q: pg_restore: %s", d.name, d.target, msg)
	}
	if counter.n != d.node.Size {
		return counter.n, fmt.Errorf("restore %s: archive is %d bytes, metadata says %d", d.node.Path, counter.n, d.node.Size)
	}
	return counter.n, nil
}

// readPostgresProps reads a database's recorded properties.
func readPostgresProps(ctx context.Context, s Snapshot, n *repo.Node) (*postgres.DatabaseProps, error) {
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

// pgExec runs statements in a session of their own (a failing one ends
// its psql, not the caller's control session) and returns the first
// error, naming the statement.
func pgExec(ctx context.Context, psql string, conn *postgres.Conn, stmts ...string) error {
	if len(stmts) == 0 {
		return nil
	}
	se, err := postgres.OpenSession(ctx, psql, conn, "postgres")
	if err != nil {
		return err
	}
	defer se.Close()
	for _, q := range stmts {
		if err := se.Exec(q); err == nil {
			_, err = se.Query("SELECT 1")
		}
		if err != nil {
			return fmt.Errorf("%s: %w", q, err)
		}
	}
	return nil
}

// runGlobals runs globals.sql with psql, without stopping on errors.
func runGlobals(ctx context.Context, s Snapshot, psql string, conn *postgres.Conn, n *repo.Node) ([]string, error) {
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
	p *Progress
}

func (c *countingReader) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	c.n += int64(n)
	if c.p != nil {
		c.p.Bytes.Add(int64(n))
	}
	return n, err
}

func quoteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

func quoteLiteral(s string) string { return `'` + strings.ReplaceAll(s, `'`, `''`) + `'` }
