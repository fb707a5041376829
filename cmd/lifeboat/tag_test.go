package main

import (
	"encoding/json"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestCLITag(t *testing.T) {
	c, dir, src := setup(t)
	c.env["LIFEBOAT_KEY_FILE"] = filepath.Join(dir, "owner.key")
	first := lastJSON(t, c.ok("backup", "files", src, "--tag", "nightly", "--json"))["snapshot_id"].(string)
	second := lastJSON(t, c.ok("backup", "files", src, "--tag", "nightly", "--target", "other", "--json"))["snapshot_id"].(string)
	tagsOf := func() map[string][]string {
		var sns []struct {
			ID   string   `json:"id"`
			Tags []string `json:"tags"`
		}
		require.NoError(t, json.Unmarshal([]byte(c.ok("snapshots", "--json")), &sns))
		m := map[string][]string{}
		for _, s := range sns {
			m[s.ID] = s.Tags
		}
		return m
	}

	sum := lastJSON(t, c.ok("tag", first[:8], "--add", "keep", "--add", "pre-upgrade", "--json"))
	assert.EqualValues(t, 1, sum["changed"])
	ch := sum["snapshots"].([]any)[0].(map[string]any)
	assert.Equal(t, first, ch["old_id"])
	id1 := ch["new_id"].(string)
	assert.NotEqual(t, first, id1)
	assert.Equal(t, map[string][]string{id1: {"nightly", "keep", "pre-upgrade"}, second: {"nightly"}}, tagsOf(), "old manifest gone, new one there")

	sum = lastJSON(t, c.ok("tag", id1[:8], "--remove", "nightly", "--json"))
	id1 = sum["snapshots"].([]any)[0].(map[string]any)["new_id"].(string)
	assert.Equal(t, []string{"keep", "pre-upgrade"}, tagsOf()[id1])

	sum = lastJSON(t, c.ok("tag", id1[:8], "--set", "archive", "--json"))
	id1 = sum["snapshots"].([]any)[0].(map[string]any)["new_id"].(string)
	assert.Equal(t, []string{"archive"}, tagsOf()[id1])

	// unchanged: no rewrite
	sum = lastJSON(t, c.ok("tag", id1[:8], "--add", "archive", "--json"))
	assert.EqualValues(t, 0, sum["changed"])
	assert.Contains(t, tagsOf(), id1)

	// latest is per target
	_, errs, code := c.run("tag", "latest", "--add", "x")
	assert.Equal(t, exitUsage, code, errs)
	assert.Contains(t, errs, "give --target")
	c.ok("tag", "latest", "--target", "other", "--add", "x")
	assert.Contains(t, c.ok("snapshots", "--tag", "x", "--json"), `"target":"other"`)

	// the rewritten snapshot restores and the repository checks clean
	c.ok("restore", id1[:8], "--to", filepath.Join(dir, "out"))
	assert.FileExists(t, filepath.Join(dir, "out", "src", "sub", "a.txt"))
	c.ok("check")

	for _, args := range [][]string{
		{"tag", id1[:8]},
		{"tag", id1[:8], "--set", "a", "--add", "b"},
		{"tag", id1[:8], "--add", "a,b"},
		{"tag", "--add", "a"},
	} {
		_, errs, code := c.run(args...)
		assert.Equal(t, exitUsage, code, "%v: %s", args, errs)
	}
}
