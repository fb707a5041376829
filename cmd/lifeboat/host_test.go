package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

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

// A fleet's repository per host: snapshots --group-by host gives one block
// (JSON: restic's group_key/snapshots) per host, status every host's count
// and newest snapshot, so a host that stopped backing up shows.
func TestCLISnapshotsAndStatusPerHost(t *testing.T) {
	c, dir, src := setup(t)
	c.env["LIFEBOAT_KEY_FILE"] = filepath.Join(dir, "host.key")
	for _, host := range []string{"web-1", "db-1", "web-1", "db-2", "web-1"} {
		c.ok("backup", "files", src, "--host", host)
	}
	out := c.ok("snapshots", "--group-by", "host")
	assert.Contains(t, out, "host db-1: 1 snapshots, newest ")
	assert.Contains(t, out, "host web-1: 3 snapshots, newest ")
	assert.Contains(t, out, "5 snapshots of 3 hosts")
	assert.Less(t, strings.Index(out, "host db-1:"), strings.Index(out, "host db-2:"))
	assert.Less(t, strings.Index(out, "host db-2:"), strings.Index(out, "host web-1:"))

	var groups []struct {
		Key       map[string]string `json:"group_key"`
		Snapshots []struct {
			Host string `json:"host"`
		} `json:"snapshots"`
	}
	require.NoError(t, json.Unmarshal([]byte(c.ok("snapshots", "--group-by", "host", "--json")), &groups))
	require.Len(t, groups, 3)
	for i, want := range []string{"db-1", "db-2", "web-1"} {
		assert.Equal(t, map[string]string{"host": want}, groups[i].Key)
		for _, s := range groups[i].Snapshots {
			assert.Equal(t, want, s.Host)
		}
	}
	assert.Len(t, groups[2].Snapshots, 3)
	require.NoError(t, json.Unmarshal([]byte(c.ok("snapshots", "--group-by", "host", "--host", "db-2", "--json")), &groups))
	require.Len(t, groups, 1, "--host selects before grouping")
	_, errs, code := c.run("snapshots", "--group-by", "tags")
	assert.Equal(t, exitUsage, code, errs)

	policy := filepath.Join(dir, "fleet.yaml")
	require.NoError(t, os.WriteFile(policy, []byte(`version: 1
name: fleet
host: web-1
repositories:
  primary:
    url: `+c.env["LIFEBOAT_REPO"]+`
    key_file: `+filepath.Join(dir, "host.key")+`
targets:
  - name: site
    kind: files
    paths: [`+src+`]
`), 0o600))
	c.env["LIFEBOAT_KEY_FILE"] = ""
	journal := filepath.Join(dir, "journal")
	out = c.ok("status", policy, "--journal", journal)
	assert.Regexp(t, `host db-1 +1 snapshots, newest `, out)
	assert.Regexp(t, `host web-1 +3 snapshots, newest `, out)
	var st struct {
		Repositories []struct {
			Hosts map[string]struct {
				Snapshots int       `json:"snapshots"`
				Newest    time.Time `json:"newest"`
			} `json:"hosts"`
		} `json:"repositories"`
	}
	require.NoError(t, json.Unmarshal([]byte(c.ok("status", policy, "--journal", journal, "--json")), &st))
	require.Len(t, st.Repositories, 1)
	hosts := st.Repositories[0].Hosts
	require.Len(t, hosts, 3)
	assert.Equal(t, 3, hosts["web-1"].Snapshots)
	assert.Equal(t, 1, hosts["db-2"].Snapshots)
	assert.True(t, hosts["db-2"].Newest.After(hosts["db-1"].Newest), "db-2 backed up after db-1")
}
