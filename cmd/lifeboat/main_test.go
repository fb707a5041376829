package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lifeboat-backup/lifeboat/engine/repo"
	"github.com/lifeboat-backup/lifeboat/engine/storage"
)

// cli runs lifeboat in-process with the given environment.
type cli struct {
	t   *testing.T
	env map[string]string
}

func (c *cli) run(args ...string) (stdout, stderr string, code int) {
	c.t.Helper()
	for k, v := range c.env {
		c.t.Setenv(k, v)
	}
	var out, errb bytes.Buffer
	code = newApp(strings.NewReader(""), &out, &errb).run(context.Background(), args)
	return out.String(), errb.String(), code
}

// with is a copy of c for subtest t whose environment has env on top.
func (c *cli) with(t *testing.T, env map[string]string) *cli {
	cc := &cli{t: t, env: map[string]string{}}
	for k, v := range c.env {
		cc.env[k] = v
	}
	for k, v := range env {
		cc.env[k] = v
	}
	return cc
}

func (c *cli) ok(args ...string) string {
	c.t.Helper()
	out, errs, code := c.run(args...)
	require.Equal(c.t, 0, code, "lifeboat %s: %s", strings.Join(args, " "), errs)
	return out
}

// lastJSON decodes the last line of --json output (the summary).
func lastJSON(t *testing.T, out string) map[string]any {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(out), "\n")
	var m map[string]any
	require.NoError(t, json.Unmarshal([]byte(lines[len(lines)-1]), &m), out)
	return m
}

func setup(t *testing.T) (*cli, string, string) {
	dir := t.TempDir()
	c := &cli{t: t, env: map[string]string{"LIFEBOAT_REPO": "file://" + filepath.Join(dir, "repo")}}
	c.ok("init", "--owner-key-out", filepath.Join(dir, "owner.key"), "--host-key-out", filepath.Join(dir, "host.key"))
	src := filepath.Join(dir, "src")
	require.NoError(t, os.MkdirAll(filepath.Join(src, "sub"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(src, "sub", "a.txt"), bytes.Repeat([]byte("lifeboat "), 10000), 0o644))
	return c, dir, src
}

func TestCLIBackupRestoreJSON(t *testing.T) {
	c, dir, src := setup(t)
	c.env["LIFEBOAT_KEY_FILE"] = filepath.Join(dir, "host.key")
	sum := lastJSON(t, c.ok("backup", "files", src, "--tag", "nightly", "--json"))
	for _, k := range []string{"snapshot_id", "bytes_in", "bytes_added", "files"} {
		assert.Contains(t, sum, k)
	}
	assert.EqualValues(t, 90000, sum["bytes_in"])
	assert.EqualValues(t, 1, sum["files"])

	var list []map[string]any
	require.NoError(t, json.Unmarshal([]byte(c.ok("snapshots", "--json")), &list))
	require.Len(t, list, 1)
	for _, k := range []string{"id", "time", "target", "host", "tags"} {
		assert.Contains(t, list[0], k)
	}
	assert.Equal(t, sum["snapshot_id"], list[0]["id"])
	assert.Equal(t, []any{"nightly"}, list[0]["tags"])

	// host key: restore refused with the wrong-key exit code
	_, errs, code := c.run("restore", "latest", "--to", filepath.Join(dir, "out"))
	assert.Equal(t, exitWrongKey, code, errs)
	assert.Contains(t, errs, "owner")

	c.env["LIFEBOAT_KEY_FILE"] = filepath.Join(dir, "owner.key")
	c.ok("restore", "latest", "--to", filepath.Join(dir, "out"))
	got, err := os.ReadFile(filepath.Join(dir, "out", "src", "sub", "a.txt"))
	require.NoError(t, err)
	assert.Len(t, got, 90000)
	assert.Contains(t, c.ok("ls", "latest", "src/sub"), "a.txt")
	assert.Contains(t, c.ok("check", "--read-data"), "no problems found")
}

func TestCLIExitCodes(t *testing.T) {
	c, dir, src := setup(t)
	wrong := filepath.Join(dir, "wrong.key")
	require.NoError(t, os.WriteFile(wrong, []byte("AGE-SECRET-KEY-1GFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPQ4EGAEX\n"), 0o600))
	c.env["LIFEBOAT_KEY_FILE"] = filepath.Join(dir, "host.key")
	c.ok("backup", "files", src) // a snapshot for the restore flag checks
	delete(c.env, "LIFEBOAT_KEY_FILE")
	tests := []struct {
		name string
		env  map[string]string
		args []string
		code int
		msg  string
	}{
		{"no repo flag", map[string]string{"LIFEBOAT_REPO": ""}, []string{"snapshots"}, exitUsage, "--repo"},
		{"unknown flag", nil, []string{"snapshots", "--bogus"}, exitUsage, "bogus"},
		{"missing repository", map[string]string{"LIFEBOAT_REPO": "file://" + filepath.Join(dir, "nothing")}, []string{"snapshots"}, exitNoRepo, "nothing"},
		{"bad scheme", map[string]string{"LIFEBOAT_REPO": "ftp://host/x"}, []string{"snapshots"}, exitFailure, "ftp"},
		{"wrong key", map[string]string{"LIFEBOAT_KEY_FILE": wrong}, []string{"snapshots"}, exitWrongKey, "wrong key"},
		{"no key", map[string]string{"LIFEBOAT_KEY_FILE": ""}, []string{"snapshots"}, exitWrongKey, "LIFEBOAT_KEY_FILE"},
		{"unknown snapshot", map[string]string{"LIFEBOAT_KEY_FILE": filepath.Join(dir, "owner.key")}, []string{"restore", "deadbeef", "--to", dir}, exitFailure, "deadbeef"},
		{"bad read-data", map[string]string{"LIFEBOAT_KEY_FILE": filepath.Join(dir, "owner.key")}, []string{"check", "--read-data=150"}, exitUsage, "150"},
		{"init twice", nil, []string{"init", "--owner-key-out", filepath.Join(dir, "o2"), "--host-key-out", filepath.Join(dir, "h2")}, exitFailure, "already initialized"},
		{"backup missing path", map[string]string{"LIFEBOAT_KEY_FILE": filepath.Join(dir, "host.key")}, []string{"backup", "files", filepath.Join(src, "missing")}, exitFailure, "missing"},
		{"bad mysql rename", map[string]string{"LIFEBOAT_KEY_FILE": filepath.Join(dir, "owner.key")}, []string{"restore", "latest", "--to", "mysql://u@127.0.0.1:1/", "--rename", "shop"}, exitUsage, `--rename "shop": want OLD=NEW`},
		{"mysql-only flag to a directory", map[string]string{"LIFEBOAT_KEY_FILE": filepath.Join(dir, "owner.key")}, []string{"restore", "latest", "--to", filepath.Join(dir, "x"), "--tables", "shop.t"}, exitUsage, "--users, --tables and --no-binlog are for restores into a MySQL server"},
		{"bad postgres rename", map[string]string{"LIFEBOAT_KEY_FILE": filepath.Join(dir, "owner.key")}, []string{"restore", "latest", "--to", "postgres://u@127.0.0.1:1/", "--rename", "=x"}, exitUsage, `--rename "=x": want OLD=NEW`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, errs, code := c.with(t, tc.env).run(tc.args...)
			assert.Equal(t, tc.code, code, errs)
			assert.Contains(t, errs, tc.msg)
		})
	}
}

func TestCLIReadOnlyCommandsIgnoreLocks(t *testing.T) {
	c, dir, src := setup(t)
	c.env["LIFEBOAT_KEY_FILE"] = filepath.Join(dir, "owner.key")
	c.ok("backup", "files", src)
	b, err := storage.OpenWith(context.Background(), c.env["LIFEBOAT_REPO"], storage.OpenOptions{})
	require.NoError(t, err)
	defer b.Close()
	lk, err := repo.AcquireLock(context.Background(), b, true, "prune", 0)
	require.NoError(t, err)
	defer lk.Unlock(context.Background())

	// Listing never waits for or fails on a lock ...
	assert.Contains(t, c.ok("snapshots"), "1 snapshots")
	assert.Contains(t, c.ok("ls", "latest"), "a.txt")
	// ... while a backup meets the exclusive lock and says who holds it.
	_, errs, code := c.run("backup", "files", src)
	assert.Equal(t, exitLocked, code)
	assert.Contains(t, errs, "prune")
}

func TestCLIForgetByRules(t *testing.T) {
	c, dir, src := setup(t)
	c.env["LIFEBOAT_KEY_FILE"] = filepath.Join(dir, "host.key")
	for range 3 {
		c.ok("backup", "files", src)
	}
	out := c.ok("forget", "--keep-last", "1", "--dry-run")
	assert.Contains(t, out, "would remove 2 of 3 snapshots")
	assert.Contains(t, out, "newest of group")
	assert.Contains(t, c.ok("snapshots"), "3 snapshots", "a dry run removes nothing")

	c.ok("forget", "--keep-last", "1")
	assert.Contains(t, c.ok("snapshots"), "1 snapshots")

	for _, args := range [][]string{
		{"forget"},
		{"forget", "--keep-daily", "-5"},
		{"forget", "--keep-within", "7x"},
		{"forget", "--keep-last", "1", "--timezone", "Mars/Olympus"},
		{"forget", "abcd", "--keep-last", "1"},
	} {
		_, errs, code := c.run(args...)
		assert.Equal(t, exitUsage, code, "%v: %s", args, errs)
	}
}

func TestCLIRunPolicy(t *testing.T) {
	c, dir, src := setup(t)
	policy := filepath.Join(dir, "policy.yaml")
	journal := filepath.Join(dir, "journal")
	require.NoError(t, os.WriteFile(policy, []byte(`version: 1
name: test-policy
host: test-host
repositories:
  primary:
    url: `+c.env["LIFEBOAT_REPO"]+`
    key_file: `+filepath.Join(dir, "host.key")+`
  secondaries:
    - name: dr
      url: file://`+filepath.Join(dir, "dr")+`
targets:
  - name: site
    kind: files
    paths: [`+src+`]
retention:
  keep_last: 2
`), 0o600))
	c.env["LIFEBOAT_REPO"] = "" // the policy names the repository
	for i := range 3 {
		require.NoError(t, os.WriteFile(filepath.Join(src, "sub", "n.txt"), []byte(fmt.Sprint(i)), 0o644))
		out := c.ok("run", policy, "--journal", journal)
		assert.Contains(t, out, "target site")
		assert.Contains(t, out, "replicate dr")
	}
	// retention kept 2 of 3; the policy's repository works for listings
	var list []map[string]any
	require.NoError(t, json.Unmarshal([]byte(c.ok("snapshots", "--policy", policy, "--json")), &list))
	require.Len(t, list, 2)
	assert.Equal(t, "site", list[0]["target"])
	assert.Equal(t, "test-host", list[0]["host"])
	assert.Contains(t, list[0]["tags"], "policy:test-policy")

	// forget --policy applies the policy's retention (nothing left to drop)
	assert.Contains(t, c.ok("forget", "--policy", policy, "--dry-run"), "would remove 0 of 2 snapshots")

	// the secondary restores the newest state with the owner key
	c.env["LIFEBOAT_REPO"] = "file://" + filepath.Join(dir, "dr")
	c.env["LIFEBOAT_KEY_FILE"] = filepath.Join(dir, "owner.key")
	c.ok("restore", "latest", "--to", filepath.Join(dir, "out"))
	got, err := os.ReadFile(filepath.Join(dir, "out", "src", "sub", "n.txt"))
	require.NoError(t, err)
	assert.Equal(t, "2", string(got))

	// the journal has one line per run
	data, err := os.ReadFile(filepath.Join(journal, "test-policy.jsonl"))
	require.NoError(t, err)
	assert.Equal(t, 3, strings.Count(string(data), "\n"))
	assert.Contains(t, string(data), `"snapshots":2,"repository_bytes":`, "the last run counts what retention kept")

	// a failing target fails the run (exit 1), the summary names it
	require.NoError(t, os.RemoveAll(src))
	c.env["LIFEBOAT_REPO"] = ""
	c.env["LIFEBOAT_KEY_FILE"] = ""
	out, errs, code := c.run("run", policy, "--journal", journal)
	assert.Equal(t, exitFailure, code, errs)
	assert.Contains(t, out, "FAILED")

	// an invalid policy is a usage error naming the line
	require.NoError(t, os.WriteFile(policy, []byte("version: 1\nname: x\nbogus: 1\n"), 0o600))
	_, errs, code = c.run("run", policy)
	assert.Equal(t, exitUsage, code)
	assert.Contains(t, errs, ":3:")
}

func TestCLIFailoverAndStatus(t *testing.T) {
	c, dir, src := setup(t)
	primary := c.env["LIFEBOAT_REPO"]
	policy := filepath.Join(dir, "policy.yaml")
	require.NoError(t, os.WriteFile(policy, []byte(`version: 1
name: fo
host: web-1
repositories:
  primary:
    url: `+primary+`
    key_file: `+filepath.Join(dir, "host.key")+`
  secondaries:
    - name: dr
      url: file://`+filepath.Join(dir, "dr")+`
      max_lag: 26h
targets:
  - name: site
    kind: files
    paths: [`+src+`]
`), 0o600))
	c.env["LIFEBOAT_REPO"] = ""
	journal := filepath.Join(dir, "journal")
	c.ok("run", policy, "--journal", journal)
	out := c.ok("status", policy, "--journal", journal)
	assert.Contains(t, out, "dr")
	assert.Contains(t, out, "lag 0s")
	c.ok("replicate", policy)

	// the primary region is gone: status says so, failover does not care
	require.NoError(t, os.RemoveAll(strings.TrimPrefix(primary, "file://")))
	out, _, code := c.run("status", policy, "--journal", journal)
	assert.Equal(t, exitFailure, code)
	assert.Contains(t, out, "UNREACHABLE")

	_, errs, code := c.run("failover", policy, "--to", filepath.Join(dir, "nope"))
	assert.Equal(t, exitWrongKey, code, "the policy's host key cannot restore: %s", errs)
	assert.Contains(t, errs, "owner key")

	c.env["LIFEBOAT_KEY_FILE"] = filepath.Join(dir, "owner.key")
	out = c.ok("failover", policy, "--to", filepath.Join(dir, "restored"))
	assert.Contains(t, out, "failover from dr")
	assert.Contains(t, out, "recovery point")
	got, err := os.ReadFile(filepath.Join(dir, "restored", "src", "sub", "a.txt"))
	require.NoError(t, err)
	assert.Len(t, got, 90000)

	_, _, code = c.run("failover", policy, "--from", "nowhere", "--to", dir)
	assert.Equal(t, exitUsage, code)
}

func TestCLIDrill(t *testing.T) {
	c, dir, src := setup(t)
	primary := c.env["LIFEBOAT_REPO"]
	c.env["LIFEBOAT_REPO"] = ""
	journal := filepath.Join(dir, "journal")
	write := func(name, rto, minFiles string) string {
		p := filepath.Join(dir, name+".yaml")
		require.NoError(t, os.WriteFile(p, []byte(`version: 1
name: `+name+`
host: web-1
repositories:
  primary:
    url: `+primary+`
    key_file: `+filepath.Join(dir, "host.key")+`
  secondaries:
    - name: dr
      url: file://`+filepath.Join(dir, "dr")+`
targets:
  - name: site
    kind: files
    paths: [`+src+`]
objectives:
  rpo: 26h
  rto: `+rto+`
drill:
  checks:
    - name: content present
      target: site
      path: sub
      min_files: `+minFiles+`
`), 0o600))
		return p
	}
	good := write("drill-ok", "30m", "1")
	c.ok("run", good, "--journal", journal)

	// the policy's host key cannot restore: exit 12, with the way out
	_, errs, code := c.run("drill", good, "--journal", journal)
	assert.Equal(t, exitWrongKey, code, errs)

	c.env["LIFEBOAT_KEY_FILE"] = filepath.Join(dir, "owner.key")
	for _, from := range []string{"primary", "dr"} {
		out := c.ok("drill", good, "--from", from, "--journal", journal, "-o", filepath.Join(dir, from+".html"))
		assert.Contains(t, out, "PASSED", from)
		assert.Contains(t, out, "From: "+from)
		assert.FileExists(t, filepath.Join(dir, from+".html"))
	}
	// each drill's report is also kept, encrypted, in the repository it drilled
	for _, repoDir := range []string{strings.TrimPrefix(primary, "file://"), filepath.Join(dir, "dr")} {
		recs, err := os.ReadDir(filepath.Join(repoDir, "records", "drills", "drill-ok"))
		require.NoError(t, err)
		assert.NotEmpty(t, recs, repoDir) // the primary also has the refused host-key drill
	}
	// A drill reads under a shared lock: it stops at a prune's exclusive one.
	b, err := storage.OpenWith(context.Background(), "file://"+filepath.Join(dir, "dr"), storage.OpenOptions{})
	require.NoError(t, err)
	defer b.Close()
	lk, err := repo.AcquireLock(context.Background(), b, true, "prune", 0)
	require.NoError(t, err)
	_, errs, code = c.run("drill", good, "--from", "dr", "--journal", journal)
	assert.Equal(t, exitLocked, code, errs)
	assert.Contains(t, errs, "prune")
	require.NoError(t, lk.Unlock(context.Background()))

	failing := write("drill-fail", "30m", "1000")
	c.env["LIFEBOAT_KEY_FILE"] = filepath.Join(dir, "host.key")
	c.ok("run", failing, "--journal", journal)
	c.env["LIFEBOAT_KEY_FILE"] = filepath.Join(dir, "owner.key")
	out, errs, code := c.run("drill", failing, "--journal", journal)
	assert.Equal(t, exitFailure, code, "a failed check: %s%s", out, errs)
	assert.Contains(t, out+errs, "content present")

	slow := write("drill-slow", "1us", "1")
	c.env["LIFEBOAT_KEY_FILE"] = filepath.Join(dir, "host.key")
	c.ok("run", slow, "--journal", journal)
	c.env["LIFEBOAT_KEY_FILE"] = filepath.Join(dir, "owner.key")
	out, errs, code = c.run("drill", slow, "--journal", journal)
	assert.Equal(t, exitObjective, code, "an objective below the measured RTO: %s%s", out, errs)
	assert.Contains(t, out+errs, "RTO")
}
