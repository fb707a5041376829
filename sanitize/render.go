package sanitize

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/bits"
	"time"
	"unicode/utf8"
)

// litKind is how a column's values are written as SQL literals.
type litKind uint8

const (
	litString litKind = iota // quoted with backslash escapes (X'…' when not UTF-8)
	litNumber                // bare when it is a number
	litBinary                // X'…'
	litBit                   // b'…'
)

func (c *column) litKind() litKind {
	switch {
	case c.typ == "bit":
		return litBit
	case c.isNumeric():
		return litNumber
	case c.isBinary():
		return litBinary
	}
	return litString
}

// insertRenderer renders rows of the mysql data format as INSERT
// statements of about batch bytes each. A chunk always ends its
// statement, so the output does not depend on how chunks are rendered.
type insertRenderer struct {
	prefix string // INSERT INTO `t` (`a`, …) VALUES\n
	ncols  int
	cols   []*column
	lits   []litKind
	rules  []*Rule
	where  *where
	idx    map[string]int
	now    time.Time
	batch  int
}

func (t *insertRenderer) render(f *faker, in []byte, first int64, out []byte) ([]byte, int64, int64, error) {
	var ev *env
	if t.where != nil {
		ev = &env{cols: t.idx, now: t.now}
	}
	row := make([][]byte, 0, t.ncols)
	var arena []byte
	var read, written int64
	stmt := -1 // start of the open statement in out
	for len(in) > 0 {
		nl := bytes.IndexByte(in, '\n')
		line := in[:nl]
		in = in[nl+1:]
		row, arena = splitRow(line, row[:0], arena[:0])
		if len(row) != t.ncols {
			return out, read, written, fmt.Errorf("row %d has %d fields, the header %d", first+read, len(row), t.ncols)
		}
		read++
		if ev != nil {
			ev.row = row
			if !truthy(t.where.x.eval(ev)) {
				continue
			}
		}
		if stmt < 0 {
			stmt = len(out)
			out = append(out, t.prefix...)
		} else {
			out = append(out, ",\n"...)
		}
		out = append(out, '(')
		for i, v := range row {
			if i > 0 {
				out = append(out, ',')
			}
			if r := t.rules[i]; r != nil {
				v = f.apply(r, t.cols[i], v)
			}
			out = appendLiteral(out, t.lits[i], v)
		}
		out = append(out, ')')
		written++
		if len(out)-stmt >= t.batch {
			out = append(out, ";\n"...)
			stmt = -1
		}
	}
	if stmt >= 0 {
		out = append(out, ";\n"...)
	}
	return out, read, written, nil
}

const hexDigits = "0123456789ABCDEF"

// sqlEscape maps the bytes escaped in a quoted MySQL string to their
// escape letter.
var sqlEscape = [256]byte{0: '0', '\n': 'n', '\r': 'r', '\\': '\\', '\'': '\'', 0x1a: 'Z'}

// appendLiteral appends v as an SQL literal (the session runs SET NAMES
// binary, so string bytes go into the column unconverted).
func appendLiteral(dst []byte, k litKind, v []byte) []byte {
	if v == nil {
		return append(dst, "NULL"...)
	}
	switch {
	case k == litBit:
		return appendBitLiteral(dst, v)
	case k == litNumber && isNumber(v):
		return append(dst, v...)
	case k != litBinary:
		if out, ok := appendQuoted(dst, v); ok {
			return out
		}
	}
	return appendHexLiteral(dst, v)
}

// appendBitLiteral appends v as b'...' without leading zero bits.
func appendBitLiteral(dst, v []byte) []byte {
	dst = append(dst, "b'"...)
	started := false
	for _, c := range v {
		for bit := 7; bit >= 0; bit-- {
			one := c&(1<<bit) != 0
			if one {
				started = true
			}
			if started {
				dst = append(dst, '0'+byte(c>>bit&1))
			}
		}
	}
	if !started {
		dst = append(dst, '0')
	}
	return append(dst, '\'')
}

// appendHexLiteral appends v as X'...', or as an empty string literal.
func appendHexLiteral(dst, v []byte) []byte {
	if len(v) == 0 {
		return append(dst, "''"...)
	}
	dst = append(dst, "X'"...)
	for _, c := range v {
		dst = append(dst, hexDigits[c>>4], hexDigits[c&15])
	}
	return append(dst, '\'')
}

// appendQuoted appends v quoted with backslash escapes; ok is false (and
// dst unchanged) when v is not UTF-8. It checks eight bytes at a time
// while none is escaped, and UTF-8 once from the first non-ASCII byte.
func appendQuoted(dst, v []byte) (_ []byte, ok bool) {
	from := len(dst)
	dst = append(dst, '\'')
	start, ascii := 0, true // ascii: no byte >= 0x80 so far
	for i := 0; i < len(v); i++ {
		if i+8 <= len(v) {
			x := binary.LittleEndian.Uint64(v[i:])
			m := quoteEscapes(x)
			if ascii {
				m |= x & highBits
			}
			if m == 0 {
				i += 7
				continue
			}
			// The lowest flagged byte is one to look at (a false match
			// can only sit above a true one).
			i += bits.TrailingZeros64(m) >> 3
		}
		c := v[i]
		if c >= 0x80 && ascii {
			if !utf8.Valid(v[i:]) {
				return dst[:from], false
			}
			ascii = false
		}
		if esc := sqlEscape[c]; esc != 0 {
			dst = append(dst, v[start:i]...)
			dst = append(dst, '\\', esc)
			start = i + 1
		}
	}
	dst = append(dst, v[start:]...)
	return append(dst, '\''), true
}

const lowBits, highBits = 0x0101010101010101, 0x8080808080808080

// quoteEscapes flags (high bit of the byte) the bytes of x that a quoted
// string escapes: NUL, \n, \r, \\, ' and ^Z (a byte b is zero in x^b
// when x holds it). Only the lowest flag is exact.
func quoteEscapes(x uint64) uint64 {
	zero := func(y uint64) uint64 { return (y - lowBits) &^ y & highBits }
	return zero(x) | zero(x^'\n'*lowBits) | zero(x^'\r'*lowBits) | zero(x^'\\'*lowBits) | zero(x^'\''*lowBits) | zero(x^0x1a*lowBits)
}

func isNumber(v []byte) bool {
	if len(v) == 0 {
		return false
	}
	i := 0
	if v[0] == '-' {
		i++
	}
	digits, dot, exp := 0, false, false
	for ; i < len(v); i++ {
		c := v[i]
		switch {
		case c >= '0' && c <= '9':
			digits++
		case c == '.' && !dot && !exp:
			dot = true
		case (c == 'e' || c == 'E') && !exp && digits > 0:
			exp = true
			if i+1 < len(v) && (v[i+1] == '-' || v[i+1] == '+') {
				i++
			}
		default:
			return false
		}
	}
	return digits > 0
}

// splitRow is mysql.SplitRow without allocations per row: fields without
// escapes point into line, the others into arena (both valid until the
// next call). NULL (\N alone) is nil.
func splitRow(line []byte, out [][]byte, arena []byte) ([][]byte, []byte) {
	// Escaped fields are decoded into arena, whose growth must not move
	// fields already taken: size it up front.
	if cap(arena) < len(line) {
		arena = make([]byte, 0, len(line))
	}
	// bs is the offset in line of its next backslash (len(line): none): a
	// field that ends at or before it has no escapes. One search per
	// backslash, not per field.
	bs := bytes.IndexByte(line, '\\')
	if bs < 0 {
		bs = len(line)
	}
	for {
		end := bytes.IndexByte(line, '\t')
		last := end < 0
		if last {
			end = len(line)
		}
		f := line[:end:end]
		switch {
		case end <= bs:
			out = append(out, f)
		case len(f) == 2 && f[0] == '\\' && f[1] == 'N':
			out = append(out, nil)
		default:
			from := len(arena)
			arena = unescape(arena, f)
			out = append(out, arena[from:len(arena):len(arena)])
		}
		if last {
			return out, arena
		}
		line = line[end+1:]
		if bs -= end + 1; bs < 0 {
			if bs = bytes.IndexByte(line, '\\'); bs < 0 {
				bs = len(line)
			}
		}
	}
}

// unescape appends f with the data format's backslash escapes decoded.
func unescape(dst, f []byte) []byte {
	for j := 0; j < len(f); j++ {
		c := f[j]
		if c == '\\' && j+1 < len(f) {
			j++
			switch f[j] {
			case 't':
				c = '\t'
			case 'n':
				c = '\n'
			case '0':
				c = 0
			case 'r':
				c = '\r'
			case 'b':
				c = '\b'
			case 'Z':
				c = 0x1a
			default:
				c = f[j]
			}
		}
		dst = append(dst, c)
	}
	return dst
}
