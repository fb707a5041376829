package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Every --dry-run in the command tree has restic's -n.
func TestCLIDryRunShorthandEverywhere(t *testing.T) {
	root := newApp(strings.NewReader(""), &strings.Builder{}, &strings.Builder{}).root()
	n := 0
	var walk func(cmd *cobra.Command)
	walk = func(cmd *cobra.Command) {
		cmd.LocalFlags().VisitAll(func(f *pflag.Flag) {
			if f.Name == "dry-run" {
				n++
				assert.Equal(t, "n", f.Shorthand, "%s --dry-run", cmd.CommandPath())
			}
		})
		for _, s := range cmd.Commands() {
			walk(s)
		}
	}
	walk(root)
	assert.GreaterOrEqual(t, n, 4)
}

// snapshots --tag is repeatable as restic's: any of the filters, and
// "a,b" needs both. Before, only the last --tag counted.
func TestCLISnapshotsTagRepeatable(t *testing.T) {
	c, dir, src := setup(t)
	c.env["LIFEBOAT_KEY_FILE"] = filepath.Join(dir, "host.key")
	ids := map[string]string{}
	for _, tags := range [][]string{{"nightly"}, {"manual"}, {"nightly", "pre-upgrade"}, {"weekly"}} {
		args := []string{"backup", "files", src, "--json"}
		for _, tg := range tags {
			args = append(args, "--tag", tg)
		}
		ids[strings.Join(tags, "+")] = lastJSON(t, c.ok(args...))["short_id"].(string)
	}
	list := func(args ...string) []string {
		var sns []struct {
			ShortID string `json:"short_id"`
		}
		require.NoError(t, json.Unmarshal([]byte(c.ok(append([]string{"snapshots", "--json"}, args...)...)), &sns))
		var out []string
		for _, s := range sns {
			out = append(out, s.ShortID)
		}
		sort.Strings(out)
		return out
	}
	sorted := func(s ...string) []string { sort.Strings(s); return s }
	assert.Equal(t, sorted(ids["nightly"], ids["nightly+pre-upgrade"]), list("--tag", "nightly"))
	assert.Equal(t, sorted(ids["manual"], ids["weekly"]), list("--tag", "manual", "--tag", "weekly"))
	assert.Equal(t, sorted(ids["nightly+pre-upgrade"]), list("--tag", "nightly,pre-upgrade"))
	assert.Equal(t, sorted(ids["nightly+pre-upgrade"], ids["manual"]), list("--tag", "nightly,pre-upgrade", "--tag", "manual"))
	assert.Empty(t, list("--tag", "none"))
	assert.Len(t, list(), 4)
}

// backup files --exclude-file, --iexclude, --exclude-if-present,
// --exclude-caches end to end.
func TestCLIBackupExcludeOptions(t *testing.T) {
	c, dir, src := setup(t)
	c.env["LIFEBOAT_KEY_FILE"] = filepath.Join(dir, "host.key")
	for name, body := range map[string]string{
		"IMG.PNG": "x", "keep.txt": "x", "notes.log": "x", "tmp/x": "x", "build/.nobackup": "", "build/a.o": "x",
		"cache/CACHEDIR.TAG": "Signature: 8a477f597d28d172789f06886806bc55\n", "cache/blob": "x",
	} {
		p := filepath.Join(src, name)
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.WriteFile(p, []byte(body), 0o644))
	}
	exf := filepath.Join(dir, "excludes.txt")
	require.NoError(t, os.WriteFile(exf, []byte("# logs and scratch\n*.log\n\n  tmp/  \n"), 0o644))
	excluded := func(ls string) {
		t.Helper()
		assert.Contains(t, ls, "src/keep.txt")
		assert.Contains(t, ls, "src/sub/a.txt")
		for _, gone := range []string{"IMG.PNG", "notes.log", "src/tmp", "src/build/a.o", "src/cache/blob"} {
			assert.NotContains(t, ls, gone)
		}
		// as restic: a tagged directory keeps itself and its tag file
		assert.Contains(t, ls, "src/build/.nobackup")
		assert.Contains(t, ls, "src/cache/CACHEDIR.TAG")
	}
	c.ok("backup", "files", src, "--exclude-file", exf, "--iexclude", "*.png", "--exclude-if-present", ".nobackup", "--exclude-caches")
	excluded(c.ok("ls", "latest"))

	// the same options in a policy's files target
	policy := filepath.Join(dir, "policy.yaml")
	require.NoError(t, os.WriteFile(policy, []byte(`version: 1
name: everyday
repositories:
  primary:
    url: `+c.env["LIFEBOAT_REPO"]+`
    key_file: `+filepath.Join(dir, "host.key")+`
targets:
  - name: www
    kind: files
    paths: [`+src+`]
    exclude_file: [`+exf+`]
    iexclude: ["*.png"]
    exclude_if_present: [.nobackup]
    exclude_caches: true
`), 0o600))
	c.ok("config", "validate", policy)
	c.ok("run", policy, "--journal", filepath.Join(dir, "journal.jsonl"))
	excluded(c.ok("ls", "latest", "--target", "www"))
	require.NoError(t, os.Remove(exf))
	_, errs, code := c.run("run", policy, "--journal", filepath.Join(dir, "journal.jsonl"))
	assert.Equal(t, exitFailure, code, errs)
	assert.Contains(t, errs, "excludes.txt", "the run names the exclude file it cannot read")
	_, errs, code = c.run("backup", "files", src, "--exclude-file", filepath.Join(dir, "missing.txt"))
	assert.Equal(t, exitUsage, code, errs)
	assert.Contains(t, errs, "missing.txt")
	_, errs, code = c.run("backup", "files", src, "--iexclude", "[z")
	assert.Equal(t, exitUsage, code, errs)
}
