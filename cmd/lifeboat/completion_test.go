package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// complete runs cobra's hidden __complete command in-process, as the shell
// scripts of `lifeboat completion bash|zsh|fish` do, and returns the
// candidates (descriptions cut off) and the directive line.
func (c *cli) complete(args ...string) ([]string, string) {
	c.t.Helper()
	out := c.ok(append([]string{"__complete"}, args...)...)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	var cands []string
	for _, l := range lines[:len(lines)-1] {
		cands = append(cands, strings.SplitN(l, "\t", 2)[0])
	}
	return cands, lines[len(lines)-1]
}

// Shell completion completes snapshot IDs, target names and policy files.
func TestCLICompletion(t *testing.T) {
	c, dir, src := setup(t)
	c.env["LIFEBOAT_KEY_FILE"] = filepath.Join(dir, "host.key")
	site := lastJSON(t, c.ok("backup", "files", src, "--target", "site", "--json"))["short_id"].(string)
	db := lastJSON(t, c.ok("backup", "files", src, "--target", "etc", "--json"))["short_id"].(string)

	got, directive := c.complete("ls", "")
	assert.ElementsMatch(t, []string{"latest", site, db}, got)
	assert.Equal(t, ":4", directive, "no file names after a snapshot argument")
	got, _ = c.complete("ls", "--target", "site", "")
	assert.ElementsMatch(t, []string{"latest", site}, got)
	got, _ = c.complete("restore", site[:3])
	assert.Contains(t, got, site)
	got, _ = c.complete("diff", site, "")
	assert.Contains(t, got, db, "both of diff's arguments are snapshots")
	got, _ = c.complete("restore", "latest", "--target", "")
	assert.Equal(t, []string{"etc", "site"}, got)
	got, _ = c.complete("snapshots", "--target", "s")
	assert.Equal(t, []string{"site"}, got)

	// POLICY arguments and --policy: the YAML files, described by name.
	pdir := filepath.Join(dir, "policies")
	require.NoError(t, os.MkdirAll(filepath.Join(pdir, "more"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(pdir, "shop.yaml"), []byte("version: 1\nname: shop\n"), 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(pdir, "notes.txt"), nil, 0o600))
	out := c.ok("__complete", "run", pdir+"/")
	assert.Contains(t, out, pdir+"/shop.yaml\tpolicy shop\n")
	assert.Contains(t, out, pdir+"/more/\n")
	assert.NotContains(t, out, "notes.txt")
	got, _ = c.complete("forget", "--policy", pdir+"/sh")
	assert.Equal(t, []string{pdir + "/shop.yaml"}, got)
	// A policy's targets complete --target even before any snapshot.
	require.NoError(t, os.WriteFile(filepath.Join(pdir, "p.yaml"), []byte(`version: 1
name: p
repositories:
  primary:
    url: file://`+filepath.Join(dir, "other")+`
    password_file: `+filepath.Join(dir, "pass")+`
targets:
  - name: www
    kind: files
    paths: [/var/www]
`), 0o600))
	got, _ = c.complete("drill", filepath.Join(pdir, "p.yaml"), "--target", "")
	assert.Equal(t, []string{"www"}, got)
}

// lifeboat man DIR writes one page per command.
func TestCLIManPages(t *testing.T) {
	dir := t.TempDir()
	c := &cli{t: t}
	c.ok("man", dir)
	for _, page := range []string{"lifeboat.1", "lifeboat-backup-files.1", "lifeboat-ls.1", "lifeboat-systemd-install.1"} {
		data, err := os.ReadFile(filepath.Join(dir, page))
		require.NoError(t, err, page)
		assert.Contains(t, string(data), ".TH \"LIFEBOAT\" \"1\"", page)
	}
	data, err := os.ReadFile(filepath.Join(dir, "lifeboat-backup-files.1"))
	require.NoError(t, err)
	assert.Contains(t, string(data), `\fB--dry-run\fP`, "the flags are in the page")
}
