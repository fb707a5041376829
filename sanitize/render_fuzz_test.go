package sanitize

import (
	"bytes"
	"testing"
	"unicode/utf8"

	"github.com/lifeboat-backup/lifeboat/targets/mysql"
)

// splitRowRef is splitRow before its one-search-per-backslash fast path:
// the reference of FuzzSplitRow.
func splitRowRef(line []byte, out [][]byte, arena []byte) ([][]byte, []byte) {
	if cap(arena) < len(line) {
		arena = make([]byte, 0, len(line))
	}
	for {
		end := bytes.IndexByte(line, '\t')
		last := end < 0
		if last {
			end = len(line)
		}
		f := line[:end]
		switch {
		case len(f) == 2 && f[0] == '\\' && f[1] == 'N':
			out = append(out, nil)
		case bytes.IndexByte(f, '\\') < 0:
			out = append(out, f[:len(f):len(f)])
		default:
			from := len(arena)
			arena = unescape(arena, f)
			out = append(out, arena[from:len(arena):len(arena)])
		}
		if last {
			return out, arena
		}
		line = line[end+1:]
	}
}

// appendLiteralRef is appendLiteral before its eight-bytes-at-a-time fast
// path (the quoting; bit and hex literals are shared): the reference of
// FuzzAppendLiteral.
func appendLiteralRef(dst []byte, k litKind, v []byte) []byte {
	if v == nil {
		return append(dst, "NULL"...)
	}
	switch {
	case k == litBit:
		return appendBitLiteral(dst, v)
	case k == litNumber && isNumber(v):
		return append(dst, v...)
	case k == litBinary || !utf8.Valid(v):
		return appendHexLiteral(dst, v)
	}
	dst = append(dst, '\'')
	start := 0
	for i, c := range v {
		esc := sqlEscape[c]
		if esc == 0 {
			continue
		}
		dst = append(dst, v[start:i]...)
		dst = append(dst, '\\', esc)
		start = i + 1
	}
	dst = append(dst, v[start:]...)
	return append(dst, '\'')
}

// FuzzSplitRow: on any line, splitRow gives the fields of the reference
// (slow) path and leaves the line unchanged; on a row the dump writes
// (mysql.AppendRow of the fuzzed bytes cut at '|', "NULL" as NULL) it
// gives the values back, as mysql.SplitRow does.
func FuzzSplitRow(f *testing.F) {
	for _, s := range []string{"", "a", "a\tb", "\\N", "\\N\t\\N", "a\\tb\tc", "x\\\\\t\\N\ty\\n", "\\", "\t\\", "\\\t",
		"plain\tfields\tonly\there", "a\\0b\t\\Z\tlong field without escapes\tend\\", "a|NULL|b\tc|\n\x00|\\"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		if bytes.IndexByte(line, '\n') < 0 {
			orig := bytes.Clone(line)
			got, _ := splitRow(line, nil, []byte("junk"))
			ref, _ := splitRowRef(line, nil, nil)
			requireFields(t, line, "reference", got, ref)
			if !bytes.Equal(line, orig) {
				t.Fatalf("line changed: %q, was %q", line, orig)
			}
		}
		var vals [][]byte
		for _, v := range bytes.Split(line, []byte("|")) {
			if string(v) == "NULL" {
				v = nil
			}
			vals = append(vals, v)
		}
		row := mysql.AppendRow(nil, vals)
		row = row[:len(row)-1]
		got, _ := splitRow(row, nil, nil)
		requireFields(t, row, "values", got, vals)
		requireFields(t, row, "mysql.SplitRow", got, mysql.SplitRow(row))
	})
}

func requireFields(t *testing.T, line []byte, what string, got, want [][]byte) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%q: %d fields, %s %d", line, len(got), what, len(want))
	}
	for i := range got {
		if (got[i] == nil) != (want[i] == nil) || !bytes.Equal(got[i], want[i]) {
			t.Fatalf("%q: field %d %q, %s %q", line, i, got[i], what, want[i])
		}
	}
}

// FuzzAppendLiteral: appendLiteral writes the bytes of the reference
// path for every literal kind, after any prefix.
func FuzzAppendLiteral(f *testing.F) {
	for _, s := range []string{"", "plain", "it's", "back\\slash", "nul\x00", "\n\r\x1a", "Müller", "\xff\xfe", "12.5", "-1e5",
		"exactly8", "sixteen bytes!!!", "long ascii text, then ü, then a quote ' and \x00", "valid ü then invalid \xc3", "\xe2\x82\xac€€€€€€'"} {
		f.Add([]byte(s), uint8(0), false)
	}
	f.Fuzz(func(t *testing.T, v []byte, kind uint8, null bool) {
		if null {
			v = nil
		}
		k := litKind(kind % 4)
		prefix := []byte("INSERT (")
		got := appendLiteral(bytes.Clone(prefix), k, v)
		want := appendLiteralRef(bytes.Clone(prefix), k, v)
		if !bytes.Equal(got, want) {
			t.Fatalf("kind %d %q: %q, reference %q", k, v, got, want)
		}
	})
}
