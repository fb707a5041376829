package repo

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/klauspost/compress/zstd"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestCompressDecision: what is stored compressed, and that it comes back.
func TestCompressDecision(t *testing.T) {
	rnd := make([]byte, 1<<20)
	_, err := rand.NewChaCha8([32]byte{7}).Read(rnd)
	require.NoError(t, err)
	zeros := make([]byte, 1<<20)
	text := []byte{}
	for i := 0; len(text) < 512<<10; i++ {
		text = append(text, "INSERT INTO t VALUES (1, 'lifeboat');\n"...)
	}
	cases := []struct {
		name string
		src  []byte
		want bool // stored compressed
		max  int  // largest stored size when compressed
	}{
		{"random", rnd[:256<<10], false, 0},
		{"random, small", rnd[:4096], false, 0},
		{"text", text, true, len(text) / 10},
		{"zeros", zeros[:256<<10], true, 1 << 10},
		{"random then a hole (volume block)", slices.Concat(rnd[:160<<10], zeros[:96<<10]), true, 165 << 10},
		{"a hole then random", slices.Concat(zeros[:96<<10], rnd[:160<<10]), true, 165 << 10},
		{"random with a short zero tail", slices.Concat(rnd[:256<<10-4095], zeros[:4095]), false, 0},
		{"tiny", []byte("abc"), false, 0},
	}
	c := newCompressor(zstd.SpeedFastest)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out, ok := c.compress(nil, tc.src)
			require.Equal(t, tc.want, ok)
			if !ok {
				return
			}
			assert.LessOrEqual(t, len(out), tc.max)
			back, err := decompress(nil, out, len(tc.src))
			require.NoError(t, err)
			assert.Equal(t, tc.src, back)
		})
	}
	off, ok := newCompressor(0).compress(nil, zeros)
	assert.False(t, ok, "compression off")
	assert.Empty(t, off)
}

// BenchmarkCompress: MB/s of compress on 1 MiB blobs of SQL-like text
// (compressed) and of random bytes (recognized by the sample, stored raw).
func BenchmarkCompress(b *testing.B) {
	text := []byte{}
	for i := 0; len(text) < 1<<20; i++ {
		text = fmt.Appendf(text, "%d\t%d\tcustomer%d@example.com\t2026-11-%02d 10:%02d:00\t%d.%02d\n", i, i*7919%100003, i%9973, 1+i%28, i%60, i%977, i%100)
	}
	rnd := make([]byte, 1<<20)
	_, _ = rand.NewChaCha8([32]byte{1}).Read(rnd)
	c := newCompressor(zstd.SpeedFastest)
	for _, bc := range []struct {
		name string
		src  []byte
	}{{"text", text[:1<<20]}, {"random", rnd}} {
		b.Run(bc.name, func(b *testing.B) {
			b.SetBytes(int64(len(bc.src)))
			dst := make([]byte, 0, len(bc.src))
			for b.Loop() {
				dst, _ = c.compress(dst, bc.src)
			}
		})
	}
}
