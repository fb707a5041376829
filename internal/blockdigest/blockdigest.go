// Package blockdigest is the content digest recorded for volume snapshots
// (version 1): a SHA-256 over the SHA-256 of each fixed-size block, where a
// run of all-zero blocks is one short record. It detects any changed byte
// as a whole-content SHA-256 does, but the holes of a sparse image cost
// nothing to hash: a restore knows them as zeros and never feeds them to
// SHA-256.
//
// The digest of content C cut into blocks of B bytes (the last one
// shorter) is
//
//	SHA-256("lifeboat block digest v1\n" || u64(B) || records || 0x02 || u64(len(C)))
//
// where records has, block by block in order, 0x01 || SHA-256(block) for a
// block with a non-zero byte, and 0x00 || u64(k) for each maximal run of k
// all-zero blocks (u64: 8 bytes big-endian). A block is all-zero by its
// bytes, whether it was a hole or written zeros.
package blockdigest

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash"

	"github.com/lifeboat-backup/lifeboat/internal/zeros"
)

// Version is the digest format computed here (snapshot.BlockDigest.Version).
const Version = 1

const (
	tagZeros = 0x00
	tagData  = 0x01
	tagEnd   = 0x02
)

var zeroBuf [64 << 10]byte

// Digest computes the block digest of a content given in order, as data
// (Write), known zeros (Zeros) or precomputed whole blocks (AddBlock), in
// pieces of any size. Not safe for concurrent use.
type Digest struct {
	block      int
	outer      hash.Hash // header and records
	inner      hash.Hash // the current block, once it has a non-zero byte
	filled     int       // bytes of the current block seen
	pending    int       // leading zero bytes of the current block not fed to inner
	dirty      bool      // the current block has a non-zero byte
	zeroBlocks uint64    // the run of all-zero blocks not yet recorded
	size       int64
	rec        [1 + sha256.Size]byte
}

// New starts a digest over blocks of blockSize bytes (> 0).
func New(blockSize int) *Digest {
	if blockSize <= 0 {
		panic(fmt.Sprintf("blockdigest: block size %d", blockSize))
	}
	d := &Digest{block: blockSize, outer: sha256.New(), inner: sha256.New()}
	d.outer.Write([]byte("lifeboat block digest v1\n"))
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(blockSize))
	d.outer.Write(b[:])
	return d
}

// BlockSum is the record of one block: its SHA-256, or zero set when it is
// all zeros (then sum is not computed). Blocks can be summed in parallel and
// added in order with AddBlock.
func BlockSum(block []byte) (sum [sha256.Size]byte, zero bool) {
	if len(block) > 0 && block[0] == 0 && block[len(block)-1] == 0 && zeros.All(block) {
		return sum, true
	}
	return sha256.Sum256(block), false
}

// AddBlock adds the next block, of n bytes, by its BlockSum: n must be the
// block size, or less for the last block, and the content seen so far a
// whole number of blocks.
func (d *Digest) AddBlock(n int, sum [sha256.Size]byte, zero bool) error {
	if d.filled != 0 || n <= 0 || n > d.block || d.size%int64(d.block) != 0 {
		return fmt.Errorf("blockdigest: a %d-byte block at offset %d (blocks of %d bytes)", n, d.size, d.block)
	}
	d.size += int64(n)
	if zero {
		d.zeroBlocks++
	} else {
		d.dataRecord(&sum)
	}
	return nil
}

// Write adds data; it never fails.
func (d *Digest) Write(p []byte) (int, error) {
	n := len(p)
	d.size += int64(n)
	for len(p) > 0 {
		k := min(d.block-d.filled, len(p))
		piece := p[:k]
		p = p[k:]
		if d.filled == 0 && k == d.block { // a whole block
			if sum, zero := BlockSum(piece); zero {
				d.zeroBlocks++
			} else {
				d.dataRecord(&sum)
			}
			continue
		}
		if !d.dirty && zeros.All(piece) {
			d.pending += k
		} else {
			d.mark()
			d.inner.Write(piece)
		}
		d.advance(k)
	}
	return n, nil
}

// Zeros adds n zero bytes (a hole) without hashing them, except where they
// share a block with data.
func (d *Digest) Zeros(n int64) {
	d.size += n
	for n > 0 {
		if d.filled == 0 && n >= int64(d.block) {
			k := n / int64(d.block)
			d.zeroBlocks += uint64(k)
			n -= k * int64(d.block)
			continue
		}
		k := int(min(int64(d.block-d.filled), n))
		n -= int64(k)
		if d.dirty {
			feedZeros(d.inner, k)
		} else {
			d.pending += k
		}
		d.advance(k)
	}
}

// BlockSize is the block size the digest was started with.
func (d *Digest) BlockSize() int { return d.block }

// Size is the number of content bytes added so far.
func (d *Digest) Size() int64 { return d.size }

// Sum ends the content and returns the digest in hex. Nothing may be added
// after it.
func (d *Digest) Sum() string {
	if d.filled > 0 { // the last, short block
		d.endBlock()
	}
	d.flushZeros()
	var b [9]byte
	b[0] = tagEnd
	binary.BigEndian.PutUint64(b[1:], uint64(d.size))
	d.outer.Write(b[:])
	return hex.EncodeToString(d.outer.Sum(nil))
}

// mark makes the current block dirty: its leading zeros go to inner.
func (d *Digest) mark() {
	if d.dirty {
		return
	}
	d.dirty = true
	d.inner.Reset()
	feedZeros(d.inner, d.pending)
	d.pending = 0
}

func (d *Digest) advance(k int) {
	if d.filled += k; d.filled == d.block {
		d.endBlock()
	}
}

func (d *Digest) endBlock() {
	if d.dirty {
		var sum [sha256.Size]byte
		d.inner.Sum(sum[:0])
		d.dataRecord(&sum)
	} else {
		d.zeroBlocks++
	}
	d.filled, d.pending, d.dirty = 0, 0, false
}

func (d *Digest) dataRecord(sum *[sha256.Size]byte) {
	d.flushZeros()
	d.rec[0] = tagData
	copy(d.rec[1:], sum[:])
	d.outer.Write(d.rec[:])
}

func (d *Digest) flushZeros() {
	if d.zeroBlocks == 0 {
		return
	}
	var b [9]byte
	b[0] = tagZeros
	binary.BigEndian.PutUint64(b[1:], d.zeroBlocks)
	d.outer.Write(b[:])
	d.zeroBlocks = 0
}

func feedZeros(h hash.Hash, n int) {
	for n > 0 {
		k := min(n, len(zeroBuf))
		h.Write(zeroBuf[:k])
		n -= k
	}
}
