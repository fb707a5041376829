package repo_test

import (
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gocloud.dev/blob"

	"github.com/lifeboat-backup/lifeboat/engine"
	"github.com/lifeboat-backup/lifeboat/engine/repo"
	"github.com/lifeboat-backup/lifeboat/engine/repo/repotest"
	"github.com/lifeboat-backup/lifeboat/engine/snapshot"
	"github.com/lifeboat-backup/lifeboat/engine/storage/miniotest"
	"github.com/lifeboat-backup/lifeboat/restore"
	"github.com/lifeboat-backup/lifeboat/targets/files"
)

// TestFleetBesidePrune: 8 hosts back up in a loop into one repository on
// MinIO, their trees overlapping by half (a shared part and one of their
// own that grows a file each round), while a loop forgets host-0's older
// snapshots and prunes. Prune must delete while the writers run (it never
// starves), and at the end check --read-data is clean, every snapshot a
// backup reported saved and nobody forgot restores exactly, and the
// repository holds about the unique data once, not eight times.
//
// Short form 30-60 s; LIFEBOAT_FLEET_DURATION (a Go duration) runs longer,
// LIFEBOAT_FLEET_URL uses another store (the 4-node MinIO of
// scripts/minio-cluster, say: an s3:// URL of an existing bucket).
func TestFleetBesidePrune(t *testing.T) {
	if testing.Short() {
		t.Skip("fleet: half a minute of work")
	}
	dur := 10 * time.Second
	if d, err := time.ParseDuration(os.Getenv("LIFEBOAT_FLEET_DURATION")); err == nil {
		dur = d
	}
	var b *blob.Bucket
	if u := os.Getenv("LIFEBOAT_FLEET_URL"); u != "" {
		b = openBucket(t, u)
	} else {
		if _, err := miniotest.Binary(); err != nil {
			if miniotest.Required() {
				t.Fatal(err)
			}
			t.Skip(err)
		}
		srv := miniotest.Start(t)
		srv.CreateBucket(t, "fleet")
		b = openBucket(t, srv.URL("fleet", ""))
	}
	// Leases of seconds, so marks ripen within the test; 12 s, because
	// under -race at load 25 on 2 cores a lock write can take over a
	// second, and with 4 s leases (800 ms refreshes) most writers and
	// every prune lost their lease (98 of 111 in one run).
	oldLease, oldRefresh := repo.LockLease, repo.LockRefresh
	repo.LockLease, repo.LockRefresh = 12*time.Second, 2400*time.Millisecond
	t.Cleanup(func() { repo.LockLease, repo.LockRefresh = oldLease, oldRefresh })

	tr := repotest.Init(t, b, repotest.SmallChunks, 512<<10)
	const hosts = 8
	shared := filepath.Join(t.TempDir(), "shared")
	writeRandomFiles(t, shared, 8, 128<<10)

	type saved struct {
		host string
		id   snapshot.ID
		want map[string][32]byte // relative path -> SHA-256
	}
	var mu sync.Mutex
	var done []saved
	var forgotten = map[snapshot.ID]bool{}
	var firstErr error
	lost := 0
	fail := func(err error) {
		mu.Lock()
		if firstErr == nil {
			firstErr = err
		}
		mu.Unlock()
	}

	// The writers run until the maintenance loop has run for dur and has
	// forgotten and deleted something beside them (at most 4*dur: then the
	// test fails, prune starved).
	start := time.Now()
	stop := make(chan struct{})
	stopped := func() bool {
		select {
		case <-stop:
			return true
		default:
			return false
		}
	}
	var wg sync.WaitGroup
	roots := make([]string, hosts)
	for h := range hosts {
		// The host's tree: the shared half (a copy: another machine's
		// disk) and a half of its own.
		roots[h] = filepath.Join(t.TempDir(), "root")
		copyTree(t, shared, filepath.Join(roots[h], "shared"))
		writeRandomFiles(t, filepath.Join(roots[h], "own"), 8, 128<<10)
		wg.Add(1)
		go func() {
			defer wg.Done()
			host := fmt.Sprintf("host-%d", h)
			for round := 0; !stopped(); round++ {
				// Each round brings a new file of the host's own.
				own := filepath.Join(roots[h], "own")
				if err := writeRandomFilesAt(own, fmt.Sprintf("r%03d", round), 1, 96<<10); err != nil {
					fail(err)
					return
				}
				if h == 0 {
					// host-0 rotates: its data turns to garbage once forgotten.
					_ = os.Remove(filepath.Join(own, fmt.Sprintf("r%03d-00", round-3)))
				}
				want := hashTree(roots[h])
				r, err := repo.Open(ctx, tr.Bucket, tr.Host)
				if err != nil {
					fail(err)
					return
				}
				lk, err := r.Lock(ctx, false, "backup "+host, time.Minute)
				if err != nil {
					fail(fmt.Errorf("%s: lock: %w", host, err))
					return
				}
				res, err := engine.Backup(ctx, r, &files.Source{Roots: []string{roots[h]}}, engine.BackupOptions{Host: host})
				_ = lk.Unlock(ctx)
				if errors.Is(err, repo.ErrLockLost) {
					// On a loaded machine a lease of seconds runs out: the
					// backup fails and says so, saving nothing. Next round.
					mu.Lock()
					lost++
					mu.Unlock()
					continue
				}
				if err != nil {
					fail(fmt.Errorf("%s: backup: %w", host, err))
					return
				}
				mu.Lock()
				done = append(done, saved{host: host, id: res.Snapshot.ID, want: want})
				mu.Unlock()
				time.Sleep(300 * time.Millisecond) // a fleet, not a stampede
			}
		}()
	}

	// The maintenance loop: forget all but host-0's newest two, prune.
	// It goes on until a prune beside the writers deleted something: a
	// mark ripens only at a later prune, and under -race on a loaded
	// machine one prune beside eight writers takes tens of seconds, so
	// the limit is generous (reaching it fails the test below).
	limit := max(4*dur, 4*time.Minute)
	var prunes, deleted, marked int
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(stop)
		for {
			mu.Lock()
			enough := time.Since(start) > dur && deleted > 0 && len(forgotten) > 0
			mu.Unlock()
			if enough || time.Since(start) > limit || firstErr != nil {
				return
			}
			r, err := repo.Open(ctx, tr.Bucket, tr.Owner)
			if err != nil {
				fail(err)
				return
			}
			lk, err := r.LockForPrune(ctx, "prune", time.Minute)
			if err != nil {
				fail(fmt.Errorf("prune lock: %w", err))
				return
			}
			sns, err := r.Snapshots(ctx)
			if err != nil {
				fail(err)
				return
			}
			var mine []*snapshot.Snapshot
			for _, sn := range sns {
				if sn.Host == "host-0" {
					mine = append(mine, sn)
				}
			}
			for i := 0; i+2 < len(mine); i++ {
				if err := r.DeleteSnapshot(ctx, mine[i].ID); err != nil {
					fail(err)
					return
				}
				mu.Lock()
				forgotten[mine[i].ID] = true
				mu.Unlock()
			}
			began := time.Now()
			res, err := r.Prune(ctx, repo.PruneOptions{Grace: -1})
			_ = lk.Unlock(ctx)
			if errors.Is(err, repo.ErrLockLost) {
				mu.Lock()
				lost++ // stops cleanly; the next prune goes on
				mu.Unlock()
				continue
			}
			if err != nil {
				fail(fmt.Errorf("prune: %w", err))
				return
			}
			t.Logf("prune beside the writers (%.1fs): %d snapshots, %d packs marked, %d waiting, %d deleted, %d unindexed deleted",
				time.Since(began).Seconds(), res.Snapshots, res.PacksMarked, res.PacksWaiting, res.PacksDeleted, res.PacksUnindexed)
			mu.Lock()
			prunes++
			deleted += res.PacksDeleted + res.PacksUnindexed
			marked += res.PacksMarked
			mu.Unlock()
			time.Sleep(200 * time.Millisecond)
		}
	}()
	wg.Wait()
	require.NoError(t, firstErr)
	t.Logf("%d backups (%d backups or prunes more failed with a lost lease), %d prunes beside them: %d packs marked, %d deleted", len(done), lost, prunes, marked, deleted)
	require.GreaterOrEqual(t, len(done), 2*hosts, "every host backed up repeatedly")
	assert.Positive(t, deleted, "prune deleted while the writers ran: it does not starve")
	assert.NotEmpty(t, forgotten, "host-0's older snapshots were forgotten")

	// The end: prune with nobody beside it, check, restore everything.
	r := tr.Open(t, tr.Owner)
	lk, err := r.LockForPrune(ctx, "prune", time.Minute)
	require.NoError(t, err)
	res, err := r.Prune(ctx, repo.PruneOptions{Grace: -1})
	require.NoError(t, err)
	require.NoError(t, lk.Unlock(ctx))
	t.Logf("final prune: %+v", *res)
	chk := requireClean(t, tr)
	t.Logf("check --read-data: %d packs read, warnings %v", chk.PacksRead, chk.Warnings)
	r = tr.Open(t, tr.Owner)
	restored := 0
	for _, s := range done {
		if forgotten[s.id] {
			continue
		}
		sn, err := r.LoadSnapshot(ctx, s.id)
		require.NoError(t, err, "snapshot %s of %s reported saved", s.id.Short(), s.host)
		dest := t.TempDir()
		_, err = restore.Files(ctx, r, sn, dest, snapshot.RestoreOptions{})
		require.NoError(t, err, "restore %s of %s", s.id.Short(), s.host)
		got := hashTree(filepath.Join(dest, "root"))
		require.Equal(t, s.want, got, "snapshot %s of %s restores exactly", s.id.Short(), s.host)
		restored++
	}
	t.Logf("%d snapshots restored exactly (%d forgotten)", restored, len(forgotten))

	// Storage: the live data once. Unique = the shared half once plus every
	// host's own files (random, incompressible).
	var unique int64
	unique += treeSize(t, shared)
	for h := range hosts {
		unique += treeSize(t, filepath.Join(roots[h], "own"))
	}
	stored := totalSize(listObjects(t, tr.Bucket, "data/"))
	t.Logf("stored %d bytes in packs for %d bytes of unique data (%.2fx; without cross-host dedup %d)",
		stored, unique, float64(stored)/float64(unique), unique+int64(hosts-1)*treeSize(t, shared))
	assert.Less(t, float64(stored), math.Ceil(1.15*float64(unique)), "about the unique data, not one copy per host")
}

// writeRandomFiles writes n files of size random bytes into dir.
func writeRandomFiles(t *testing.T, dir string, n, size int) {
	t.Helper()
	require.NoError(t, writeRandomFilesAt(dir, "f", n, size))
}

func writeRandomFilesAt(dir, prefix string, n, size int) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for i := range n {
		data := make([]byte, size)
		_, _ = rand.Read(data)
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("%s-%02d", prefix, i)), data, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// copyTree copies the regular files of src to dst.
func copyTree(t *testing.T, src, dst string) {
	t.Helper()
	require.NoError(t, filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), data, 0o644)
	}))
}

// hashTree maps each regular file under root to its SHA-256.
func hashTree(root string) map[string][32]byte {
	out := map[string][32]byte{}
	_ = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		out[rel] = sha256.Sum256(data)
		return nil
	})
	return out
}

func treeSize(t *testing.T, root string) int64 {
	t.Helper()
	var n int64
	require.NoError(t, filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		fi, err := d.Info()
		n += fi.Size()
		return err
	}))
	return n
}
