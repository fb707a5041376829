package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A fleet shares one repository: snapshots, ls latest, restore latest and
// forget select one host's snapshots with --host, as restic's do.
func TestCLIHostSelection(t *testing.T) {
	c, dir, src := setup(t)
	c.env["LIFEBOAT_KEY_FILE"] = filepath.Join(dir, "owner.key")
	for i, host := range []string{"web-1", "db-1", "web-1", "db-1"} {
		require.NoError(t, os.WriteFile(filepath.Join(src, "sub", "only-"+host), []byte(host+strings.Repeat("x", i)), 0o644))
		c.ok("backup", "files", src, "--host", host)
	}
	require.NoError(t, os.Remove(filepath.Join(src, "sub", "only-db-1")))
	c.ok("backup", "files", src, "--host", "web-1") // web-1's latest: no only-db-1

	out := c.ok("snapshots", "--host", "db-1")
	assert.Contains(t, out, "db-1")
	assert.NotContains(t, out, "web-1")

	assert.Contains(t, c.ok("ls", "latest", "--host", "db-1"), "only-db-1")
	assert.NotContains(t, c.ok("ls", "latest", "--host", "web-1"), "only-db-1")

	to := filepath.Join(dir, "out")
	c.ok("restore", "latest", "--host", "db-1", "--to", to)
	got, err := os.ReadFile(filepath.Join(to, "src", "sub", "only-db-1"))
	require.NoError(t, err)
	assert.Equal(t, "db-1xxx", string(got))

	// Rules over web-1 only: db-1 keeps both of its snapshots.
	c.ok("forget", "--keep-last", "1", "--host", "web-1")
	assert.Equal(t, 2, strings.Count(c.ok("snapshots", "--host", "db-1"), "db-1"))
	assert.Equal(t, 1, strings.Count(c.ok("snapshots", "--host", "web-1"), "web-1"))
	_, errs, code := c.run("forget", "--host", "web-1", "abcdef12")
	assert.NotZero(t, code, "IDs with --host: %s", errs)
}
