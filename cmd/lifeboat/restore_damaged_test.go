package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestRestoreDamagedPack: one pack of a real repository has bytes flipped.
// The restore goes on: every file whose content is readable is restored
// whole, the others are listed (path and reason) and absent (no partial
// file under their name, no temporary file left), and it exits 5.
func TestRestoreDamagedPack(t *testing.T) {
	c, dir, _ := setup(t)
	src := filepath.Join(dir, "media")
	rng := rand.New(rand.NewPCG(7, 7))
	want := map[string][]byte{}
	for i := range 48 { // ~48 MiB of incompressible content: several packs
		b := make([]byte, 1<<20)
		for j := range b {
			b[j] = byte(rng.Uint32())
		}
		name := fmt.Sprintf("f%02d.bin", i)
		want[name] = b
		require.NoError(t, os.MkdirAll(src, 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(src, name), b, 0o644))
	}
	c.env["LIFEBOAT_KEY_FILE"] = filepath.Join(dir, "owner.key")
	c.ok("backup", "files", src)

	var packs []string
	require.NoError(t, filepath.WalkDir(filepath.Join(dir, "repo", "data"), func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			packs = append(packs, p)
		}
		return err
	}))
	require.Greater(t, len(packs), 1, "want several packs")
	// Damage the middle of the largest pack.
	largest, size := "", int64(0)
	for _, p := range packs {
		fi, err := os.Stat(p)
		require.NoError(t, err)
		if fi.Size() > size {
			largest, size = p, fi.Size()
		}
	}
	b, err := os.ReadFile(largest)
	require.NoError(t, err)
	for i := len(b) / 2; i < len(b)/2+64; i++ {
		b[i] ^= 0xff
	}
	require.NoError(t, os.WriteFile(largest, b, 0o644))

	out := filepath.Join(dir, "out")
	stdout, stderr, code := c.run("restore", "latest", "--to", out, "--json")
	require.Equal(t, exitIncomplete, code, stderr)
	var failed []string
	var sum map[string]any
	for _, line := range strings.Split(strings.TrimSpace(stdout), "\n") {
		var m map[string]any
		require.NoError(t, json.Unmarshal([]byte(line), &m), line)
		switch m["message_type"] {
		case "error":
			assert.NotEmpty(t, m["error"])
			failed = append(failed, m["path"].(string))
		case "summary":
			sum = m
		}
	}
	require.NotEmpty(t, failed, "some files are in the damaged pack")
	require.NotNil(t, sum)
	assert.EqualValues(t, len(failed), sum["failed"])
	assert.EqualValues(t, 48-len(failed), sum["files"])
	assert.Positive(t, sum["files"], "files in intact packs are restored")

	for name, content := range want {
		p := filepath.Join(out, "media", name)
		got, err := os.ReadFile(p)
		if slices.Contains(failed, "media/"+name) {
			continue
		}
		if assert.NoError(t, err, name) {
			assert.True(t, bytes.Equal(content, got), "%s restored whole", name)
		}
	}
	for _, f := range failed {
		_, err := os.Lstat(filepath.Join(out, f))
		assert.ErrorIs(t, err, fs.ErrNotExist, "%s: nothing under the final name", f)
	}
	entries, err := os.ReadDir(filepath.Join(out, "media"))
	require.NoError(t, err)
	assert.Len(t, entries, 48-len(failed), "no temporary files left")

	// Text mode names each failure on stderr.
	_, stderr, code = c.run("restore", "latest", "--to", filepath.Join(dir, "out2"))
	assert.Equal(t, exitIncomplete, code)
	assert.Contains(t, stderr, "could not restore "+failed[0])
	assert.Contains(t, stderr, "restore finished, but")
}
