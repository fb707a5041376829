package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestCLIVerboseListsFiles: -v lists each file a backup stores as new,
// modified or unchanged against its parent, and each file a restore
// restores, as restic's -v does (text, and verbose_status lines in JSON).
func TestCLIVerboseListsFiles(t *testing.T) {
	c, dir, src := setup(t)
	c.env["LIFEBOAT_KEY_FILE"] = filepath.Join(dir, "owner.key")
	out := c.ok("backup", "files", "-v", src)
	assert.Regexp(t, `(?m)^new\s+src/sub/a.txt, 87.9 KiB$`, out)
	assert.NotContains(t, c.ok("backup", "files", src), "src/sub/a.txt", "without -v no file list")

	require.NoError(t, os.WriteFile(filepath.Join(src, "b.txt"), []byte("b"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(src, "sub", "a.txt"), []byte("changed"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(src, "c.txt"), []byte("c"), 0o644))
	c.ok("backup", "files", src)
	require.NoError(t, os.WriteFile(filepath.Join(src, "c.txt"), []byte("cc"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(src, "d.txt"), []byte("d"), 0o644))
	got := map[string]string{}
	for _, l := range lines(t, c.ok("backup", "files", "-v", "--json", src)) {
		if l["message_type"] == "verbose_status" {
			got[l["item"].(string)] = l["action"].(string)
		}
	}
	assert.Equal(t, map[string]string{"src/b.txt": "unchanged", "src/c.txt": "modified", "src/d.txt": "new", "src/sub/a.txt": "unchanged"}, got)

	out = c.ok("restore", "latest", "-v", "--to", filepath.Join(dir, "out"))
	for _, f := range []string{"src/b.txt", "src/c.txt", "src/d.txt", "src/sub/a.txt"} {
		assert.Regexp(t, `(?m)^restored\s+`+f+`, \d+ B$`, out)
	}
	assert.Equal(t, 4, strings.Count(out, "restored  "), out)
	out = c.ok("restore", "latest", "-q", "-v", "--to", filepath.Join(dir, "out2"))
	assert.NotContains(t, out, "restored  ", "--quiet wins over -v")
}

// lines decodes --json output, one object a line.
func lines(t *testing.T, out string) []map[string]any {
	t.Helper()
	var ls []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		var m map[string]any
		require.NoError(t, json.Unmarshal([]byte(l), &m), l)
		ls = append(ls, m)
	}
	return ls
}
