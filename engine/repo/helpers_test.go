package repo_test

import (
	"context"
	"io"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"filippo.io/age"
	"github.com/stretchr/testify/require"
	"gocloud.dev/blob"

	"github.com/lifeboat-backup/lifeboat/engine"
	"github.com/lifeboat-backup/lifeboat/engine/repo"
	"github.com/lifeboat-backup/lifeboat/engine/snapshot"
	"github.com/lifeboat-backup/lifeboat/engine/storage"
	"github.com/lifeboat-backup/lifeboat/internal/testutil/gentree"
	"github.com/lifeboat-backup/lifeboat/internal/testutil/treecmp"
	"github.com/lifeboat-backup/lifeboat/restore"
	"github.com/lifeboat-backup/lifeboat/targets/files"
)

var ctx = context.Background()

func openBucket(t *testing.T, url string) *blob.Bucket {
	t.Helper()
	b, err := storage.OpenWith(ctx, url, storage.OpenOptions{Create: true})
	require.NoError(t, err)
	t.Cleanup(func() { b.Close() })
	return b
}

func memBucket(t *testing.T) *blob.Bucket { return openBucket(t, "mem://") }

func fileBucket(t *testing.T) *blob.Bucket { return openBucket(t, "file://"+t.TempDir()) }

// makeTree generates a deterministic tree of about size bytes.
func makeTree(t *testing.T, size, seed int64) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "src")
	_, err := gentree.Generate(dir, gentree.Options{Size: size, Seed: seed, NoSpecial: true})
	require.NoError(t, err)
	return dir
}

func backupDir(t *testing.T, r *repo.Repository, root string) *snapshot.Snapshot {
	t.Helper()
	res, err := engine.Backup(ctx, r, &files.Source{Roots: []string{root}}, engine.BackupOptions{})
	require.NoError(t, err)
	require.Empty(t, res.Warnings)
	return res.Snapshot
}

// restoreSame restores sn and requires the result to equal src.
func restoreSame(t *testing.T, r *repo.Repository, sn *snapshot.Snapshot, src string) {
	t.Helper()
	dest := t.TempDir()
	_, err := restore.Files(ctx, r, sn, dest, snapshot.RestoreOptions{Entries: snapshot.EntryOptions{KeepSetuid: true, Devices: true, Xattrs: snapshot.XattrsAll}})
	require.NoError(t, err)
	diffs, err := treecmp.Compare(src, filepath.Join(dest, filepath.Base(src)), treecmp.Options{MaxDifferences: 10})
	require.NoError(t, err)
	require.Empty(t, diffs, "restored tree differs from %s", src)
}

// restoreErr restores sn into a scratch directory and returns the error.
func restoreErr(r *repo.Repository, sn *snapshot.Snapshot, dest string) error {
	_, err := restore.Files(ctx, r, sn, dest, snapshot.RestoreOptions{})
	return err
}

// listObjects returns key -> size for every object under prefix.
func listObjects(t *testing.T, b *blob.Bucket, prefix string) map[string]int64 {
	t.Helper()
	out := map[string]int64{}
	it := b.List(&blob.ListOptions{Prefix: prefix})
	for {
		obj, err := it.Next(ctx)
		if err == io.EOF {
			return out
		}
		require.NoError(t, err)
		if !obj.IsDir {
			out[obj.Key] = obj.Size
		}
	}
}

func keysOf(m map[string]int64, prefix string) []string {
	var ks []string
	for k := range m {
		if strings.HasPrefix(k, prefix) {
			ks = append(ks, k)
		}
	}
	sort.Strings(ks)
	return ks
}

func totalSize(m map[string]int64) int64 {
	var n int64
	for _, s := range m {
		n += s
	}
	return n
}

func packKey(id snapshot.ID) string {
	s := id.String()
	return "data/" + s[:2] + "/" + s
}

// dataPacks returns the packs that hold data blobs (from the index), largest first.
func dataPacks(r *repo.Repository) []repo.PackInfo {
	isData := map[snapshot.ID]bool{}
	r.Index().Each(func(l repo.Location) {
		if l.Type == repo.DataBlob {
			isData[l.Pack] = true
		}
	})
	var out []repo.PackInfo
	for _, p := range r.Index().Packs() {
		if isData[p.ID] {
			out = append(out, p)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Size > out[j].Size })
	return out
}

func credsOf(t *testing.T, secret string) repo.Credentials {
	t.Helper()
	ids, err := age.ParseIdentities(strings.NewReader(secret))
	require.NoError(t, err)
	return repo.Credentials{Identities: ids}
}

// overwrite replaces an object's content (as damage would).
func overwrite(t *testing.T, b *blob.Bucket, key string, data []byte) {
	t.Helper()
	require.NoError(t, b.Delete(ctx, key))
	require.NoError(t, b.WriteAll(ctx, key, data, nil))
}
