package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lifeboat-backup/lifeboat/engine/repo"
	"github.com/lifeboat-backup/lifeboat/engine/storage"
)

// lockedRepo opens the repository of c with the owner key and takes a lock
// on it, as a prune (exclusive) or a backup (shared) of another process.
func lockedRepo(t *testing.T, c *cli, dir string, exclusive bool) (*repo.Repository, *repo.Lock) {
	t.Helper()
	ctx := context.Background()
	b, err := storage.OpenWith(ctx, c.env["LIFEBOAT_REPO"], storage.OpenOptions{})
	require.NoError(t, err)
	t.Cleanup(func() { b.Close() })
	creds, err := repo.ReadKeyFile(filepath.Join(dir, "owner.key"))
	require.NoError(t, err)
	r, err := repo.OpenUnindexed(ctx, b, creds)
	require.NoError(t, err)
	lk, err := r.Lock(ctx, exclusive, "test", 0)
	require.NoError(t, err)
	return r, lk
}

// runAsync runs lifeboat in-process in the background with the
// environment already set (t.Setenv is for the test's goroutine).
func runAsync(c *cli, args ...string) <-chan [3]any {
	for k, v := range c.env {
		c.t.Setenv(k, v)
	}
	done := make(chan [3]any, 1)
	go func() {
		var out, errb bytes.Buffer
		code := newApp(strings.NewReader(""), &out, &errb).run(context.Background(), args)
		done <- [3]any{out.String(), errb.String(), code}
	}()
	return done
}

// A backup that waited for a prune's lock must not deduplicate against
// the index it would have loaded before the wait: the prune removed those
// packs. (It did: "added 0 B", exit 0, a snapshot check calls broken.)
func TestCLIBackupAfterLockWaitSeesPrune(t *testing.T) {
	c, dir, src := setup(t)
	c.env["LIFEBOAT_KEY_FILE"] = filepath.Join(dir, "owner.key")
	first := lastJSON(t, c.ok("backup", "files", src, "--json"))
	c.ok("forget", first["snapshot_id"].(string))

	r, lk := lockedRepo(t, c, dir, true)
	done := runAsync(c, "backup", "files", src, "--retry-lock", "1m", "--json")
	time.Sleep(1500 * time.Millisecond) // the backup opened the repository and waits
	res, err := r.Prune(context.Background(), repo.PruneOptions{Grace: -1})
	require.NoError(t, err)
	require.Positive(t, res.PacksDeleted, "the forgotten snapshot's packs are gone")
	require.NoError(t, lk.Unlock(context.Background()))

	got := <-done
	require.Equal(t, 0, got[2], "backup: %s", got[1])
	assert.NotZero(t, lastJSON(t, got[0].(string))["bytes_added"], "the content is stored again")
	c.ok("check", "--read-data")
	c.ok("restore", "latest", "--to", filepath.Join(dir, "out"))
	want, err := os.ReadFile(filepath.Join(src, "sub", "a.txt"))
	require.NoError(t, err)
	gotData, err := os.ReadFile(filepath.Join(dir, "out", "src", "sub", "a.txt"))
	require.NoError(t, err)
	assert.Equal(t, want, gotData)
}

// A prune that waited for a backup's lock must see the backup's new index
// files. (It always stopped: "... not found in the index".)
func TestCLIPruneAfterLockWait(t *testing.T) {
	c, dir, src := setup(t)
	c.env["LIFEBOAT_KEY_FILE"] = filepath.Join(dir, "owner.key")
	c.ok("backup", "files", src)

	_, lk := lockedRepo(t, c, dir, false)
	done := runAsync(c, "prune", "--retry-lock", "1m", "--grace", "0s")
	time.Sleep(1500 * time.Millisecond) // the prune opened the repository and waits
	other := filepath.Join(dir, "other")
	require.NoError(t, os.MkdirAll(other, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(other, "b.bin"), randomBytes(t, 1<<20), 0o644))
	c.ok("backup", "files", other) // a shared lock beside ours
	require.NoError(t, lk.Unlock(context.Background()))

	got := <-done
	require.Equal(t, 0, got[2], "prune: %s", got[1])
	c.ok("check", "--read-data")
}

func randomBytes(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	_, err := rand.Read(b)
	require.NoError(t, err)
	return b
}

// buildLifeboat builds the binary for tests that need a real process
// (SIGSTOP, kill -9).
func buildLifeboat(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "lifeboat")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	require.NoError(t, err, "%s", out)
	return bin
}

// A backup stalled past its lease (SIGSTOP, a paused VM) must not save a
// snapshot when it wakes up: a prune meanwhile treated its lock as stale
// and removed the packs it deduplicated against. (It renewed the expired
// lease and exited 0 with a broken snapshot.)
func TestBackupStalledPastLeaseSavesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and stalls for seconds")
	}
	bin := buildLifeboat(t)
	dir := t.TempDir()
	env := append(os.Environ(), "LIFEBOAT_REPO=file://"+filepath.Join(dir, "repo"),
		"LIFEBOAT_KEY_FILE="+filepath.Join(dir, "owner.key"), "LIFEBOAT_TEST_LOCK_LEASE=2s")
	run := func(args ...string) (string, error) {
		cmd := exec.Command(bin, args...)
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	mustRun := func(args ...string) string {
		out, err := run(args...)
		require.NoError(t, err, "lifeboat %s: %s", strings.Join(args, " "), out)
		return out
	}
	mustRun("init", "--owner-key-out", filepath.Join(dir, "owner.key"), "--host-key-out", filepath.Join(dir, "host.key"))
	content := filepath.Join(dir, "content.bin")
	require.NoError(t, os.WriteFile(content, randomBytes(t, 4<<20), 0o644))
	first := mustRun("backup", "exec", "--name", "c.bin", "--json", "--", "cat", content)
	id := lastJSON(t, first)["snapshot_id"].(string)
	mustRun("forget", id)

	// The same content again, from a command that keeps the stream open:
	// its blobs are found in the forgotten snapshot's packs.
	cmd := exec.Command(bin, "backup", "exec", "--name", "c.bin", "--json", "--", "sh", "-c", "cat "+content+"; sleep 4")
	cmd.Env = env
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	require.NoError(t, cmd.Start())
	time.Sleep(1500 * time.Millisecond)
	require.NoError(t, cmd.Process.Signal(syscall.SIGSTOP))
	time.Sleep(3 * time.Second) // past the 2 s lease
	prune := mustRun("prune", "--grace", "0s")
	t.Logf("prune while the backup is stopped: %s", prune)
	require.NoError(t, cmd.Process.Signal(syscall.SIGCONT))
	err := cmd.Wait()
	t.Logf("backup after SIGCONT: %v: %s", err, out.String())
	require.Error(t, err, "the stalled backup must fail")
	assert.Contains(t, out.String(), "lock lost")

	check, err := run("check", "--read-data")
	assert.NoError(t, err, "check after the stalled backup: %s", check)
	snaps := mustRun("snapshots", "--json")
	assert.Equal(t, "[]", strings.TrimSpace(snaps), "no snapshot was saved")
}

// With LIFEBOAT_REPO and LIFEBOAT_KEY_FILE exported (as the quick start
// tells users), `run POLICY` backed up into the environment's repository,
// exit 0, while `status POLICY` looked at the policy's. The environment
// fills what a command lacks; a policy's own settings win.
func TestCLIEnvironmentDoesNotRedirectPolicy(t *testing.T) {
	c, dir, src := setup(t) // the environment's repository
	envRepo := c.env["LIFEBOAT_REPO"]
	polRepo := "file://" + filepath.Join(dir, "policy-repo")
	polKeys := filepath.Join(dir, "pol")
	c.ok("init", "--repo", polRepo, "--owner-key-out", polKeys+".owner", "--host-key-out", polKeys+".host")
	policy := filepath.Join(dir, "policy.yaml")
	require.NoError(t, os.WriteFile(policy, []byte(`version: 1
name: shop
repositories:
  primary:
    url: `+polRepo+`
    key_file: `+polKeys+`.host
targets:
  - name: site
    kind: files
    paths: [`+src+`]
`), 0o600))
	// Both variables exported: the policy's repository with the
	// environment's key, which does not fit (it is pinned to the other
	// repository): a loud failure, nothing saved.
	c.env["LIFEBOAT_KEY_FILE"] = filepath.Join(dir, "host.key")
	_, errs, code := c.run("run", policy)
	assert.NotEqual(t, 0, code, errs)
	assert.Contains(t, errs, "LIFEBOAT_REPO ignored")

	// Only the repository exported: the policy's repository and key.
	c.env["LIFEBOAT_KEY_FILE"] = ""
	_, errs, code = c.run("run", policy)
	require.Equal(t, 0, code, errs)
	c.env["LIFEBOAT_KEY_FILE"] = filepath.Join(dir, "host.key")
	count := func(args ...string) int {
		var list []map[string]any
		require.NoError(t, json.Unmarshal([]byte(c.ok(append(args, "snapshots", "--json")...)), &list))
		return len(list)
	}
	assert.Equal(t, 1, count("--policy", policy, "--key-file", polKeys+".host"), "the snapshot is in the policy's repository")
	assert.Equal(t, 0, count("--repo", envRepo), "and not in the environment's")
	// An explicit flag still says where.
	assert.Equal(t, 0, count("--policy", policy, "--repo", envRepo, "--key-file", filepath.Join(dir, "host.key")))
}
