package sanitize

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/lifeboat-backup/lifeboat/engine/snapshot"
	"github.com/lifeboat-backup/lifeboat/targets/mysql"
)

// ExportOptions configure Export.
type ExportOptions struct {
	// Databases exports only these databases (names as stored).
	Databases []string
	// Rename maps stored database names to the names in the dump; views,
	// triggers and routines naming `old`. are rewritten.
	Rename map[string]string
	// KeepDefiners keeps DEFINER=... clauses (stripped by default: the
	// developer's server rarely has the production users).
	KeepDefiners bool
	// BatchBytes is the size an INSERT statement grows to (default 1 MiB).
	BatchBytes int
	// Jobs is the number of workers sanitizing and rendering rows
	// (default GOMAXPROCS). The output does not depend on it.
	Jobs int
	// ChunkBytes is the table data per work unit (default 1 MiB); a
	// chunk always ends an INSERT statement.
	ChunkBytes int
	// PGBinDir holds pg_restore for postgres snapshots (default: PATH).
	PGBinDir string
}

// TableStats are one table's numbers.
type TableStats struct {
	Database string `json:"database"`
	Table    string `json:"table"`
	Action   string `json:"action,omitempty"` // truncate, skip, where
	RowsRead int64  `json:"rows_read"`
	Rows     int64  `json:"rows"` // written
}

// ExportStats summarize an export.
type ExportStats struct {
	Tables  []TableStats `json:"tables"`
	Objects int          `json:"objects"`
	Bytes   int64        `json:"bytes"` // SQL bytes written (before compression)
}

// sessionSQL is the setup the dump loads under: strict, so a value that
// does not fit its column fails the load instead of being cut.
const sessionSQL = "SET SESSION sql_mode = 'STRICT_ALL_TABLES,NO_AUTO_VALUE_ON_ZERO,NO_ENGINE_SUBSTITUTION';\n" +
	"SET SESSION time_zone = '+00:00';\nSET SESSION foreign_key_checks = 0;\nSET SESSION unique_checks = 0;\n"

var reDefiner = regexp.MustCompile("DEFINER=(`[^`]*`|'[^']*'|[^ @]*)@(`[^`]*`|'[^']*'|[^ ]*) ")

// Export writes a sanitized SQL dump of a snapshot to w. For mysql: per
// database CREATE DATABASE and USE, each table's CREATE TABLE and its
// sanitized rows as batched INSERTs, then routines, views, triggers and
// events as stored (DELIMITER blocks). For postgres: see exportPostgres.
// Rows are sanitized by o.Jobs workers (pipeline.go); the output is the
// same whatever their number, and memory is bounded by the pipeline's
// queue. Rules are checked against the snapshot's tables before anything
// is written.
func Export(ctx context.Context, s snapshot.Reader, c *Config, o ExportOptions, w io.Writer) (*ExportStats, error) {
	if o.BatchBytes <= 0 {
		o.BatchBytes = 1 << 20
	}
	sn := s.Info()
	if sn.Kind == "postgres" {
		return exportPostgres(ctx, s, c, o, w)
	}
	dbs, err := readTree(ctx, s)
	if err != nil {
		return nil, err
	}
	if len(o.Databases) > 0 {
		var sel []*mysql.DB
		for _, want := range o.Databases {
			i := slices.IndexFunc(dbs, func(d *mysql.DB) bool { return d.Name == want })
			if i < 0 {
				return nil, rulesErrorf("database %q is not in snapshot %s", want, sn.ID.Short())
			}
			sel = append(sel, dbs[i])
		}
		dbs = sel
	}
	// Plan every table first: bad rules fail before a byte is written.
	plans := map[*mysql.DB]map[string]*tablePlan{}
	schemas := map[*mysql.DB]map[string]*mysql.Object{}
	for _, d := range dbs {
		plans[d], schemas[d] = map[string]*tablePlan{}, map[string]*mysql.Object{}
		for _, t := range d.Tables {
			obj, cols, err := tableSchema(ctx, s, d.Schema[t])
			if err != nil {
				return nil, err
			}
			p, err := c.plan(d.Name, t, cols)
			if err != nil {
				return nil, err
			}
			plans[d][t], schemas[d][t] = p, obj
		}
	}
	if err := c.checkTables(dbs); err != nil {
		return nil, err
	}
	cw := &countWriter{w: w}
	bw := bufio.NewWriterSize(cw, 256<<10)
	e := &exporter{ctx: ctx, s: s, o: o, now: sn.RecoveryPoint.Time}
	if e.now.IsZero() {
		e.now = sn.Time
	}
	err = runPipeline(ctx, o.Jobs, o.ChunkBytes, c.key, bw, func(p *pipeline) error {
		e.w = p
		fmt.Fprintf(p, "-- lifeboat sanitized export of snapshot %s (target %s, recovery point %s)\n", sn.ID.Short(), sn.Target,
			e.now.UTC().Format(time.RFC3339))
		fmt.Fprintf(p, "-- Load with: mariadb (or mysql) < this file\n\n")
		p.WriteString("SET NAMES utf8mb4;\n" + sessionSQL)
		for _, d := range dbs {
			if err := e.database(d, plans[d], schemas[d]); err != nil {
				return err
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
	st := &ExportStats{Bytes: cw.n, Objects: e.objects}
	for _, ts := range e.tables {
		st.Tables = append(st.Tables, *ts)
	}
	return st, nil
}

// checkTables: every table the policy's rules name (TABLE or DB.TABLE)
// must exist in the snapshot (a typo would leave data unsanitized).
func (c *Config) checkTables(dbs []*mysql.DB) error {
	for _, k := range c.userTables() {
		found := false
		for _, d := range dbs {
			if d.Schema[k] != nil || strings.HasPrefix(k, d.Name+".") && d.Schema[strings.TrimPrefix(k, d.Name+".")] != nil {
				found = true
				break
			}
		}
		if !found {
			return rulesErrorf("sanitize.rules: table %q is not in the snapshot (write TABLE or DATABASE.TABLE)", k)
		}
	}
	return nil
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

type exporter struct {
	ctx     context.Context
	s       snapshot.Reader
	w       *pipeline
	o       ExportOptions
	now     time.Time
	tables  []*TableStats // filled in by the pipeline's writer
	objects int
}

func (e *exporter) target(d *mysql.DB) string {
	if t, ok := e.o.Rename[d.Name]; ok && t != "" {
		return t
	}
	return d.Name
}

func (e *exporter) database(d *mysql.DB, plans map[string]*tablePlan, schemas map[string]*mysql.Object) error {
	target := e.target(d)
	text, err := snapshot.ReadNode(e.ctx, e.s, d.Create)
	if err != nil {
		return err
	}
	q := mysql.CreateDatabaseAs(target, text)
	fmt.Fprintf(e.w, "\n--\n-- Database %s\n--\n%s;\nUSE %s;\n", mysql.QuoteName(target), q, mysql.QuoteName(target))
	for _, t := range d.Tables {
		p := plans[t]
		ts := &TableStats{Database: d.Name, Table: t, Action: p.action}
		if p.action == "" && p.where != nil {
			ts.Action = "where"
		}
		e.tables = append(e.tables, ts)
		if p.action == "skip" {
			continue
		}
		o := schemas[t]
		fmt.Fprintf(e.w, "\n--\n-- Table %s\n--\nDROP TABLE IF EXISTS %s;\n", mysql.QuoteName(t), mysql.QuoteName(t))
		for _, s := range o.Setup {
			e.w.WriteString(s + ";\n")
		}
		e.w.WriteString(o.Stmt + ";\n")
		if len(o.Setup) > 0 {
			e.w.WriteString(sessionSQL)
		}
		if p.action != "truncate" && d.Data[t] != nil {
			if err := e.table(d, p, ts); err != nil {
				return fmt.Errorf("export %s.%s: %w", mysql.QuoteName(d.Name), mysql.QuoteName(t), err)
			}
		}
		if err := e.ctx.Err(); err != nil {
			return err
		}
	}
	// Routines first (views may call functions), views in dependency
	// order, then triggers and events.
	views, err := e.sortViews(d.Objects[mysql.SuffixView])
	if err != nil {
		return err
	}
	var objs []object
	read := func(suffix string) error {
		for _, n := range d.Objects[suffix] {
			name, _, _ := mysql.ParseEntryName(n.Path[strings.LastIndexByte(n.Path, '/')+1:])
			if suffix == mysql.SuffixTrigger && e.triggerOnSkipped(n, plans) {
				continue
			}
			b, err := snapshot.ReadNode(e.ctx, e.s, n)
			if err != nil {
				return err
			}
			objs = append(objs, object{kind: objectKinds[suffix], name: name, text: b})
		}
		return nil
	}
	for _, suffix := range []string{mysql.SuffixFunction, mysql.SuffixProcedure} {
		if err := read(suffix); err != nil {
			return err
		}
	}
	objs = append(objs, views...)
	for _, suffix := range []string{mysql.SuffixTrigger, mysql.SuffixEvent} {
		if err := read(suffix); err != nil {
			return err
		}
	}
	if len(objs) > 0 {
		e.w.WriteString("\nSET NAMES utf8mb4;\n")
	}
	for _, o := range objs {
		s := string(o.text)
		if !e.o.KeepDefiners {
			s = reDefiner.ReplaceAllString(s, "")
		}
		if target != d.Name {
			s = strings.ReplaceAll(s, mysql.QuoteName(d.Name)+".", mysql.QuoteName(target)+".")
		}
		// DROP first (after the object's header line): the dump loads
		// again into the same database.
		head, body, _ := strings.Cut(s, "\n")
		e.w.WriteString("\n" + head + "\nDROP " + o.kind + " IF EXISTS " + mysql.QuoteName(o.name) + ";\n" + body + sessionSQL)
		e.objects++
	}
	return nil
}

// object is a view, routine, trigger or event as stored.
type object struct {
	kind, name string // kind as in DROP kind IF EXISTS
	text       []byte
}

var objectKinds = map[string]string{mysql.SuffixFunction: "FUNCTION", mysql.SuffixProcedure: "PROCEDURE",
	mysql.SuffixView: "VIEW", mysql.SuffixTrigger: "TRIGGER", mysql.SuffixEvent: "EVENT"}

// triggerOnSkipped: a trigger of a skipped table is left out too.
func (e *exporter) triggerOnSkipped(n *snapshot.Node, plans map[string]*tablePlan) bool {
	b, err := snapshot.ReadNode(e.ctx, e.s, n)
	if err != nil {
		return false
	}
	o, err := mysql.ParseObject(b)
	if err != nil {
		return false
	}
	name, err := mysql.TriggerTable(o.Stmt)
	if err != nil {
		return false
	}
	p := plans[name]
	return p != nil && p.action == "skip"
}

// sortViews orders views so that a view comes after the views it names.
func (e *exporter) sortViews(nodes []*snapshot.Node) ([]object, error) {
	type view struct {
		name string
		text []byte
	}
	var vs []view
	for _, n := range nodes {
		b, err := snapshot.ReadNode(e.ctx, e.s, n)
		if err != nil {
			return nil, err
		}
		name, _, _ := mysql.ParseEntryName(n.Path[strings.LastIndexByte(n.Path, '/')+1:])
		vs = append(vs, view{name, b})
	}
	var out []object
	done := map[string]bool{}
	for len(vs) > 0 {
		var rest []view
		for _, v := range vs {
			ready := true
			for _, o := range vs {
				if o.name != v.name && !done[o.name] && strings.Contains(string(v.text[len("-- lifeboat mysql view ")+len(mysql.QuoteName(v.name)):]), mysql.QuoteName(o.name)) {
					ready = false
					break
				}
			}
			if ready {
				out = append(out, object{"VIEW", v.name, v.text})
				done[v.name] = true
			} else {
				rest = append(rest, v)
			}
		}
		if len(rest) == len(vs) { // a cycle (cannot happen in a server): keep the order
			for _, v := range rest {
				out = append(out, object{"VIEW", v.name, v.text})
			}
			break
		}
		vs = rest
	}
	return out, nil
}

// table queues one table's rows: filtered, sanitized, batched INSERTs
// rendered by the pipeline's workers.
func (e *exporter) table(d *mysql.DB, p *tablePlan, ts *TableStats) error {
	rc := e.s.Open(e.ctx, d.Data[p.name])
	defer rc.Close()
	br := bufio.NewReaderSize(rc, 256<<10)
	header, err := mysql.ReadHeader(br)
	if err != nil {
		return err
	}
	rd := &insertRenderer{ncols: len(header), cols: make([]*column, len(header)), lits: make([]litKind, len(header)),
		rules: make([]*Rule, len(header)), idx: map[string]int{}, now: e.now, batch: e.o.BatchBytes}
	var prefix strings.Builder
	prefix.WriteString("INSERT INTO " + mysql.QuoteName(p.name) + " (")
	for i, h := range header {
		rd.idx[h] = i
		col := p.byName[h]
		if col == nil {
			col = &column{name: h, typ: "text", nullable: true}
		}
		rd.cols[i], rd.lits[i] = col, col.litKind()
		if r, ok := p.rules[h]; ok {
			rd.rules[i] = &r
		}
		if i > 0 {
			prefix.WriteString(", ")
		}
		prefix.WriteString(mysql.QuoteName(h))
	}
	prefix.WriteString(") VALUES\n")
	rd.prefix = prefix.String()
	if p.where != nil {
		for name := range p.where.cols {
			if _, ok := rd.idx[name]; !ok {
				return rulesErrorf("%s: where uses column %q, which is generated (not stored)", p.qualified(), name)
			}
		}
		rd.where = p.where
	}
	e.w.WriteString("SET NAMES binary;\n")
	lax := slices.ContainsFunc(p.cols, func(c *column) bool { return c.typ == "enum" })
	if lax {
		// An ENUM's empty error value loads back only outside strict mode.
		// Sanitized values never go into ENUM columns, and they are fitted.
		e.w.WriteString("SET SESSION sql_mode = 'NO_AUTO_VALUE_ON_ZERO,NO_ENGINE_SUBSTITUTION';\n")
	}
	if err := e.w.data(br, rd, ts, fmt.Sprintf("export %s.%s", mysql.QuoteName(d.Name), mysql.QuoteName(p.name))); err != nil {
		return err
	}
	e.w.WriteString("SET NAMES utf8mb4;\n")
	if lax {
		e.w.WriteString(sessionSQL)
	}
	return nil
}
