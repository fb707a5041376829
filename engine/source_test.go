package engine_test

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/lifeboat-backup/lifeboat/engine"
	"github.com/lifeboat-backup/lifeboat/engine/repo"
	"github.com/lifeboat-backup/lifeboat/engine/repo/repotest"
	"github.com/lifeboat-backup/lifeboat/engine/snapshot"
	"github.com/lifeboat-backup/lifeboat/targets/files"
)

// swapSource is a files.Source whose file "victim" is replaced by swap
// after the walk has listed it and before the backup opens it.
type swapSource struct {
	*files.Source
	swap func(path string)
}

func (s swapSource) Walk(ctx context.Context, warn func(string, error), fn func(snapshot.Entry, engine.Opener) error) error {
	return s.Source.Walk(ctx, warn, func(e snapshot.Entry, open engine.Opener) error {
		if filepath.Base(e.Path) == "victim" {
			s.swap(filepath.Join(filepath.Dir(s.Roots[0]), e.Path))
		}
		return fn(e, open)
	})
}

// backupSwapped backs up a tree holding "victim" (replaced by swap between
// walk and read) and "other", with a time limit: an open that blocks fails
// the test instead of hanging it.
func backupSwapped(t *testing.T, swap func(path string)) (*repo.Repository, *engine.BackupResult) {
	t.Helper()
	root := filepath.Join(t.TempDir(), "src")
	require.NoError(t, os.MkdirAll(root, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(root, "victim"), []byte("the file as listed"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(root, "other"), []byte("other"), 0o644))
	rp := repotest.Init(t, openURL(t, "mem://"), repotest.SmallChunks, 0)
	r := rp.Open(t, rp.Owner)
	type result struct {
		res *engine.BackupResult
		err error
	}
	done := make(chan result, 1)
	go func() {
		res, err := engine.Backup(context.Background(), r, swapSource{&files.Source{Roots: []string{root}}, swap}, engine.BackupOptions{})
		done <- result{res, err}
	}()
	select {
	case got := <-done:
		require.NoError(t, got.err)
		return r, got.res
	case <-time.After(20 * time.Second):
		t.Fatal("backup hangs on the swapped file")
		return nil, nil
	}
}

// stored returns the paths and contents of the files in sn.
func stored(t *testing.T, r *repo.Repository, sn *snapshot.Snapshot) map[string]string {
	t.Helper()
	out := map[string]string{}
	tr := r.NewTreeReader(context.Background(), sn)
	for {
		n, err := tr.Next()
		if err == io.EOF {
			return out
		}
		require.NoError(t, err)
		if n.Type != snapshot.TypeFile {
			continue
		}
		b, err := io.ReadAll(r.NewBlobReader(context.Background(), n.Content))
		require.NoError(t, err)
		out[n.Path] = string(b)
	}
}

func TestSourceFileSwappedForFIFO(t *testing.T) {
	r, res := backupSwapped(t, func(p string) {
		require.NoError(t, os.Remove(p))
		require.NoError(t, unix.Mkfifo(p, 0o644))
	})
	require.Len(t, res.Warnings, 1)
	assert.Contains(t, res.Warnings[0], "src/victim")
	assert.Contains(t, res.Warnings[0], "now a fifo")
	assert.Equal(t, map[string]string{"src/other": "other"}, stored(t, r, res.Snapshot))
}

func TestSourceFileSwappedForSymlink(t *testing.T) {
	// A file only root may read, outside the backed-up tree: a user who can
	// write in the tree must not get it into the snapshot under their name.
	secret := filepath.Join(t.TempDir(), "shadow")
	require.NoError(t, os.WriteFile(secret, []byte("root's secret"), 0o600))
	r, res := backupSwapped(t, func(p string) {
		require.NoError(t, os.Remove(p))
		require.NoError(t, os.Symlink(secret, p))
	})
	require.Len(t, res.Warnings, 1)
	assert.Contains(t, res.Warnings[0], "src/victim")
	assert.Contains(t, res.Warnings[0], "now a symlink")
	got := stored(t, r, res.Snapshot)
	for p, c := range got {
		assert.NotContains(t, c, "secret", p)
	}
	assert.Equal(t, map[string]string{"src/other": "other"}, got)
}

func TestSourceFileReplacedByAnother(t *testing.T) {
	r, res := backupSwapped(t, func(p string) {
		tmp := p + ".new"
		require.NoError(t, os.WriteFile(tmp, []byte("a different file"), 0o644))
		require.NoError(t, os.Rename(tmp, p))
	})
	require.Len(t, res.Warnings, 1)
	assert.True(t, strings.Contains(res.Warnings[0], "replaced by another file"), res.Warnings[0])
	assert.Equal(t, map[string]string{"src/other": "other"}, stored(t, r, res.Snapshot))
}
