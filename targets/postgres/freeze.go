package postgres

import (
	"bytes"
	"errors"
	"strings"
)

// FreezeCopy rewrites the table of contents at the start of a custom
// archive (head, as ReadTableTOC holds it) so that each table's COPY is
// preceded by TRUNCATE ONLY of the table and loads WITH (FREEZE): rows
// written frozen and their pages all-visible, so neither the index builds
// right after nor the first readers and VACUUM visit them again to set
// hint bits. COPY FREEZE needs the table created or truncated in the same
// transaction: restore it with pg_restore --single-transaction, and only
// into a table this restore created (a table archive's, after pre-data).
// ok is false, and head is returned as it is, when the archive's format
// version is not one this reader knows (1.14: pg_dump 12 to 15, 1.15:
// 16) or the table of contents does not parse.
func FreezeCopy(head []byte) (out []byte, ok bool) {
	r := &archReader{b: head}
	out, err := r.freeze()
	if err != nil {
		return head, false
	}
	return out, true
}

var errArchive = errors.New("archive: unexpected format")

// archReader reads the header and table of contents of a pg_dump custom
// archive (pg_backup_archiver.c: WriteHead, WriteToc; pg_backup_custom.c:
// the data offset after each entry).
type archReader struct {
	b       []byte
	pos     int
	intSize int
	offSize int
}

func (r *archReader) bytes(n int) ([]byte, error) {
	if n < 0 || r.pos+n > len(r.b) {
		return nil, errArchive
	}
	p := r.b[r.pos : r.pos+n]
	r.pos += n
	return p, nil
}

// int reads a sign byte and intSize little-endian bytes.
func (r *archReader) int() (int, error) {
	p, err := r.bytes(1 + r.intSize)
	if err != nil {
		return 0, err
	}
	v := 0
	for i := r.intSize; i >= 1; i-- {
		v = v<<8 | int(p[i])
	}
	if p[0] != 0 {
		v = -v
	}
	return v, nil
}

// str reads a length (-1: NULL) and that many bytes.
func (r *archReader) str() (string, error) {
	n, err := r.int()
	if err != nil || n < 0 {
		return "", err
	}
	p, err := r.bytes(n)
	return string(p), err
}

func (r *archReader) freeze() ([]byte, error) {
	magic, err := r.bytes(5)
	if err != nil || string(magic) != "PGDMP" {
		return nil, errArchive
	}
	v, err := r.bytes(6) // major, minor, revision, intSize, offSize, format
	if err != nil || v[0] != 1 || (v[1] != 14 && v[1] != 15) || v[3] < 1 || v[3] > 8 || v[4] < 1 || v[4] > 8 || v[5] != 1 {
		return nil, errArchive
	}
	minor := v[1]
	r.intSize, r.offSize = int(v[3]), int(v[4])
	if minor >= 15 {
		_, err = r.bytes(1) // compression algorithm
	} else {
		_, err = r.int() // compression level
	}
	if err != nil {
		return nil, err
	}
	for range 7 { // creation time: sec, min, hour, mday, mon, year, isdst
		if _, err := r.int(); err != nil {
			return nil, err
		}
	}
	for range 3 { // database name, server version, pg_dump version
		if _, err := r.str(); err != nil {
			return nil, err
		}
	}
	count, err := r.int()
	if err != nil || count < 0 {
		return nil, errArchive
	}
	var out bytes.Buffer
	last := 0
	for range count {
		if _, err := r.int(); err != nil { // dump ID
			return nil, err
		}
		if _, err := r.int(); err != nil { // has data
			return nil, err
		}
		var f [5]string // table OID, OID, tag, desc; then namespace
		for i := range 4 {
			if f[i], err = r.str(); err != nil {
				return nil, err
			}
		}
		if _, err := r.int(); err != nil { // section
			return nil, err
		}
		for range 2 { // definition, drop statement
			if _, err := r.str(); err != nil {
				return nil, err
			}
		}
		copyStart := r.pos
		copyStmt, err := r.str()
		if err != nil {
			return nil, err
		}
		copyEnd := r.pos
		if f[4], err = r.str(); err != nil {
			return nil, err
		}
		for range 4 { // tablespace, table access method, owner, "false" (WITH OIDS)
			if _, err := r.str(); err != nil {
				return nil, err
			}
		}
		for { // dependencies, up to a NULL
			n, err := r.int()
			if err != nil {
				return nil, err
			}
			if n < 0 {
				break
			}
			if _, err := r.bytes(n); err != nil {
				return nil, err
			}
		}
		if _, err := r.bytes(1 + r.offSize); err != nil { // data state and offset
			return nil, err
		}
		if f[3] != "TABLE DATA" || !strings.HasPrefix(copyStmt, "COPY ") || !strings.HasSuffix(copyStmt, " FROM stdin;\n") {
			continue
		}
		stmt := "TRUNCATE ONLY " + QuoteIdent(f[4]) + "." + QuoteIdent(f[2]) + ";\n" +
			strings.TrimSuffix(copyStmt, ";\n") + " WITH (FREEZE);\n"
		out.Write(r.b[last:copyStart])
		r.writeStr(&out, stmt)
		last = copyEnd
	}
	out.Write(r.b[last:])
	return out.Bytes(), nil
}

// writeStr writes s as str reads it.
func (r *archReader) writeStr(w *bytes.Buffer, s string) {
	w.WriteByte(0)
	n := len(s)
	for range r.intSize {
		w.WriteByte(byte(n))
		n >>= 8
	}
	w.WriteString(s)
}
