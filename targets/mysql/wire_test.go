package mysql

import (
	"bytes"
	"context"
	sqldriver "database/sql/driver"
	"errors"
	"io"
	"math"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	driver "github.com/go-sql-driver/mysql"
	"github.com/stretchr/testify/require"

	"github.com/lifeboat-backup/lifeboat/targets/mysql/mysqltest"
)

// lenenc encodes a length-encoded string (nil: NULL).
func lenenc(v []byte) []byte {
	switch n := len(v); {
	case v == nil:
		return []byte{iNULL}
	case n < 0xfb:
		return append([]byte{byte(n)}, v...)
	case n < 1<<16:
		return append([]byte{0xfc, byte(n), byte(n >> 8)}, v...)
	case n < 1<<24:
		return append([]byte{0xfd, byte(n), byte(n >> 8), byte(n >> 16)}, v...)
	default:
		b := []byte{0xfe, 0, 0, 0, 0, 0, 0, 0, 0}
		for i := range 8 {
			b[1+i] = byte(uint64(n) >> (8 * i))
		}
		return append(b, v...)
	}
}

func rowPacket(vals ...[]byte) []byte {
	var p []byte
	for _, v := range vals {
		p = append(p, lenenc(v)...)
	}
	return p
}

// driverText is how the driver path prints a value of a kind: the driver's
// parse, then rowFormatter's formatting.
func driverText(t *testing.T, v string, kind byte) string {
	t.Helper()
	var d sqldriver.Value
	var err error
	switch kind {
	case kindInt, kindYear:
		d, err = strconv.ParseInt(v, 10, 64)
	case kindUint:
		d, err = strconv.ParseUint(v, 10, 64)
	case kindFloat:
		var f float64
		f, err = strconv.ParseFloat(v, 32)
		d = float32(f)
	case kindDouble:
		d, err = strconv.ParseFloat(v, 64)
	}
	require.NoError(t, err, v)
	f := &rowFormatter{rows: fakeRows{d}, dest: make([]sqldriver.Value, 1), row: make([][]byte, 1), year: []bool{kind == kindYear}}
	row, err := f.next()
	require.NoError(t, err)
	return string(row[0])
}

type fakeRows struct{ v sqldriver.Value }

func (fakeRows) Columns() []string                   { return []string{"c"} }
func (fakeRows) Close() error                        { return nil }
func (r fakeRows) Next(dest []sqldriver.Value) error { dest[0] = r.v; return nil }

// TestAppendWireRow: values come out as on the driver path, escaped,
// numbers in strconv's form; malformed rows are errors.
func TestAppendWireRow(t *testing.T) {
	big := bytes.Repeat([]byte("x\t"), 40000) // 80000 bytes: a 3-byte length
	for _, c := range []struct {
		name  string
		kinds []byte
		p     []byte
		want  string
		err   string
	}{
		{"text", []byte{kindText, kindText, kindText}, rowPacket([]byte("a\tb\nc\\d\x00e"), nil, []byte{}), "a\\tb\\nc\\\\d\\0e\t\\N\t\n", ""},
		{"NULL text is not \\N text", []byte{kindText}, rowPacket([]byte(`\N`)), `\\N` + "\n", ""},
		{"long values", []byte{kindText, kindText}, rowPacket(bytes.Repeat([]byte("y"), 300), big),
			strings.Repeat("y", 300) + "\t" + strings.Repeat(`x\t`, 40000) + "\n", ""},
		{"integers", []byte{kindInt, kindInt, kindInt, kindUint, kindInt}, rowPacket([]byte("0"), []byte("-42"), []byte("-9223372036854775808"), []byte("18446744073709551615"), nil),
			"0\t-42\t-9223372036854775808\t18446744073709551615\t\\N\n", ""},
		{"zerofill", []byte{kindInt, kindUint}, rowPacket([]byte("0000000042"), []byte("00000000000000000007")), "42\t7\n", ""},
		{"year", []byte{kindYear, kindYear, kindYear}, rowPacket([]byte("0000"), []byte("2024"), []byte("05")), "0000\t2024\t0005\n", ""},
		{"floats", []byte{kindFloat, kindDouble, kindDouble}, rowPacket([]byte("0.1"), []byte("1e20"), []byte("-1.7976931348623157e308")), "0.1\t1e+20\t-1.7976931348623157e+308\n", ""},
		{"no columns", nil, nil, "\n", ""},
		{"too few values", []byte{kindText, kindText}, rowPacket([]byte("a")), "", "row of 1 columns, want 2"},
		{"too many values", []byte{kindText}, rowPacket([]byte("a"), []byte("b")), "", "row longer than its 1 columns"},
		{"truncated value", []byte{kindText}, []byte{5, 'a', 'b'}, "", "column 1: malformed row"},
		{"truncated length", []byte{kindText}, []byte{0xfc, 1}, "", "column 1: malformed row"},
		{"not an integer", []byte{kindText, kindInt}, rowPacket([]byte("a"), []byte("12x")), "", `column 2: strconv.ParseInt: parsing "12x": invalid syntax`},
		{"negative unsigned", []byte{kindUint}, rowPacket([]byte("-1")), "", "column 1: strconv.ParseUint"},
		{"integer overflow", []byte{kindInt}, rowPacket([]byte("9223372036854775808")), "", "column 1: strconv.ParseInt"},
		{"not a float", []byte{kindDouble}, rowPacket([]byte("1.2.3")), "", "column 1: strconv.ParseFloat"},
		{"bad year", []byte{kindYear}, rowPacket([]byte("")), "", "column 1: strconv.ParseInt"},
	} {
		got, err := appendWireRow([]byte("prefix|"), c.p, c.kinds)
		if c.err != "" {
			require.ErrorContains(t, err, c.err, c.name)
			continue
		}
		require.NoError(t, err, c.name)
		require.Equal(t, "prefix|"+c.want, string(got), c.name)
	}
}

// TestAppendNumberAsDriver: every form a number can take prints as on
// the driver path.
func TestAppendNumberAsDriver(t *testing.T) {
	ints := []string{"0", "1", "-1", "7", "10", "-10", "99", "255", "-128", "65535", "123456789012345678", "-123456789012345678",
		"999999999999999999", "1000000000000000000", "-1000000000000000000", "9223372036854775807", "-9223372036854775808",
		"007", "-007", "0000", "+5", "-0"}
	for _, v := range ints {
		require.Equal(t, driverText(t, v, kindInt), string(mustNumber(t, v, kindInt)), "int %s", v)
		if !strings.HasPrefix(v, "-") && !strings.HasPrefix(v, "+") {
			require.Equal(t, driverText(t, v, kindUint), string(mustNumber(t, v, kindUint)), "uint %s", v)
		}
	}
	for _, v := range []string{"18446744073709551615", "9223372036854775808", "00018446744073709551615"} {
		require.Equal(t, driverText(t, v, kindUint), string(mustNumber(t, v, kindUint)), "uint %s", v)
	}
	for _, v := range []string{"0", "1", "9", "10", "69", "70", "99", "1901", "2155", "0000", "05"} {
		require.Equal(t, driverText(t, v, kindYear), string(mustNumber(t, v, kindYear)), "year %s", v)
	}
	floats := []string{"0", "-0", "0.1", "1e20", "1e-45", "3.4028235e38", "-3.4028235e38", "1.17549435e-38", "123456.789", "1e-7", "100"}
	for _, v := range floats {
		require.Equal(t, driverText(t, v, kindFloat), string(mustNumber(t, v, kindFloat)), "float %s", v)
		require.Equal(t, driverText(t, v, kindDouble), string(mustNumber(t, v, kindDouble)), "double %s", v)
	}
	for _, f := range []float64{math.MaxFloat64, math.SmallestNonzeroFloat64, 1.0 / 3, -2.5e-300} {
		v := strconv.FormatFloat(f, 'g', 17, 64)
		require.Equal(t, driverText(t, v, kindDouble), string(mustNumber(t, v, kindDouble)), "double %s", v)
	}
}

func mustNumber(t *testing.T, v string, kind byte) []byte {
	t.Helper()
	out, err := appendNumber(nil, []byte(v), kind)
	require.NoError(t, err, v)
	return out
}

func TestCanonicalInt(t *testing.T) {
	for _, c := range []struct {
		v      string
		signed bool
		want   bool
	}{
		{"0", true, true}, {"5", false, true}, {"-5", true, true}, {"-5", false, false}, {"-0", true, false},
		{"05", true, false}, {"-05", true, false}, {"", true, false}, {"-", true, false}, {"+5", true, false},
		{"1x", true, false}, {"123456789012345678", true, true}, {"1234567890123456789", false, false},
		{"-123456789012345678", true, true},
	} {
		require.Equal(t, c.want, canonicalInt([]byte(c.v), c.signed), "%q signed %v", c.v, c.signed)
	}
}

func TestLenencInt(t *testing.T) {
	for _, c := range []struct {
		p    []byte
		n    uint64
		size int
		ok   bool
	}{
		{[]byte{0}, 0, 1, true},
		{[]byte{0xfa, 9}, 250, 1, true},
		{[]byte{0xfc, 0x34, 0x12}, 0x1234, 3, true},
		{[]byte{0xfd, 1, 2, 3}, 0x030201, 4, true},
		{[]byte{0xfe, 1, 0, 0, 0, 0, 0, 0, 1}, 1<<56 + 1, 9, true},
		{nil, 0, 0, false},
		{[]byte{0xfb}, 0, 0, false}, // NULL is not a number
		{[]byte{0xff}, 0, 0, false},
		{[]byte{0xfc, 1}, 0, 0, false},
		{[]byte{0xfd, 1, 2}, 0, 0, false},
		{[]byte{0xfe, 1, 2, 3, 4, 5, 6, 7}, 0, 0, false},
	} {
		n, size, ok := lenencInt(c.p)
		require.Equal(t, []any{c.n, c.size, c.ok}, []any{n, size, ok}, "%x", c.p)
	}
}

func TestErrorPacket(t *testing.T) {
	err := errorPacket(append([]byte{0xff, 0x7a, 0x04, '#', '4', '2', 'S', '0', '2'}, "Table 'a.b' doesn't exist"...))
	var me *driver.MySQLError
	require.ErrorAs(t, err, &me)
	require.Equal(t, uint16(1146), me.Number)
	require.Equal(t, "42S02", string(me.SQLState[:]))
	require.Equal(t, "Table 'a.b' doesn't exist", me.Message)

	err = errorPacket(append([]byte{0xff, 0x84, 0x05}, "no state"...))
	require.ErrorAs(t, err, &me)
	require.Equal(t, uint16(1412), me.Number)
	require.Equal(t, "no state", me.Message)

	err = errorPacket([]byte{0xff, 1})
	require.EqualError(t, err, "malformed error packet")
	require.ErrorIs(t, err, sqldriver.ErrBadConn)
}

// fakeDriverConn has the fields newWireConn looks up in go-sql-driver's
// connection.
type fakeDriverConn struct {
	buf          struct{ buf []byte }
	netConn      net.Conn
	capabilities uint32
	compress     bool
}

func TestNewWireConn(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	w, ok := newWireConn(&fakeDriverConn{netConn: a, capabilities: clientDeprecateEOF}, &driver.Config{ReadTimeout: time.Second})
	require.True(t, ok)
	require.Same(t, a, w.conn)
	require.True(t, w.deprecateEOF)
	require.Equal(t, time.Second, w.readTimeout)
	w.release()

	w, ok = newWireConn(&fakeDriverConn{netConn: a}, nil)
	require.True(t, ok)
	require.False(t, w.deprecateEOF)

	pending := &fakeDriverConn{netConn: a}
	pending.buf.buf = []byte{1}
	for name, dc := range map[string]any{
		"compression":   &fakeDriverConn{netConn: a, compress: true},
		"unread bytes":  pending,
		"no connection": &fakeDriverConn{},
		"not a pointer": fakeDriverConn{netConn: a},
		"other fields":  &struct{ netConn net.Conn }{a},
		"wrong types":   &struct{ netConn, capabilities, compress, buf int }{},
		"not a struct":  new(int),
		"no driver":     nil,
		"not a net.Conn": &struct {
			buf          struct{ buf []byte }
			netConn      io.Reader
			capabilities uint32
			compress     bool
		}{netConn: strings.NewReader("")},
	} {
		_, ok := newWireConn(dc, nil)
		require.False(t, ok, name)
	}
}

// server writes packets as a MySQL server would, numbering them from 1
// (the query is packet 0).
type server struct {
	t    *testing.T
	conn net.Conn
	seq  byte
}

func (s *server) packet(p []byte) {
	for {
		n := min(len(p), maxPacket)
		_, err := s.conn.Write(append([]byte{byte(n), byte(n >> 8), byte(n >> 16), s.seq}, p[:n]...))
		if err != nil {
			return // the client stopped reading
		}
		s.seq++
		p = p[n:]
		if n < maxPacket {
			return
		}
	}
}

// readQuery reads a COM_QUERY and returns its text.
func (s *server) readQuery() string {
	h := make([]byte, 4)
	_, err := io.ReadFull(s.conn, h)
	require.NoError(s.t, err)
	p := make([]byte, int(h[0])|int(h[1])<<8|int(h[2])<<16)
	_, err = io.ReadFull(s.conn, p)
	require.NoError(s.t, err)
	require.Equal(s.t, byte(0), h[3])
	require.Equal(s.t, byte(comQuery), p[0])
	s.seq = 1
	return string(p[1:])
}

func columnDef(name string, typ byte, flags uint16) []byte {
	p := rowPacket([]byte("def"), []byte("db"), []byte("t"), []byte("t"), []byte(name), []byte(name))
	return append(p, 0x0c, 63, 0, 11, 0, 0, 0, typ, byte(flags), byte(flags>>8), 0, 0, 0)
}

var eofPacket = []byte{iEOF, 0, 0, 2, 0}

// resultSet writes a result set of an INT and a TEXT column.
func (s *server) resultSet(deprecateEOF bool, rows ...[]byte) {
	s.packet([]byte{2})
	s.packet(columnDef("id", 3, 0))
	s.packet(columnDef("v", 252, 0))
	if !deprecateEOF {
		s.packet(eofPacket)
	}
	for _, r := range rows {
		s.packet(r)
	}
	if deprecateEOF {
		s.packet([]byte{iEOF, 0, 0, 2, 0, 0, 0})
	} else {
		s.packet(eofPacket)
	}
}

// readAll runs a query on a wire connection over a pipe to serve and
// returns the rows and the error.
func readAll(t *testing.T, deprecateEOF bool, columns int, serve func(*server)) (string, error) {
	t.Helper()
	a, b := net.Pipe()
	defer a.Close()
	go func() {
		defer b.Close()
		s := &server{t: t, conn: b}
		require.Equal(t, "SELECT 1", s.readQuery())
		serve(s)
	}()
	w, ok := newWireConn(&fakeDriverConn{netConn: a, capabilities: map[bool]uint32{true: clientDeprecateEOF}[deprecateEOF]}, nil)
	require.True(t, ok)
	defer w.release()
	rows, err := w.query("SELECT 1", columns)
	if err != nil {
		return "", err
	}
	var out []byte
	for {
		if out, err = rows.appendRow(out); err != nil {
			if err == io.EOF {
				err = nil
			}
			return string(out), err
		}
	}
}

func TestWireQuery(t *testing.T) {
	huge := bytes.Repeat([]byte("h"), maxPacket+100) // a row in two packets
	for _, deprecateEOF := range []bool{false, true} {
		got, err := readAll(t, deprecateEOF, 2, func(s *server) {
			s.resultSet(deprecateEOF, rowPacket([]byte("1"), []byte("a\tb")), rowPacket([]byte("007"), nil),
				rowPacket([]byte("3"), huge), rowPacket([]byte("4"), []byte{}))
		})
		require.NoError(t, err)
		require.Equal(t, "1\ta\\tb\n7\t\\N\n3\t"+string(huge)+"\n4\t\n", got, "deprecate EOF %v", deprecateEOF)

		got, err = readAll(t, deprecateEOF, 2, func(s *server) { s.resultSet(deprecateEOF) })
		require.NoError(t, err)
		require.Empty(t, got, "no rows")
	}
	// a payload of exactly maxPacket bytes ends with an empty packet
	exact := rowPacket([]byte("5"), bytes.Repeat([]byte("e"), maxPacket-6))
	require.Len(t, exact, maxPacket)
	got, err := readAll(t, true, 2, func(s *server) { s.resultSet(true, exact) })
	require.NoError(t, err)
	require.Equal(t, "5\t"+strings.Repeat("e", maxPacket-6)+"\n", got)
}

func TestWireQueryErrors(t *testing.T) {
	errPacket := append([]byte{0xff, 0x84, 0x05, '#', 'H', 'Y', '0', '0', '0'}, "Table definition has changed"...)
	for _, c := range []struct {
		name    string
		serve   func(*server)
		rows    string
		err     string
		mysql   uint16 // a server error: the connection is still in step
		badConn bool
	}{
		{name: "server error", serve: func(s *server) { s.packet(errPacket) }, err: "Table definition has changed", mysql: 1412},
		{name: "error after rows", serve: func(s *server) {
			s.packet([]byte{2})
			s.packet(columnDef("id", 3, 0))
			s.packet(columnDef("v", 252, 0))
			s.packet(eofPacket)
			s.packet(rowPacket([]byte("1"), []byte("a")))
			s.packet(errPacket)
		}, rows: "1\ta\n", err: "Table definition has changed", mysql: 1412},
		{name: "OK instead of rows", serve: func(s *server) { s.packet([]byte{iOK, 0, 0, 2, 0, 0, 0}) }, err: "unexpected response 0x00 to a SELECT", badConn: true},
		{name: "LOCAL INFILE request", serve: func(s *server) { s.packet(append([]byte{iNULL}, "/etc/passwd"...)) }, err: "unexpected response 0xfb to a SELECT", badConn: true},
		{name: "column count", serve: func(s *server) { s.packet([]byte{3}) }, err: "result of 3 columns, want 2", badConn: true},
		{name: "metadata not sent", serve: func(s *server) { s.packet([]byte{2, 0}) }, err: "result of 2 columns, want 2", badConn: true},
		{name: "bad column definition", serve: func(s *server) {
			s.packet([]byte{2})
			s.packet([]byte{3, 'd', 'e', 'f', 0, 0})
		}, err: "column 1: malformed column definition", badConn: true},
		{name: "short column definition", serve: func(s *server) {
			s.packet([]byte{2})
			s.packet(columnDef("id", 3, 0)[:25])
		}, err: "column 1: malformed column definition", badConn: true},
		{name: "no EOF after the columns", serve: func(s *server) {
			s.packet([]byte{2})
			s.packet(columnDef("id", 3, 0))
			s.packet(columnDef("v", 252, 0))
			s.packet(rowPacket([]byte("1"), []byte("a")))
		}, err: "no EOF packet after the column definitions", badConn: true},
		{name: "packet out of order", serve: func(s *server) {
			s.seq = 5
			s.packet([]byte{2})
		}, err: "packet out of order: sequence 5, want 1", badConn: true},
		{name: "empty packet", serve: func(s *server) { s.packet(nil) }, err: "empty packet", badConn: true},
		{name: "connection lost", serve: func(s *server) {
			s.packet([]byte{2})
			s.packet(columnDef("id", 3, 0))
		}, err: "EOF", badConn: true},
		{name: "connection lost between rows", serve: func(s *server) {
			s.packet([]byte{2})
			s.packet(columnDef("id", 3, 0))
			s.packet(columnDef("v", 252, 0))
			s.packet(eofPacket)
			s.packet(rowPacket([]byte("1"), []byte("a")))
		}, rows: "1\ta\n", err: "unexpected EOF", badConn: true},
		{name: "malformed row", serve: func(s *server) {
			s.packet([]byte{2})
			s.packet(columnDef("id", 3, 0))
			s.packet(columnDef("v", 252, 0))
			s.packet(eofPacket)
			s.packet(rowPacket([]byte("1")))
		}, err: "row of 1 columns, want 2", badConn: true},
		{name: "truncated packet", serve: func(s *server) {
			_, _ = s.conn.Write([]byte{10, 0, 0, 1, 2})
		}, err: "unexpected EOF", badConn: true},
	} {
		rows, err := readAll(t, false, 2, c.serve)
		require.Equal(t, c.rows, rows, c.name)
		if c.err == "" {
			require.NoError(t, err, c.name)
			continue
		}
		require.ErrorContains(t, err, c.err, c.name)
		require.Equal(t, c.badConn, errors.Is(err, sqldriver.ErrBadConn), c.name)
		var me *driver.MySQLError
		require.Equal(t, c.mysql != 0, errors.As(err, &me), c.name)
		if c.mysql != 0 {
			require.Equal(t, c.mysql, me.Number, c.name)
		}
	}
}

// TestWireQueryCancel: a cancel unblocks a read waiting for the server,
// and the connection is then given up.
func TestWireQueryCancel(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	go func() {
		s := &server{t: t, conn: b}
		s.readQuery()
		s.packet([]byte{1})
		s.packet(columnDef("id", 3, 0))
		s.packet(eofPacket)
		// then nothing: the server is slow
	}()
	ctx, cancel := context.WithCancel(context.Background())
	r := &tableReader{d: &dump{s: &Source{cfg: &driver.Config{}}}, t: &table{columns: []string{"id"}}, ctx: ctx}
	rows, done, err := r.query(&fakeDriverConn{netConn: a}, "SELECT 1")
	require.NoError(t, err)
	time.AfterFunc(50*time.Millisecond, cancel)
	_, err = rows.appendRow(nil)
	require.Error(t, err)
	err = done(err)
	require.ErrorIs(t, err, context.Canceled)
	require.ErrorIs(t, err, sqldriver.ErrBadConn)
}

// TestWireOnServerConnection: go-sql-driver's connections are read on
// the wire, compressed ones through the driver.
func TestWireOnServerConnection(t *testing.T) {
	srv := mysqltest.Shared(t)
	for _, c := range []struct {
		dsn  string
		wire bool
	}{{srv.DSN(), true}, {srv.DSN() + "?compress=true", false}} {
		cfg, err := ParseDSN(c.dsn, srv.Password)
		require.NoError(t, err)
		db, err := Open(context.Background(), cfg, 1)
		require.NoError(t, err)
		conn, err := db.Conn(context.Background())
		require.NoError(t, err)
		require.NoError(t, conn.Raw(func(dc any) error {
			w, ok := newWireConn(dc, cfg)
			require.Equal(t, c.wire, ok, c.dsn)
			if ok {
				w.release()
			}
			return nil
		}))
		require.NoError(t, conn.Close())
		require.NoError(t, db.Close())
	}
}
