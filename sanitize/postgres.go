package sanitize

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/lifeboat-backup/lifeboat/engine/snapshot"
	"github.com/lifeboat-backup/lifeboat/policies"
	"github.com/lifeboat-backup/lifeboat/targets/postgres"
)

// A postgres snapshot holds pg_dump custom-format archives per database.
// The export streams each through pg_restore -f - (plain SQL, no server)
// and sanitizes the rows of its COPY ... FROM stdin blocks (text format:
// tab-separated, \N for NULL, backslash escapes); everything else passes
// unchanged. The output loads with psql into an existing database.

// readPGTree reads and checks a postgres snapshot's layout the way
// restore does (postgres.ReadLayout).
func readPGTree(ctx context.Context, s snapshot.Reader) ([]*postgres.Database, error) {
	l, err := postgres.ReadLayout(s.Tree(ctx))
	if err != nil {
		return nil, fmt.Errorf("snapshot %s: %w", s.Info().ID.Short(), err)
	}
	return l.Databases, nil
}

// pgProc is a running pg_restore -f - fed from the snapshot.
type pgProc struct {
	cmd    *exec.Cmd
	in     io.ReadCloser
	out    io.ReadCloser
	stderr limitedBuffer
	what   string
}

func startPGRestore(ctx context.Context, s snapshot.Reader, bin string, n *snapshot.Node, args ...string) (*pgProc, error) {
	return startPGRestoreFrom(ctx, s.Open(ctx, n), n.Path, bin, args...)
}

// startPGRestoreFrom runs pg_restore -f - on the archive in (closed by
// wait), named what in errors.
func startPGRestoreFrom(ctx context.Context, in io.ReadCloser, what, bin string, args ...string) (*pgProc, error) {
	p := &pgProc{what: what, in: in}
	p.cmd = exec.CommandContext(ctx, bin, append([]string{"-f", "-"}, args...)...)
	p.cmd.Stdin = p.in
	p.cmd.Stderr = &p.stderr
	var err error
	if p.out, err = p.cmd.StdoutPipe(); err != nil {
		p.in.Close()
		return nil, err
	}
	if err := p.cmd.Start(); err != nil {
		p.in.Close()
		return nil, fmt.Errorf("start pg_restore: %w", err)
	}
	return p, nil
}

// readCloser reads from r and closes c.
type readCloser struct {
	io.Reader
	c io.Closer
}

func (r readCloser) Close() error { return r.c.Close() }

// wait ends the process and closes its input: an error says what
// pg_restore said.
func (p *pgProc) wait() error {
	io.Copy(io.Discard, p.out)
	err := p.cmd.Wait()
	p.in.Close()
	if err != nil {
		msg := strings.TrimSpace(p.stderr.String())
		if msg == "" {
			msg = err.Error()
		}
		return fmt.Errorf("pg_restore of %s: %s", p.what, msg)
	}
	return nil
}

// restrictKey tells whether pg_restore takes --restrict-key (15.14 and
// later minor releases print a random \restrict key otherwise).
func restrictKey(bin string) bool {
	out, err := exec.Command(bin, "--help").Output()
	return err == nil && bytes.Contains(out, []byte("--restrict-key"))
}

// pgTable is a table as its CREATE TABLE in pg_restore's output says.
type pgTable struct {
	schema, name string
	cols         []*column
	parent       *pgTable   // a partition: the table it is attached to
	inherits     []*pgTable // INHERITS (...): its parents, in order
}

func (t *pgTable) key() string { return t.schema + "." + t.name }

// ancestors lists the tables t inherits from, farthest first, each once.
func (t *pgTable) ancestors() []*pgTable {
	var out []*pgTable
	seen := map[*pgTable]bool{}
	var walk func(*pgTable)
	walk = func(x *pgTable) {
		for _, p := range x.inherits {
			if !seen[p] {
				seen[p] = true
				walk(p)
				out = append(out, p)
			}
		}
	}
	walk(t)
	return out
}

// root is the partitioned table at the top of t's partitions (t itself
// when it is no partition).
func (t *pgTable) root() *pgTable {
	for t.parent != nil {
		t = t.parent
	}
	return t
}

// pgSchemas reads the tables of d (pg_restore --schema-only).
func pgSchemas(ctx context.Context, s snapshot.Reader, bin string, d *postgres.Database) (map[string]*pgTable, error) {
	n := d.Whole
	if n == nil {
		n = d.Pre
	}
	p, err := startPGRestore(ctx, s, bin, n, "--schema-only")
	if err != nil {
		return nil, err
	}
	tables, perr := parsePGSchema(p.out)
	if err := p.wait(); err != nil {
		return nil, err
	}
	return tables, perr
}

// parsePGSchema collects the CREATE TABLE statements of pg_restore's
// plain output: "CREATE TABLE schema.name (" then one column per line;
// the partitions: pg_dump writes each as its own CREATE TABLE, then
// "ALTER TABLE ONLY parent ATTACH PARTITION child ..."; and inheritance:
// ")" then "INHERITS (parent, ...);", the table's own columns only listed
// (the inherited ones are added here, parents' first, as in its rows).
func parsePGSchema(rd io.Reader) (map[string]*pgTable, error) {
	tables := map[string]*pgTable{}
	var attach [][3]string // parent, child, line
	type inherit struct {
		child   *pgTable
		parents []string
		line    string
	}
	var inherits []inherit
	sc := bufio.NewScanner(rd)
	sc.Buffer(make([]byte, 64<<10), 64<<20)
	var cur, last *pgTable // last: the table whose ")" was the line before
	for sc.Scan() {
		line := sc.Text()
		if cur == nil {
			prev := last
			last = nil
			if rest, ok := strings.CutPrefix(line, "INHERITS ("); ok && prev != nil {
				parents, err := pgInherits(rest)
				if err != nil {
					return nil, fmt.Errorf("%s.%s: %q: %w", prev.schema, prev.name, line, err)
				}
				inherits = append(inherits, inherit{prev, parents, line})
				continue
			}
			if rest, ok := strings.CutPrefix(line, "ALTER TABLE ONLY "); ok && strings.Contains(rest, " ATTACH PARTITION ") {
				parent, child, err := pgAttach(rest)
				if err != nil {
					return nil, fmt.Errorf("%q: %w", line, err)
				}
				attach = append(attach, [3]string{parent, child, line})
				continue
			}
			rest, ok := strings.CutPrefix(line, "CREATE TABLE ")
			if !ok {
				rest, ok = strings.CutPrefix(line, "CREATE UNLOGGED TABLE ")
			}
			if !ok || !strings.HasSuffix(rest, " (") {
				continue
			}
			schema, name, err := pgQualified(strings.TrimSuffix(rest, " ("))
			if err != nil {
				return nil, fmt.Errorf("%q: %w", line, err)
			}
			cur = &pgTable{schema: schema, name: name}
			continue
		}
		if strings.HasPrefix(line, ")") {
			tables[cur.schema+"."+cur.name] = cur
			if line == ")" {
				last = cur
			}
			cur = nil
			continue
		}
		def := strings.TrimSuffix(strings.TrimSpace(line), ",")
		if strings.HasPrefix(def, "CONSTRAINT ") {
			continue
		}
		name, rest, err := pgIdent(def)
		if err != nil {
			return nil, fmt.Errorf("%s.%s: %q: %w", cur.schema, cur.name, line, err)
		}
		cur.cols = append(cur.cols, pgColumn(name, strings.TrimSpace(rest)))
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	for _, a := range attach {
		parent, child := tables[a[0]], tables[a[1]]
		if parent == nil || child == nil {
			return nil, fmt.Errorf("%q: a partition of a table without its CREATE TABLE", a[2])
		}
		if child.parent != nil {
			return nil, fmt.Errorf("%q: %s is already a partition of %s", a[2], a[1], child.parent.key())
		}
		for p := parent; p != nil; p = p.parent {
			if p == child {
				return nil, fmt.Errorf("%q: partitions form a cycle", a[2])
			}
		}
		child.parent = parent
	}
	for _, in := range inherits {
		for _, k := range in.parents {
			p := tables[k]
			if p == nil {
				return nil, fmt.Errorf("%s: %q: inherits from %s, which has no CREATE TABLE", in.child.key(), in.line, k)
			}
			in.child.inherits = append(in.child.inherits, p)
		}
	}
	// Inherited columns, parents' first; a cycle cannot come out of
	// pg_dump, but a damaged schema must not hang the export.
	done, busy := map[*pgTable]bool{}, map[*pgTable]bool{}
	var fill func(t *pgTable) error
	fill = func(t *pgTable) error {
		if done[t] || len(t.inherits) == 0 {
			return nil
		}
		if busy[t] {
			return fmt.Errorf("%s: inheritance forms a cycle", t.key())
		}
		busy[t] = true
		var cols []*column
		seen := map[string]bool{}
		for _, p := range t.inherits {
			if err := fill(p); err != nil {
				return err
			}
			for _, c := range p.cols {
				if !seen[c.name] {
					seen[c.name] = true
					cols = append(cols, c)
				}
			}
		}
		for _, c := range t.cols {
			if !seen[c.name] { // a redeclared column is merged with the inherited one
				seen[c.name] = true
				cols = append(cols, c)
			}
		}
		t.cols, done[t] = cols, true
		return nil
	}
	for _, k := range slices.Sorted(maps.Keys(tables)) {
		if err := fill(tables[k]); err != nil {
			return nil, err
		}
	}
	return tables, nil
}

// pgInherits reads the parents of "INHERITS (" ... ");".
func pgInherits(s string) ([]string, error) {
	var out []string
	for {
		schema, name, rest, err := pgQualifiedPrefix(s)
		if err != nil {
			return nil, err
		}
		out = append(out, schema+"."+name)
		switch {
		case rest == ");":
			return out, nil
		case strings.HasPrefix(rest, ", "):
			s = rest[2:]
		default:
			return nil, fmt.Errorf("unexpected %q", rest)
		}
	}
}

// pgAttach reads "parent ATTACH PARTITION child FOR VALUES ...;" (or
// "... child DEFAULT;") into the two qualified names.
func pgAttach(s string) (parent, child string, err error) {
	ps, pn, rest, err := pgQualifiedPrefix(s)
	if err != nil {
		return "", "", err
	}
	rest, ok := strings.CutPrefix(rest, " ATTACH PARTITION ")
	if !ok {
		return "", "", fmt.Errorf("unexpected %q", rest)
	}
	cs, cn, rest, err := pgQualifiedPrefix(rest)
	if err != nil {
		return "", "", err
	}
	if !strings.HasPrefix(rest, " FOR VALUES ") && rest != " DEFAULT;" {
		return "", "", fmt.Errorf("no FOR VALUES or DEFAULT after the partition %s.%s", cs, cn)
	}
	return ps + "." + pn, cs + "." + cn, nil
}

// pgIdent reads a leading identifier, "quoted" or bare.
func pgIdent(s string) (name, rest string, err error) {
	if !strings.HasPrefix(s, `"`) {
		end := strings.IndexAny(s, " .(),;")
		if end < 0 {
			end = len(s)
		}
		if end == 0 {
			return "", s, errors.New("no identifier")
		}
		return s[:end], s[end:], nil
	}
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		if s[i] == '"' {
			if i+1 < len(s) && s[i+1] == '"' {
				b.WriteByte('"')
				i++
				continue
			}
			return b.String(), s[i+1:], nil
		}
		b.WriteByte(s[i])
	}
	return "", s, errors.New("unterminated quoted identifier")
}

// pgQualified splits schema.name.
func pgQualified(s string) (schema, name string, err error) {
	schema, name, rest, err := pgQualifiedPrefix(s)
	if err == nil && rest != "" {
		err = fmt.Errorf("unexpected %q", rest)
	}
	return schema, name, err
}

// pgQualifiedPrefix reads a leading [schema.]name and returns the rest.
func pgQualifiedPrefix(s string) (schema, name, rest string, err error) {
	schema, rest, err = pgIdent(s)
	if err != nil {
		return "", "", "", err
	}
	if !strings.HasPrefix(rest, ".") {
		return "public", schema, rest, nil
	}
	name, rest, err = pgIdent(rest[1:])
	return schema, name, rest, err
}

// planPG plans every table of a database. A partition takes the rules of
// the partitioned table at its root (pg_dump writes its rows in a COPY
// block of its own): rules written for a partition itself are an error,
// as they would silently not apply to its siblings. A table inheriting
// from others (INHERITS) takes their rules for the columns it inherits
// (so a parent's PII rules cover its children's rows) and its own on top.
func (c *Config) planPG(tables map[string]*pgTable) (map[string]*tablePlan, error) {
	plans := map[string]*tablePlan{}
	for _, key := range slices.Sorted(maps.Keys(tables)) {
		t := tables[key]
		r := t.root()
		if r != t {
			for _, k := range []string{t.name, key} {
				if _, ok := c.user[k]; ok {
					return nil, rulesErrorf("sanitize.rules: table %q is a partition of %s: write its rules for %s (they apply to every partition)", k, r.key(), r.key())
				}
			}
		}
		// Whose rules: a partition its root's; a child table (INHERITS)
		// its ancestors' for the columns it inherits, its own on top.
		srcs, of := [][2]string{{r.schema, r.name}}, ""
		if r != t {
			of = "partition of " + r.key()
		} else if anc := t.ancestors(); len(anc) > 0 {
			srcs = srcs[:0]
			for _, a := range anc {
				srcs = append(srcs, [2]string{a.schema, a.name})
			}
			srcs = append(srcs, [2]string{t.schema, t.name})
			names := make([]string, len(t.inherits))
			for i, a := range t.inherits {
				names[i] = a.key()
			}
			of = "inherits " + strings.Join(names, ", ")
		}
		p, err := c.planFrom(t.schema, t.name, of, srcs, t.cols)
		if err != nil {
			return nil, err
		}
		plans[key] = p
	}
	return plans, nil
}

// pgColumn maps a column definition (type and modifiers) to the column
// facts rules are checked against.
func pgColumn(name, def string) *column {
	c := &column{name: name, nullable: !strings.Contains(def, " NOT NULL") && !strings.HasPrefix(def, "NOT NULL")}
	typ := def
	for _, stop := range []string{" NOT NULL", " DEFAULT ", " COLLATE ", " GENERATED ", " NULL"} {
		if i := strings.Index(typ, stop); i >= 0 {
			typ = typ[:i]
		}
	}
	typ = strings.ToLower(strings.TrimSpace(typ))
	length := 0
	if open := strings.IndexByte(typ, '('); open > 0 && strings.HasSuffix(typ, ")") && !strings.HasSuffix(typ, "[]") {
		length, _ = strconv.Atoi(typ[open+1 : len(typ)-1])
		typ = typ[:open]
	}
	switch {
	case strings.HasSuffix(typ, "[]"):
		c.typ = "array"
	case typ == "character varying" || typ == "varchar":
		c.typ, c.max = "varchar", length
	case typ == "character" || typ == "char" || typ == "bpchar":
		c.typ, c.max = "char", max(length, 1)
	case typ == "text" || typ == "citext" || typ == "name":
		c.typ = "text"
	case typ == "integer" || typ == "int" || typ == "int4":
		c.typ = "int"
	case typ == "bigint" || typ == "smallint" || typ == "numeric" || typ == "real" || typ == "decimal":
		c.typ = typ
	case typ == "double precision":
		c.typ = "double"
	case typ == "date":
		c.typ = "date"
	case strings.HasPrefix(typ, "timestamp"):
		c.typ = "timestamp"
	case strings.HasPrefix(typ, "time"):
		c.typ = "time"
	case typ == "inet" || typ == "cidr":
		c.typ = "inet"
	case typ == "json" || typ == "jsonb":
		c.typ = "pg" + typ // not text: a fake is no JSON
	default:
		c.typ = "pg:" + typ // boolean, bytea, uuid, ...: no text rules
	}
	return c
}

// exportPostgres is Export for a postgres snapshot.
func exportPostgres(ctx context.Context, s snapshot.Reader, c *Config, o ExportOptions, w io.Writer) (*ExportStats, error) {
	if len(o.Rename) > 0 {
		return nil, rulesErrorf("--rename does not apply to a PostgreSQL export: it loads into the database psql connects to")
	}
	sn := s.Info()
	dbs, err := readPGTree(ctx, s)
	if err != nil {
		return nil, err
	}
	if len(o.Databases) > 0 {
		dbs = slices.DeleteFunc(dbs, func(d *postgres.Database) bool { return !slices.Contains(o.Databases, d.Name) })
		for _, want := range o.Databases {
			if !slices.ContainsFunc(dbs, func(d *postgres.Database) bool { return d.Name == want }) {
				return nil, rulesErrorf("database %q is not in snapshot %s", want, sn.ID.Short())
			}
		}
	}
	if len(dbs) != 1 {
		var names []string
		for _, d := range dbs {
			names = append(names, d.Name)
		}
		return nil, rulesErrorf("snapshot %s holds %d databases (%s): export one at a time (--database)", sn.ID.Short(), len(dbs), strings.Join(names, ", "))
	}
	d := dbs[0]
	bin, err := postgres.Binary(o.PGBinDir, "pg_restore")
	if err != nil {
		return nil, err
	}
	tables, err := pgSchemas(ctx, s, bin, d)
	if err != nil {
		return nil, err
	}
	// Plan every table first: bad rules fail before a byte is written.
	plans, err := c.planPG(tables)
	if err != nil {
		return nil, err
	}
	for _, key := range slices.Sorted(maps.Keys(plans)) {
		if p := plans[key]; p.action == policies.TableSkip {
			return nil, rulesErrorf("%s: skip is not supported in PostgreSQL exports (its indexes and constraints stay): use truncate", p.qualified())
		}
	}
	if err := c.checkPGTables(d, tables); err != nil {
		return nil, err
	}
	now := sn.RecoveryPoint.Time
	if now.IsZero() {
		now = sn.Time
	}
	var args []string
	if restrictKey(bin) {
		// psql's \restrict key, random unless given: derived from the
		// sanitize key, so the same key gives the same export.
		f := &faker{key: c.key}
		args = append(args, "--restrict-key="+f.hashHex([]byte("restrict-key " + sn.ID.String()))[:32])
	}
	if !o.KeepDefiners {
		args = append(args, "--no-owner", "--no-privileges")
	}
	cw := &countWriter{w: w}
	bw := bufio.NewWriterSize(cw, 256<<10)
	stats := map[string]*TableStats{}
	var order []*TableStats
	err = runPipeline(ctx, o.Jobs, o.ChunkBytes, c.key, bw, func(p *pipeline) error {
		fmt.Fprintf(p, "-- lifeboat sanitized export of snapshot %s (target %s, database %s, recovery point %s)\n",
			sn.ID.Short(), sn.Target, d.Name, now.UTC().Format(time.RFC3339))
		fmt.Fprintf(p, "-- Load with: createdb DB && psql -v ON_ERROR_STOP=1 -d DB -f this file\n\n")
		// A table archive's items other than the table's data, indexes
		// and constraints (foreign keys, triggers, ...) go after the
		// post-data archive, as restore does (postgres.SplitTOC).
		export := func(what string, in io.ReadCloser, list []byte) error {
			pargs := args
			if list != nil {
				arg, remove, err := postgres.UseList("", list)
				if err != nil {
					in.Close()
					return fmt.Errorf("%s: %w", what, err)
				}
				defer remove()
				pargs = append(slices.Clone(args), arg)
			}
			proc, err := startPGRestoreFrom(ctx, in, what, bin, pargs...)
			if err != nil {
				return err
			}
			err = pgStream(p, proc.out, d.Name, plans, now, func(key string, t *tablePlan) *TableStats {
				if stats[key] == nil {
					ts := &TableStats{Database: d.Name, Table: key, Action: t.action}
					if t.action == "" && t.where != nil {
						ts.Action = "where"
					}
					stats[key] = ts
					order = append(order, ts)
				}
				return stats[key]
			})
			if err != nil {
				proc.cmd.Process.Kill()
				if werr := proc.wait(); werr != nil && !errors.Is(err, context.Canceled) {
					return fmt.Errorf("%w (%v)", err, werr)
				}
				return err
			}
			return proc.wait()
		}
		tocs := map[*snapshot.Node]*postgres.TableTOC{}
		for _, n := range d.Archives() {
			in := s.Open(ctx, n)
			var list []byte
			if slices.Contains(d.Tables, n) {
				toc, err := postgres.ReadTableTOC(ctx, bin, in)
				if err != nil {
					in.Close()
					return fmt.Errorf("%s: %w", n.Path, err)
				}
				tocs[n], list = toc, toc.Now
				in = readCloser{io.MultiReader(bytes.NewReader(toc.Head), in), in}
			}
			if err := export(n.Path, in, list); err != nil {
				return err
			}
		}
		for _, n := range d.Tables {
			if toc := tocs[n]; len(toc.Later) > 0 {
				if err := export(n.Path, io.NopCloser(bytes.NewReader(toc.Head)), toc.Later); err != nil {
					return err
				}
			}
		}
		p.WriteString("\n-- end of export\n")
		return nil
	})
	if err != nil {
		return nil, err
	}
	if err := bw.Flush(); err != nil {
		return nil, err
	}
	st := &ExportStats{Bytes: cw.n}
	for _, ts := range order {
		st.Tables = append(st.Tables, *ts)
	}
	return st, nil
}

// checkPGTables: every table the policy's rules name (TABLE or
// SCHEMA.TABLE) must be in the database.
func (c *Config) checkPGTables(d *postgres.Database, tables map[string]*pgTable) error {
	for _, k := range c.userTables() {
		found := false
		for _, t := range tables {
			found = found || k == t.name || k == t.schema+"."+t.name
		}
		if !found {
			return rulesErrorf("sanitize.rules: table %q is not in database %q of the snapshot (write TABLE or SCHEMA.TABLE)", k, d.Name)
		}
	}
	return nil
}

// lintPostgres is Lint for a postgres snapshot: names from the CREATE
// TABLEs, content from the first rows of each COPY block (pg_restore
// --data-only reads every archive once).
func lintPostgres(ctx context.Context, s snapshot.Reader, c *Config, o LintOptions) ([]Finding, error) {
	dbs, err := readPGTree(ctx, s)
	if err != nil {
		return nil, err
	}
	bin, err := postgres.Binary(o.PGBinDir, "pg_restore")
	if err != nil {
		return nil, err
	}
	var out []Finding
	for _, d := range dbs {
		tables, err := pgSchemas(ctx, s, bin, d)
		if err != nil {
			return nil, err
		}
		if len(dbs) == 1 {
			if err := c.checkPGTables(d, tables); err != nil {
				return nil, err
			}
		}
		keys := slices.Sorted(maps.Keys(tables))
		plans, err := c.planPG(tables)
		if err != nil {
			return nil, err
		}
		samplers := map[string]*sampler{}
		for _, key := range keys {
			t := tables[key]
			if plans[key].action != "" || t.parent != nil {
				continue // a partition's names are its partitioned table's
			}
			fs, _ := nameFindings(d.Name, key, t.cols, plans[key].rule)
			out = append(out, fs...)
		}
		for _, n := range d.Archives() {
			proc, err := startPGRestore(ctx, s, bin, n, "--data-only")
			if err != nil {
				return nil, err
			}
			err = samplePG(proc.out, o.SampleRows, func(key string, cols []string) (*sampler, error) {
				p := plans[key]
				if p == nil {
					return nil, noCreateTable(d.Name, key)
				}
				if p.action != "" {
					return nil, nil
				}
				samplers[key] = newSampler(cols)
				return samplers[key], nil
			})
			if werr := proc.wait(); err == nil {
				err = werr
			}
			if err != nil {
				return nil, err
			}
		}
		for _, key := range keys {
			sm := samplers[key]
			if sm == nil {
				continue
			}
			t, p := tables[key], plans[key]
			tr := p.rule // a partition's are its root's, a child's include its ancestors'
			_, flagged := nameFindings(d.Name, key, t.cols, tr)
			out = append(out, sm.findings(d.Name, key, func(col string) bool {
				_, ruled := tr.Columns[col]
				cc := p.byName[col]
				return ruled || flagged[col] || cc != nil && !cc.textLike()
			})...)
		}
	}
	return out, nil
}

// noCreateTable: COPY data for a table the schema does not create (no
// rules could be planned for it, so its rows would leave unsanitized).
func noCreateTable(db, key string) error {
	return rulesErrorf("database %q: %s has COPY data but no CREATE TABLE in the snapshot's schema: refusing to export its rows unsanitized", db, key)
}

// samplePG feeds the first n rows of each COPY block of pg_restore's
// output to the sampler that start returns (nil: not sampled).
func samplePG(out io.Reader, n int, start func(key string, cols []string) (*sampler, error)) error {
	br := bufio.NewReaderSize(out, 256<<10)
	var sm *sampler
	rows := 0
	var fields [][]byte
	for {
		line, err := br.ReadBytes('\n')
		if len(line) == 0 {
			if err == io.EOF {
				return nil
			}
			return err
		}
		switch {
		case sm == nil && rows < 0:
			if string(line) == "\\.\n" {
				rows = 0
			}
		case sm != nil:
			if string(line) == "\\.\n" {
				sm, rows = nil, 0
				continue
			}
			if rows >= n {
				continue
			}
			rows++
			fields = fields[:0]
			for _, f := range bytes.Split(bytes.TrimSuffix(line, []byte{'\n'}), []byte{'\t'}) {
				v, _ := pgDecode(f, nil)
				fields = append(fields, v)
			}
			sm.add(fields)
		default:
			if schema, name, cols, ok := parseCopyHeader(line); ok {
				var serr error
				if sm, serr = start(schema+"."+name, cols); serr != nil {
					return serr
				}
				if sm == nil {
					rows = -1 // skip the block
				}
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// pgStream copies pg_restore's output to the pipeline, sending the rows
// of each COPY block through the table's rules.
func pgStream(p *pipeline, out io.Reader, db string, plans map[string]*tablePlan, now time.Time, stats func(string, *tablePlan) *TableStats) error {
	br := bufio.NewReaderSize(out, 256<<10)
	var long []byte
	for {
		line, err := br.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			long = append(long[:0], line...)
			for err == bufio.ErrBufferFull {
				line, err = br.ReadSlice('\n')
				long = append(long, line...)
			}
			line = long
		}
		if err != nil && err != io.EOF {
			return err
		}
		if len(line) == 0 {
			return nil
		}
		schema, name, cols, ok := parseCopyHeader(line)
		key := schema + "." + name
		t := plans[key]
		if ok && t == nil {
			return noCreateTable(db, key)
		}
		if !ok {
			if _, werr := p.Write(line); werr != nil {
				return werr
			}
			if err == io.EOF {
				return nil
			}
			continue
		}
		ts := stats(key, t)
		rd, err := newCopyRenderer(t, cols, now)
		if err != nil {
			return err
		}
		data := &copyReader{br: br, atStart: true}
		if t.action == policies.TableTruncate {
			_, err := io.Copy(io.Discard, data)
			if err != nil {
				return fmt.Errorf("export %s: %w", t.qualified(), err)
			}
			continue
		}
		p.Write(line)
		if err := p.data(data, rd, ts, "export "+t.qualified()); err != nil {
			return err
		}
		p.WriteString("\\.\n")
	}
}

// parseCopyHeader reads `COPY schema.table (a, b) FROM stdin;`.
func parseCopyHeader(line []byte) (schema, name string, cols []string, ok bool) {
	s, found := strings.CutPrefix(string(line), "COPY ")
	if !found || !strings.HasSuffix(s, " FROM stdin;\n") {
		return "", "", nil, false
	}
	s = strings.TrimSuffix(s, " FROM stdin;\n")
	open := strings.Index(s, " (")
	if open < 0 || !strings.HasSuffix(s, ")") {
		return "", "", nil, false
	}
	schema, name, err := pgQualified(s[:open])
	if err != nil {
		return "", "", nil, false
	}
	rest := s[open+2 : len(s)-1]
	for rest != "" {
		col, after, err := pgIdent(rest)
		if err != nil {
			return "", "", nil, false
		}
		cols = append(cols, col)
		rest = strings.TrimPrefix(after, ", ")
		if rest == after && rest != "" {
			return "", "", nil, false
		}
	}
	return schema, name, cols, true
}

// copyReader reads a COPY block's rows up to (not including) its \.
// line, which it consumes.
type copyReader struct {
	br      *bufio.Reader
	pending []byte
	atStart bool
	done    bool
}

func (c *copyReader) Read(p []byte) (int, error) {
	for len(c.pending) == 0 {
		if c.done {
			return 0, io.EOF
		}
		line, err := c.br.ReadSlice('\n')
		if c.atStart && string(line) == "\\.\n" {
			c.done = true
			return 0, io.EOF
		}
		switch {
		case err == bufio.ErrBufferFull:
			c.atStart = false
		case err == io.EOF:
			return 0, errors.New(`COPY data ends without its \. line`)
		case err != nil:
			return 0, err
		default:
			c.atStart = true
		}
		c.pending = line
	}
	n := copy(p, c.pending)
	c.pending = c.pending[n:]
	return n, nil
}

// copyRenderer sanitizes rows of COPY text format. Fields without a rule
// pass through as they are.
type copyRenderer struct {
	ncols int
	cols  []*column
	rules []*Rule
	where *where
	idx   map[string]int
	now   time.Time
}

func newCopyRenderer(t *tablePlan, names []string, now time.Time) (*copyRenderer, error) {
	rd := &copyRenderer{ncols: len(names), cols: make([]*column, len(names)), rules: make([]*Rule, len(names)), idx: map[string]int{}, now: now}
	for i, h := range names {
		rd.idx[h] = i
		col := t.byName[h]
		if col == nil {
			col = &column{name: h, typ: "text", nullable: true}
		}
		rd.cols[i] = col
		if r, ok := t.rules[h]; ok {
			rd.rules[i] = &r
		}
	}
	if t.where != nil {
		for name := range t.where.cols {
			if _, ok := rd.idx[name]; !ok {
				return nil, rulesErrorf("%s: where uses column %q, which is not in the data (generated)", t.qualified(), name)
			}
		}
		rd.where = t.where
	}
	return rd, nil
}

func (t *copyRenderer) render(f *faker, in []byte, first int64, out []byte) ([]byte, int64, int64, error) {
	var ev *env
	if t.where != nil {
		ev = &env{cols: t.idx, now: t.now}
	}
	raw := make([][]byte, 0, t.ncols)
	row := make([][]byte, t.ncols)
	var arena []byte
	var read, written int64
	for len(in) > 0 {
		nl := bytes.IndexByte(in, '\n')
		line := in[:nl]
		in = in[nl+1:]
		raw = raw[:0]
		for {
			i := bytes.IndexByte(line, '\t')
			if i < 0 {
				raw = append(raw, line)
				break
			}
			raw = append(raw, line[:i])
			line = line[i+1:]
		}
		if len(raw) != t.ncols {
			return out, read, written, fmt.Errorf("row %d has %d fields, the COPY header %d", first+read, len(raw), t.ncols)
		}
		read++
		arena = arena[:0]
		if ev != nil {
			for i, v := range raw {
				row[i], arena = pgDecode(v, arena)
			}
			ev.row = row
			if !truthy(t.where.x.eval(ev)) {
				continue
			}
		}
		for i, v := range raw {
			if i > 0 {
				out = append(out, '\t')
			}
			r := t.rules[i]
			if r == nil {
				out = append(out, v...)
				continue
			}
			var orig []byte
			orig, arena = pgDecode(v, arena)
			out = appendCopyField(out, f.apply(r, t.cols[i], orig))
		}
		out = append(out, '\n')
		written++
	}
	return out, read, written, nil
}

// pgDecode decodes a COPY text field into arena (nil for \N).
func pgDecode(v, arena []byte) ([]byte, []byte) {
	if len(v) == 2 && v[0] == '\\' && v[1] == 'N' {
		return nil, arena
	}
	if bytes.IndexByte(v, '\\') < 0 {
		return v, arena
	}
	from := len(arena)
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c != '\\' || i+1 == len(v) {
			arena = append(arena, c)
			continue
		}
		i++
		switch e := v[i]; {
		case e == 'b':
			arena = append(arena, '\b')
		case e == 'f':
			arena = append(arena, '\f')
		case e == 'n':
			arena = append(arena, '\n')
		case e == 'r':
			arena = append(arena, '\r')
		case e == 't':
			arena = append(arena, '\t')
		case e == 'v':
			arena = append(arena, '\v')
		case e >= '0' && e <= '7':
			n := 0
			j := i
			for ; j < len(v) && j < i+3 && v[j] >= '0' && v[j] <= '7'; j++ {
				n = n*8 + int(v[j]-'0')
			}
			arena = append(arena, byte(n))
			i = j - 1
		case e == 'x' && i+1 < len(v) && isHex(v[i+1]):
			n := 0
			j := i + 1
			for ; j < len(v) && j < i+3 && isHex(v[j]); j++ {
				n = n*16 + hexVal(v[j])
			}
			arena = append(arena, byte(n))
			i = j - 1
		default:
			arena = append(arena, e)
		}
	}
	return arena[from:len(arena):len(arena)], arena
}

func isHex(c byte) bool { return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F' }

func hexVal(c byte) int {
	switch {
	case c >= 'a':
		return int(c-'a') + 10
	case c >= 'A':
		return int(c-'A') + 10
	}
	return int(c - '0')
}

// appendCopyField appends v in COPY text format (nil is \N).
func appendCopyField(dst, v []byte) []byte {
	if v == nil {
		return append(dst, '\\', 'N')
	}
	for _, c := range v {
		switch c {
		case '\\':
			dst = append(dst, '\\', '\\')
		case '\n':
			dst = append(dst, '\\', 'n')
		case '\r':
			dst = append(dst, '\\', 'r')
		case '\t':
			dst = append(dst, '\\', 't')
		default:
			dst = append(dst, c)
		}
	}
	return dst
}
