package repo_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lifeboat-backup/lifeboat/engine/repo"
	"github.com/lifeboat-backup/lifeboat/engine/repo/repotest"
)

// TestPruneBesideWriter walks the two-phase collection through its cases
// (docs/repository.md, "Garbage collection beside writers"): a prune beside
// a writer only marks; the writer, which loaded the index before the mark,
// deduplicates against a marked pack and saves; the next prune sees its
// snapshot and keeps the pack. A writer that locks after a mark stores
// again what only marked packs hold, and once no writer older than the
// mark runs, the marked packs go.
func TestPruneBesideWriter(t *testing.T) {
	tr := repotest.Init(t, fileBucket(t), repotest.SmallChunks, 512<<10)
	r := tr.Open(t, tr.Owner)
	srcA, srcB := makeTree(t, 2<<20, 51), makeTree(t, 2<<20, 52)
	snA := backupDir(t, r, srcA)
	backupDir(t, r, srcB)
	require.NoError(t, r.DeleteSnapshot(ctx, snA.ID))
	packsBefore := listObjects(t, tr.Bucket, "data/")

	// A writer holds its lock (and its index view) from before the mark.
	w := tr.Open(t, tr.Owner)
	wl, err := w.Lock(ctx, false, "backup", 0)
	require.NoError(t, err)

	p := tr.Open(t, tr.Owner)
	pl, err := p.LockForPrune(ctx, "prune", 0)
	require.NoError(t, err)
	res, err := p.Prune(ctx, repo.PruneOptions{Grace: -1})
	require.NoError(t, err)
	require.NoError(t, pl.Unlock(ctx))
	t.Logf("prune beside a writer: %+v", *res)
	assert.Positive(t, res.PacksMarked, "A's packs are marked")
	assert.Zero(t, res.PacksDeleted, "nothing is deleted while a writer older than the mark runs")
	for k := range packsBefore {
		assert.True(t, exists(t, tr.Bucket, k), "%s kept", k)
	}
	require.NotEmpty(t, listObjects(t, tr.Bucket, "marks/"))

	// The old writer deduplicates against A's (marked) blobs and saves.
	snA2 := backupDir(t, w, srcA)
	assert.Zero(t, snA2.Stats.BytesAdded, "the writer from before the mark reuses what it saw")
	require.NoError(t, wl.Unlock(ctx))

	// A second prune with nobody else at work: the mark is ripe, but A2
	// references its packs, so they stay.
	p = tr.Open(t, tr.Owner)
	pl, err = p.LockForPrune(ctx, "prune", 0)
	require.NoError(t, err)
	res, err = p.Prune(ctx, repo.PruneOptions{Grace: -1})
	require.NoError(t, err)
	require.NoError(t, pl.Unlock(ctx))
	t.Logf("prune after the writer: %+v", *res)
	assert.Empty(t, listObjects(t, tr.Bucket, "marks/"), "the ripe mark is done")
	requireClean(t, tr)
	restoreSame(t, tr.Open(t, tr.Owner), snA2, srcA)

	// Forget A2: a prune beside a new writer marks its packs; the writer,
	// locked after the mark, stores A again instead of referencing them.
	require.NoError(t, r.DeleteSnapshot(ctx, snA2.ID))
	hold := tr.Open(t, tr.Owner)
	hl, err := hold.Lock(ctx, false, "restore", 0)
	require.NoError(t, err)
	p = tr.Open(t, tr.Owner)
	pl, err = p.LockForPrune(ctx, "prune", 0)
	require.NoError(t, err)
	res, err = p.Prune(ctx, repo.PruneOptions{Grace: -1})
	require.NoError(t, err)
	require.NoError(t, pl.Unlock(ctx))
	assert.Positive(t, res.PacksMarked)
	assert.Zero(t, res.PacksDeleted)

	w = tr.Open(t, tr.Owner)
	wl, err = w.Lock(ctx, false, "backup", 0)
	require.NoError(t, err)
	snA3 := backupDir(t, w, srcA)
	assert.Positive(t, snA3.Stats.BytesAdded, "a writer after the mark stores marked data again")
	require.NoError(t, wl.Unlock(ctx))

	// The mark is not ripe while the lock from before it lives.
	p = tr.Open(t, tr.Owner)
	pl, err = p.LockForPrune(ctx, "prune", 0)
	require.NoError(t, err)
	res, err = p.Prune(ctx, repo.PruneOptions{Grace: -1})
	require.NoError(t, err)
	assert.Zero(t, res.PacksDeleted)
	assert.Positive(t, res.PacksWaiting)
	require.NoError(t, pl.Unlock(ctx))
	require.NoError(t, hl.Unlock(ctx))

	// Then it is, and the marked packs go; A3 restores.
	p = tr.Open(t, tr.Owner)
	res, err = p.Prune(ctx, repo.PruneOptions{Grace: -1})
	require.NoError(t, err)
	t.Logf("final prune: %+v", *res)
	assert.Positive(t, res.PacksDeleted)
	assert.Empty(t, listObjects(t, tr.Bucket, "marks/"))
	requireClean(t, tr)
	restoreSame(t, tr.Open(t, tr.Owner), snA3, srcA)
}

// TestMarkRipeNeedsNewerLocks: a lock of an older client (no protocol) or
// one first written before the mark was visible holds a mark back.
func TestMarkRipeNeedsNewerLocks(t *testing.T) {
	tr := repotest.Init(t, memBucket(t), repotest.SmallChunks, 512<<10)
	r := tr.Open(t, tr.Owner)
	sn := backupDir(t, r, makeTree(t, 1<<20, 53))
	require.NoError(t, r.DeleteSnapshot(ctx, sn.ID))

	// An older client's shared lock: AcquireLock writes no protocol.
	old, err := repo.AcquireLock(ctx, tr.Bucket, false, "backup (older client)", 0)
	require.NoError(t, err)
	p := tr.Open(t, tr.Owner)
	pl, err := p.LockForPrune(ctx, "prune", 0)
	require.NoError(t, err)
	res, err := p.Prune(ctx, repo.PruneOptions{Grace: -1})
	require.NoError(t, err)
	assert.Positive(t, res.PacksMarked)
	assert.Zero(t, res.PacksDeleted)
	require.NoError(t, pl.Unlock(ctx))
	require.NoError(t, old.Unlock(ctx))

	// A second prune is refused while one runs.
	pl, err = p.LockForPrune(ctx, "prune", 0)
	require.NoError(t, err)
	_, err = tr.Open(t, tr.Owner).LockForPrune(ctx, "prune 2", 0)
	assert.True(t, repo.IsLocked(err), "two prunes at once: %v", err)
	// A writer locked now (after the mark was visible, but within the
	// marking prune's lease of it) still holds the mark back.
	w := tr.Open(t, tr.Owner)
	wl, err := w.Lock(ctx, false, "backup", 0)
	require.NoError(t, err)
	res, err = p.Prune(ctx, repo.PruneOptions{Grace: -1})
	require.NoError(t, err)
	assert.Zero(t, res.PacksDeleted)
	require.NoError(t, wl.Unlock(ctx))
	require.NoError(t, pl.Unlock(ctx))
}

// TestPruneUnderSharedLock: a prune under a shared lock (a policy run that
// prunes after its backups) keeps other prunes out with a maintenance lock
// of its own, and counts its own shared lock as done.
func TestPruneUnderSharedLock(t *testing.T) {
	tr := repotest.Init(t, memBucket(t), repotest.SmallChunks, 512<<10)
	r := tr.Open(t, tr.Owner)
	sn := backupDir(t, r, makeTree(t, 1<<20, 54))
	require.NoError(t, r.DeleteSnapshot(ctx, sn.ID))

	other := tr.Open(t, tr.Owner)
	ol, err := other.LockForPrune(ctx, "prune", 0)
	require.NoError(t, err)
	lk, err := r.Lock(ctx, false, "run", 0)
	require.NoError(t, err)
	_, err = r.Prune(ctx, repo.PruneOptions{Grace: -1})
	assert.True(t, repo.IsLocked(err), "a prune beside another prune: %v", err)
	require.NoError(t, ol.Unlock(ctx))

	res, err := r.Prune(ctx, repo.PruneOptions{Grace: -1})
	require.NoError(t, err)
	assert.Positive(t, res.PacksDeleted, "its own shared lock does not hold its marks back")
	require.NoError(t, lk.Unlock(ctx))
	assert.Empty(t, listObjects(t, tr.Bucket, "locks/"))
	requireClean(t, tr)
}
