package mysql

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"strings"

	driver "github.com/go-sql-driver/mysql"
)

// readBatch is how many bytes of encoded rows a table reader prepares at a
// time.
const readBatch = 256 << 10

// openTable starts streaming a table from a worker's snapshot
// transaction; the connection returns to the workers on Close.
func (d *dump) openTable(ctx context.Context, t *table) (io.ReadCloser, error) {
	var c *sql.Conn
	select {
	case c = <-d.workers:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	cols := make([]string, len(t.columns))
	for i, n := range t.columns {
		cols[i] = QuoteName(n)
	}
	q := "SELECT " + strings.Join(cols, ", ") + " FROM " + QuoteName(t.db) + "." + QuoteName(t.name)
	rows, err := c.QueryContext(ctx, q)
	if err != nil {
		d.workers <- c
		return nil, t.readError(err)
	}
	r := &tableReader{d: d, c: c, rows: rows, t: t, vals: make([]sql.RawBytes, len(cols))}
	r.dest = make([]any, len(cols))
	for i := range r.vals {
		r.dest[i] = &r.vals[i]
	}
	header := make([][]byte, len(t.columns))
	for i, n := range t.columns {
		header[i] = []byte(n)
	}
	r.buf = AppendRow(make([]byte, 0, readBatch+64<<10), header)
	return r, nil
}

type tableReader struct {
	d    *dump
	c    *sql.Conn
	rows *sql.Rows
	t    *table
	vals []sql.RawBytes
	dest []any
	row  [][]byte
	buf  []byte
	off  int
	done bool
	err  error
}

func (r *tableReader) fill() {
	r.buf, r.off = r.buf[:0], 0
	if r.row == nil {
		r.row = make([][]byte, len(r.vals))
	}
	for len(r.buf) < readBatch {
		if !r.rows.Next() {
			r.done = true
			if err := r.rows.Err(); err != nil {
				r.err = r.t.readError(err)
			}
			return
		}
		if err := r.rows.Scan(r.dest...); err != nil {
			r.done = true
			r.err = r.t.readError(err)
			return
		}
		for i, v := range r.vals {
			r.row[i] = v // nil for NULL
		}
		r.buf = AppendRow(r.buf, r.row)
	}
}

func (r *tableReader) Read(p []byte) (int, error) {
	for r.off == len(r.buf) {
		if r.err != nil {
			return 0, r.err
		}
		if r.done {
			return 0, io.EOF
		}
		r.fill()
	}
	n := copy(p, r.buf[r.off:])
	r.off += n
	return n, nil
}

func (r *tableReader) Close() error {
	if r.rows == nil {
		return nil
	}
	err := r.rows.Close()
	r.rows = nil
	r.d.workers <- r.c
	return err
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
