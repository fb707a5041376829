package repo_test

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lifeboat-backup/lifeboat/engine/repo"
)

// After a data pack is damaged, a backup of the unchanged source kept
// referencing it ("added 0 B"). Repair drops what did not verify, so the
// next backup stores the content again and its snapshot restores; the
// damaged snapshots are listed, and removed when asked.
func TestRepairDamagedPackHeals(t *testing.T) {
	tr, r, sn := damagedRepo(t, true)
	src := makeTree(t, 3<<20, 21) // the tree damagedRepo backed up
	key := packKey(dataPacks(r)[0].ID)
	data, err := tr.Bucket.ReadAll(ctx, key)
	require.NoError(t, err)
	data[len(data)/2] ^= 0x10
	overwrite(t, tr.Bucket, key, data)

	// Without repair, a backup deduplicates against the damaged pack.
	r = tr.Open(t, tr.Owner)
	stale := backupDir(t, r, src)
	assert.Less(t, stale.Stats.BytesAdded, int64(1<<20), "only metadata is new")
	require.Error(t, restoreErr(r, stale, t.TempDir()))

	_, err = tr.Open(t, tr.Host).Repair(ctx, repo.RepairOptions{})
	require.True(t, errors.Is(err, repo.ErrNoDataKey), "repair reads data packs: owner key only, got %v", err)

	res, err := tr.Open(t, tr.Owner).Repair(ctx, repo.RepairOptions{})
	require.NoError(t, err)
	t.Logf("repair: %+v", *res)
	assert.Equal(t, []string{key}, res.PacksDamaged)
	assert.Positive(t, res.BlobsDropped)
	assert.ElementsMatch(t, []string{sn.ID.String(), stale.ID.String()}, res.DamagedSnapshots)
	assert.Empty(t, res.SnapshotsRemoved)

	r = tr.Open(t, tr.Owner)
	healed := backupDir(t, r, src)
	assert.Positive(t, healed.Stats.BytesAdded, "what the damaged pack held is stored again")
	restoreSame(t, r, healed, src)

	// The blobs stored again heal the older snapshots too.
	assert.Empty(t, checkErrors(t, tr.Open(t, tr.Owner)), "clean once the data is stored again")
	restoreSame(t, tr.Open(t, tr.Owner), sn, src)
}

// A lost index file is rebuilt from the pack headers.
func TestRepairRebuildsLostIndex(t *testing.T) {
	for _, damage := range []string{"deleted", "garbage"} {
		t.Run(damage, func(t *testing.T) {
			tr, _, sn := damagedRepo(t, false)
			src := makeTree(t, 3<<20, 21)
			for _, k := range keysOf(listObjects(t, tr.Bucket, "index/"), "index/") {
				if damage == "deleted" {
					require.NoError(t, tr.Bucket.Delete(ctx, k))
				} else {
					overwrite(t, tr.Bucket, k, []byte("garbage"))
				}
			}
			require.NotEmpty(t, checkErrors(t, tr.Open(t, tr.Owner)))

			res, err := tr.Open(t, tr.Owner).Repair(ctx, repo.RepairOptions{})
			require.NoError(t, err)
			assert.Positive(t, res.PacksRecovered)
			assert.Empty(t, res.DamagedSnapshots)
			assert.Empty(t, checkErrors(t, tr.Open(t, tr.Owner)))
			restoreSame(t, tr.Open(t, tr.Owner), sn, src)
		})
	}
}

func TestRepairMissingPack(t *testing.T) {
	tr, r, sn := damagedRepo(t, false)
	key := packKey(dataPacks(r)[0].ID)
	require.NoError(t, tr.Bucket.Delete(ctx, key))
	res, err := tr.Open(t, tr.Owner).Repair(ctx, repo.RepairOptions{ForgetDamaged: true})
	require.NoError(t, err)
	assert.Equal(t, []string{key}, res.PacksMissing)
	assert.Equal(t, []string{sn.ID.String()}, res.SnapshotsRemoved)
	assert.Empty(t, checkErrors(t, tr.Open(t, tr.Owner)))
}
