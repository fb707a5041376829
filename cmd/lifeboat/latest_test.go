package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// `latest` is per target: with several targets in the repository, restore,
// ls and dump need --target (exit 2 naming the targets) instead of taking
// whichever target was newest.
func TestCLILatestIsPerTarget(t *testing.T) {
	c, dir, src := setup(t)
	c.env["LIFEBOAT_KEY_FILE"] = filepath.Join(dir, "owner.key")
	c.ok("backup", "files", src, "--target", "www")
	// one target: latest needs no --target
	c.ok("restore", "latest", "--to", filepath.Join(dir, "one"))
	assert.FileExists(t, filepath.Join(dir, "one", "src", "sub", "a.txt"))

	other := filepath.Join(dir, "db")
	require.NoError(t, os.MkdirAll(other, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(other, "dump.sql"), []byte("select 1;\n"), 0o644))
	c.ok("backup", "files", other, "--target", "mysql-dump") // newest

	for _, args := range [][]string{
		{"restore", "latest", "--to", filepath.Join(dir, "two")},
		{"ls", "latest"},
		{"dump", "latest", "/"},
		{"diff", "latest", "latest"},
	} {
		out, errs, code := c.run(args...)
		assert.Equal(t, exitUsage, code, "%v: %s", args, errs)
		assert.Contains(t, errs, "give --target (one of mysql-dump, www)", "%v", args)
		assert.Empty(t, out, "%v", args)
	}
	assert.NoDirExists(t, filepath.Join(dir, "two"), "nothing restored")

	// find and stats search: their latest is the latest of each target
	count := func(args ...string) float64 {
		return lastJSON(t, c.ok(append([]string{"stats", "--json"}, args...)...))["snapshots_count"].(float64)
	}
	assert.Equal(t, 2.0, count("latest"), "the latest of www and of mysql-dump")
	assert.Equal(t, 1.0, count("latest", "--target", "www"))
	assert.Contains(t, c.ok("find", "a.txt", "--snapshot", "latest"), "1 matches in 2 snapshots")

	c.ok("restore", "latest", "--target", "www", "--to", filepath.Join(dir, "www"))
	assert.FileExists(t, filepath.Join(dir, "www", "src", "sub", "a.txt"))
	assert.NoFileExists(t, filepath.Join(dir, "www", "db", "dump.sql"))
	assert.Contains(t, c.ok("ls", "latest", "--target", "mysql-dump"), "dump.sql")
	c.ok("diff", "latest", "latest", "--target", "www")
	// backup --parent latest: the latest of the backup's own target
	sum := lastJSON(t, c.ok("backup", "files", src, "--target", "www", "--parent", "latest", "--json"))
	var sns []struct {
		ID     string `json:"id"`
		Target string `json:"target"`
	}
	require.NoError(t, json.Unmarshal([]byte(c.ok("snapshots", "--json", "--target", "www")), &sns))
	require.Len(t, sns, 2)
	assert.Equal(t, sns[0].ID, sum["parent"], "parent is www's latest, not the newer mysql-dump snapshot")
	// an ID needs no --target
	id := lastJSON(t, c.ok("backup", "files", src, "--target", "www", "--json"))["snapshot_id"].(string)
	c.ok("restore", id[:8], "--to", filepath.Join(dir, "byid"))
	assert.FileExists(t, filepath.Join(dir, "byid", "src", "sub", "a.txt"))
}

// restore --include with the source path (a restic habit) finds nothing:
// the error shows how paths are stored.
func TestCLIRestoreIncludeHint(t *testing.T) {
	c, dir, src := setup(t)
	c.env["LIFEBOAT_KEY_FILE"] = filepath.Join(dir, "owner.key")
	c.ok("backup", "files", src)
	_, errs, code := c.run("restore", "latest", "--to", filepath.Join(dir, "out"), "--include", filepath.Join(src, "sub"))
	assert.Equal(t, exitFailure, code, errs)
	assert.Contains(t, errs, "the snapshot's top level is src;")
	c.ok("restore", "latest", "--to", filepath.Join(dir, "out"), "--include", "src/sub")
	assert.FileExists(t, filepath.Join(dir, "out", "src", "sub", "a.txt"))
}
