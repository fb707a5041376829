package main

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// backup --time and the exclude options on the restic engine: passed to
// restic, and the snapshot restic lists carries the given time.
func TestResticEngineTimeAndExcludes(t *testing.T) {
	bin := useRestic(t)
	dir := t.TempDir()
	pass := filepath.Join(dir, "pass")
	require.NoError(t, os.WriteFile(pass, []byte("pw\n"), 0o600))
	c := &cli{t: t, env: map[string]string{"LIFEBOAT_REPO": "file://" + filepath.Join(dir, "repo"), "LIFEBOAT_ENGINE": "restic",
		"LIFEBOAT_PASSPHRASE_FILE": pass, "LIFEBOAT_RESTIC": bin}}
	c.ok("init")
	src := filepath.Join(dir, "src")
	for name, body := range map[string]string{"keep.txt": "x", "A.PNG": "x", "build/.nobackup": "", "build/o": "x",
		"cache/CACHEDIR.TAG": "Signature: 8a477f597d28d172789f06886806bc55\n", "cache/b": "x"} {
		p := filepath.Join(src, name)
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.WriteFile(p, []byte(body), 0o644))
	}
	at := time.Date(2026, time.May, 2, 2, 30, 0, 0, time.UTC)
	sum := lastJSON(t, c.ok("backup", "files", src, "--time", at.Format(time.RFC3339), "--iexclude", "*.png",
		"--exclude-if-present", ".nobackup", "--exclude-caches", "--json"))
	assert.Contains(t, sum["time"], "2026-05-02T02:30:00")
	assert.Contains(t, c.ok("snapshots"), at.Local().Format("2006-01-02 15:04:05"))
	out := filepath.Join(dir, "out")
	c.ok("restore", "latest", "--to", out)
	var got []string
	require.NoError(t, filepath.WalkDir(out, func(p string, _ os.DirEntry, err error) error {
		rel, _ := filepath.Rel(out, p)
		got = append(got, filepath.ToSlash(rel))
		return err
	}))
	assert.Contains(t, got, "src/keep.txt")
	for _, gone := range []string{"src/A.PNG", "src/build/o", "src/cache/b"} {
		assert.NotContains(t, got, gone)
	}
	assert.Contains(t, got, "src/cache/CACHEDIR.TAG", "restic keeps the tag file, as the native walker does")
}
