package replicate_test

import (
	"context"
	"io"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gocloud.dev/blob"

	"github.com/lifeboat-backup/lifeboat/engine"
	"github.com/lifeboat-backup/lifeboat/engine/replicate"
	"github.com/lifeboat-backup/lifeboat/engine/repo"
	"github.com/lifeboat-backup/lifeboat/engine/repo/repotest"
	"github.com/lifeboat-backup/lifeboat/engine/snapshot"
	"github.com/lifeboat-backup/lifeboat/engine/storage"
	"github.com/lifeboat-backup/lifeboat/internal/testutil/gentree"
	"github.com/lifeboat-backup/lifeboat/internal/testutil/treecmp"
	"github.com/lifeboat-backup/lifeboat/restore"
	"github.com/lifeboat-backup/lifeboat/targets/files"
)

func open(t *testing.T, url string) *blob.Bucket {
	b, err := storage.OpenWith(context.Background(), url, storage.OpenOptions{Create: true})
	require.NoError(t, err)
	t.Cleanup(func() { b.Close() })
	return b
}

type fixture struct {
	tr       *repotest.Repo
	primary  *repo.Repository
	dst      *blob.Bucket
	src      string
	snapshot *snapshot.Snapshot
}

func setup(t *testing.T) *fixture {
	f := &fixture{}
	f.tr = repotest.Init(t, open(t, "file://"+t.TempDir()), repotest.SmallChunks, 256<<10)
	f.primary = f.tr.Open(t, f.tr.Host) // replication needs no owner key
	f.dst = open(t, "file://"+t.TempDir())
	f.src = filepath.Join(t.TempDir(), "tree")
	_, err := gentree.Generate(f.src, gentree.Options{Size: 4 << 20, Seed: 3, NoSpecial: true})
	require.NoError(t, err)
	res, err := engine.Backup(context.Background(), f.primary, &files.Source{Roots: []string{f.src}}, engine.BackupOptions{})
	require.NoError(t, err)
	f.snapshot = res.Snapshot
	return f
}

// restoreFrom opens the secondary as a repository with the owner key and
// compares a restore of the latest snapshot with the source.
func restoreFrom(t *testing.T, f *fixture) {
	sec := &repotest.Repo{Bucket: f.dst, Owner: f.tr.Owner, Host: f.tr.Host}
	r := sec.Open(t, sec.Owner)
	sn, err := r.FindSnapshot(context.Background(), "latest", nil)
	require.NoError(t, err)
	dest := t.TempDir()
	_, err = restore.Files(context.Background(), r, sn, dest, snapshot.RestoreOptions{Entries: snapshot.EntryOptions{KeepSetuid: true, Devices: true, Xattrs: snapshot.XattrsAll}})
	require.NoError(t, err)
	diffs, err := treecmp.Compare(f.src, filepath.Join(dest, "tree"), treecmp.Options{IgnoreOwner: true})
	require.NoError(t, err)
	require.Empty(t, diffs)
	chk, err := r.Check(context.Background(), repo.CheckOptions{ReadDataPercent: 100})
	require.NoError(t, err)
	require.Empty(t, chk.Errors)
}

func TestReplicateAndRestoreFromSecondary(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	res, err := replicate.Replicate(ctx, f.primary, f.dst, replicate.Options{})
	require.NoError(t, err)
	assert.Positive(t, res.Copied)
	assert.Positive(t, res.Lag)
	assert.Equal(t, 1, res.Snapshots)
	restoreFrom(t, f)

	// Nothing to do the second time; lag is zero.
	again, err := replicate.Replicate(ctx, f.primary, f.dst, replicate.Options{VerifyAll: true})
	require.NoError(t, err)
	assert.Zero(t, again.Copied)
	assert.Zero(t, again.Lag)
}

func TestReplicateRepairsDamagedSecondary(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	_, err := replicate.Replicate(ctx, f.primary, f.dst, replicate.Options{})
	require.NoError(t, err)
	// flip a byte in one pack of the secondary, truncate another
	var packs []string
	it := f.dst.List(&blob.ListOptions{Prefix: "data/"})
	for {
		o, err := it.Next(ctx)
		if err != nil {
			break
		}
		packs = append(packs, o.Key)
	}
	require.GreaterOrEqual(t, len(packs), 2)
	data, err := f.dst.ReadAll(ctx, packs[0])
	require.NoError(t, err)
	data[len(data)/2] ^= 0xff
	require.NoError(t, f.dst.Delete(ctx, packs[0]))
	require.NoError(t, f.dst.WriteAll(ctx, packs[0], data, nil))
	data, err = f.dst.ReadAll(ctx, packs[1])
	require.NoError(t, err)
	require.NoError(t, f.dst.Delete(ctx, packs[1]))
	require.NoError(t, f.dst.WriteAll(ctx, packs[1], data[:len(data)/2], nil))

	res, err := replicate.Replicate(ctx, f.primary, f.dst, replicate.Options{VerifyAll: true})
	require.NoError(t, err)
	assert.Equal(t, 2, res.Recopied)
	restoreFrom(t, f)
}

func TestReplicatePropagatesForgetAndPrune(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	_, err := replicate.Replicate(ctx, f.primary, f.dst, replicate.Options{})
	require.NoError(t, err)
	_, err = gentree.Mutate(f.src, 0.3, 9)
	require.NoError(t, err)
	_, err = engine.Backup(ctx, f.primary, &files.Source{Roots: []string{f.src}}, engine.BackupOptions{})
	require.NoError(t, err)
	require.NoError(t, f.primary.DeleteSnapshot(ctx, f.snapshot.ID))
	_, err = f.primary.Prune(ctx, repo.PruneOptions{Grace: -1})
	require.NoError(t, err)

	// By default the secondary keeps what the primary forgot for a week.
	res, err := replicate.Replicate(ctx, f.primary, f.dst, replicate.Options{})
	require.NoError(t, err)
	assert.Zero(t, res.Deleted)
	assert.Positive(t, res.Pending)
	ok, err := f.dst.Exists(ctx, "snapshots/"+f.snapshot.ID.String())
	require.NoError(t, err)
	assert.True(t, ok, "the forgotten snapshot stays in the secondary for delete_after")
	sec := (&repotest.Repo{Bucket: f.dst, Owner: f.tr.Owner}).Open(t, f.tr.Owner)
	old, err := sec.FindSnapshot(ctx, f.snapshot.ID.String(), nil)
	require.NoError(t, err)
	_, err = restore.Files(ctx, sec, old, t.TempDir(), snapshot.RestoreOptions{})
	require.NoError(t, err, "and restores there")

	// Once delete_after has passed since the first run found it gone.
	time.Sleep(20 * time.Millisecond)
	res, err = replicate.Replicate(ctx, f.primary, f.dst, replicate.Options{DeleteAfter: 10 * time.Millisecond})
	require.NoError(t, err)
	assert.Positive(t, res.Deleted)
	assert.Zero(t, res.Pending)
	assert.Equal(t, 1, res.Snapshots)
	ok, err = f.dst.Exists(ctx, "snapshots/"+f.snapshot.ID.String())
	require.NoError(t, err)
	assert.False(t, ok, "the forgotten snapshot is gone from the secondary")
	restoreFrom(t, f)
	_, err = f.dst.List(&blob.ListOptions{Prefix: "replication/"}).Next(ctx)
	assert.ErrorIs(t, err, io.EOF, "no gone-list left: nothing pending")
}

// Deleting snapshots/* in the primary needs no key, only its storage
// credentials: the next replicate emptied the secondary. Now it refuses.
func TestAttackEmptiedPrimaryDoesNotEmptySecondary(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	for range 2 {
		_, err := gentree.Mutate(f.src, 0.1, 7)
		require.NoError(t, err)
		_, err = engine.Backup(ctx, f.primary, &files.Source{Roots: []string{f.src}}, engine.BackupOptions{})
		require.NoError(t, err)
	}
	_, err := replicate.Replicate(ctx, f.primary, f.dst, replicate.Options{})
	require.NoError(t, err)
	it := f.primary.Bucket().List(&blob.ListOptions{Prefix: "snapshots/"})
	for {
		o, err := it.Next(ctx)
		if err != nil {
			break
		}
		require.NoError(t, f.primary.Bucket().Delete(ctx, o.Key))
	}
	_, err = replicate.Replicate(ctx, f.primary, f.dst, replicate.Options{DeleteAfter: -1})
	require.ErrorIs(t, err, replicate.ErrMassDeletion)
	t.Logf("replicate: %v", err)
	restoreFrom(t, f)

	// An operator who means it raises the limit.
	res, err := replicate.Replicate(ctx, f.primary, f.dst, replicate.Options{DeleteAfter: -1, MaxDeletePercent: 100})
	require.NoError(t, err)
	assert.Equal(t, 0, res.Snapshots)
}

// A failover reading the secondary holds a shared lock there: deletions
// wait for the next run instead of removing packs under it.
func TestReplicateDeletionsWaitForSecondaryReaders(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	_, err := replicate.Replicate(ctx, f.primary, f.dst, replicate.Options{})
	require.NoError(t, err)
	require.NoError(t, f.primary.DeleteSnapshot(ctx, f.snapshot.ID))
	lk, err := repo.AcquireLock(ctx, f.dst, false, "failover", 0)
	require.NoError(t, err)
	res, err := replicate.Replicate(ctx, f.primary, f.dst, replicate.Options{DeleteAfter: -1, MaxDeletePercent: 100})
	require.NoError(t, err)
	assert.Zero(t, res.Deleted)
	assert.NotEmpty(t, res.Postponed)
	require.NoError(t, lk.Unlock(ctx))
	res, err = replicate.Replicate(ctx, f.primary, f.dst, replicate.Options{DeleteAfter: -1, MaxDeletePercent: 100})
	require.NoError(t, err)
	assert.Positive(t, res.Deleted)
}

func TestReplicateRefusesOtherRepository(t *testing.T) {
	f := setup(t)
	other := open(t, "mem://")
	repotest.Init(t, other, repotest.SmallChunks, 0)
	_, err := replicate.Replicate(context.Background(), f.primary, other, replicate.Options{})
	require.ErrorContains(t, err, "different repository")
}

func TestReplicateRefusesCorruptPrimaryPack(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	p := f.primary.Index().Packs()[0]
	s := p.ID.String()
	key := "data/" + s[:2] + "/" + s
	b := f.primary.Bucket()
	data, err := b.ReadAll(ctx, key)
	require.NoError(t, err)
	data[10] ^= 1
	require.NoError(t, b.Delete(ctx, key))
	require.NoError(t, b.WriteAll(ctx, key, data, nil))
	_, err = replicate.Replicate(ctx, f.primary, f.dst, replicate.Options{})
	require.ErrorContains(t, err, key)
	ok, err := f.dst.Exists(ctx, key)
	require.NoError(t, err)
	assert.False(t, ok, "a corrupt pack is not copied")
}
