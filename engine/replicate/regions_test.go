package replicate_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lifeboat-backup/lifeboat/engine"
	"github.com/lifeboat-backup/lifeboat/engine/replicate"
	"github.com/lifeboat-backup/lifeboat/engine/repo/repotest"
	"github.com/lifeboat-backup/lifeboat/engine/snapshot"
	"github.com/lifeboat-backup/lifeboat/engine/storage/miniotest"
	"github.com/lifeboat-backup/lifeboat/internal/testutil/gentree"
	"github.com/lifeboat-backup/lifeboat/internal/testutil/treecmp"
	"github.com/lifeboat-backup/lifeboat/restore"
	"github.com/lifeboat-backup/lifeboat/targets/files"
)

// TestTwoRegions: two MinIO servers on different loopback ports stand in
// for two regions. Back up to the first, replicate, stop the first; the
// second alone restores an identical tree.
func TestTwoRegions(t *testing.T) {
	if testing.Short() {
		t.Skip("starts two MinIO servers")
	}
	ctx := context.Background()
	eu, us := miniotest.Start(t), miniotest.Start(t)
	eu.CreateBucket(t, "primary")
	us.CreateBucket(t, "disaster-recovery")

	tr := repotest.Init(t, open(t, eu.URL("primary", "shop")), repotest.SmallChunks, 1<<20)
	src := filepath.Join(t.TempDir(), "tree")
	_, err := gentree.Generate(src, gentree.Options{Size: 8 << 20, Seed: 5, NoSpecial: true})
	require.NoError(t, err)
	host := tr.Open(t, tr.Host)
	_, err = engine.Backup(ctx, host, &files.Source{Roots: []string{src}}, engine.BackupOptions{})
	require.NoError(t, err)

	dst := open(t, us.URL("disaster-recovery", "shop"))
	res, err := replicate.Replicate(ctx, host, dst, replicate.Options{})
	require.NoError(t, err)
	assert.Positive(t, res.Copied)

	eu.Kill() // the primary region is gone

	dr := &repotest.Repo{Bucket: dst, Owner: tr.Owner, Host: tr.Host}
	r := dr.Open(t, dr.Owner)
	sn, err := r.FindSnapshot(ctx, "latest", nil)
	require.NoError(t, err)
	out := t.TempDir()
	_, err = restore.Files(ctx, r, sn, out, snapshot.RestoreOptions{Entries: snapshot.EntryOptions{KeepSetuid: true, Devices: true, Xattrs: snapshot.XattrsAll}})
	require.NoError(t, err)
	diffs, err := treecmp.Compare(src, filepath.Join(out, "tree"), treecmp.Options{IgnoreOwner: os.Geteuid() != 0})
	require.NoError(t, err)
	require.Empty(t, diffs)

	// Replicating from the dead primary fails with a clear error, and
	// leaves the secondary as it was.
	_, err = replicate.Replicate(ctx, host, dst, replicate.Options{})
	require.Error(t, err)
}
