package repo_test

import (
	"crypto/rand"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lifeboat-backup/lifeboat/engine/repo"
	"github.com/lifeboat-backup/lifeboat/engine/repo/repotest"
	"github.com/lifeboat-backup/lifeboat/engine/snapshot"
)

// requireClean runs a full check and requires no errors.
func requireClean(t *testing.T, tr *repotest.Repo) *repo.CheckResult {
	t.Helper()
	r := tr.Open(t, tr.Owner)
	res, err := r.Check(ctx, repo.CheckOptions{ReadDataPercent: 100})
	require.NoError(t, err)
	require.Empty(t, res.Errors)
	assert.Equal(t, res.Packs, res.PacksRead)
	return res
}

// thinOut copies src to a sibling directory, leaving out every other
// regular file, and returns the copy: a second tree that shares about half
// of its content with src.
func thinOut(t *testing.T, src string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "src")
	i := 0
	require.NoError(t, filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		target := filepath.Join(dst, rel)
		switch {
		case d.IsDir():
			return os.MkdirAll(target, 0o755)
		case d.Type().IsRegular():
			i++
			if i%2 == 0 {
				return nil
			}
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			return os.WriteFile(target, data, 0o644)
		}
		return nil
	}))
	return dst
}

func TestPruneForgottenSnapshot(t *testing.T) {
	tr := repotest.Init(t, fileBucket(t), repotest.SmallChunks, 512<<10)
	r := tr.Open(t, tr.Owner)
	srcA, srcB := makeTree(t, 4<<20, 41), makeTree(t, 4<<20, 42)
	snA := backupDir(t, r, srcA)
	snB := backupDir(t, r, srcB)
	before := listObjects(t, tr.Bucket, "data/")
	oldIndex := keysOf(listObjects(t, tr.Bucket, "index/"), "index/")

	require.NoError(t, r.DeleteSnapshot(ctx, snA.ID))
	res, err := r.Prune(ctx, repo.PruneOptions{Grace: -1})
	require.NoError(t, err)
	t.Logf("prune: %+v", *res)
	assert.Equal(t, 1, res.Snapshots)
	assert.Positive(t, res.PacksDeleted)
	assert.Positive(t, res.BlobsRemoved)

	after := listObjects(t, tr.Bucket, "data/")
	freed := totalSize(before) - totalSize(after)
	t.Logf("data/ %d -> %d bytes", totalSize(before), totalSize(after))
	assert.Greater(t, freed, snA.Stats.BytesStored/2, "about the forgotten snapshot's data is gone")
	// Repacked packs get new headers: BytesFreed is close, not exact.
	assert.InEpsilon(t, freed, res.BytesFreed, 0.02, "BytesFreed is about what left the bucket")

	removed := 0
	for k := range before {
		if _, ok := after[k]; !ok {
			removed++
		}
	}
	// Repacked packs are deleted in the second pass, counted there.
	assert.Equal(t, res.PacksDeleted, removed)
	assert.GreaterOrEqual(t, res.IndexFilesMerged, len(oldIndex))
	for _, k := range oldIndex {
		assert.False(t, exists(t, tr.Bucket, k), "old index file %s replaced", k)
	}

	requireClean(t, tr)
	r = tr.Open(t, tr.Owner)
	restoreSame(t, r, snB, srcB)
	_, err = r.LoadSnapshot(ctx, snA.ID)
	require.ErrorIs(t, err, repo.ErrNotFound)

	// A second prune finds nothing more to do.
	res, err = r.Prune(ctx, repo.PruneOptions{Grace: -1})
	require.NoError(t, err)
	assert.Zero(t, res.PacksDeleted+res.PacksRepacked+res.PacksUnindexed)
	assert.Equal(t, after, listObjects(t, tr.Bucket, "data/"))
}

// sharedRepo backs up a tree, then a thinned copy of it, and forgets the
// first: packs of the first backup are then partly used.
func sharedRepo(t *testing.T, r *repo.Repository) (kept *snapshot.Snapshot, keptSrc string) {
	t.Helper()
	srcA := makeTree(t, 4<<20, 51)
	snA := backupDir(t, r, srcA)
	srcB := thinOut(t, srcA)
	snB := backupDir(t, r, srcB)
	require.Less(t, snB.Stats.BytesAdded, snA.Stats.BytesIn/10, "the thinned tree shares its content")
	require.NoError(t, r.DeleteSnapshot(ctx, snA.ID))
	return snB, srcB
}

func TestPruneRepacks(t *testing.T) {
	tr := repotest.Init(t, memBucket(t), repotest.SmallChunks, 512<<10)
	r := tr.Open(t, tr.Owner)
	snB, srcB := sharedRepo(t, r)
	before := listObjects(t, tr.Bucket, "data/")

	// Which blobs share a pack depends on the savers' order: under load
	// every partly used pack once stayed below the default 20% unused
	// (5 kept, none repacked). 5% makes the repack certain.
	res, err := r.Prune(ctx, repo.PruneOptions{Grace: -1, RepackUnused: 0.05})
	require.NoError(t, err)
	t.Logf("prune: %+v", *res)
	assert.Positive(t, res.PacksRepacked, "partly used packs are repacked")
	assert.Zero(t, res.NeedOwnerKey)
	after := listObjects(t, tr.Bucket, "data/")
	assert.Less(t, totalSize(after), totalSize(before))

	requireClean(t, tr)
	restoreSame(t, tr.Open(t, tr.Owner), snB, srcB)

	// Nothing is left to repack: every pack is now (almost) wholly used.
	res, err = tr.Open(t, tr.Owner).Prune(ctx, repo.PruneOptions{Grace: -1})
	require.NoError(t, err)
	assert.Zero(t, res.PacksRepacked)
	assert.Zero(t, res.PacksDeleted)
}

func TestPruneHostKey(t *testing.T) {
	tr := repotest.Init(t, memBucket(t), repotest.SmallChunks, 512<<10)
	host := tr.Open(t, tr.Host)
	snB, srcB := sharedRepo(t, host)
	// A snapshot of its own: all its packs become wholly unused.
	snC := backupDir(t, host, makeTree(t, 2<<20, 52))
	require.NoError(t, host.DeleteSnapshot(ctx, snC.ID))
	before := listObjects(t, tr.Bucket, "data/")

	res, err := host.Prune(ctx, repo.PruneOptions{Grace: -1})
	require.NoError(t, err)
	t.Logf("prune with the host key: %+v", *res)
	assert.Positive(t, res.PacksDeleted, "wholly unused packs go without the owner key")
	assert.Positive(t, res.NeedOwnerKey, "partly used data packs need the owner key")
	assert.GreaterOrEqual(t, res.PartlyUsedKept, res.NeedOwnerKey)
	after := listObjects(t, tr.Bucket, "data/")
	assert.Less(t, totalSize(after), totalSize(before))
	requireClean(t, tr)
	owner := tr.Open(t, tr.Owner)
	restoreSame(t, owner, snB, srcB)

	// The owner then repacks what the host could not.
	res, err = owner.Prune(ctx, repo.PruneOptions{Grace: -1})
	require.NoError(t, err)
	assert.Positive(t, res.PacksRepacked)
	assert.Zero(t, res.NeedOwnerKey)
	requireClean(t, tr)
	restoreSame(t, tr.Open(t, tr.Owner), snB, srcB)
}

func TestPruneDryRun(t *testing.T) {
	tr := repotest.Init(t, memBucket(t), repotest.SmallChunks, 512<<10)
	r := tr.Open(t, tr.Owner)
	sharedRepo(t, r)
	leaveUnindexedPack(t, tr)
	before := listObjects(t, tr.Bucket, "")

	res, err := r.Prune(ctx, repo.PruneOptions{DryRun: true, Grace: time.Nanosecond})
	require.NoError(t, err)
	assert.Positive(t, res.PacksRepacked+res.PacksDeleted)
	assert.Equal(t, 1, res.PacksUnindexed)
	assert.Positive(t, res.BytesFreed)
	assert.Equal(t, before, listObjects(t, tr.Bucket, ""), "a dry run changes nothing")

	// The real run does what the dry run announced.
	real, err := r.Prune(ctx, repo.PruneOptions{Grace: time.Nanosecond})
	require.NoError(t, err)
	assert.Equal(t, res.PacksDeleted, real.PacksDeleted)
	assert.Equal(t, res.PacksRepacked, real.PacksRepacked)
	assert.Equal(t, res.PacksUnindexed, real.PacksUnindexed)
}

// leaveUnindexedPack stores a pack the way an interrupted backup leaves
// one: uploaded, but in no index file. It returns its key.
func leaveUnindexedPack(t *testing.T, tr *repotest.Repo) string {
	t.Helper()
	before := listObjects(t, tr.Bucket, "data/")
	r := tr.Open(t, tr.Owner)
	for range 3 { // more than a 512 KiB pack: one pack is finished and uploaded
		data := make([]byte, 256<<10)
		_, _ = rand.Read(data)
		_, err := r.SaveBlob(ctx, repo.DataBlob, r.BlobID(data), data)
		require.NoError(t, err)
	}
	r.Abort() // crash: no Flush, no index
	var added []string
	for k := range listObjects(t, tr.Bucket, "data/") {
		if _, ok := before[k]; !ok {
			added = append(added, k)
		}
	}
	require.Len(t, added, 1)
	return added[0]
}

func TestPruneUnindexedGrace(t *testing.T) {
	tr := repotest.Init(t, fileBucket(t), repotest.SmallChunks, 512<<10)
	src := makeTree(t, 1<<20, 61)
	sn := backupDir(t, tr.Open(t, tr.Owner), src)
	orphan := leaveUnindexedPack(t, tr)

	chk := requireClean(t, tr)
	assert.Equal(t, 1, chk.UnindexedPack, "check counts it, as a warning")
	assert.NotEmpty(t, chk.Warnings)

	tests := []struct {
		grace time.Duration
		gone  bool
	}{
		{0, false}, // default: one hour
		{time.Hour, false},
		{time.Nanosecond, true},
	}
	for _, tc := range tests {
		res, err := tr.Open(t, tr.Owner).Prune(ctx, repo.PruneOptions{Grace: tc.grace})
		require.NoError(t, err)
		ok, err := tr.Bucket.Exists(ctx, orphan)
		require.NoError(t, err)
		assert.Equal(t, tc.gone, !ok, "grace %v", tc.grace)
		assert.Equal(t, map[bool]int{false: 0, true: 1}[tc.gone], res.PacksUnindexed, "grace %v", tc.grace)
	}
	chk = requireClean(t, tr)
	assert.Zero(t, chk.UnindexedPack)
	restoreSame(t, tr.Open(t, tr.Owner), sn, src)
}

func TestPruneRefusesOnUnreadableSnapshot(t *testing.T) {
	tests := []struct {
		name   string
		damage func(t *testing.T, tr *repotest.Repo, r *repo.Repository, sn *snapshot.Snapshot) string // returns the key to be named
	}{
		{"garbage manifest", func(t *testing.T, tr *repotest.Repo, _ *repo.Repository, sn *snapshot.Snapshot) string {
			key := "snapshots/" + sn.ID.String()
			overwrite(t, tr.Bucket, key, []byte("garbage"))
			return key
		}},
		{"tree pack missing", func(t *testing.T, tr *repotest.Repo, r *repo.Repository, sn *snapshot.Snapshot) string {
			loc, ok := r.Index().Lookup(sn.Tree[0])
			require.True(t, ok)
			key := packKey(loc.Pack)
			require.NoError(t, tr.Bucket.Delete(ctx, key))
			return key
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tr := repotest.Init(t, memBucket(t), repotest.SmallChunks, 512<<10)
			r := tr.Open(t, tr.Owner)
			snB, _ := sharedRepo(t, r) // plenty to delete
			leaveUnindexedPack(t, tr)
			key := tc.damage(t, tr, r, snB)
			before := listObjects(t, tr.Bucket, "")

			_, err := tr.Open(t, tr.Owner).Prune(ctx, repo.PruneOptions{Grace: time.Nanosecond})
			require.Error(t, err)
			assert.Contains(t, err.Error(), "nothing deleted")
			assert.Contains(t, err.Error(), key)
			assert.Equal(t, before, listObjects(t, tr.Bucket, ""), "prune deleted nothing")
		})
	}
}

// TestPruneSpilledOracle: prune on an index spilled to its temporary file
// (after 40 entries) and repacking 3 blobs a batch deletes exactly the
// packs the map-based bookkeeping it replaced would have deleted (wholly
// unused and repacked ones) and keeps the rest; every kept snapshot
// restores, check (reading every pack) is clean, a second prune has
// nothing to do.
func TestPruneSpilledOracle(t *testing.T) {
	defer repo.SetPruneSpill(40, 3)()
	for run := range 3 {
		tr := repotest.Init(t, memBucket(t), repotest.SmallChunks, 128<<10)
		r := tr.Open(t, tr.Owner)
		a := makeTree(t, 2<<20, int64(100+run))
		c := makeTree(t, 1<<20, int64(200+run))
		srcs := []string{a, thinOut(t, a), c, thinOut(t, c)}
		var snaps []*snapshot.Snapshot
		for _, s := range srcs {
			snaps = append(snaps, backupDir(t, r, s))
		}
		// Forget the full trees (their packs are then partly used) and,
		// in the last run, a thinned one too (wholly unused packs).
		forget := []int{0, 2}
		if run == 2 {
			forget = append(forget, 3)
		}
		for _, i := range forget {
			require.NoError(t, r.DeleteSnapshot(ctx, snaps[i].ID))
		}
		deleted, kept, err := repo.ExpectedPrune(ctx, r, 0.2)
		require.NoError(t, err)
		require.NotEmpty(t, deleted)
		require.NotEmpty(t, kept)

		res, err := r.Prune(ctx, repo.PruneOptions{Grace: -1})
		require.NoError(t, err)
		t.Logf("run %d: prune %+v; expected %d packs deleted, %d kept", run, *res, len(deleted), len(kept))
		after := listObjects(t, tr.Bucket, "data/")
		for id := range deleted {
			assert.NotContains(t, after, packKey(id), "run %d: pack %s deleted", run, id.Short())
		}
		for id := range kept {
			assert.Contains(t, after, packKey(id), "run %d: pack %s kept", run, id.Short())
		}
		requireClean(t, tr)
		r = tr.Open(t, tr.Owner)
		for i, sn := range snaps {
			if !slices.Contains(forget, i) {
				restoreSame(t, r, sn, srcs[i])
			}
		}
		res, err = r.Prune(ctx, repo.PruneOptions{Grace: -1})
		require.NoError(t, err)
		assert.Zero(t, res.PacksDeleted+res.PacksRepacked+res.PacksUnindexed+res.PacksMarked, "run %d: a second prune", run)
		assert.Equal(t, after, listObjects(t, tr.Bucket, "data/"))
	}
}
