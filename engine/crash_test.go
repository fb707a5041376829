package engine_test

import (
	"bytes"
	"context"
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
	"github.com/lifeboat-backup/lifeboat/engine/repo/chunker"
	"github.com/lifeboat-backup/lifeboat/engine/storage"
	"github.com/lifeboat-backup/lifeboat/internal/testutil/gentree"
	"github.com/lifeboat-backup/lifeboat/internal/testutil/treecmp"
)

// crashCLI runs the lifeboat binary against one file:// repository.
type crashCLI struct {
	t        *testing.T
	bin      string
	repoDir  string
	ownerKey string
	hostKey  string
}

// buildCLI builds cmd/lifeboat into a temporary directory.
func buildCLI(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "lifeboat")
	cmd := exec.Command("go", "build", "-o", bin, "github.com/lifeboat-backup/lifeboat/cmd/lifeboat")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "go build cmd/lifeboat: %s", out)
	return bin
}

// newCrashRepo initializes a file:// repository with the library (to get
// 4 MiB packs, so that a backup writes index files while it runs) and
// stores the owner and host identities as key files, as `lifeboat init`
// would.
func newCrashRepo(t *testing.T, bin string) *crashCLI {
	t.Helper()
	dir := t.TempDir()
	c := &crashCLI{t: t, bin: bin, repoDir: filepath.Join(dir, "repo"),
		ownerKey: filepath.Join(dir, "owner.key"), hostKey: filepath.Join(dir, "host.key")}
	b, err := storage.OpenWith(context.Background(), c.url(), storage.OpenOptions{Create: true})
	require.NoError(t, err)
	defer b.Close()
	res, err := repo.Init(context.Background(), b, repo.InitOptions{Chunker: chunker.DefaultParams(), PackSize: 4 << 20})
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(c.ownerKey, []byte(res.OwnerIdentity+"\n"), 0o600))
	require.NoError(t, os.WriteFile(c.hostKey, []byte(res.HostIdentity+"\n"), 0o600))
	return c
}

func (c *crashCLI) url() string { return "file://" + c.repoDir }

func (c *crashCLI) command(key string, args ...string) *exec.Cmd {
	cmd := exec.Command(c.bin, args...)
	cmd.Env = append(os.Environ(), "LIFEBOAT_REPO="+c.url(), "LIFEBOAT_KEY_FILE="+key)
	return cmd
}

// run runs a command to completion and requires success.
func (c *crashCLI) run(key string, args ...string) []byte {
	c.t.Helper()
	var stdout, stderr bytes.Buffer
	cmd := c.command(key, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	require.NoError(c.t, err, "lifeboat %s\nstdout: %s\nstderr: %s", strings.Join(args, " "), stdout.String(), stderr.String())
	return stdout.Bytes()
}

// runJSON runs a command with --json and decodes its last output line.
func (c *crashCLI) runJSON(key string, args ...string) map[string]any {
	c.t.Helper()
	out := c.run(key, append(args, "--json")...)
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	var v map[string]any
	require.NoError(c.t, json.Unmarshal([]byte(lines[len(lines)-1]), &v), "output: %s", out)
	return v
}

// killWhen starts a command and SIGKILLs it as soon as ready() reports
// true. It returns false if the command finished on its own first.
func (c *crashCLI) killWhen(key string, ready func() bool, args ...string) (killed bool) {
	c.t.Helper()
	cmd := c.command(key, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	require.NoError(c.t, cmd.Start())
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case err := <-exited:
			require.NoError(c.t, err, "lifeboat %s: %s", strings.Join(args, " "), stderr.String())
			return false
		case <-tick.C:
			if ready() {
				_ = cmd.Process.Signal(syscall.SIGKILL)
				err := <-exited // reaped: its PID is dead, not a zombie
				if err == nil {
					return false // it finished just before the signal
				}
				return true
			}
		}
	}
}

// count returns the number of files under the repository's dir.
func (c *crashCLI) count(dir string) int {
	n := 0
	_ = filepath.WalkDir(filepath.Join(c.repoDir, dir), func(_ string, d os.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			n++
		}
		return nil
	})
	return n
}

func (c *crashCLI) checkReadData() {
	c.t.Helper()
	res := c.runJSON(c.ownerKey, "check", "--read-data")
	require.Equal(c.t, true, res["ok"], "check: %v", res)
}

func (c *crashCLI) restoreCompare(ref, src string) {
	c.t.Helper()
	dest := filepath.Join(c.t.TempDir(), "restore")
	c.run(c.ownerKey, "restore", ref, "--to", dest, "--keep-setuid", "--devices")
	diffs, err := treecmp.Compare(src, filepath.Join(dest, filepath.Base(src)), treecmp.Options{Sparse: true, MaxDifferences: 20})
	require.NoError(c.t, err)
	require.Empty(c.t, diffs, "restored tree differs")
}

func TestCrashKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test: builds the CLI and backs up 200 MiB")
	}
	bin := buildCLI(t)
	c := newCrashRepo(t, bin)
	src := filepath.Join(t.TempDir(), "src")
	st, err := gentree.Generate(src, gentree.Options{Size: 200 << 20, Seed: 9})
	require.NoError(t, err)
	t.Logf("tree: %s", st)

	t.Run("backup", func(t *testing.T) {
		c.t = t
		// Kill the first backup once it has flushed an index file, so the
		// next run can reuse what that index lists.
		killed := c.killWhen(c.hostKey, func() bool { return c.count("index") > 0 }, "backup", "files", src)
		require.True(t, killed, "the backup finished before an index file was written")
		t.Logf("killed: %d packs, %d index files, %d locks left", c.count("data"), c.count("index"), c.count("locks"))
		require.Zero(t, c.count("snapshots"), "a killed backup saves no snapshot")
		require.Equal(t, 1, c.count("locks"), "the killed backup left its lock")

		indexedBefore := c.indexedBytes()
		require.Positive(t, indexedBefore)

		// The next run removes the dead process's lock and reuses the data
		// indexed before the kill: it adds exactly what was not indexed.
		res := c.runJSON(c.hostKey, "backup", "files", src)
		added := int64(res["bytes_added"].(float64))
		indexedAfter := c.indexedBytes()
		t.Logf("second backup: bytes_added %d; indexed before %d, after %d", added, indexedBefore, indexedAfter)
		assert.Equal(t, indexedAfter-indexedBefore, added, "the second backup reuses data indexed by the killed one")
		assert.Zero(t, c.count("locks"))

		c.checkReadData()
		c.restoreCompare("latest", src)
	})

	t.Run("prune", func(t *testing.T) {
		c.t = t
		ids := c.snapshotIDs()
		require.Len(t, ids, 1)
		_, err := gentree.Mutate(src, 0.3, 10)
		require.NoError(t, err)
		c.runJSON(c.hostKey, "backup", "files", src)
		c.run(c.hostKey, "forget", ids[0])

		// Kill prune at growing delays until it completes on its own; after
		// every kill the kept snapshot must still be whole (structure
		// check: every referenced blob indexed, every indexed pack there).
		kills := 0
		for i := 0; ; i++ {
			require.Less(t, i, 40, "prune never completed")
			delay := time.Duration(i*i) * 15 * time.Millisecond
			start := time.Now()
			killed := c.killWhen(c.ownerKey, func() bool { return time.Since(start) > delay },
				"prune", "--grace", "1ns", "--repack-unused", "0.05")
			if !killed {
				break
			}
			kills++
			res := c.runJSON(c.hostKey, "check")
			require.Equal(t, true, res["ok"], "check after killing prune at %v: %v", delay, res)
		}
		t.Logf("prune killed %d times before it completed", kills)
		assert.Positive(t, kills)

		// A backup after all that, and everything reads back.
		res := c.runJSON(c.hostKey, "backup", "files", src)
		t.Logf("backup after prune: bytes_added %.0f", res["bytes_added"].(float64))
		c.checkReadData()
		c.restoreCompare("latest", src)
		require.Len(t, c.snapshotIDs(), 2)
	})

	t.Run("replicate", func(t *testing.T) {
		c.t = t
		dr := filepath.Join(t.TempDir(), "dr")
		count := func(sub string) int {
			n := 0
			_ = filepath.WalkDir(filepath.Join(dr, sub), func(p string, d os.DirEntry, err error) error {
				if strings.Contains(p, "/.tmp/") {
					return nil // staging files of the killed copy
				}
				if err == nil && d.Type().IsRegular() {
					n++
				}
				return nil
			})
			return n
		}
		// Kill replication once some packs are across: manifests come last,
		// so the secondary shows no snapshot yet.
		killed := c.killWhen(c.hostKey, func() bool { return count("data") > 2 }, "replicate", "--to", "file://"+dr)
		require.True(t, killed, "replication finished before it could be killed")
		copiedBefore := count("data") + count("keys") + count("index") + count("config")
		require.Zero(t, count("snapshots"), "no half-visible snapshot on the secondary")

		// The rerun copies only what is missing, and the secondary then
		// restores like the primary.
		sum := c.runJSON(c.hostKey, "replicate", "--to", "file://"+dr)
		secs, _ := sum["secondaries"].([]any)
		require.Len(t, secs, 1, "summary: %v", sum)
		res := secs[0].(map[string]any)
		total := c.count("data") + c.count("index") + c.count("snapshots") + c.count("keys") + 1
		t.Logf("killed after %d objects; rerun copied %.0f of %d objects", copiedBefore, res["copied"].(float64), total)
		assert.Equal(t, float64(total-copiedBefore), res["copied"], "no object copied twice")
		assert.Equal(t, 2, count("snapshots"))

		primary := c.repoDir
		c.repoDir = dr
		defer func() { c.repoDir = primary }()
		c.checkReadData()
		c.restoreCompare("latest", src)
	})
}

// indexedBytes returns the plaintext size of all distinct indexed blobs.
func (c *crashCLI) indexedBytes() int64 {
	c.t.Helper()
	b, err := storage.OpenWith(context.Background(), c.url(), storage.OpenOptions{})
	require.NoError(c.t, err)
	defer b.Close()
	creds, err := repo.ReadKeyFile(c.hostKey)
	require.NoError(c.t, err)
	r, err := repo.Open(context.Background(), b, creds)
	require.NoError(c.t, err)
	var n int64
	r.Index().Each(func(l repo.Location) { n += int64(l.RawLength) })
	return n
}

func (c *crashCLI) snapshotIDs() []string {
	c.t.Helper()
	var ids []string
	entries, err := os.ReadDir(filepath.Join(c.repoDir, "snapshots"))
	if err != nil && !os.IsNotExist(err) {
		require.NoError(c.t, err)
	}
	for _, e := range entries {
		ids = append(ids, e.Name())
	}
	return ids
}
