package chunker

import (
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/bits"

	"github.com/lifeboat-backup/lifeboat/internal/zeros"
)

const (
	// maxMax is the largest accepted Params.Max (64 MiB).
	maxMax = 64 << 20
	// minMin is the smallest accepted Params.Min.
	minMin = 64
	// readBlock is how much free space, beyond Max, the buffer has for
	// reads: the buffer is Max + min(readBlock, max(Max, minReadBlock)).
	readBlock    = 4 << 20
	minReadBlock = 64 << 10
	// initialBuf is the buffer a Chunker starts with; it doubles up to
	// bufSize as a stream needs.
	initialBuf = 64 << 10
	// normLevel is the FastCDC normalization level: the mask before Avg has
	// log2(Avg)+normLevel bits, the mask after Avg log2(Avg)-normLevel.
	normLevel = 2
	// maxEmptyReads is how many consecutive (0, nil) reads are tolerated
	// before Next gives up with io.ErrNoProgress.
	maxEmptyReads = 100
	// gearInfo is the HKDF info string for the gear table. Changing it
	// changes every chunk boundary: it is part of the repository format.
	gearInfo = "lifeboat chunker gear v1"
)

// Params are the chunk size bounds, in bytes. Every chunk a Chunker returns
// has Min <= len <= Max, except the final chunk of a stream, which may be
// shorter than Min. Avg is the normal size of FastCDC: the point where the
// cut condition switches from the harder to the easier mask. Params are part
// of the repository format: changing them changes the chunk boundaries.
type Params struct {
	Min int `json:"min"`
	Avg int `json:"avg"`
	Max int `json:"max"`
}

// DefaultParams returns Min 512 KiB, Avg 1 MiB, Max 8 MiB.
func DefaultParams() Params {
	return Params{Min: 512 << 10, Avg: 1 << 20, Max: 8 << 20}
}

// Validate reports whether p is usable: Min >= 64, Min < Avg < Max, Avg a
// power of two and Max <= 64 MiB. The error names the offending field.
func (p Params) Validate() error {
	switch {
	case p.Min < minMin:
		return fmt.Errorf("chunker: Params.Min = %d, must be >= %d", p.Min, minMin)
	case p.Avg <= p.Min:
		return fmt.Errorf("chunker: Params.Avg = %d, must be > Min (%d)", p.Avg, p.Min)
	case p.Avg&(p.Avg-1) != 0:
		return fmt.Errorf("chunker: Params.Avg = %d, must be a power of two", p.Avg)
	case p.Max <= p.Avg:
		return fmt.Errorf("chunker: Params.Max = %d, must be > Avg (%d)", p.Max, p.Avg)
	case p.Max > maxMax:
		return fmt.Errorf("chunker: Params.Max = %d, must be <= %d", p.Max, maxMax)
	}
	return nil
}

// masks returns the FastCDC masks: maskS (harder, used before Avg) has
// log2(Avg)+2 bits set and maskL (easier, from Avg on) log2(Avg)-2 bits.
// The bits are the top bits of the 64-bit fingerprint: bit k of the gear
// hash depends on the last k+1 bytes, so the top bits give the widest
// window (at least 64-(log2(Avg)+2)+1 bytes), which is what FastCDC's
// "padded" masks aim for.
func (p Params) masks() (maskS, maskL uint64) {
	b := bits.TrailingZeros64(uint64(p.Avg))
	maskS = ^uint64(0) << (64 - (b + normLevel))
	maskL = ^uint64(0) << (64 - (b - normLevel))
	return maskS, maskL
}

// bufSize is the Chunker's buffer size for p: Max plus room for big reads.
func bufSize(p Params) int {
	return p.Max + min(readBlock, max(p.Max, minReadBlock))
}

// Gear is the 256-entry gear table of the rolling hash. It is derived from
// a secret key (see NewGear) so that chunk boundaries, and hence chunk
// sizes, are not a function of the content alone. A Gear is read-only after
// creation and may be shared by any number of Chunkers and goroutines.
type Gear [256]uint64

// NewGear derives the gear table from a 32-byte secret with HKDF-SHA256
// (RFC 5869; empty salt, info "lifeboat chunker gear v1"): the 2048 output
// bytes are read as 256 little-endian uint64 values. The derivation is part
// of the repository format and must never change for a given key.
func NewGear(key [32]byte) *Gear {
	out, err := hkdf.Key(sha256.New, key[:], nil, gearInfo, 256*8)
	if err != nil {
		// Only possible for keyLength > 255*32 or a FIPS-mode restriction
		// on short keys; neither applies to a fixed 32-byte key and 2048
		// bytes of output.
		panic("chunker: HKDF: " + err.Error())
	}
	g := new(Gear)
	for i := range g {
		g[i] = binary.LittleEndian.Uint64(out[8*i:])
	}
	return g
}

// Chunker splits a stream into content-defined chunks (FastCDC with
// normalized chunking and a keyed gear table). It holds one buffer that
// starts at 64 KiB and doubles while a stream needs more, up to
// Max + min(4 MiB, max(Max, 64 KiB)) bytes (12 MiB with DefaultParams),
// however long the stream: a backup of small files never touches the
// full size. A Chunker is not safe for concurrent use.
type Chunker struct {
	r   io.Reader
	g   *Gear
	p   Params
	err error // sticky: invalid params, reader error

	maskS, maskL uint64

	buf        []byte
	start, end int  // unconsumed data is buf[start:end]
	eof        bool // r returned io.EOF

	// Resumable scan state of the chunk starting at buf[start]: the next
	// byte to hash is buf[start+pos], with fingerprint fp so far.
	pos int
	fp  uint64

	// zeroCut is the length of a chunk that starts with a run of zeros at
	// least that long (sparse images, preallocated files): the same for
	// every such chunk, so it is computed once (0: not yet, -1: computing).
	zeroCut int
}

// zeroCutLen returns the cut of an all-zero chunk, scanning Max zero bytes
// the first time: the gear hash of a zero run depends only on its length,
// so every chunk that starts with that many zeros is cut there.
func (c *Chunker) zeroCutLen() int {
	if c.zeroCut == 0 {
		c.zeroCut = -1
		pos, fp := c.pos, c.fp
		c.resetScan()
		n, _ := c.cut(make([]byte, c.p.Max))
		c.pos, c.fp = pos, fp
		c.zeroCut = n
	}
	return c.zeroCut
}

// New returns a Chunker that reads from r and cuts with gear table g and
// params p. If p is invalid or g is nil, New does not fail: every call to
// Next returns the error instead (call p.Validate first to report it early).
func New(r io.Reader, g *Gear, p Params) *Chunker {
	c := &Chunker{g: g, p: p}
	if err := p.Validate(); err != nil {
		c.err = err
	} else if g == nil {
		c.err = errors.New("chunker: nil Gear")
	} else {
		c.maskS, c.maskL = p.masks()
		c.buf = make([]byte, min(initialBuf, bufSize(p)))
	}
	c.Reset(r)
	return c
}

// Reset makes c chunk the stream r from its beginning, keeping the gear
// table, the params and the buffer. A sticky reader error is cleared; an
// invalid-params error is not. Slices previously returned by Next become
// invalid.
func (c *Chunker) Reset(r io.Reader) {
	c.r = r
	if c.buf != nil { // valid params and gear
		c.err = nil
	}
	c.start, c.end = 0, 0
	c.eof = false
	c.resetScan()
}

func (c *Chunker) resetScan() {
	// The first byte hashed is the last byte of a Min-sized chunk, so the
	// shortest content-defined chunk is exactly Min bytes long.
	c.pos = c.p.Min - 1
	c.fp = 0
}

// Next returns the next chunk of the stream. The chunk aliases the
// Chunker's buffer (no copy is made): it is valid only until the next call
// to Next or Reset, and the caller must copy it to keep it. At the end of
// the stream Next returns nil, io.EOF; an empty stream yields io.EOF at
// once. If the reader fails, Next returns nil and that error (chunks not yet
// returned are dropped, so a truncated stream never yields a short chunk
// that looks final) and keeps returning it until Reset.
func (c *Chunker) Next() ([]byte, error) {
	if c.err != nil {
		return nil, c.err
	}
	emptyReads := 0
	for {
		data := c.buf[c.start:c.end]
		if n, ok := c.cut(data); ok {
			return c.emit(n), nil
		}
		if c.eof {
			if len(data) == 0 {
				return nil, io.EOF
			}
			return c.emit(len(data)), nil
		}
		// No cut point in the buffered data and the stream goes on: read
		// more. The pending chunk is shorter than Max (else cut would have
		// cut it), so in a full-sized buffer compaction frees at least the
		// read block; a smaller one doubles (moving the data to its start).
		if c.end == len(c.buf) {
			buf := c.buf
			if full := bufSize(c.p); len(buf) < full {
				buf = make([]byte, min(2*len(buf), full))
			}
			c.end = copy(buf, data)
			c.start = 0
			c.buf = buf
		}
		n, err := c.r.Read(c.buf[c.end:])
		if n < 0 || n > len(c.buf)-c.end {
			c.err = errors.New("chunker: reader returned invalid count")
			return nil, c.err
		}
		c.end += n
		switch {
		case err == io.EOF:
			c.eof = true
		case err != nil:
			c.err = err
			return nil, err
		case n == 0:
			emptyReads++
			if emptyReads >= maxEmptyReads {
				c.err = io.ErrNoProgress
				return nil, c.err
			}
		default:
			emptyReads = 0
		}
	}
}

// emit consumes and returns the next n buffered bytes as a chunk, capped so
// that an append by the caller cannot overwrite the buffer.
func (c *Chunker) emit(n int) []byte {
	s := c.start
	c.start += n
	c.resetScan()
	return c.buf[s : s+n : s+n]
}

// cut looks for the end of the chunk that starts at data[0], continuing the
// scan where the previous call on the same chunk stopped. It returns the
// chunk length and true if the chunk ends within data (a content-defined
// cut, or Max), or false if more data is needed.
func (c *Chunker) cut(data []byte) (int, bool) {
	// Zero runs: at a fresh chunk that starts with zeros, compare instead
	// of hashing (memcmp is ~10x faster than the gear scan); the cut is
	// the same the scan would find.
	if c.pos == c.p.Min-1 && c.fp == 0 && c.zeroCut >= 0 && len(data) > 0 && data[0] == 0 {
		if zc := c.zeroCutLen(); len(data) >= zc && zeros.All(data[:zc]) {
			return zc, true
		}
	}
	n := min(len(data), c.p.Max)
	i, fp := c.pos, c.fp
	// Hard mask for cuts that give chunks shorter than Avg: the byte at
	// index j ends a chunk of length j+1.
	if lim := min(n, c.p.Avg-1); i < lim {
		k, f := scan(c.g, data[i:lim], fp, c.maskS)
		if k >= 0 {
			return i + k + 1, true
		}
		i, fp = lim, f
	}
	// Easy mask from Avg on, up to Max.
	if i >= c.p.Avg-1 && i < n {
		k, f := scan(c.g, data[i:n], fp, c.maskL)
		if k >= 0 {
			return i + k + 1, true
		}
		i, fp = n, f
	}
	if n == c.p.Max {
		return n, true
	}
	c.pos, c.fp = i, fp
	return 0, false
}

// scan runs the gear hash fp = fp<<1 + g[b] over data and returns the index
// of the first byte after which fp&mask == 0, with that fingerprint, or -1
// and the fingerprint after the last byte.
//
// It hashes two bytes per step, after FastCDC 2020's "rolling two bytes":
// the fingerprint carried to the next step is fp<<2 + (g[a]<<1 + g[b]),
// which puts one shift-and-add per two bytes on the loop-carried
// dependency chain; the fingerprint after the first byte is computed off
// that chain and checked against the same mask, so the result is identical
// to hashing one byte at a time. Steps are unrolled four times over an
// 8-byte window, which lets the compiler drop all bounds checks (verify
// with go build -gcflags=-d=ssa/check_bce).
func scan(g *Gear, data []byte, fp, mask uint64) (int, uint64) {
	_ = g[0]
	p := data
	for len(p) >= 8 {
		var a, b, f uint64
		a, b = g[p[0]], g[p[1]]
		f = fp<<1 + a
		fp = fp<<2 + (a<<1 + b)
		if f&mask == 0 {
			return len(data) - len(p), f
		}
		if fp&mask == 0 {
			return len(data) - len(p) + 1, fp
		}
		a, b = g[p[2]], g[p[3]]
		f = fp<<1 + a
		fp = fp<<2 + (a<<1 + b)
		if f&mask == 0 {
			return len(data) - len(p) + 2, f
		}
		if fp&mask == 0 {
			return len(data) - len(p) + 3, fp
		}
		a, b = g[p[4]], g[p[5]]
		f = fp<<1 + a
		fp = fp<<2 + (a<<1 + b)
		if f&mask == 0 {
			return len(data) - len(p) + 4, f
		}
		if fp&mask == 0 {
			return len(data) - len(p) + 5, fp
		}
		a, b = g[p[6]], g[p[7]]
		f = fp<<1 + a
		fp = fp<<2 + (a<<1 + b)
		if f&mask == 0 {
			return len(data) - len(p) + 6, f
		}
		if fp&mask == 0 {
			return len(data) - len(p) + 7, fp
		}
		p = p[8:]
	}
	for k, c := range p {
		fp = fp<<1 + g[c]
		if fp&mask == 0 {
			return len(data) - len(p) + k, fp
		}
	}
	return -1, fp
}
