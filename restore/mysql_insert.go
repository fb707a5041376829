package restore

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	driver "github.com/go-sql-driver/mysql"

	"github.com/lifeboat-backup/lifeboat/targets/mysql"
)

// Why pieces of some tables load as INSERT: with innodb_autoinc_lock_mode
// 1 (MariaDB's default) a LOAD DATA into a table with an AUTO_INCREMENT
// column holds the table's AUTO-INC lock to the end of the statement, even
// with every value given, so the pieces of such a table load one at a
// time. A multi-row INSERT is a "simple insert" in that mode (its row
// count is known when it starts) and takes only a short mutex, so its
// pieces load on all connections at once. The statements are prepared
// once per table and row count and the values go in the binary protocol,
// so the server neither parses nor unescapes them. In mode 0 INSERT takes
// the table lock too and in mode 2 neither does, so only mode 1 gains
// (docs/benchmarks.md, "AUTO-INC lock: pieces as INSERT").

// insertStmtBytes is about the rows' bytes one INSERT takes (as
// mariadb-dump's net_buffer_length).
const insertStmtBytes = 1 << 20

// autoIncLockMode reads the server's innodb_autoinc_lock_mode and
// max_allowed_packet; mode -1 when it has none (no InnoDB).
func autoIncLockMode(ctx context.Context, c *sql.Conn) (mode int, maxPacket int64) {
	if err := c.QueryRowContext(ctx, "SELECT @@innodb_autoinc_lock_mode, @@max_allowed_packet").Scan(&mode, &maxPacket); err != nil {
		return -1, 0
	}
	return mode, maxPacket
}

// hasAutoIncrement tells whether a SHOW CREATE TABLE has an AUTO_INCREMENT
// column (a column line, not the AUTO_INCREMENT= table option).
func hasAutoIncrement(create string) bool {
	for _, l := range strings.Split(create, "\n") {
		if !strings.HasPrefix(l, "  `") {
			continue
		}
		if i := strings.Index(l, " AUTO_INCREMENT"); i >= 0 {
			rest := l[i+len(" AUTO_INCREMENT"):]
			if rest == "" || rest[0] == ',' || rest[0] == ' ' {
				return true
			}
		}
	}
	return false
}

// insertFits tells whether every row of piece is shorter than limit
// bytes: the driver sends each value inline or as long data, but one
// value must fit in the server's max_allowed_packet.
func insertFits(piece []byte, limit int64) bool {
	for len(piece) > 0 {
		i := bytes.IndexByte(piece, '\n')
		if i < 0 {
			i = len(piece)
		}
		if int64(i) >= limit {
			return false
		}
		piece = piece[min(i+1, len(piece)):]
	}
	return true
}

// insertPrefix is "INSERT INTO name (cols) VALUES ".
func insertPrefix(name string, cols []string) string {
	quoted := make([]string, len(cols))
	for i, col := range cols {
		quoted[i] = mysql.QuoteName(col)
	}
	return "INSERT INTO " + name + " (" + strings.Join(quoted, ", ") + ") VALUES "
}

// insertParams bounds the placeholders of one prepared INSERT: the driver
// sends a value longer than max_allowed_packet / (params+1) as a separate
// long-data packet, so fewer placeholders keep values inline.
const insertParams = 4096

// insertStmts are a connection's prepared multi-row INSERTs, by table and
// row count (a power of two, so a table needs few of them).
type insertStmts map[string]*sql.Stmt

// close closes the statements.
func (ss insertStmts) close() {
	for _, st := range ss {
		st.Close()
	}
}

// stmt returns the prepared INSERT of rows rows into name, preparing it
// on c the first time.
func (ss insertStmts) stmt(ctx context.Context, c *sql.Conn, name string, cols []string, rows int) (*sql.Stmt, error) {
	key := fmt.Sprintf("%d %s", rows, name)
	if st := ss[key]; st != nil {
		return st, nil
	}
	var b strings.Builder
	b.WriteString(insertPrefix(name, cols))
	row := "(?" + strings.Repeat(",?", len(cols)-1) + ")"
	for i := range rows {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(row)
	}
	st, err := c.PrepareContext(ctx, b.String())
	if err != nil {
		return nil, err
	}
	ss[key] = st
	return st, nil
}

// batchRows is the rows of one INSERT for a piece: about insertStmtBytes
// of rows and at most insertParams values, rounded down to a power of two.
func batchRows(piece []byte, ncols int) int {
	rows := max(1, bytes.Count(piece, []byte{'\n'}))
	n := min(insertParams/ncols, max(1, insertStmtBytes/max(1, len(piece)/rows)))
	p := 1
	for p*2 <= n {
		p *= 2
	}
	return p
}

// appendFields unescapes one row of the LOAD DATA text format (line,
// without its newline) into buf and appends its values to args: []byte,
// or nil for \N (NULL). It returns the number of fields.
func appendFields(buf []byte, args []any, line []byte) ([]byte, []any, int) {
	n := 0
	for {
		n++
		if len(line) >= 2 && line[0] == '\\' && line[1] == 'N' && (len(line) == 2 || line[2] == '\t') {
			args = append(args, nil)
			line = line[2:]
		} else {
			start := len(buf)
			i := 0
			for i < len(line) && line[i] != '\t' {
				c := line[i]
				if c == '\\' && i+1 < len(line) {
					i++
					c = unescapeLoadData[line[i]]
				}
				buf = append(buf, c)
				i++
			}
			v := buf[start:len(buf):len(buf)]
			if v == nil {
				v = []byte{} // empty, not NULL
			}
			args = append(args, v)
			line = line[i:]
		}
		if len(line) == 0 {
			return buf, args, n
		}
		line = line[1:] // the tab before the next field
	}
}

// unescapeLoadData maps the byte after a backslash to the byte it stands
// for in LOAD DATA's text format (other bytes stand for themselves).
var unescapeLoadData = func() (t [256]byte) {
	for i := range t {
		t[i] = byte(i)
	}
	t['0'], t['b'], t['n'], t['r'], t['t'], t['Z'] = 0, '\b', '\n', '\r', '\t', 0x1a
	return t
}()

// insertRows loads piece (rows of the LOAD DATA text format, each ended by
// a newline) into table name with prepared multi-row INSERT statements
// (values in the binary protocol: nothing to parse or unescape on the
// server), in one transaction; it returns at most 3 of the server's
// warnings.
func insertRows(ctx context.Context, c *sql.Conn, ss insertStmts, name string, cols []string, piece []byte) ([]string, error) {
	if _, err := c.ExecContext(ctx, "BEGIN"); err != nil {
		return nil, err
	}
	var warns []string
	full := batchRows(piece, len(cols))
	buf := make([]byte, 0, len(piece))
	args := make([]any, 0, full*len(cols))
	exec := func(rows int) error {
		st, err := ss.stmt(ctx, c, name, cols, rows)
		if err != nil {
			return err
		}
		if _, err := st.ExecContext(ctx, args[:rows*len(cols)]...); err != nil {
			return err
		}
		args = append(args[:0], args[rows*len(cols):]...)
		if len(warns) >= 3 {
			return nil
		}
		ws, err := loadWarnings(ctx, c)
		for _, w := range ws {
			if len(warns) < 3 {
				warns = append(warns, name+": "+w)
			}
		}
		return err
	}
	var err error
	rows := 0
	for rest := piece; len(rest) > 0 && err == nil; {
		i := bytes.IndexByte(rest, '\n')
		if i < 0 {
			err = errors.New("data does not end with a newline")
			break
		}
		var n int
		if buf, args, n = appendFields(buf, args, rest[:i]); n != len(cols) {
			err = fmt.Errorf("a row has %d fields, the header names %d columns", n, len(cols))
			break
		}
		rest = rest[i+1:]
		if rows++; rows == full {
			err, rows = exec(full), 0
		}
	}
	// The rest in batches of powers of two.
	for p := full / 2; rows > 0 && err == nil; p /= 2 {
		if rows >= p {
			err, rows = exec(p), rows-p
		}
	}
	if err != nil {
		_, _ = c.ExecContext(context.WithoutCancel(ctx), "ROLLBACK")
		return nil, fmt.Errorf("insert into %s: %w", name, err)
	}
	if _, err := c.ExecContext(ctx, "COMMIT"); err != nil {
		return nil, fmt.Errorf("insert into %s: commit: %w", name, err)
	}
	return warns, nil
}

// isRetryable tells a deadlock (1213) or lock wait timeout (1205): the
// server rolled the transaction back, and loading it again may pass.
func isRetryable(err error) bool {
	var me *driver.MySQLError
	return errors.As(err, &me) && (me.Number == 1213 || me.Number == 1205)
}
