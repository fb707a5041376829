package restore_test

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/lifeboat-backup/lifeboat/engine"
	"github.com/lifeboat-backup/lifeboat/engine/repo"
	"github.com/lifeboat-backup/lifeboat/engine/repo/repotest"
	"github.com/lifeboat-backup/lifeboat/engine/snapshot"
	"github.com/lifeboat-backup/lifeboat/restore"
)

// bigFileSnapshot backs up a 40 MiB file of random data with holes (many
// blobs in many packs) and a small file; it returns the repository (owner
// key), its test handle, the snapshot and the big file's content.
func bigFileSnapshot(t *testing.T) (*repotest.Repo, *repo.Repository, *snapshot.Snapshot, []byte) {
	t.Helper()
	big := make([]byte, 40<<20)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < len(big); i += 8 {
		if (i>>20)%7 != 3 { // every 7th MiB stays zeros: a hole
			v := rng.Uint64()
			for k := range 8 {
				big[i+k] = byte(v >> (8 * k))
			}
		}
	}
	tr, _ := repotest.Mem(t)
	host := tr.Open(t, tr.Host)
	res, err := engine.Backup(context.Background(), host, hostile{"files", []hostileEntry{
		dir("srv", 0o755), file("srv/big.bin", string(big), 0o644), file("srv/small.txt", "small", 0o644)}}, engine.BackupOptions{NoParent: true})
	require.NoError(t, err)
	owner := tr.Open(t, tr.Owner)
	sn, err := owner.FindSnapshot(context.Background(), res.Snapshot.ID.String(), nil)
	require.NoError(t, err)
	return tr, owner, sn, big
}

// TestFilesBigFileInSegments: a big file is written in segments by all
// workers and comes back identical, counted once; with one worker it is
// written whole, the same.
func TestFilesBigFileInSegments(t *testing.T) {
	_, r, sn, big := bigFileSnapshot(t)
	for _, workers := range []int{4, 1} {
		dest := filepath.Join(t.TempDir(), "out")
		p := &snapshot.Progress{}
		st, err := restore.Files(context.Background(), r, sn, dest, snapshot.RestoreOptions{Workers: workers, Progress: p})
		require.NoError(t, err)
		require.Equal(t, int64(2), st.Files)
		require.Equal(t, int64(2), p.Files.Load(), "a file in segments counts once")
		require.Equal(t, int64(len(big)+5), p.Bytes.Load())
		got, err := os.ReadFile(filepath.Join(dest, "srv/big.bin"))
		require.NoError(t, err)
		require.True(t, bytes.Equal(big, got), "workers %d: content differs", workers)
		fi, err := os.Stat(filepath.Join(dest, "srv/big.bin"))
		require.NoError(t, err)
		require.Equal(t, int64(0o644), int64(fi.Mode().Perm()))
	}
}

// TestFilesBigFileSegmentFails: a pack of a middle segment is missing: the
// big file is reported once and left out (no partial file), the rest is
// restored.
func TestFilesBigFileSegmentFails(t *testing.T) {
	tr, r, sn, _ := bigFileSnapshot(t)
	ctx := context.Background()
	treader := r.NewTreeReader(ctx, sn)
	var node *snapshot.Node
	for {
		n, err := treader.Next()
		require.NoError(t, err)
		if n.Path == "srv/big.bin" {
			node = n
			break
		}
	}
	loc, ok := r.Index().Lookup(node.Content[len(node.Content)/2])
	require.True(t, ok)
	id := loc.Pack.String()
	require.NoError(t, tr.Bucket.Delete(ctx, "data/"+id[:2]+"/"+id))
	r = tr.Open(t, tr.Owner)

	dest := filepath.Join(t.TempDir(), "out")
	st, err := restore.Files(ctx, r, sn, dest, snapshot.RestoreOptions{Workers: 4})
	var ie *snapshot.IncompleteError
	require.True(t, errors.As(err, &ie), "%v", err)
	require.Equal(t, []string{"srv/big.bin"}, failedPaths(ie.Failures))
	require.ErrorContains(t, ie.Failures[0].Err, id)
	require.Equal(t, int64(1), st.Files)
	_, err = os.Stat(filepath.Join(dest, "srv/big.bin"))
	require.ErrorIs(t, err, os.ErrNotExist)
	entries, err := os.ReadDir(filepath.Join(dest, "srv"))
	require.NoError(t, err)
	require.Len(t, entries, 1, "only small.txt, no temporary file left")
}

// openFDs counts the process's open file descriptors.
func openFDs(t *testing.T) int {
	t.Helper()
	fds, err := os.ReadDir("/proc/self/fd")
	require.NoError(t, err)
	return len(fds)
}

// TestFilesCancelLeavesNothing: a restore cancelled while the segments of
// a big file are being written (some sent, some not yet) returns the
// cancellation and leaves no file open: every temporary file is committed
// or aborted.
func TestFilesCancelLeavesNothing(t *testing.T) {
	_, r, sn, big := bigFileSnapshot(t)
	_, err := restore.Files(context.Background(), r, sn, filepath.Join(t.TempDir(), "out"), snapshot.RestoreOptions{Workers: 4})
	require.NoError(t, err)
	before := openFDs(t)
	for _, at := range []int64{1, 4 << 20, 12 << 20, 30 << 20} {
		ctx, cancel := context.WithCancel(context.Background())
		p := &snapshot.Progress{}
		done := make(chan struct{})
		go func() {
			defer close(done)
			for p.Bytes.Load() < at && ctx.Err() == nil {
				runtime.Gosched()
			}
			cancel()
		}()
		dest := filepath.Join(t.TempDir(), "out")
		_, err := restore.Files(ctx, r, sn, dest, snapshot.RestoreOptions{Workers: 4, Progress: p})
		cancel()
		<-done
		if err == nil {
			require.Equal(t, int64(len(big)+5), p.Bytes.Load(), "cancelled at %d after the end", at)
			continue
		}
		require.ErrorIs(t, err, context.Canceled, "cancelled at %d", at)
		require.Equal(t, before, openFDs(t), "cancelled at %d: files left open", at)
	}
}
