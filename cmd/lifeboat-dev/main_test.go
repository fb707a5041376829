package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestCommands(t *testing.T) {
	base := t.TempDir()
	a, b := filepath.Join(base, "a"), filepath.Join(base, "b")
	runOK := func(args ...string) string {
		var out, errb bytes.Buffer
		code := run(args, &out, &errb)
		require.Equal(t, 0, code, "%v: %s", args, errb.String())
		return out.String()
	}
	out := runOK("gen-tree", a, "--size", "2MiB", "--seed", "3")
	assert.Contains(t, out, "files ")
	assert.Contains(t, out, "dirs ")
	assert.Contains(t, out, "bytes ")
	runOK("gen-tree", b, "--size", "2MiB", "--seed", "3")
	assert.Empty(t, runOK("compare-trees", a, b, "--root", "--sparse"))

	assert.Contains(t, runOK("mutate", b, "--fraction", "0.02", "--seed", "4"), "changed_bytes ")
	var stdout, stderr bytes.Buffer
	assert.Equal(t, 1, run([]string{"compare-trees", a, b}, &stdout, &stderr))
	assert.Contains(t, stdout.String(), "content differs")
	assert.Contains(t, stderr.String(), "differences")

	assert.Equal(t, 2, run([]string{"compare-trees", a}, &stdout, &stderr))
	assert.Equal(t, 2, run([]string{"gen-tree", filepath.Join(base, "c"), "--size", "lots"}, &stdout, &stderr))
	assert.Equal(t, 2, run([]string{"gen-tree", "--bogus"}, &stdout, &stderr))
	assert.Equal(t, 2, run([]string{"bogus"}, &stdout, &stderr))
	assert.Equal(t, 1, run([]string{"compare-trees", a, filepath.Join(base, "missing")}, &stdout, &stderr))
	_, err := os.Stat(filepath.Join(base, "c"))
	assert.ErrorIs(t, err, os.ErrNotExist)
}

func TestParseSize(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		bad  bool
	}{
		{"1GiB", 1 << 30, false},
		{"512MiB", 512 << 20, false},
		{"100M", 100 << 20, false},
		{"1.5GB", 1_500_000_000, false},
		{"4096", 4096, false},
		{"10 KiB", 10 << 10, false},
		{"lots", 0, true},
		{"-1", 0, true},
	}
	for _, tt := range tests {
		got, err := parseSize(tt.in)
		if tt.bad {
			assert.Error(t, err, tt.in)
			continue
		}
		require.NoError(t, err, tt.in)
		assert.Equal(t, tt.want, got, tt.in)
	}
}
