package repo

import (
	"bytes"
	"fmt"
	"sync"

	"github.com/klauspost/compress/zstd"
)

func compressionLevel(name string) (zstd.EncoderLevel, error) {
	switch name {
	case "", "fastest":
		return zstd.SpeedFastest, nil
	case "default":
		return zstd.SpeedDefault, nil
	case "better":
		return zstd.SpeedBetterCompression, nil
	case "off":
		return 0, nil
	}
	return 0, fmt.Errorf("unknown compression %q (want fastest, default, better or off)", name)
}

// compressor compresses blobs with a pool of single-threaded zstd encoders,
// so concurrent callers each use their own core.
type compressor struct {
	level zstd.EncoderLevel // 0: off
	pool  sync.Pool
}

func newCompressor(level zstd.EncoderLevel) *compressor {
	c := &compressor{level: level}
	c.pool.New = func() any {
		e, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(level), zstd.WithEncoderConcurrency(1),
			zstd.WithLowerEncoderMem(true), zstd.WithZeroFrames(true),
			// no xxhash per frame: every blob is verified by its BLAKE3 ID
			zstd.WithEncoderCRC(false))
		if err != nil {
			panic(err) // only on invalid options
		}
		return e
	}
	return c
}

// sampleSize is how much of a large blob is test-compressed first: content
// within a chunk is nearly always of one kind, so media, archives and
// encrypted data are recognized without compressing them. 16 KiB: the
// trial is pure overhead on compressible data (database dumps), 1.6% of a
// 1 MiB chunk (64 KiB cost 3-7% of a MySQL backup's CPU); zstd itself
// passes random data at ~4 GB/s, so a smaller sample loses little there
// (BenchmarkCompress).
const sampleSize = 16 << 10

// edgeSize is how much of each end of a blob is checked for zeros: a blob
// that starts or ends with a zero run (a volume block where data meets a
// hole, a preallocated tail) is compressed in full even when its middle
// does not compress, so the zeros are not stored.
const edgeSize = 4 << 10

// compress appends the compressed form of src to dst[:0] and reports whether
// it is worth keeping; data that does not shrink by at least 1/32 is stored raw.
func (c *compressor) compress(dst, src []byte) ([]byte, bool) {
	if c.level == 0 || len(src) < 64 {
		return dst[:0], false
	}
	e := c.pool.Get().(*zstd.Encoder)
	defer c.pool.Put(e)
	if len(src) >= 4*sampleSize {
		sample := src[len(src)/2-sampleSize/2 : len(src)/2+sampleSize/2]
		if d := e.EncodeAll(sample, dst[:0]); len(d) >= len(sample)-len(sample)/32 && !zeroEdge(src) {
			return d[:0], false
		}
	}
	dst = e.EncodeAll(src, dst[:0])
	if len(dst) >= len(src)-len(src)/32 {
		return dst[:0], false
	}
	return dst, true
}

var zeroEdgeBlock [edgeSize]byte

// zeroEdge reports whether the first or the last edgeSize bytes of p are all
// zero (p is longer than 2*edgeSize).
func zeroEdge(p []byte) bool {
	return (p[0] == 0 && bytes.Equal(p[:edgeSize], zeroEdgeBlock[:])) ||
		(p[len(p)-1] == 0 && bytes.Equal(p[len(p)-edgeSize:], zeroEdgeBlock[:]))
}

var decoder = func() *zstd.Decoder {
	d, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(0), zstd.WithDecoderMaxMemory(1<<30),
		zstd.IgnoreChecksum(true))
	if err != nil {
		panic(err)
	}
	return d
}()

// decompress appends the decompression of src to dst[:0]; rawLen is the
// expected size.
func decompress(dst, src []byte, rawLen int) ([]byte, error) {
	if cap(dst) < rawLen {
		dst = make([]byte, 0, rawLen)
	}
	out, err := decoder.DecodeAll(src, dst[:0])
	if err != nil {
		return nil, err
	}
	if len(out) != rawLen {
		return nil, fmt.Errorf("decompressed %d bytes, want %d", len(out), rawLen)
	}
	return out, nil
}
