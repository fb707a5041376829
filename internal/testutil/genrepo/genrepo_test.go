package genrepo

import (
	"bytes"
	"context"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/lifeboat-backup/lifeboat/engine/repo"
	"github.com/lifeboat-backup/lifeboat/engine/snapshot"
	"github.com/lifeboat-backup/lifeboat/engine/storage"
)

// TestGenerateChecks: a generated repository passes check --read-data,
// holds the asked number of blobs, and a file restores to the content the
// generator defines.
func TestGenerateChecks(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	url := "file://" + filepath.Join(dir, "repo")
	o := Options{Blobs: 20_005, BlobsPerFile: 1000, Snapshots: 3, PackSize: 256 << 10}
	res, err := Generate(ctx, url, filepath.Join(dir, "keys"), o, nil)
	require.NoError(t, err)
	require.EqualValues(t, 20_005, res.Blobs)
	require.EqualValues(t, 21, res.Files)
	require.Len(t, res.Snapshots, 3)

	b, err := storage.OpenWith(ctx, url, storage.OpenOptions{})
	require.NoError(t, err)
	defer b.Close()
	creds, err := repo.ReadKeyFile(res.OwnerKey)
	require.NoError(t, err)
	r, err := repo.Open(ctx, b, creds)
	require.NoError(t, err)
	cr, err := r.Check(ctx, repo.CheckOptions{ReadDataPercent: 100})
	require.NoError(t, err)
	require.Empty(t, cr.Errors)
	require.Equal(t, 3, cr.Snapshots)
	require.GreaterOrEqual(t, cr.Blobs, 20_005) // and the tree blobs
	require.Equal(t, cr.Packs, cr.PacksRead)

	// The last file (5 blobs) of the last snapshot, byte for byte.
	sn, err := r.LoadSnapshot(ctx, res.Snapshots[2])
	require.NoError(t, err)
	want := FilePath("gen", 20)
	var node *snapshot.Node
	require.NoError(t, r.EachNode(ctx, sn, func(n *snapshot.Node) error {
		if n.Path == want {
			node = n
		}
		return nil
	}))
	require.NotNil(t, node, want)
	require.Len(t, node.Content, 5)
	var got bytes.Buffer
	_, err = got.ReadFrom(r.NewBlobReader(ctx, node.Content))
	require.NoError(t, err)
	g := &gen{o: o}
	require.NoError(t, g.o.defaults())
	var exp []byte
	for k := range int64(5) {
		exp = append(exp, g.content(20_000+k, make([]byte, 64))...)
	}
	require.Equal(t, exp, got.Bytes())
	require.EqualValues(t, len(exp), node.Size)

	// The host key reads the metadata; the keys refuse to be overwritten.
	_, err = repo.ReadKeyFile(res.HostKey)
	require.NoError(t, err)
	_, err = Generate(ctx, "file://"+filepath.Join(dir, "other"), filepath.Join(dir, "keys"), o, nil)
	require.ErrorContains(t, err, "owner.key exists")
}
