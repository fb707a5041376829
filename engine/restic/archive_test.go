package restic

import (
	"bytes"
	"encoding/binary"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lifeboat-backup/lifeboat/engine/snapshot"
)

type archived struct {
	e       snapshot.Entry
	content []byte // nil: no content
}

func writeArchive(t *testing.T, entries []archived, end bool) []byte {
	t.Helper()
	var b bytes.Buffer
	aw, err := newArchiveWriter(&b)
	require.NoError(t, err)
	for _, a := range entries {
		var r io.Reader
		if a.content != nil {
			r = bytes.NewReader(a.content)
		}
		require.NoError(t, aw.Entry(a.e, r))
	}
	if end {
		require.NoError(t, aw.End(time.Date(2026, 11, 25, 1, 2, 3, 0, time.UTC), map[string]string{"binlog_file": "b.000001"}))
	} else {
		require.NoError(t, aw.w.Flush())
	}
	return b.Bytes()
}

func readArchive(data []byte) ([]archived, *archiveEnd, error) {
	ar, err := newArchiveReader(bytes.NewReader(data))
	if err != nil {
		return nil, nil, err
	}
	var out []archived
	for {
		e, err := ar.Next()
		if err == io.EOF {
			return out, ar.end, nil
		}
		if err != nil {
			return out, nil, err
		}
		c, err := io.ReadAll(ar)
		if err != nil {
			return out, nil, err
		}
		out = append(out, archived{e: *e, content: c})
	}
}

func TestArchiveRoundTrip(t *testing.T) {
	big := bytes.Repeat([]byte("0123456789abcdef"), frameSize/16*2+100) // 2 frames and a bit
	in := []archived{
		{e: snapshot.Entry{Path: "shop", Type: snapshot.TypeDir, Mode: 0o755}},
		{e: snapshot.Entry{Path: "shop/empty.tsv", Type: snapshot.TypeFile}, content: []byte{}},
		{e: snapshot.Entry{Path: "shop/orders.tsv", Type: snapshot.TypeFile, Xattrs: []snapshot.Xattr{{Name: "user.x", Value: []byte{0, 1}}}}, content: big},
		{e: snapshot.Entry{Path: "shop/x.sql", Type: snapshot.TypeFile}, content: []byte("CREATE TABLE x (id int)")},
	}
	data := writeArchive(t, in, true)
	out, end, err := readArchive(data)
	require.NoError(t, err)
	require.Len(t, out, len(in))
	for i := range in {
		assert.Equal(t, in[i].e, out[i].e)
		if in[i].content != nil {
			assert.True(t, bytes.Equal(in[i].content, out[i].content), in[i].e.Path)
		}
	}
	assert.Equal(t, 4, end.Entries)
	assert.Equal(t, int64(len(big)+23), end.Bytes)
	assert.Equal(t, "b.000001", end.Details["binlog_file"])

	// Next without reading content skips it.
	ar, err := newArchiveReader(bytes.NewReader(data))
	require.NoError(t, err)
	var paths []string
	for {
		e, err := ar.Next()
		if err == io.EOF {
			break
		}
		require.NoError(t, err)
		paths = append(paths, e.Path)
	}
	assert.Equal(t, []string{"shop", "shop/empty.tsv", "shop/orders.tsv", "shop/x.sql"}, paths)
}

func TestArchiveBadInput(t *testing.T) {
	good := writeArchive(t, []archived{{e: snapshot.Entry{Path: "a", Type: snapshot.TypeFile}, content: []byte("hello")}}, true)
	record := func(typ byte, payload string) []byte {
		b := []byte{typ}
		b = binary.AppendUvarint(b, uint64(len(payload)))
		return append(b, payload...)
	}
	withEnd := func(body []byte, end string) []byte {
		return append(append([]byte(archiveMagic), body...), record(recEnd, end)...)
	}
	tests := []struct {
		name string
		data []byte
		err  string
	}{
		{"empty", nil, "not a lifeboat archive"},
		{"bad magic", []byte("LIFEBOAT-ARCHIVE-9\n"), "not a lifeboat archive"},
		{"no end record", writeArchive(t, []archived{{e: snapshot.Entry{Path: "a", Type: snapshot.TypeFile}, content: []byte("x")}}, false), "cut short"},
		{"cut in a frame", good[:len(archiveMagic)+30], "cut short"},
		{"data after end", append(bytes.Clone(good), 'H'), "data after the end record"},
		{"unknown record", append([]byte(archiveMagic), record('Q', "x")...), `unknown record type 'Q'`},
		{"bad header", append([]byte(archiveMagic), record(recHeader, "{")...), "entry 1 header"},
		{"count mismatch", withEnd(record(recHeader, `{"path":"a","type":"file"}`), `{"entries":2,"bytes":0}`), "end record counts 2 entries"},
		{"bytes mismatch", withEnd(append(record(recHeader, `{"path":"a","type":"file"}`), record(recData, "xy")...), `{"entries":1,"bytes":3}`), "1 entries, 3 bytes; read 1 entries, 2 bytes"},
		{"bad end", withEnd(nil, "nope"), "end record"},
		{"huge frame", append([]byte(archiveMagic), binary.AppendUvarint([]byte{recData}, frameSize+1)...), "data frame of"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := readArchive(tt.data)
			require.Error(t, err)
			assert.True(t, strings.Contains(err.Error(), tt.err), "%v", err)
		})
	}
}
