package main

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"flag"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

var updateGolden = flag.Bool("update", false, "rewrite the golden files in testdata/")

// golden compares got with testdata/browse/name, rewriting it with -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", "browse", name)
	if *updateGolden {
		require.NoError(t, os.WriteFile(path, []byte(got), 0o644))
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err, "run go test -run TestBrowseGolden -update to create it")
	assert.Equal(t, string(want), got, "golden file %s", path)
}

// browseFixture backs up a tree twice with fixed times, so listings are
// the same on every run: it returns the cli (owner key) and the two
// snapshot IDs.
func browseFixture(t *testing.T) (c *cli, dir, id1, id2 string) {
	c, dir, src := setup(t)
	c.env["LIFEBOAT_KEY_FILE"] = filepath.Join(dir, "owner.key")
	t0 := time.Date(2026, 11, 2, 3, 4, 5, 0, time.UTC)
	write := func(rel, content string, mode os.FileMode) {
		p := filepath.Join(src, rel)
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.WriteFile(p, []byte(content), mode))
		require.NoError(t, os.Chmod(p, mode))
	}
	stamp := func() {
		require.NoError(t, filepath.Walk(src, func(p string, _ os.FileInfo, err error) error {
			if err != nil {
				return err
			}
			tv := unix.NsecToTimeval(t0.UnixNano())
			return unix.Lutimes(p, []unix.Timeval{tv, tv}) // symlinks too
		}))
	}
	write("docs/readme.md", "# read me\n", 0o644)
	write("docs/old.txt", strings.Repeat("old ", 300), 0o644)
	write("bin/run.sh", "#!/bin/sh\necho hi\n", 0o755)
	write("data/report.csv", "a,b\n1,2\n", 0o600)
	require.NoError(t, os.Symlink("../docs/readme.md", filepath.Join(src, "bin", "readme")))
	stamp()
	id1 = lastJSON(t, c.ok("backup", "files", src, "--json"))["snapshot_id"].(string)

	require.NoError(t, os.Remove(filepath.Join(src, "docs", "old.txt")))
	write("docs/new.txt", strings.Repeat("new ", 500), 0o644)
	write("data/report.csv", "a,b\n1,2\n3,4\n", 0o600)
	write("bin/run.sh", "#!/bin/sh\necho hi\n", 0o700)
	write("data/<img src=x onerror=alert(1)>", "hostile\n", 0o644)
	stamp()
	id2 = lastJSON(t, c.ok("backup", "files", src, "--json"))["snapshot_id"].(string)
	return c, dir, id1, id2
}

// TestBrowseGolden checks diff, find, stats and dump (text and --json)
// against golden files (-update rewrites them).
func TestBrowseGolden(t *testing.T) {
	loc := time.Local
	time.Local = time.UTC // times print in local time: make them the same everywhere
	t.Cleanup(func() { time.Local = loc })
	c, _, id1, id2 := browseFixture(t)
	norm := func(s string) string {
		s = strings.ReplaceAll(s, id1, "SNAP1")
		s = strings.ReplaceAll(s, id2, "SNAP2")
		s = strings.ReplaceAll(s, id1[:8], "SNAP1")
		s = strings.ReplaceAll(s, id2[:8], "SNAP2")
		s = regexp.MustCompile(`from \d{4}-\d\d-\d\d \d\d:\d\d:\d\d`).ReplaceAllString(s, "from TIME")
		// owners differ between machines
		return regexp.MustCompile(`"uid":\d+,"gid":\d+,"user":"[^"]*","group":"[^"]*"`).ReplaceAllString(s, `"uid":UID,"gid":GID,"user":"USER","group":"GROUP"`)
	}

	golden(t, "diff.txt", norm(c.ok("diff", id1, id2)))
	golden(t, "diff.json", norm(c.ok("diff", id1, id2, "--json")))
	golden(t, "find.txt", norm(c.ok("find", "*.txt")))
	golden(t, "find-path.txt", norm(c.ok("find", "/src/d*/*.csv", "--snapshot", id2[:8])))
	golden(t, "find.json", norm(c.ok("find", "<img*", "--json")))
	golden(t, "stats.txt", norm(c.ok("stats", id1, id2)))
	golden(t, "stats.json", norm(c.ok("stats", "latest", "--json")))
	golden(t, "dump-file.txt", c.ok("dump", "latest", "/src/data/report.csv"))

	// a directory dumps as tar: names, types, sizes, modes and contents
	var list strings.Builder
	tr := tar.NewReader(strings.NewReader(c.ok("dump", id2, "src/bin")))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		require.NoError(t, err)
		body, err := io.ReadAll(tr)
		require.NoError(t, err)
		list.WriteString(strings.Join([]string{string(h.Typeflag), h.Name, h.Linkname, os.FileMode(h.Mode).String(),
			h.ModTime.UTC().Format(time.RFC3339), string(bytes.TrimSpace(body))}, " | ") + "\n")
	}
	golden(t, "dump-dir.txt", list.String())

	// ls: names by default, the details with --long
	out := c.ok("ls", id2, "src/bin")
	assert.Equal(t, "/src/bin\n/src/bin/readme\n/src/bin/run.sh\n", out)
	assert.Contains(t, c.ok("ls", id2, "src/bin", "--long"), `-rwx------`)
}

// TestBrowseRawDataAndKeys checks stats --mode raw-data (each blob once:
// a second snapshot of the same tree adds only its own tree blob) and
// that the host key browses metadata but cannot dump.
func TestBrowseRawDataAndKeys(t *testing.T) {
	c, dir, id1, id2 := browseFixture(t)
	var one, both map[string]any
	require.NoError(t, json.Unmarshal([]byte(c.ok("stats", id1, "--mode", "raw-data", "--json")), &one))
	require.NoError(t, json.Unmarshal([]byte(c.ok("stats", id1, id2, "--mode", "raw-data", "--json")), &both))
	assert.Greater(t, one["total_blob_count"], 5.0)
	assert.Greater(t, both["total_blob_count"], one["total_blob_count"])
	// the second snapshot shares readme.md and run.sh's content with the first
	assert.Less(t, both["total_blob_count"].(float64), 2*one["total_blob_count"].(float64))
	assert.Greater(t, one["compression_ratio"], 1.0, "old.txt compresses")

	c.env["LIFEBOAT_KEY_FILE"] = filepath.Join(dir, "host.key")
	assert.Contains(t, c.ok("diff", id1, id2), "docs/new.txt")
	assert.Contains(t, c.ok("find", "*.csv"), "2 matches in 2 snapshots")
	_, errs, code := c.run("dump", id2, "src/docs/new.txt")
	assert.Equal(t, exitWrongKey, code, errs)
	c.env["LIFEBOAT_KEY_FILE"] = filepath.Join(dir, "owner.key")
	_, errs, code = c.run("stats", "--mode", "bogus")
	assert.Equal(t, exitUsage, code, errs)
	_, errs, code = c.run("dump", id2, "src/nothing")
	assert.Equal(t, exitFailure, code, errs)
	assert.Contains(t, errs, "/src/nothing")
}
