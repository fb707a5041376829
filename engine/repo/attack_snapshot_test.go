package repo_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lifeboat-backup/lifeboat/engine/repo"
)

// A host (host key and bucket credentials) writes a snapshot dated 2099:
// it was what `restore latest` returned and the next backup's parent.
// Now it is flagged and never latest.
func TestAttackFutureSnapshotNeverLatest(t *testing.T) {
	tr, r, genuine := damagedRepo(t, false)
	host := tr.Open(t, tr.Host)
	forged := *genuine
	forged.Time = time.Date(2099, 1, 1, 0, 0, 0, 0, time.UTC)
	forged.Parent = nil
	id, err := host.SaveSnapshot(ctx, &forged)
	require.NoError(t, err)

	r = tr.Open(t, tr.Owner)
	latest, err := r.FindSnapshot(ctx, "latest", nil)
	require.NoError(t, err)
	assert.Equal(t, genuine.ID, latest.ID, "the forged snapshot is not latest")
	sns, err := r.Snapshots(ctx)
	require.NoError(t, err)
	require.Len(t, sns, 2)
	for _, s := range sns {
		if s.ID == id {
			assert.Contains(t, s.Suspect, "2099")
		} else {
			assert.Empty(t, s.Suspect)
		}
	}
	res, err := r.Check(ctx, repo.CheckOptions{})
	require.NoError(t, err)
	assert.Contains(t, res.Warnings[len(res.Warnings)-1], id.Short())

	// A backup picks the genuine parent.
	next := backupDir(t, r, genuine.Paths[0])
	require.NotNil(t, next.Parent)
	assert.Equal(t, genuine.ID, *next.Parent)
}
