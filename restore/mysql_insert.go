package restore

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/binary"
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
// pieces load on all connections at once. The server parses the INSERT's
// literals, which costs more than LOAD DATA's field reader: in mode 0
// INSERT takes the table lock too and in mode 2 neither does, so only
// mode 1 gains (docs/benchmarks.md, "AUTO-INC lock: pieces as INSERT").

// insertStmtBytes bounds one INSERT statement (as mariadb-dump's
// net_buffer_length does): a statement's parse tree lives in the server's
// memory while it runs.
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

// insertFits tells whether every row of piece fits in one INSERT statement
// of at most maxStmt bytes after prefix (a field at worst doubles, with
// two quotes and a comma each, and the row's parentheses).
func insertFits(piece []byte, ncols int, prefix string, maxStmt int64) bool {
	limit := (maxStmt - int64(len(prefix)) - int64(3*ncols) - 4) / 2
	for len(piece) > 0 {
		i := bytes.IndexByte(piece, '\n')
		if i < 0 {
			i = len(piece)
		}
		if int64(i) > limit {
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

// appendValues appends one row of the LOAD DATA text format (line, without
// its newline) as a parenthesized list of string literals for a session
// with SET NAMES binary: a field that is exactly \N is NULL; the others are
// quoted with their escapes kept (a backslash means the same in a literal
// as in LOAD DATA, except before % and _, where a literal keeps it), and a
// quote gets a backslash. A string literal stored into a column converts
// as LOAD DATA's field does. It returns the number of fields.
func appendValues(dst, line []byte) ([]byte, int) {
	dst = append(dst, '(')
	n := 0
	for {
		n++
		if len(line) >= 2 && line[0] == '\\' && line[1] == 'N' && (len(line) == 2 || line[2] == '\t') {
			dst = append(dst, "NULL"...)
			line = line[2:]
		} else {
			dst = append(dst, '\'')
			start, i := 0, 0
			for i < len(line) {
				if i+8 <= len(line) && !literalSpecial(binary.LittleEndian.Uint64(line[i:])) {
					i += 8
					continue
				}
				c := line[i]
				if c == '\t' {
					break
				}
				switch c {
				case '\'':
					dst = append(dst, line[start:i]...)
					dst = append(dst, '\\', '\'')
					start = i + 1
				case '\\':
					if i+1 < len(line) {
						if e := line[i+1]; e == '%' || e == '_' {
							dst = append(dst, line[start:i]...)
							dst = append(dst, e)
							start = i + 2
						}
						i++ // the escaped byte is never a separator
					} else {
						// A lone backslash at the end: LOAD DATA keeps it.
						dst = append(dst, line[start:i]...)
						dst = append(dst, '\\', '\\')
						start = i + 1
					}
				}
				i++
			}
			dst = append(dst, line[start:i]...)
			dst = append(dst, '\'')
			line = line[i:]
		}
		if len(line) == 0 {
			break
		}
		// line[0] is the tab before the next field.
		dst = append(dst, ',')
		line = line[1:]
	}
	return append(dst, ')'), n
}

// literalSpecial reports whether one of the eight bytes of x is a tab,
// backslash or quote (see needsEscape in targets/mysql).
func literalSpecial(x uint64) bool {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	zero := func(y uint64) uint64 { return (y - ones) &^ y & highs }
	return zero(x^'\t'*ones)|zero(x^'\\'*ones)|zero(x^'\''*ones) != 0
}

// insertRows loads piece (rows of the LOAD DATA text format, each ended by
// a newline) into table name as multi-row INSERT statements of about
// insertStmtBytes, in one transaction; it returns at most 3 of the
// server's warnings.
func insertRows(ctx context.Context, c *sql.Conn, name string, cols []string, piece []byte) ([]string, error) {
	prefix := insertPrefix(name, cols)
	if _, err := c.ExecContext(ctx, "BEGIN"); err != nil {
		return nil, err
	}
	var warns []string
	stmt := make([]byte, 0, insertStmtBytes+64<<10)
	flush := func() error {
		if _, err := c.ExecContext(ctx, string(stmt)); err != nil {
			return err
		}
		stmt = stmt[:0]
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
	for rest := piece; len(rest) > 0 && err == nil; {
		i := bytes.IndexByte(rest, '\n')
		if i < 0 {
			err = errors.New("data does not end with a newline")
			break
		}
		if len(stmt) == 0 {
			stmt = append(stmt, prefix...)
		} else {
			stmt = append(stmt, ',')
		}
		var n int
		if stmt, n = appendValues(stmt, rest[:i]); n != len(cols) {
			err = fmt.Errorf("a row has %d fields, the header names %d columns", n, len(cols))
			break
		}
		rest = rest[i+1:]
		if len(stmt) >= insertStmtBytes || len(rest) == 0 {
			err = flush()
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
