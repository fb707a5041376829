package main

import (
	"bytes"
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// repoState is every file of a file:// repository with its size: a dry run
// must leave it exactly as it was.
func repoState(t *testing.T, root string) map[string]int64 {
	t.Helper()
	st := map[string]int64{}
	require.NoError(t, filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		st[rel] = info.Size()
		return nil
	}))
	return st
}

// backup --dry-run (-n, restic's habit) says what would be saved and how
// much of it is new, and writes nothing: no pack, no index, no snapshot.
func TestCLIBackupDryRun(t *testing.T) {
	c, dir, src := setup(t)
	c.env["LIFEBOAT_KEY_FILE"] = filepath.Join(dir, "host.key")
	repoDir := filepath.Join(dir, "repo")
	require.NoError(t, os.WriteFile(filepath.Join(src, "b.bin"), bytes.Repeat([]byte("0123456789abcdef"), 1<<14), 0o644))

	before := repoState(t, repoDir)
	dry := lastJSON(t, c.ok("backup", "files", src, "--dry-run", "--json"))
	assert.Equal(t, repoState(t, repoDir), before, "a dry run wrote to the repository")
	assert.Equal(t, true, dry["dry_run"])
	assert.NotContains(t, dry, "snapshot_id")
	assert.EqualValues(t, 2, dry["files"])
	assert.EqualValues(t, 90000+1<<18, dry["bytes_in"])
	// An empty repository: all content is new (each file is one chunk,
	// below the chunker's minimum).
	assert.Equal(t, dry["bytes_in"], dry["bytes_added"])
	assert.EqualValues(t, 2, dry["blobs_added"])
	assert.Equal(t, 0, countSnapshots(t, c))

	// The real backup adds what the dry run said would be new, plus the
	// snapshot's metadata (one tree blob here), which a dry run does not
	// count.
	real := lastJSON(t, c.ok("backup", "files", src, "--json"))
	assert.Greater(t, real["bytes_added"], dry["bytes_added"])
	assert.Equal(t, dry["blobs_added"].(float64)+1, real["blobs_added"])

	// One changed file: only its new data would be added; -n is --dry-run.
	require.NoError(t, os.WriteFile(filepath.Join(src, "c.txt"), []byte("a new file\n"), 0o644))
	before = repoState(t, repoDir)
	out := c.ok("backup", "files", src, "-n")
	assert.Equal(t, repoState(t, repoDir), before, "a dry run wrote to the repository")
	assert.Contains(t, out, "dry run: nothing written")
	assert.Contains(t, out, "would save 3 files")
	assert.Contains(t, out, "would add 11 B of new content in 1 blobs")
	assert.Equal(t, 1, countSnapshots(t, c))
}

func countSnapshots(t *testing.T, c *cli) int {
	t.Helper()
	var sns []any
	require.NoError(t, json.Unmarshal([]byte(c.ok("snapshots", "--json")), &sns))
	return len(sns)
}

// On the restic engine, --dry-run is restic's own: its summary has no
// snapshot ID, and no snapshot is saved.
func TestResticEngineBackupDryRun(t *testing.T) {
	bin := useRestic(t)
	dir := t.TempDir()
	pass := filepath.Join(dir, "pass")
	require.NoError(t, os.WriteFile(pass, []byte("pw\n"), 0o600))
	c := &cli{t: t, env: map[string]string{"LIFEBOAT_REPO": "file://" + filepath.Join(dir, "repo"), "LIFEBOAT_ENGINE": "restic",
		"LIFEBOAT_PASSPHRASE_FILE": pass, "LIFEBOAT_RESTIC": bin}}
	c.ok("init")
	src := filepath.Join(dir, "src")
	require.NoError(t, os.MkdirAll(src, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(src, "a.txt"), bytes.Repeat([]byte("lifeboat "), 1000), 0o644))
	dry := lastJSON(t, c.ok("backup", "files", src, "-n", "--json"))
	assert.Equal(t, true, dry["dry_run"])
	assert.EqualValues(t, 1, dry["files"])
	assert.Positive(t, dry["bytes_added"])
	assert.Equal(t, 0, countSnapshots(t, c))
	c.ok("backup", "files", src)
	assert.Equal(t, 1, countSnapshots(t, c))
}
