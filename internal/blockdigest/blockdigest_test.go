package blockdigest

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"math/rand/v2"
	"testing"
)

// reference is the digest as the package doc defines it, computed from the
// whole content at once.
func reference(c []byte, block int) string {
	var out bytes.Buffer
	out.WriteString("lifeboat block digest v1\n")
	out.Write(binary.BigEndian.AppendUint64(nil, uint64(block)))
	var run uint64
	flush := func() {
		if run > 0 {
			out.WriteByte(0)
			out.Write(binary.BigEndian.AppendUint64(nil, run))
			run = 0
		}
	}
	for off := 0; off < len(c); off += block {
		b := c[off:min(off+block, len(c))]
		if bytes.Count(b, []byte{0}) == len(b) {
			run++
			continue
		}
		flush()
		s := sha256.Sum256(b)
		out.WriteByte(1)
		out.Write(s[:])
	}
	flush()
	out.WriteByte(2)
	out.Write(binary.BigEndian.AppendUint64(nil, uint64(len(c))))
	s := sha256.Sum256(out.Bytes())
	return hex.EncodeToString(s[:])
}

// content makes len bytes of random data runs and zero runs.
func content(rng *rand.Rand, n int) []byte {
	c := make([]byte, n)
	for off := 0; off < n; {
		k := min(n-off, 1+rng.IntN(3000))
		if rng.IntN(2) == 0 {
			for i := range k {
				c[off+i] = byte(rng.Uint32() | 1)
			}
		}
		off += k
	}
	return c
}

// feed adds c in random pieces, each as data (Write), as zeros (Zeros,
// when it is zeros) or as whole blocks (AddBlock, when aligned).
func feed(rng *rand.Rand, d *Digest, c []byte, block int) {
	for off := 0; off < len(c); {
		k := min(len(c)-off, 1+rng.IntN(3*block))
		p := c[off : off+k]
		switch {
		case rng.IntN(3) == 0 && off%block == 0 && k >= block:
			p = p[:block]
			sum, zero := BlockSum(p)
			if err := d.AddBlock(len(p), sum, zero); err != nil {
				panic(err)
			}
		case rng.IntN(2) == 0 && bytes.Count(p, []byte{0}) == len(p):
			d.Zeros(int64(len(p)))
		default:
			d.Write(p)
		}
		off += len(p)
	}
}

func TestMatchesDefinition(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 300 {
		block := []int{1, 7, 512, 1024, 4096}[i%5]
		c := content(rng, rng.IntN(20000))
		d := New(block)
		feed(rng, d, c, block)
		if got, want := d.Sum(), reference(c, block); got != want {
			t.Fatalf("case %d (block %d, %d bytes): %s, want %s", i, block, len(c), got, want)
		}
		if d.Size() != int64(len(c)) {
			t.Fatalf("size %d, want %d", d.Size(), len(c))
		}
	}
}

// TestDetectsAnyByte: a changed byte in data or in a zero run, a byte
// more or less, and another block size all change the digest.
func TestDetectsAnyByte(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	c := content(rng, 64<<10)
	sum := func(c []byte, block int) string {
		d := New(block)
		d.Write(c)
		return d.Sum()
	}
	want := sum(c, 4096)
	for _, pos := range []int{0, 1, 4095, 4096, 30000, len(c) - 1} {
		for _, v := range []byte{0, 1, 0x80} {
			if c[pos] == v {
				continue
			}
			m := bytes.Clone(c)
			m[pos] = v
			if sum(m, 4096) == want {
				t.Errorf("byte %d set to %#x: same digest", pos, v)
			}
		}
	}
	if sum(append(bytes.Clone(c), 0), 4096) == want || sum(c[:len(c)-1], 4096) == want {
		t.Error("length not covered")
	}
	if sum(c, 8192) == want {
		t.Error("block size not covered")
	}
	// Zeros are zeros, whether holes or written: same digest.
	z := make([]byte, 3*4096+10)
	d := New(4096)
	d.Zeros(int64(len(z)))
	if d.Sum() != sum(z, 4096) {
		t.Error("Zeros and written zeros differ")
	}
}

func TestAddBlockMisaligned(t *testing.T) {
	d := New(4096)
	d.Write(make([]byte, 100))
	if err := d.AddBlock(4096, [32]byte{}, true); err == nil {
		t.Error("AddBlock after a partial block")
	}
	d = New(4096)
	if err := d.AddBlock(4097, [32]byte{}, true); err == nil {
		t.Error("AddBlock of more than a block")
	}
	d = New(4096)
	if err := d.AddBlock(100, [32]byte{}, true); err != nil {
		t.Fatal(err)
	}
	if err := d.AddBlock(4096, [32]byte{}, true); err == nil {
		t.Error("AddBlock after the short last block")
	}
}

func FuzzDigest(f *testing.F) {
	f.Add([]byte("\x00\x00\x00data\x00\x00"), uint16(3), uint64(1))
	f.Add(make([]byte, 100), uint16(16), uint64(2))
	f.Fuzz(func(t *testing.T, c []byte, block uint16, seed uint64) {
		b := int(block%4096) + 1
		d := New(b)
		feed(rand.New(rand.NewPCG(seed, 0)), d, c, b)
		if got, want := d.Sum(), reference(c, b); got != want {
			t.Fatalf("block %d, %d bytes: %s, want %s", b, len(c), got, want)
		}
	})
}

func BenchmarkZeros(b *testing.B) {
	b.SetBytes(1 << 30)
	for b.Loop() {
		d := New(256 << 10)
		d.Zeros(1 << 30)
		d.Sum()
	}
}
