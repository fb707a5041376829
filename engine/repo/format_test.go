package repo

import (
	"encoding/binary"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lifeboat-backup/lifeboat/engine/snapshot"
)

// samplePacks returns packs with blobs of both types, compressed and not,
// and values that need multi-byte varints.
func samplePacks() []PackInfo {
	id := func(b byte) snapshot.ID {
		var x snapshot.ID
		for i := range x {
			x[i] = b + byte(i)
		}
		return x
	}
	return []PackInfo{
		{ID: id(1), Size: 16 << 20, Hash: [32]byte(id(2)), Blobs: []BlobInfo{
			{Type: DataBlob, ID: id(3), Offset: 0, Length: 1000, RawLength: 4000, Compressed: true},
			{Type: DataBlob, ID: id(4), Offset: 1000, Length: 1 << 20, RawLength: 1 << 20},
			{Type: DataBlob, ID: id(5), Offset: 1<<20 + 1000, Length: 1<<32 - 1, RawLength: 1<<32 - 1},
		}},
		{ID: id(6), Size: 300, Hash: [32]byte(id(7)), Blobs: []BlobInfo{
			{Type: TreeBlob, ID: id(8), Offset: 0, Length: 200, RawLength: 900, Compressed: true},
		}},
		{ID: id(9), Size: 1, Hash: [32]byte(id(10)), Blobs: []BlobInfo{}},
	}
}

func TestIndexRoundTrip(t *testing.T) {
	tests := []struct {
		name  string
		packs []PackInfo
	}{
		{"empty", []PackInfo{}},
		{"one pack", samplePacks()[:1]},
		{"several", samplePacks()},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := decodeIndex(encodeIndex(tc.packs))
			require.NoError(t, err)
			assert.Equal(t, tc.packs, got)
		})
	}
}

func TestDecodeIndexEveryTruncation(t *testing.T) {
	full := encodeIndex(samplePacks())
	for n := 0; n < len(full); n++ {
		var err error
		require.NotPanics(t, func() { _, err = decodeIndex(full[:n]) }, "truncated to %d bytes", n)
		require.Error(t, err, "an index truncated to %d of %d bytes must not decode", n, len(full))
	}
	// And one byte too many.
	_, err := decodeIndex(append(full, 0))
	require.ErrorContains(t, err, "trailing")
}

func TestDecodeIndexBad(t *testing.T) {
	valid := encodeIndex(samplePacks())
	hugeBlobs := binary.AppendUvarint([]byte(indexMagic), 1)
	hugeBlobs = append(hugeBlobs, make([]byte, 64)...)
	hugeBlobs = binary.AppendUvarint(hugeBlobs, 100)
	hugeBlobs = binary.AppendUvarint(hugeBlobs, 1<<60)
	outOfRange := binary.AppendUvarint([]byte(indexMagic), 1)
	outOfRange = append(outOfRange, make([]byte, 64)...)
	outOfRange = binary.AppendUvarint(outOfRange, 100)
	outOfRange = binary.AppendUvarint(outOfRange, 1)
	outOfRange = append(outOfRange, byte(DataBlob), 0)
	outOfRange = append(outOfRange, make([]byte, 32)...)
	outOfRange = binary.AppendUvarint(outOfRange, 1<<32) // offset > uint32
	outOfRange = binary.AppendUvarint(outOfRange, 1)
	outOfRange = binary.AppendUvarint(outOfRange, 1)
	tests := []struct {
		name string
		data []byte
		want string
	}{
		{"nil", nil, "bad magic"},
		{"wrong magic", append([]byte("LBIDX002"), valid[8:]...), "bad magic"},
		{"pack count larger than data", binary.AppendUvarint([]byte(indexMagic), 1<<40), "claims"},
		{"blob count larger than data", hugeBlobs, "claims"},
		{"value beyond uint32", outOfRange, "out of range"},
		{"overlong varint", append([]byte(indexMagic), 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff), "truncated"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := decodeIndex(tc.data)
			require.ErrorContains(t, err, tc.want)
		})
	}
}

func TestPackHeaderRoundTrip(t *testing.T) {
	entries := samplePacks()[0].Blobs[:2]
	body := make([]byte, 1000+1<<20)
	plain := append(body, encodePackHeader(entries)...)
	got, err := parsePackHeader(plain)
	require.NoError(t, err)
	assert.Equal(t, entries, got)

	empty, err := parsePackHeader(encodePackHeader(nil))
	require.NoError(t, err)
	assert.Empty(t, empty)
}

func TestParsePackHeaderBad(t *testing.T) {
	entry := BlobInfo{Type: DataBlob, ID: snapshot.ID{1}, Offset: 0, Length: 10, RawLength: 10}
	good := append(make([]byte, 10), encodePackHeader([]BlobInfo{entry})...)
	withLen := func(hl uint32) []byte {
		p := append([]byte(nil), good...)
		binary.BigEndian.PutUint32(p[len(p)-packTrailerLen:], hl)
		return p
	}
	pastData := append(make([]byte, 5), encodePackHeader([]BlobInfo{entry})...)
	tests := []struct {
		name string
		data []byte
		want string
	}{
		{"empty", nil, "trailer missing"},
		{"short", []byte("PACK01"), "trailer missing"},
		{"bad magic", append(good[:len(good)-1:len(good)-1], 'X'), "trailer missing"},
		{"length not a multiple of the entry size", withLen(packEntrySize + 1), "invalid"},
		{"length beyond the pack", withLen(packEntrySize * 2), "invalid"},
		{"huge length", withLen(1<<32 - 1), "invalid"},
		{"blob past the data", pastData, "past the pack data"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var err error
			require.NotPanics(t, func() { _, err = parsePackHeader(tc.data) })
			require.ErrorContains(t, err, tc.want)
		})
	}
	// Every truncation of a valid pack fails (the trailer is at the end).
	for n := range len(good) {
		_, err := parsePackHeader(good[:n])
		require.Error(t, err, "pack truncated to %d bytes", n)
	}
}

func FuzzDecodeIndex(f *testing.F) {
	f.Add(encodeIndex(samplePacks()))
	f.Add(encodeIndex(nil))
	f.Add([]byte(indexMagic))
	f.Add([]byte("garbage"))
	f.Add(binary.AppendUvarint([]byte(indexMagic), 1<<40))
	f.Fuzz(func(t *testing.T, data []byte) {
		packs, err := decodeIndex(data)
		if err != nil {
			return
		}
		// What decodes re-encodes to the same bytes (the format is canonical
		// except for non-minimal varints and flag bits, so compare decoded).
		again, err := decodeIndex(encodeIndex(packs))
		if err != nil {
			t.Fatalf("re-encoded index does not decode: %v", err)
		}
		if len(again) != len(packs) {
			t.Fatalf("round trip changed the pack count: %d != %d", len(again), len(packs))
		}
	})
}

func FuzzParsePackHeader(f *testing.F) {
	entry := BlobInfo{Type: DataBlob, ID: snapshot.ID{1}, Offset: 0, Length: 10, RawLength: 10}
	f.Add(append(make([]byte, 10), encodePackHeader([]BlobInfo{entry})...))
	f.Add(encodePackHeader(nil))
	f.Add([]byte(packMagic))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 'L', 'B', 'P', 'A', 'C', 'K', '0', '1'})
	f.Fuzz(func(t *testing.T, data []byte) {
		entries, err := parsePackHeader(data)
		if err != nil {
			return
		}
		for _, e := range entries {
			if int64(e.Offset)+int64(e.Length) > int64(len(data)) {
				t.Fatalf("blob %s extends past the pack: %d+%d > %d", e.ID.Short(), e.Offset, e.Length, len(data))
			}
		}
	})
}
