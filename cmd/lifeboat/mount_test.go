package main

import (
	"context"
	"crypto/rand"
	"io"
	"os"
	osexec "os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// mounted runs lifeboat mount at mp with c's environment until the
// returned stop is called; stop checks that it ended cleanly.
func mounted(t *testing.T, c *cli, mp string) (stop func()) {
	t.Helper()
	for k, v := range c.env {
		t.Setenv(k, v)
	}
	require.NoError(t, os.MkdirAll(mp, 0o755))
	ctx, cancel := context.WithCancel(context.Background())
	errb := &syncBuffer{} // console_test.go
	done := make(chan int, 1)
	go func() { done <- newApp(strings.NewReader(""), io.Discard, errb).run(ctx, []string{"mount", mp}) }()
	deadline := time.Now().Add(20 * time.Second)
	for {
		if _, err := os.Stat(filepath.Join(mp, "ids")); err == nil {
			break
		}
		select {
		case code := <-done:
			cancel()
			t.Fatalf("mount ended early (exit %d): %s", code, errb.String())
		default:
		}
		require.True(t, time.Now().Before(deadline), "not mounted after 20s: %s", errb.String())
		time.Sleep(50 * time.Millisecond)
	}
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case code := <-done:
			assert.Equal(t, 0, code, "mount: %s", errb.String())
		case <-time.After(20 * time.Second):
			t.Errorf("mount did not end after its context")
		}
		_, err := os.Stat(filepath.Join(mp, "ids"))
		assert.True(t, os.IsNotExist(err), "unmounted: %v", err)
	}
	t.Cleanup(stop)
	return stop
}

// TestMount mounts a repository with FUSE (as root: /dev/fuse, no
// fusermount needed), lists it, reads a file, compares a whole snapshot
// with its source with diff -r, and unmounts; with the host key names are
// there but reading is refused. Skips without /dev/fuse or root unless
// LIFEBOAT_REQUIRE_FUSE=1.
func TestMount(t *testing.T) {
	if _, err := os.Stat("/dev/fuse"); err != nil || os.Geteuid() != 0 {
		if os.Getenv("LIFEBOAT_REQUIRE_FUSE") == "1" {
			t.Fatal("FUSE needs /dev/fuse and root here")
		}
		t.Skip("no /dev/fuse or not root")
	}
	c, dir, src := setup(t)
	c.env["LIFEBOAT_KEY_FILE"] = filepath.Join(dir, "owner.key")
	big := make([]byte, 3<<20+12345) // several chunks: reads at offsets cross blobs
	_, _ = rand.Read(big)
	require.NoError(t, os.WriteFile(filepath.Join(src, "big.bin"), big, 0o640))
	require.NoError(t, os.WriteFile(filepath.Join(src, "<img src=x onerror=alert(1)>"), []byte("hostile\n"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(src, "empty"), nil, 0o600))
	require.NoError(t, os.Symlink("sub/a.txt", filepath.Join(src, "link")))
	require.NoError(t, os.Link(filepath.Join(src, "sub", "a.txt"), filepath.Join(src, "hard")))
	require.NoError(t, os.MkdirAll(filepath.Join(src, "deep", "er", "est"), 0o750))
	require.NoError(t, os.WriteFile(filepath.Join(src, "deep", "er", "est", "f"), []byte("deep\n"), 0o644))
	id := lastJSON(t, c.ok("backup", "files", src, "--target", "site", "--json"))["short_id"].(string)

	mp := filepath.Join(dir, "mnt")
	stop := mounted(t, c, mp)
	run := func(name string, args ...string) string {
		out, err := osexec.Command(name, args...).CombinedOutput()
		require.NoError(t, err, "%s %v: %s", name, args, out)
		return string(out)
	}
	assert.Equal(t, "ids\nlatest\nsnapshots\ntargets\n", run("ls", mp))
	assert.Equal(t, id+"\n", run("ls", filepath.Join(mp, "ids")))
	assert.Equal(t, "latest\n", run("sh", "-c", "ls "+filepath.Join(mp, "targets", "site")+" | grep latest"))
	assert.Contains(t, run("ls", "-l", filepath.Join(mp, "latest", "src")), "<img src=x onerror=alert(1)>")
	assert.Equal(t, strings.Repeat("lifeboat ", 10000), run("cat", filepath.Join(mp, "targets", "site", "latest", "src", "sub", "a.txt")))
	// the whole snapshot equals its source: contents, names, symlinks
	run("diff", "-r", "--no-dereference", src, filepath.Join(mp, "latest", "src"))
	// reads at an offset (tail) cross into later blobs
	assert.Equal(t, big[len(big)-100:], []byte(run("tail", "-c", "100", filepath.Join(mp, "latest", "src", "big.bin"))))
	st, err := os.Stat(filepath.Join(mp, "latest", "src", "big.bin"))
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o640), st.Mode().Perm())
	assert.Equal(t, int64(len(big)), st.Size())
	// read-only
	assert.Error(t, os.WriteFile(filepath.Join(mp, "latest", "src", "empty"), []byte("x"), 0o600))
	stop()

	// the host key: names and sizes, no contents
	c.env["LIFEBOAT_KEY_FILE"] = filepath.Join(dir, "host.key")
	mounted(t, c, mp)
	assert.Contains(t, run("ls", "-l", filepath.Join(mp, "latest", "src", "sub")), "90000")
	_, err = os.ReadFile(filepath.Join(mp, "latest", "src", "sub", "a.txt"))
	assert.ErrorIs(t, err, os.ErrPermission)
}
