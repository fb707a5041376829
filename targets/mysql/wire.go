package mysql

import (
	sqldriver "database/sql/driver"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"reflect"
	"strconv"
	"sync"
	"time"
	"unsafe"

	driver "github.com/go-sql-driver/mysql"
)

// The rows of a table are read straight off the connection under the
// driver's, in the text protocol: go-sql-driver boxes every value in an
// interface (an allocation per value) and parses the numbers, which the
// dump then prints back. Here each row packet is escaped into the batch
// in one pass. The driver set the session up (handshake, TLS, SET NAMES,
// the snapshot transaction) and is idle while a table is read, so the
// connection is in step with the server before and after each query.
// When the driver's connection cannot be used this way (compression,
// unread bytes in its buffer, a driver whose fields are not the ones
// looked up), the rows come from the driver's own rows interface
// (rowFormatter), which gives the same bytes.

// Protocol constants (MySQL client/server protocol).
const (
	comQuery           = 0x03
	maxPacket          = 1<<24 - 1 // a payload this long continues in the next packet
	clientDeprecateEOF = 1 << 24   // capability: OK packets instead of EOF packets
	iOK, iEOF, iERR    = 0x00, 0xfe, 0xff
	iNULL              = 0xfb // NULL in a text row, LOCAL INFILE request as a response
	flagUnsigned       = 0x20
)

// Column types whose text the driver parses into numbers, and how the
// dump prints them back.
const (
	kindText   = iota // copied as the server sent it
	kindInt           // TINYINT, SMALLINT, MEDIUMINT, INT, signed BIGINT
	kindUint          // unsigned BIGINT
	kindYear          // YEAR: four digits
	kindFloat         // FLOAT
	kindDouble        // DOUBLE
)

func columnKind(typ byte, flags uint16) byte {
	switch typ {
	case 1, 2, 3, 9: // TINY, SHORT, LONG, INT24
		return kindInt
	case 8: // LONGLONG
		if flags&flagUnsigned != 0 {
			return kindUint
		}
		return kindInt
	case 13:
		return kindYear
	case 4:
		return kindFloat
	case 5:
		return kindDouble
	}
	return kindText
}

// wireConn is the network connection of an idle driver connection.
type wireConn struct {
	conn         net.Conn
	deprecateEOF bool
	readTimeout  time.Duration
	writeTimeout time.Duration
	buf          []byte // buf[r:w] read and not yet used
	r, w         int
	seq          byte   // sequence number of the next packet
	big          []byte // a payload of several packets
}

// wireBuffer is the read buffer of a wire connection.
const wireBuffer = 256 << 10

var wireBuffers = sync.Pool{New: func() any { b := make([]byte, wireBuffer); return &b }}

// newWireConn returns the network connection under the driver connection
// dc when rows can be read from it directly: no compression, nothing
// buffered by the driver. ok is false for anything else.
func newWireConn(dc any, cfg *driver.Config) (w *wireConn, ok bool) {
	v := reflect.ValueOf(dc)
	if v.Kind() != reflect.Pointer || v.Elem().Kind() != reflect.Struct {
		return nil, false
	}
	s := v.Elem()
	nc, caps, comp := s.FieldByName("netConn"), s.FieldByName("capabilities"), s.FieldByName("compress")
	buf := s.FieldByName("buf")
	if !nc.IsValid() || !caps.IsValid() || !comp.IsValid() || !buf.IsValid() ||
		nc.Kind() != reflect.Interface || caps.Kind() != reflect.Uint32 || comp.Kind() != reflect.Bool || buf.Kind() != reflect.Struct {
		return nil, false
	}
	pending := buf.FieldByName("buf")
	if !pending.IsValid() || pending.Kind() != reflect.Slice || pending.Len() != 0 || comp.Bool() {
		return nil, false
	}
	conn, isConn := reflect.NewAt(nc.Type(), unsafe.Pointer(nc.UnsafeAddr())).Elem().Interface().(net.Conn)
	if !isConn || conn == nil {
		return nil, false
	}
	w = &wireConn{conn: conn, deprecateEOF: caps.Uint()&clientDeprecateEOF != 0, buf: *wireBuffers.Get().(*[]byte)}
	if cfg != nil {
		w.readTimeout, w.writeTimeout = cfg.ReadTimeout, cfg.WriteTimeout
	}
	return w, true
}

// release pools the read buffer unless a huge row made it grow; the
// connection is not read again.
func (c *wireConn) release() {
	if b := c.buf; len(b) == wireBuffer {
		wireBuffers.Put(&b)
	}
	c.buf, c.big = nil, nil
}

// badConn marks an error after which the connection is out of step with
// the server: database/sql discards the connection.
type badConn struct{ err error }

func (e badConn) Error() string   { return e.err.Error() }
func (e badConn) Unwrap() []error { return []error{e.err, sqldriver.ErrBadConn} }

// fill reads until buf[r:w] holds at least need bytes.
func (c *wireConn) fill(need int) error {
	if c.w-c.r >= need {
		return nil
	}
	if c.r > 0 {
		c.w = copy(c.buf, c.buf[c.r:c.w])
		c.r = 0
	}
	if need > len(c.buf) {
		b := make([]byte, max(need, 2*len(c.buf)))
		copy(b, c.buf[:c.w])
		c.buf = b
	}
	for c.w < need {
		if c.readTimeout > 0 {
			if err := c.conn.SetReadDeadline(time.Now().Add(c.readTimeout)); err != nil {
				return err
			}
		}
		n, err := c.conn.Read(c.buf[c.w:])
		c.w += n
		if err != nil && c.w < need {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return err
		}
	}
	return nil
}

// readPacket returns the next payload, valid until the next call.
func (c *wireConn) readPacket() ([]byte, error) {
	c.big = c.big[:0]
	for {
		if err := c.fill(4); err != nil {
			return nil, err
		}
		h := c.buf[c.r : c.r+4]
		n := int(uint32(h[0]) | uint32(h[1])<<8 | uint32(h[2])<<16)
		if h[3] != c.seq {
			return nil, fmt.Errorf("packet out of order: sequence %d, want %d", h[3], c.seq)
		}
		c.seq++
		if err := c.fill(4 + n); err != nil {
			return nil, err
		}
		p := c.buf[c.r+4 : c.r+4+n]
		c.r += 4 + n
		if n < maxPacket && len(c.big) == 0 {
			if n == 0 {
				return nil, errors.New("empty packet")
			}
			return p, nil
		}
		c.big = append(c.big, p...)
		if n < maxPacket {
			return c.big, nil
		}
	}
}

// writeQuery sends a COM_QUERY.
func (c *wireConn) writeQuery(q string) error {
	if len(q)+1 >= maxPacket {
		return fmt.Errorf("query of %d bytes too long", len(q))
	}
	p := make([]byte, 5+len(q))
	n := len(q) + 1
	p[0], p[1], p[2], p[3], p[4] = byte(n), byte(n>>8), byte(n>>16), 0, comQuery
	copy(p[5:], q)
	if c.writeTimeout > 0 {
		if err := c.conn.SetWriteDeadline(time.Now().Add(c.writeTimeout)); err != nil {
			return err
		}
	}
	c.seq = 1
	_, err := c.conn.Write(p)
	return err
}

// wireRows is the result of a query on the wire.
type wireRows struct {
	c     *wireConn
	kinds []byte // per column
	done  bool
}

// query sends q and reads its column definitions. Errors other than the
// server's leave the connection out of step (badConn).
func (c *wireConn) query(q string, columns int) (*wireRows, error) {
	if err := c.writeQuery(q); err != nil {
		return nil, badConn{err}
	}
	p, err := c.readPacket()
	if err != nil {
		return nil, badConn{err}
	}
	switch p[0] {
	case iERR:
		return nil, errorPacket(p)
	case iOK, iNULL:
		return nil, badConn{fmt.Errorf("unexpected response 0x%02x to a SELECT", p[0])}
	}
	n, m, ok := lenencInt(p)
	// MariaDB's metadata-follows byte may come after the count: 0 means
	// the columns were not sent.
	if !ok || n != uint64(columns) || (len(p) > m && p[m] == 0) {
		return nil, badConn{fmt.Errorf("result of %d columns, want %d", n, columns)}
	}
	r := &wireRows{c: c, kinds: make([]byte, columns)}
	for k := range r.kinds {
		p, err := c.readPacket()
		if err != nil {
			return nil, badConn{err}
		}
		if r.kinds[k], err = parseColumn(p); err != nil {
			return nil, badConn{fmt.Errorf("column %d: %w", k+1, err)}
		}
	}
	if !c.deprecateEOF {
		p, err := c.readPacket()
		if err != nil {
			return nil, badConn{err}
		}
		if p[0] != iEOF || len(p) > 5 {
			return nil, badConn{errors.New("no EOF packet after the column definitions")}
		}
	}
	return r, nil
}

// parseColumn returns the kind of a column definition packet.
func parseColumn(p []byte) (byte, error) {
	pos := 0
	for range 6 { // catalog, schema, table, org_table, name, org_name
		n, m, ok := lenencInt(p[pos:])
		if !ok || uint64(len(p)-pos-m) < n {
			return 0, errors.New("malformed column definition")
		}
		pos += m + int(n)
	}
	// length of the fixed fields, charset (2), length (4), type, flags (2)
	if len(p) < pos+10 {
		return 0, errors.New("malformed column definition")
	}
	return columnKind(p[pos+7], binary.LittleEndian.Uint16(p[pos+8:])), nil
}

// appendRow appends the next row in the text format; io.EOF after the
// last one. Errors other than the server's leave the connection out of
// step (badConn).
func (r *wireRows) appendRow(dst []byte) ([]byte, error) {
	if r.done {
		return dst, io.EOF
	}
	p, err := r.c.readPacket()
	if err != nil {
		return dst, badConn{err}
	}
	switch {
	case p[0] == iEOF && len(p) < maxPacket: // EOF or OK: a row starting with 0xfe is longer
		r.done = true
		return dst, io.EOF
	case p[0] == iERR:
		r.done = true
		return dst, errorPacket(p)
	}
	out, err := appendWireRow(dst, p, r.kinds)
	if err != nil {
		return dst, badConn{err}
	}
	return out, nil
}

// appendWireRow appends a text-protocol row packet in the LOAD DATA text
// format, numbers as the driver path prints them.
func appendWireRow(dst, p []byte, kinds []byte) ([]byte, error) {
	pos := 0
	for k, kind := range kinds {
		if k > 0 {
			dst = append(dst, '\t')
		}
		if pos >= len(p) {
			return dst, fmt.Errorf("row of %d columns, want %d", k, len(kinds))
		}
		if p[pos] == iNULL {
			dst = append(dst, '\\', 'N')
			pos++
			continue
		}
		n, m, ok := lenencInt(p[pos:])
		if !ok || uint64(len(p)-pos-m) < n {
			return dst, fmt.Errorf("column %d: malformed row", k+1)
		}
		v := p[pos+m : pos+m+int(n)]
		pos += m + int(n)
		if kind == kindText {
			dst = AppendField(dst, v)
			continue
		}
		var err error
		if dst, err = appendNumber(dst, v, kind); err != nil {
			return dst, fmt.Errorf("column %d: %w", k+1, err)
		}
	}
	if pos != len(p) {
		return dst, fmt.Errorf("row longer than its %d columns", len(kinds))
	}
	return append(dst, '\n'), nil
}

// appendNumber prints a number as the driver path does (strconv's
// shortest form of the parsed value): canonical integers as they are,
// anything else (ZEROFILL, YEAR, floats) parsed and formatted.
func appendNumber(dst, v []byte, kind byte) ([]byte, error) {
	switch kind {
	case kindInt, kindUint:
		if canonicalInt(v, kind == kindInt) {
			return append(dst, v...), nil
		}
		if kind == kindUint {
			u, err := strconv.ParseUint(string(v), 10, 64)
			return strconv.AppendUint(dst, u, 10), err
		}
		i, err := strconv.ParseInt(string(v), 10, 64)
		return strconv.AppendInt(dst, i, 10), err
	case kindYear:
		i, err := strconv.ParseInt(string(v), 10, 64)
		if i >= 0 && i < 10 {
			dst = append(dst, "000"...)
		}
		return strconv.AppendInt(dst, i, 10), err
	case kindFloat:
		f, err := strconv.ParseFloat(string(v), 32)
		return strconv.AppendFloat(dst, float64(float32(f)), 'g', -1, 32), err
	default:
		f, err := strconv.ParseFloat(string(v), 64)
		return strconv.AppendFloat(dst, f, 'g', -1, 64), err
	}
}

// canonicalInt reports whether v is an integer strconv prints back the
// same: optional minus (when signed), no leading zero, at most 18 digits
// (no overflow).
func canonicalInt(v []byte, signed bool) bool {
	if signed && len(v) > 1 && v[0] == '-' {
		v = v[1:]
		if v[0] == '0' {
			return false // -0
		}
	}
	if len(v) == 0 || len(v) > 18 || (v[0] == '0' && len(v) > 1) {
		return false
	}
	for _, c := range v {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// lenencInt reads a length-encoded integer: its value and size.
func lenencInt(p []byte) (uint64, int, bool) {
	if len(p) == 0 {
		return 0, 0, false
	}
	switch c := p[0]; {
	case c < 0xfb:
		return uint64(c), 1, true
	case c == 0xfc && len(p) >= 3:
		return uint64(binary.LittleEndian.Uint16(p[1:])), 3, true
	case c == 0xfd && len(p) >= 4:
		return uint64(p[1]) | uint64(p[2])<<8 | uint64(p[3])<<16, 4, true
	case c == 0xfe && len(p) >= 9:
		return binary.LittleEndian.Uint64(p[1:]), 9, true
	}
	return 0, 0, false
}

// errorPacket turns an ERR packet into the driver's error, so that
// callers tell errors apart the same way on both paths.
func errorPacket(p []byte) error {
	if len(p) < 3 {
		return badConn{errors.New("malformed error packet")}
	}
	e := &driver.MySQLError{Number: binary.LittleEndian.Uint16(p[1:3])}
	msg := p[3:]
	if len(msg) >= 6 && msg[0] == '#' {
		copy(e.SQLState[:], msg[1:6])
		msg = msg[6:]
	}
	e.Message = string(msg)
	return e
}
