package mysql

import (
	"context"
	"database/sql"
	sqldriver "database/sql/driver"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"

	driver "github.com/go-sql-driver/mysql"
)

const (
	// readBatch is how many bytes of encoded rows travel at a time.
	readBatch = 256 << 10
	// partQueue is how many batches a range reader prepares ahead of the
	// stream; with the batch in hand and the one being filled, a range
	// reader holds at most (partQueue+2) x readBatch.
	partQueue = 2
	// maxParts bounds the ranges of one table.
	maxParts = 256
)

var batchPool = sync.Pool{New: func() any { b := make([]byte, 0, readBatch+64<<10); return &b }}

// putBatch pools a batch buffer unless a huge row made it grow.
func putBatch(b *[]byte) {
	if cap(*b) <= 4*readBatch {
		batchPool.Put(b)
	}
}

// openTable starts streaming a table from the workers' snapshot
// transactions. A table is read in parts (primary-key ranges, or one part
// for the whole table); each part is read by one worker connection, parts
// in parallel when connections are free, and the stream takes the parts
// in key order. Connections return to the workers as their parts end.
func (d *dump) openTable(ctx context.Context, t *table) (io.ReadCloser, error) {
	var c *sql.Conn
	select {
	case c = <-d.workers:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	parts, err := d.parts(ctx, c, t)
	if err != nil {
		d.workers <- c
		return nil, t.readError(err)
	}
	header := make([][]byte, len(t.columns))
	for i, n := range t.columns {
		header[i] = []byte(n)
	}
	r := &tableReader{d: d, t: t, queries: parts, parts: make([]chan batch, len(parts))}
	for i := range r.parts {
		r.parts[i] = make(chan batch, partQueue)
	}
	r.ctx, r.cancel = context.WithCancel(ctx)
	r.buf = AppendRow(nil, header)
	r.claimed = 1
	r.start(c, 0)
	r.grow()
	return r, nil
}

// parts returns the SELECT of each part of t, in key order: one for the
// whole table unless it is big and its primary key starts with an integer
// column, whose values are then cut into ranges (with a composite key,
// rows sharing the first column's value stay in one part). Each part is
// read in primary-key order.
func (d *dump) parts(ctx context.Context, c *sql.Conn, t *table) ([]string, error) {
	cols := make([]string, len(t.columns))
	for i, n := range t.columns {
		cols[i] = QuoteName(n)
	}
	from := "SELECT " + strings.Join(cols, ", ") + " FROM " + QuoteName(t.db) + "." + QuoteName(t.name)
	split := d.s.opts.SplitBytes
	if split < 0 || t.size <= split || !strings.EqualFold(t.engine, "InnoDB") {
		return []string{from}, nil
	}
	pk, err := queryStrings(ctx, c, `SELECT COLUMN_NAME FROM information_schema.STATISTICS
		WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? AND INDEX_NAME = 'PRIMARY' ORDER BY SEQ_IN_INDEX`, t.db, t.name)
	if err != nil {
		return nil, fmt.Errorf("primary key: %w", err)
	}
	if len(pk) == 0 {
		return []string{from}, nil
	}
	var typ string
	if err := c.QueryRowContext(ctx, `SELECT DATA_TYPE FROM information_schema.COLUMNS
		WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? AND COLUMN_NAME = ?`, t.db, t.name, pk[0]).Scan(&typ); err != nil {
		return nil, fmt.Errorf("primary key: %w", err)
	}
	switch strings.ToLower(typ) {
	case "tinyint", "smallint", "mediumint", "int", "bigint":
	default:
		return []string{from}, nil
	}
	key := QuoteName(pk[0])
	// MIN and MAX from the snapshot (the connection's transaction).
	var lo, hi sql.NullString
	if err := c.QueryRowContext(ctx, "SELECT MIN("+key+"), MAX("+key+") FROM "+QuoteName(t.db)+"."+QuoteName(t.name)).Scan(&lo, &hi); err != nil {
		return nil, err
	}
	bounds := splitRange(lo.String, hi.String, min((t.size+split-1)/split, maxParts))
	if bounds == nil {
		return []string{from}, nil
	}
	from += " FORCE INDEX (PRIMARY)"
	keys := make([]string, len(pk))
	for i, k := range pk {
		keys[i] = QuoteName(k)
	}
	order := " ORDER BY " + strings.Join(keys, ", ")
	out := make([]string, 0, len(bounds)+1)
	out = append(out, from+" WHERE "+key+" < "+bounds[0]+order)
	for i := 1; i < len(bounds); i++ {
		out = append(out, from+" WHERE "+key+" >= "+bounds[i-1]+" AND "+key+" < "+bounds[i]+order)
	}
	return append(out, from+" WHERE "+key+" >= "+bounds[len(bounds)-1]+order), nil
}

// splitRange returns the n-1 inner boundaries cutting [lo, hi] into n
// ranges of equal width, or nil when it cannot be split (empty table,
// values beyond int64, fewer values than ranges).
func splitRange(lo, hi string, n int64) []string {
	a, err1 := strconv.ParseInt(lo, 10, 64)
	b, err2 := strconv.ParseInt(hi, 10, 64)
	if err1 != nil || err2 != nil || b < a || n < 2 {
		return nil
	}
	span := uint64(b) - uint64(a) // the width, also when it exceeds MaxInt64
	if span < uint64(n)-1 {       // fewer values than ranges
		return nil
	}
	step := span/uint64(n) + 1
	out := make([]string, 0, n-1)
	for k := uint64(1); k < uint64(n); k++ {
		v := int64(uint64(a) + k*step)
		if v > b {
			break
		}
		out = append(out, strconv.FormatInt(v, 10))
	}
	return out
}

// batch is encoded rows of one part, or the error that ended it.
type batch struct {
	buf *[]byte
	err error
}

type tableReader struct {
	d       *dump
	t       *table
	queries []string
	parts   []chan batch // closed when the part has been read
	ctx     context.Context
	cancel  context.CancelFunc

	mu      sync.Mutex
	claimed int // parts handed to a range reader so far
	wg      sync.WaitGroup

	// the stream's side
	cur  int     // part being read
	held *[]byte // pooled batch behind buf
	buf  []byte
	off  int
	err  error
}

// start runs a range reader on c: it reads part first, then the next
// unclaimed parts in order until none are left, then returns c to the
// workers.
func (r *tableReader) start(c *sql.Conn, first int) {
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		defer func() { r.d.workers <- c }()
		for i := first; i >= 0; i = r.claim() {
			if !r.readPart(c, i) {
				return
			}
			r.grow()
		}
	}()
}

// claim hands out the next unread part (-1: none left).
func (r *tableReader) claim() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.claimed == len(r.parts) {
		return -1
	}
	r.claimed++
	return r.claimed - 1
}

// grow starts a range reader on each free worker connection while parts
// are left unclaimed (never waiting for one: the connections other
// tables' readers hold come back on their own).
func (r *tableReader) grow() {
	for r.ctx.Err() == nil {
		r.mu.Lock()
		if r.claimed == len(r.parts) {
			r.mu.Unlock()
			return
		}
		select {
		case c := <-r.d.workers:
			r.claimed++
			i := r.claimed - 1
			r.mu.Unlock()
			r.start(c, i)
		default:
			r.mu.Unlock()
			return
		}
	}
}

// readPart streams part i into its channel; false when it failed or the
// reader was closed.
func (r *tableReader) readPart(c *sql.Conn, i int) bool {
	send := func(b batch) bool {
		select {
		case r.parts[i] <- b:
			return true
		case <-r.ctx.Done():
			if b.buf != nil {
				putBatch(b.buf)
			}
			return false
		}
	}
	buf := batchPool.Get().(*[]byte)
	*buf = (*buf)[:0]
	sent := true
	err := c.Raw(func(dc any) (err error) {
		rows, done, err := r.query(dc, r.queries[i])
		if err != nil {
			return err
		}
		defer func() { err = done(err) }()
		for {
			if *buf, err = rows.appendRow(*buf); err == io.EOF {
				return nil
			} else if err != nil {
				return err
			}
			if len(*buf) >= readBatch {
				if sent = send(batch{buf: buf}); !sent {
					return nil
				}
				buf = batchPool.Get().(*[]byte)
				*buf = (*buf)[:0]
			}
		}
	})
	if !sent {
		return false
	}
	if err != nil {
		putBatch(buf)
		send(batch{err: r.t.readError(err)})
		return false
	}
	if len(*buf) > 0 {
		if !send(batch{buf: buf}) {
			return false
		}
	} else {
		putBatch(buf)
	}
	close(r.parts[i])
	return true
}

// rowSource yields the rows of a query in the text format.
type rowSource interface {
	// appendRow appends the next row to dst; io.EOF after the last.
	appendRow(dst []byte) ([]byte, error)
}

// query runs q on the driver connection dc: on the wire when it can (see
// wire.go), else through the driver's own rows (not database/sql's Scan:
// no per-value conversion and locking). done ends the query and returns
// the error to report: one that leaves the connection out of step with
// the server makes database/sql discard it.
func (r *tableReader) query(dc any, q string) (rows rowSource, done func(error) error, err error) {
	if w, ok := newWireConn(dc, r.d.s.cfg); ok {
		// A cancel unblocks the reads; the connection is then unusable.
		stop := context.AfterFunc(r.ctx, func() { _ = w.conn.SetDeadline(time.Unix(1, 0)) })
		wr, err := w.query(q, len(r.t.columns))
		done := func(err error) error {
			w.release()
			if !stop() {
				return badConn{errors.Join(r.ctx.Err(), err)}
			}
			if err == nil && !wr.done { // left before the end
				return badConn{errors.New("query ended before its last row")}
			}
			return err
		}
		if err != nil {
			return nil, nil, done(err)
		}
		return wr, done, nil
	}
	qc, ok := dc.(sqldriver.QueryerContext)
	if !ok {
		return nil, nil, fmt.Errorf("driver connection %T cannot query", dc)
	}
	dr, err := qc.QueryContext(r.ctx, q, nil)
	if err != nil {
		return nil, nil, err
	}
	return newRowFormatter(dr, len(r.t.columns)), func(err error) error { dr.Close(); return err }, nil
}

// rowFormatter turns the driver's values back into the server's text: the
// text protocol sends every value as text, and the driver parses integers
// and floats; they are formatted again as the server would print them
// (YEAR with four digits: "0" would load as 2000).
type rowFormatter struct {
	rows    sqldriver.Rows
	dest    []sqldriver.Value
	row     [][]byte
	year    []bool
	scratch []byte
}

// maxNumberText bounds the text of one formatted number.
const maxNumberText = 32

func newRowFormatter(rows sqldriver.Rows, n int) *rowFormatter {
	f := &rowFormatter{rows: rows, dest: make([]sqldriver.Value, n), row: make([][]byte, n), year: make([]bool, n),
		scratch: make([]byte, 0, n*maxNumberText)}
	if t, ok := rows.(sqldriver.RowsColumnTypeDatabaseTypeName); ok {
		for k := range f.year {
			f.year[k] = t.ColumnTypeDatabaseTypeName(k) == "YEAR"
		}
	}
	return f
}

// next returns the next row (nil for NULL); valid until the next call.
func (f *rowFormatter) next() ([][]byte, error) {
	if err := f.rows.Next(f.dest); err != nil {
		return nil, err
	}
	// scratch has room for every column's number: its slices stay valid.
	f.scratch = f.scratch[:0]
	for k, v := range f.dest {
		start := len(f.scratch)
		switch v := v.(type) {
		case nil:
			f.row[k] = nil
			continue
		case []byte:
			f.row[k] = v
			continue
		case int64:
			if f.year[k] && v >= 0 && v < 10 {
				f.scratch = append(f.scratch, "000"...)
			}
			f.scratch = strconv.AppendInt(f.scratch, v, 10)
		case uint64:
			f.scratch = strconv.AppendUint(f.scratch, v, 10)
		case float32:
			f.scratch = strconv.AppendFloat(f.scratch, float64(v), 'g', -1, 32)
		case float64:
			f.scratch = strconv.AppendFloat(f.scratch, v, 'g', -1, 64)
		default:
			return nil, fmt.Errorf("column %d: unexpected %T from the driver", k+1, v)
		}
		f.row[k] = f.scratch[start:len(f.scratch):len(f.scratch)]
	}
	return f.row, nil
}

func (f *rowFormatter) appendRow(dst []byte) ([]byte, error) {
	row, err := f.next()
	if err != nil {
		return dst, err
	}
	return AppendRow(dst, row), nil
}

func (r *tableReader) Read(p []byte) (int, error) {
	for r.off == len(r.buf) {
		if r.held != nil {
			putBatch(r.held)
			r.held, r.buf, r.off = nil, nil, 0
		}
		if r.err != nil {
			return 0, r.err
		}
		if r.cur == len(r.parts) {
			return 0, io.EOF
		}
		select {
		case b, ok := <-r.parts[r.cur]:
			switch {
			case !ok:
				r.cur++
			case b.err != nil:
				r.err = b.err
			default:
				r.held, r.buf, r.off = b.buf, *b.buf, 0
			}
		case <-r.ctx.Done():
			r.err = r.ctx.Err()
		}
	}
	n := copy(p, r.buf[r.off:])
	r.off += n
	return n, nil
}

// Close stops the range readers (a table closed before its end fails the
// dump anyway) and waits for them to give their connections back.
func (r *tableReader) Close() error {
	r.cancel()
	r.wg.Wait()
	if r.held != nil {
		putBatch(r.held)
		r.held, r.buf = nil, nil
	}
	return nil
}

// readError names the table, and says what happened when DDL hit it after
// the snapshot point: dropped (1146) or changed (1412: altered, truncated,
// dropped and created again).
func (t *table) readError(err error) error {
	name := QuoteName(t.db) + "." + QuoteName(t.name)
	var me *driver.MySQLError
	if errors.As(err, &me) {
		switch me.Number {
		case 1146:
			return fmt.Errorf("dump %s: the table was dropped during the dump; run the backup again: %w", name, err)
		case 1412:
			return fmt.Errorf("dump %s: the table was altered, truncated or re-created during the dump; run the backup again: %w", name, err)
		}
	}
	return fmt.Errorf("dump %s: %w", name, err)
}
