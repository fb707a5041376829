package main

import (
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// restore --include takes restic's patterns: * ? [...] within a name, **
// across directories, a leading / anchors at the snapshot's top level,
// otherwise a pattern matches at any depth, and a matched directory
// brings everything below it. Only the directories leading to a match are
// created. Nothing matched: the hint shows how paths are stored and
// rewrites a source path.
func TestCLIRestoreIncludeGlobs(t *testing.T) {
	c, dir, _ := setup(t)
	c.env["LIFEBOAT_KEY_FILE"] = filepath.Join(dir, "owner.key")
	src := filepath.Join(dir, "www")
	for _, f := range []string{"index.html", "img/a.png", "img/b.jpg", "img/thumbs/c.png", "css/site.css", "deep/x/img/d.png"} {
		p := filepath.Join(src, f)
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.WriteFile(p, []byte(f), 0o644))
	}
	c.ok("backup", "files", src)
	restored := func(args ...string) []string {
		out := filepath.Join(t.TempDir(), "out")
		c.ok(append([]string{"restore", "latest", "--to", out}, args...)...)
		var got []string
		require.NoError(t, filepath.WalkDir(out, func(p string, d fs.DirEntry, err error) error {
			if rel, _ := filepath.Rel(out, p); rel != "." {
				if d.IsDir() {
					rel += "/"
				}
				got = append(got, filepath.ToSlash(rel))
			}
			return err
		}))
		sort.Strings(got)
		return got
	}
	for _, tt := range []struct {
		include []string
		want    []string
	}{
		{[]string{"*.png"}, []string{"www/", "www/deep/", "www/deep/x/", "www/deep/x/img/", "www/deep/x/img/d.png", "www/img/", "www/img/a.png", "www/img/thumbs/", "www/img/thumbs/c.png"}},
		{[]string{"/www/img/*.jpg"}, []string{"www/", "www/img/", "www/img/b.jpg"}},
		{[]string{"/www/img"}, []string{"www/", "www/img/", "www/img/a.png", "www/img/b.jpg", "www/img/thumbs/", "www/img/thumbs/c.png"}},
		{[]string{"img/*.png"}, []string{"www/", "www/deep/", "www/deep/x/", "www/deep/x/img/", "www/deep/x/img/d.png", "www/img/", "www/img/a.png"}},
		{[]string{"www/**/c.png", "css"}, []string{"www/", "www/css/", "www/css/site.css", "www/img/", "www/img/thumbs/", "www/img/thumbs/c.png"}},
		{[]string{"index.htm?"}, []string{"www/", "www/index.html"}},
		{[]string{"[ab].*"}, []string{"www/", "www/img/", "www/img/a.png", "www/img/b.jpg"}},
	} {
		assert.Equal(t, tt.want, restored(flagsOf("--include", tt.include)...), "%v", tt.include)
	}

	// Nothing matches: the hint names the top level, stored paths and, for
	// a source path, the pattern to use.
	_, errs, code := c.run("restore", "latest", "--to", filepath.Join(dir, "none"), "--include", filepath.Join(src, "img", "*.png"))
	assert.Equal(t, exitFailure, code, errs)
	assert.Contains(t, errs, "the snapshot's top level is www; stored paths look like www/")
	assert.Contains(t, errs, "try --include www/img/*.png")
	assert.Contains(t, errs, "a leading / anchors at the top level")
	_, errs, code = c.run("restore", "latest", "--to", filepath.Join(dir, "none"), "--include", "/img")
	assert.Equal(t, exitFailure, code, errs)
	assert.Contains(t, errs, "not found in snapshot")
	assert.NoDirExists(t, filepath.Join(dir, "none", "www"), "no directory skeleton when nothing matches")
	_, errs, code = c.run("restore", "latest", "--to", filepath.Join(dir, "none"), "--include", "www/[")
	assert.NotEqual(t, exitOK, code)
	assert.Contains(t, errs, "syntax error in pattern")
}

func flagsOf(flag string, vals []string) []string {
	var out []string
	for _, v := range vals {
		out = append(out, flag, v)
	}
	return out
}
