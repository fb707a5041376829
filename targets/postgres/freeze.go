package postgres

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
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
	if n < 0 {
		return nil, errArchive
	}
	if r.pos+n > len(r.b) {
		return nil, errShort
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

// errShort: the table of contents goes on past the bytes at hand.
var errShort = errors.New("archive: table of contents incomplete")

// tocEntry is one item of an archive's table of contents.
type tocEntry struct {
	id                 int
	tableOID, oid      string
	tag, desc          string
	namespace, owner   string
	copyStmt           string
	copyStart, copyEnd int // where copyStmt is in the archive (as str reads it)
}

// toc reads the header and the table of contents: its entries, then
// r.pos is the end of the table of contents. It fails with errArchive
// on an archive whose format version this reader does not know (1.14:
// pg_dump 12 to 15, 1.15: 16) and with errShort when the bytes end
// within the table of contents.
func (r *archReader) toc() ([]tocEntry, error) {
	magic, err := r.bytes(5)
	if err != nil && !strings.HasPrefix("PGDMP", string(r.b)) || err == nil && string(magic) != "PGDMP" {
		return nil, errArchive
	}
	if err != nil {
		return nil, err
	}
	v, err := r.bytes(6) // major, minor, revision, intSize, offSize, format
	if err != nil {
		return nil, err
	}
	if v[0] != 1 || (v[1] != 14 && v[1] != 15) || v[3] < 1 || v[3] > 8 || v[4] < 1 || v[4] > 8 || v[5] != 1 {
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
	if err != nil {
		return nil, err
	}
	if count < 0 {
		return nil, errArchive
	}
	var entries []tocEntry
	for range count {
		var e tocEntry
		if e.id, err = r.int(); err != nil { // dump ID
			return nil, err
		}
		if _, err := r.int(); err != nil { // has data
			return nil, err
		}
		for _, f := range []*string{&e.tableOID, &e.oid, &e.tag, &e.desc} {
			if *f, err = r.str(); err != nil {
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
		e.copyStart = r.pos
		if e.copyStmt, err = r.str(); err != nil {
			return nil, err
		}
		e.copyEnd = r.pos
		if e.namespace, err = r.str(); err != nil {
			return nil, err
		}
		for _, f := range []*string{nil, nil, &e.owner, nil} { // tablespace, table access method, owner, "false" (WITH OIDS)
			s, err := r.str()
			if err != nil {
				return nil, err
			}
			if f != nil {
				*f = s
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
		entries = append(entries, e)
	}
	return entries, nil
}

func (r *archReader) freeze() ([]byte, error) {
	entries, err := r.toc()
	if err != nil {
		return nil, err
	}
	var out bytes.Buffer
	last := 0
	for _, e := range entries {
		if e.desc != "TABLE DATA" || !strings.HasPrefix(e.copyStmt, "COPY ") || !strings.HasSuffix(e.copyStmt, " FROM stdin;\n") {
			continue
		}
		stmt := "TRUNCATE ONLY " + QuoteIdent(e.namespace) + "." + QuoteIdent(e.tag) + ";\n" +
			strings.TrimSuffix(e.copyStmt, ";\n") + " WITH (FREEZE);\n"
		out.Write(r.b[last:e.copyStart])
		r.writeStr(&out, stmt)
		last = e.copyEnd
	}
	out.Write(r.b[last:])
	return out.Bytes(), nil
}

// listSkip are the items pg_restore --list leaves out (restored always,
// or only with --create).
var listSkip = []string{"ENCODING", "STDSTRINGS", "SEARCHPATH", "DATABASE", "DATABASE PROPERTIES"}

// ListTOC lists the table of contents of a custom archive whose first
// bytes are head as pg_restore --list does without options ("ID;
// TABLE-OID OID KIND SCHEMA NAME OWNER" per item, no comment lines), for
// pg_restore --use-list and SplitTOC, without starting pg_restore. ok is
// false when head ends within the table of contents (known: more bytes
// may tell) or the archive's format version is not one this reader knows
// (1.14, 1.15) or does not parse (known is false: ask pg_restore --list).
func ListTOC(head []byte) (list []byte, ok, known bool) {
	r := &archReader{b: head}
	entries, err := r.toc()
	if err != nil {
		return nil, false, errors.Is(err, errShort)
	}
	var b bytes.Buffer
	for _, e := range entries {
		if slices.Contains(listSkip, e.desc) {
			continue
		}
		ns := e.namespace
		if ns == "" {
			ns = "-"
		}
		fmt.Fprintf(&b, "%d; %s %s %s %s %s %s\n", e.id, e.tableOID, e.oid, e.desc, oneLine(ns), oneLine(e.tag), oneLine(e.owner))
	}
	return b.Bytes(), true, true
}

// oneLine replaces line breaks, as pg_restore --list does in names.
func oneLine(s string) string { return lineBreaks.Replace(s) }

var lineBreaks = strings.NewReplacer("\n", " ", "\r", " ")

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
