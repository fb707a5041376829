package chunker

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"io"
	"math/rand/v2"
	"testing"
	"testing/iotest"
	"unsafe"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// testKey is a fixed key for tests; keyB differs from it in one bit.
var (
	testKey = [32]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}
	keyB    = [32]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 17}
)

// smallParams keep the number of chunks high on small inputs.
var smallParams = Params{Min: 2 << 10, Avg: 8 << 10, Max: 32 << 10}

// randomData returns n pseudo-random bytes, the same for the same seed on
// every platform and Go version (ChaCha8 is a specified generator).
func randomData(seed uint64, n int) []byte {
	var s [32]byte
	s[0] = byte(seed)
	s[1] = byte(seed >> 8)
	b := make([]byte, n)
	_, _ = rand.NewChaCha8(s).Read(b)
	return b
}

// chunkAll returns copies of all chunks of r, and the terminating error
// (nil if the stream ended with io.EOF).
func chunkAll(t testing.TB, c *Chunker) ([][]byte, error) {
	t.Helper()
	var out [][]byte
	for {
		ch, err := c.Next()
		if err == io.EOF {
			require.Nil(t, ch)
			return out, nil
		}
		if err != nil {
			require.Nil(t, ch)
			return out, err
		}
		require.NotEmpty(t, ch)
		out = append(out, bytes.Clone(ch))
	}
}

func sizes(chunks [][]byte) []int {
	s := make([]int, len(chunks))
	for i, c := range chunks {
		s[i] = len(c)
	}
	return s
}

// checkChunks asserts reassembly and size bounds.
func checkChunks(t *testing.T, data []byte, chunks [][]byte, p Params) {
	t.Helper()
	joined := bytes.Join(chunks, nil)
	require.Equal(t, len(data), len(joined), "total chunk length differs from input")
	require.True(t, bytes.Equal(data, joined), "concatenated chunks differ from input")
	for i, ch := range chunks {
		assert.LessOrEqual(t, len(ch), p.Max, "chunk %d too long", i)
		if i < len(chunks)-1 {
			assert.GreaterOrEqual(t, len(ch), p.Min, "chunk %d too short", i)
		}
	}
}

func TestDefaultParams(t *testing.T) {
	p := DefaultParams()
	require.NoError(t, p.Validate())
	assert.Equal(t, Params{Min: 512 << 10, Avg: 1 << 20, Max: 8 << 20}, p)
}

func TestParamsValidate(t *testing.T) {
	tests := []struct {
		name  string
		p     Params
		field string // "" means valid
	}{
		{"default", DefaultParams(), ""},
		{"small", Params{Min: 64, Avg: 128, Max: 129}, ""},
		{"max64MiB", Params{Min: 1 << 20, Avg: 4 << 20, Max: 64 << 20}, ""},
		{"zero", Params{}, "Min"},
		{"minTooSmall", Params{Min: 63, Avg: 128, Max: 256}, "Min"},
		{"minNegative", Params{Min: -1, Avg: 128, Max: 256}, "Min"},
		{"avgEqualsMin", Params{Min: 128, Avg: 128, Max: 256}, "Avg"},
		{"avgBelowMin", Params{Min: 256, Avg: 128, Max: 512}, "Avg"},
		{"avgNotPow2", Params{Min: 64, Avg: 1000, Max: 4096}, "Avg"},
		{"maxEqualsAvg", Params{Min: 64, Avg: 128, Max: 128}, "Max"},
		{"maxBelowAvg", Params{Min: 64, Avg: 256, Max: 128}, "Max"},
		{"maxTooLarge", Params{Min: 1 << 20, Avg: 4 << 20, Max: 64<<20 + 1}, "Max"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.p.Validate()
			if tt.field == "" {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			assert.Contains(t, err.Error(), "Params."+tt.field)
		})
	}
}

func TestNewGear(t *testing.T) {
	a1, a2, b := NewGear(testKey), NewGear(testKey), NewGear(keyB)
	assert.Equal(t, a1, a2, "same key must give the same table")
	assert.NotEqual(t, a1, b, "different keys must give different tables")
	seen := map[uint64]bool{}
	for _, v := range a1 {
		seen[v] = true
	}
	assert.Len(t, seen, 256, "gear entries should be distinct")
	// Known answer: pins the derivation (HKDF-SHA256, info string, byte
	// order), which is part of the repository format.
	z := NewGear([32]byte{})
	assert.Equal(t, goldenGear0, [3]uint64{z[0], z[1], z[255]})
}

func TestChunker(t *testing.T) {
	g := NewGear(testKey)
	tests := []struct {
		name string
		p    Params
		data []byte
	}{
		{"empty", smallParams, nil},
		{"oneByte", smallParams, []byte{42}},
		{"belowMin", smallParams, randomData(1, smallParams.Min-1)},
		{"exactlyMin", smallParams, randomData(2, smallParams.Min)},
		{"exactlyMax", smallParams, randomData(3, smallParams.Max)},
		{"maxPlusOne", smallParams, randomData(4, smallParams.Max+1)},
		{"random1MiB", smallParams, randomData(5, 1<<20)},
		{"zeros1MiB", smallParams, make([]byte, 1<<20)},
		{"minimalParams", Params{Min: 64, Avg: 128, Max: 256}, randomData(6, 100_000)},
		{"defaultRandom20MiB", DefaultParams(), randomData(7, 20<<20)},
		{"defaultZeros20MiB", DefaultParams(), make([]byte, 20<<20)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			chunks, err := chunkAll(t, New(bytes.NewReader(tt.data), g, tt.p))
			require.NoError(t, err)
			checkChunks(t, tt.data, chunks, tt.p)
			if len(tt.data) == 0 {
				assert.Empty(t, chunks)
			}
			if len(tt.data) > 0 && len(tt.data) <= tt.p.Min {
				assert.Len(t, chunks, 1)
			}
		})
	}
}

func TestEOFIsSticky(t *testing.T) {
	c := New(bytes.NewReader(randomData(1, 100)), NewGear(testKey), smallParams)
	ch, err := c.Next()
	require.NoError(t, err)
	require.Len(t, ch, 100)
	for range 3 {
		ch, err = c.Next()
		require.ErrorIs(t, err, io.EOF)
		require.Nil(t, ch)
	}
}

func TestAverageChunkSize(t *testing.T) {
	if testing.Short() {
		t.Skip("64 MiB")
	}
	tests := []struct {
		name string
		p    Params
		seed uint64
	}{
		{"default", DefaultParams(), 10},
		{"default2", DefaultParams(), 11},
		{"small", smallParams, 12},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data := randomData(tt.seed, 64<<20)
			chunks, err := chunkAll(t, New(bytes.NewReader(data), NewGear(testKey), tt.p))
			require.NoError(t, err)
			checkChunks(t, data, chunks, tt.p)
			avg := float64(len(data)) / float64(len(chunks))
			t.Logf("%d chunks, average %.0f bytes (Avg %d)", len(chunks), avg, tt.p.Avg)
			assert.InDelta(t, float64(tt.p.Avg), avg, 0.3*float64(tt.p.Avg))
		})
	}
}

func chunkHashes(chunks [][]byte) map[[32]byte]bool {
	m := make(map[[32]byte]bool, len(chunks))
	for _, c := range chunks {
		m[sha256.Sum256(c)] = true
	}
	return m
}

func TestShiftResistance(t *testing.T) {
	data := randomData(20, 32<<20)
	g := NewGear(testKey)
	tests := []struct {
		name   string
		p      Params
		insert []byte
	}{
		{"default1", DefaultParams(), []byte{0}},
		{"default7", DefaultParams(), []byte("lifeboa")},
		{"small3", smallParams, []byte{1, 2, 3}},
		{"small100", smallParams, randomData(21, 100)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			orig, err := chunkAll(t, New(bytes.NewReader(data), g, tt.p))
			require.NoError(t, err)
			shifted := append(bytes.Clone(tt.insert), data...)
			moved, err := chunkAll(t, New(bytes.NewReader(shifted), g, tt.p))
			require.NoError(t, err)
			checkChunks(t, shifted, moved, tt.p)

			before := chunkHashes(orig)
			shared := 0
			for h := range chunkHashes(moved) {
				if before[h] {
					shared++
				}
			}
			frac := float64(shared) / float64(len(before))
			t.Logf("%d of %d chunks shared (%.1f%%)", shared, len(before), 100*frac)
			assert.Greater(t, frac, 0.9)
		})
	}
}

func TestKeyedBoundaries(t *testing.T) {
	tests := []struct {
		name string
		p    Params
		n    int
	}{
		{"small", smallParams, 4 << 20},
		{"default", DefaultParams(), 32 << 20},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data := randomData(30, tt.n)
			a1, err := chunkAll(t, New(bytes.NewReader(data), NewGear(testKey), tt.p))
			require.NoError(t, err)
			a2, err := chunkAll(t, New(bytes.NewReader(data), NewGear(testKey), tt.p))
			require.NoError(t, err)
			b, err := chunkAll(t, New(bytes.NewReader(data), NewGear(keyB), tt.p))
			require.NoError(t, err)
			assert.Equal(t, sizes(a1), sizes(a2), "same key, same data: same boundaries")
			assert.NotEqual(t, sizes(a1), sizes(b), "different key: different boundaries")
			checkChunks(t, data, b, tt.p)
		})
	}
}

// TestGolden pins the boundaries for a fixed key, params and input: they
// are part of the repository format and must not change.
func TestGolden(t *testing.T) {
	data := randomData(40, 256<<10)
	chunks, err := chunkAll(t, New(bytes.NewReader(data), NewGear([32]byte{}), smallParams))
	require.NoError(t, err)
	assert.Equal(t, goldenSizes, sizes(chunks))
}

func TestReaders(t *testing.T) {
	g := NewGear(testKey)
	data := randomData(50, 3<<20)
	p := Params{Min: 4 << 10, Avg: 16 << 10, Max: 128 << 10}
	want, err := chunkAll(t, New(bytes.NewReader(data), g, p))
	require.NoError(t, err)
	checkChunks(t, data, want, p)

	tests := []struct {
		name string
		r    func() io.Reader
	}{
		{"oneByte", func() io.Reader { return iotest.OneByteReader(bytes.NewReader(data)) }},
		{"half", func() io.Reader { return iotest.HalfReader(bytes.NewReader(data)) }},
		{"dataErr", func() io.Reader { return iotest.DataErrReader(bytes.NewReader(data)) }},
		{"oneByteDataErr", func() io.Reader { return iotest.DataErrReader(iotest.OneByteReader(bytes.NewReader(data))) }},
		{"emptyReads", func() io.Reader { return &stutterReader{r: bytes.NewReader(data)} }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := chunkAll(t, New(tt.r(), g, p))
			require.NoError(t, err)
			assert.Equal(t, sizes(want), sizes(got))
			assert.Equal(t, want, got)
		})
	}
}

// stutterReader returns (0, nil) before every real read.
type stutterReader struct {
	r    io.Reader
	flip bool
}

func (s *stutterReader) Read(p []byte) (int, error) {
	s.flip = !s.flip
	if s.flip {
		return 0, nil
	}
	return s.r.Read(p)
}

type zeroReader struct{}

func (zeroReader) Read([]byte) (int, error) { return 0, nil }

var errBoom = errors.New("boom")

// failAfter returns n bytes of data, then err.
type failAfter struct {
	data []byte
	err  error
}

func (f *failAfter) Read(p []byte) (int, error) {
	if len(f.data) == 0 {
		return 0, f.err
	}
	n := copy(p, f.data)
	f.data = f.data[n:]
	return n, nil
}

func TestReaderError(t *testing.T) {
	g := NewGear(testKey)
	data := randomData(60, 1<<20)
	tests := []struct {
		name string
		r    io.Reader
		want error
	}{
		{"errReader", iotest.ErrReader(errBoom), errBoom},
		{"timeout", iotest.TimeoutReader(iotest.OneByteReader(bytes.NewReader(data))), iotest.ErrTimeout},
		{"afterData", &failAfter{data: data, err: errBoom}, errBoom},
		{"noProgress", zeroReader{}, io.ErrNoProgress},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := New(tt.r, g, smallParams)
			chunks, err := chunkAll(t, c)
			require.ErrorIs(t, err, tt.want)
			// No chunk is returned past the data actually read, and the
			// error is sticky.
			assert.True(t, bytes.HasPrefix(data, bytes.Join(chunks, nil)) || len(chunks) == 0)
			ch, err := c.Next()
			assert.Nil(t, ch)
			assert.ErrorIs(t, err, tt.want)
		})
	}
}

func TestInvalidConfig(t *testing.T) {
	tests := []struct {
		name string
		g    *Gear
		p    Params
		msg  string
	}{
		{"badParams", NewGear(testKey), Params{Min: 1, Avg: 128, Max: 256}, "Params.Min"},
		{"nilGear", nil, smallParams, "nil Gear"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := New(bytes.NewReader([]byte("data")), tt.g, tt.p)
			_, err := c.Next()
			require.ErrorContains(t, err, tt.msg)
			c.Reset(bytes.NewReader([]byte("data")))
			_, err = c.Next()
			require.ErrorContains(t, err, tt.msg, "Reset must not clear a config error")
		})
	}
}

func TestReset(t *testing.T) {
	g := NewGear(testKey)
	d1, d2 := randomData(70, 5<<20), randomData(71, 3<<20)
	p := Params{Min: 16 << 10, Avg: 64 << 10, Max: 512 << 10}
	want1, err := chunkAll(t, New(bytes.NewReader(d1), g, p))
	require.NoError(t, err)
	want2, err := chunkAll(t, New(bytes.NewReader(d2), g, p))
	require.NoError(t, err)

	c := New(bytes.NewReader(d1), g, p)
	_, err = chunkAll(t, c) // grows the buffer to its full size
	require.NoError(t, err)
	require.Len(t, c.buf, bufSize(p))
	c.Reset(bytes.NewReader(d1))
	buf := c.buf
	// Abandon the first stream half-way, after a reader error, then reuse.
	_, err = c.Next()
	require.NoError(t, err)
	c.Reset(&failAfter{data: d2[:100], err: errBoom})
	_, err = chunkAll(t, c)
	require.ErrorIs(t, err, errBoom)

	tests := []struct {
		name string
		data []byte
		want [][]byte
	}{
		{"second", d2, want2},
		{"first", d1, want1},
		{"empty", nil, nil},
		{"firstAgain", d1, want1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c.Reset(bytes.NewReader(tt.data))
			got, err := chunkAll(t, c)
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
			assert.Equal(t, &buf[0], &c.buf[0], "Reset must keep the buffer")
		})
	}
}

// TestBoundedMemory checks the buffer grows to bufSize(p) and stays
// there however long the stream, and chunks alias it (zero-copy) with a
// capped capacity.
func TestBoundedMemory(t *testing.T) {
	p := smallParams
	c := New(io.LimitReader(rand.NewChaCha8([32]byte{9}), 64<<20), NewGear(testKey), p)
	require.Len(t, c.buf, initialBuf)
	var total int
	for {
		ch, err := c.Next()
		if err == io.EOF {
			break
		}
		require.NoError(t, err)
		require.Equal(t, len(ch), cap(ch), "chunk capacity must be capped")
		// The chunk lies inside the internal buffer.
		lo := uintptr(unsafe.Pointer(unsafe.SliceData(c.buf)))
		at := uintptr(unsafe.Pointer(unsafe.SliceData(ch)))
		require.True(t, at >= lo && at+uintptr(len(ch)) <= lo+uintptr(len(c.buf)), "chunk must alias the buffer")
		total += len(ch)
	}
	assert.Equal(t, 64<<20, total)
	assert.Len(t, c.buf, bufSize(p))
}

// TestSmallStreamsStaySmall checks that a Chunker reused for many small
// streams (a backup of small files) keeps its initial buffer instead of
// allocating the 12 MiB a large file needs, and that the doubling buffer
// cuts a large stream as a full-sized one would.
func TestSmallStreamsStaySmall(t *testing.T) {
	g := NewGear(testKey)
	c := New(nil, g, DefaultParams())
	for i := range 100 {
		c.Reset(bytes.NewReader(randomData(uint64(i), 40<<10)))
		_, err := chunkAll(t, c)
		require.NoError(t, err)
	}
	require.Len(t, c.buf, initialBuf)

	big := randomData(99, 40<<20)
	c.Reset(bytes.NewReader(big))
	got, err := chunkAll(t, c)
	require.NoError(t, err)
	require.Len(t, c.buf, bufSize(DefaultParams()))
	full := New(bytes.NewReader(big), g, DefaultParams())
	full.buf = make([]byte, bufSize(DefaultParams()))
	want, err := chunkAll(t, full)
	require.NoError(t, err)
	require.Equal(t, want, got)
}

func FuzzChunker(f *testing.F) {
	f.Add([]byte{}, uint8(0), uint8(0))
	f.Add([]byte("hello, world"), uint8(1), uint8(3))
	f.Add(bytes.Repeat([]byte{0}, 5000), uint8(2), uint8(0))
	f.Add(randomData(80, 10000), uint8(3), uint8(7))
	g := NewGear(testKey)
	f.Fuzz(func(t *testing.T, data []byte, pk, rk uint8) {
		p := []Params{
			{Min: 64, Avg: 128, Max: 256},
			{Min: 100, Avg: 256, Max: 1000},
			{Min: 64, Avg: 512, Max: 4096},
			{Min: 200, Avg: 256, Max: 300},
		}[int(pk)%4]
		var r io.Reader = bytes.NewReader(data)
		if rk&1 != 0 {
			r = iotest.OneByteReader(r)
		}
		if rk&2 != 0 {
			r = iotest.DataErrReader(r)
		}
		if rk&4 != 0 {
			r = iotest.HalfReader(r)
		}
		chunks, err := chunkAll(t, New(r, g, p))
		require.NoError(t, err)
		checkChunks(t, data, chunks, p)
		want, err := chunkAll(t, New(bytes.NewReader(data), g, p))
		require.NoError(t, err)
		assert.Equal(t, sizes(want), sizes(chunks))
	})
}

func BenchmarkChunker(b *testing.B) {
	const size = 64 << 20
	g := NewGear(testKey)
	for _, bm := range []struct {
		name string
		data []byte
	}{
		{"random", randomData(90, size)},
		{"zeros", make([]byte, size)},
	} {
		b.Run(bm.name, func(b *testing.B) {
			r := bytes.NewReader(bm.data)
			c := New(r, g, DefaultParams())
			b.SetBytes(size)
			b.ReportAllocs()
			for b.Loop() {
				r.Reset(bm.data)
				c.Reset(r)
				n := 0
				for {
					_, err := c.Next()
					if err == io.EOF {
						break
					}
					if err != nil {
						b.Fatal(err)
					}
					n++
				}
				b.ReportMetric(float64(size)/float64(n), "B/chunk")
			}
		})
	}
}

// referenceSizes is a naive, whole-buffer, one-byte-at-a-time FastCDC with
// the same conventions as Chunker: the byte at index j ends a chunk of
// length j+1; hashing starts at the last byte of a Min-sized chunk; the
// hard mask applies to lengths < Avg, the easy one to lengths >= Avg.
func referenceSizes(g *Gear, p Params, data []byte) []int {
	maskS, maskL := p.masks()
	var out []int
	for len(data) > 0 {
		n := len(data)
		if n > p.Max {
			n = p.Max
		}
		cut := n
		var fp uint64
		for j := p.Min - 1; j < n; j++ {
			fp = fp<<1 + g[data[j]]
			mask := maskL
			if j+1 < p.Avg {
				mask = maskS
			}
			if fp&mask == 0 {
				cut = j + 1
				break
			}
		}
		out = append(out, cut)
		data = data[cut:]
	}
	return out
}

func TestMatchesReference(t *testing.T) {
	g := NewGear(testKey)
	tests := []struct {
		name string
		p    Params
		data []byte
	}{
		{"small", smallParams, randomData(100, 2<<20)},
		{"minimal", Params{Min: 64, Avg: 128, Max: 200}, randomData(101, 200_000)},
		{"tight", Params{Min: 1000, Avg: 1024, Max: 1030}, randomData(102, 200_000)},
		{"lowEntropy", smallParams, bytes.Repeat([]byte("abcabcabd"), 200_000)},
		{"default", DefaultParams(), randomData(103, 24<<20)},
		// zero runs take the compare-instead-of-hash path
		{"zeroRuns", smallParams, zeroRuns()},
		{"zeroRunsDefault", DefaultParams(), zeroRuns()},
		{"zeroRunsTight", Params{Min: 1000, Avg: 1024, Max: 1030}, zeroRuns()},
		{"allZero", smallParams, make([]byte, 3<<20+17)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := chunkAll(t, New(bytes.NewReader(tt.data), g, tt.p))
			require.NoError(t, err)
			assert.Equal(t, referenceSizes(g, tt.p, tt.data), sizes(got))
		})
	}
}

// zeroRuns mixes random data with zero runs of many lengths, some starting
// right at a chunk boundary, some not.
func zeroRuns() []byte {
	var b []byte
	for i, n := range []int{0, 1, 63, 64, 1000, 1030, 70_000, 1 << 20, 9 << 20, 5, 300_000} {
		b = append(b, randomData(uint64(200+i), 50_000+i*1111)...)
		b = append(b, make([]byte, n)...)
	}
	return b
}
