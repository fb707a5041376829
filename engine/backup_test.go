package engine_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gocloud.dev/blob"

	"github.com/lifeboat-backup/lifeboat/engine"
	"github.com/lifeboat-backup/lifeboat/engine/repo"
	"github.com/lifeboat-backup/lifeboat/engine/repo/repotest"
	"github.com/lifeboat-backup/lifeboat/engine/snapshot"
	"github.com/lifeboat-backup/lifeboat/engine/storage"
	"github.com/lifeboat-backup/lifeboat/engine/storage/miniotest"
	"github.com/lifeboat-backup/lifeboat/internal/testutil/gentree"
	"github.com/lifeboat-backup/lifeboat/internal/testutil/treecmp"
	"github.com/lifeboat-backup/lifeboat/restore"
	"github.com/lifeboat-backup/lifeboat/targets/files"
)

func TestMain(m *testing.M) { os.Exit(miniotest.Main(m)) }

// backends opens an empty bucket of each kind the repository runs on.
var backends = []struct {
	name string
	open func(t *testing.T) *blob.Bucket
}{
	{"mem", func(t *testing.T) *blob.Bucket { return openURL(t, "mem://") }},
	{"file", func(t *testing.T) *blob.Bucket { return openURL(t, "file://"+t.TempDir()) }},
	{"minio", func(t *testing.T) *blob.Bucket {
		srv := miniotest.Shared(t)
		name := strings.ToLower(strings.NewReplacer("/", "-", "_", "-").Replace(t.Name()))
		name = fmt.Sprintf("%.50s", name)
		srv.CreateBucket(t, name)
		return openURL(t, srv.URL(name, ""))
	}},
}

func openURL(t *testing.T, url string) *blob.Bucket {
	b, err := storage.OpenWith(context.Background(), url, storage.OpenOptions{Create: true})
	require.NoError(t, err)
	t.Cleanup(func() { b.Close() })
	return b
}

func genTree(t *testing.T, size int64, seed int64) string {
	dir := filepath.Join(t.TempDir(), "src")
	_, err := gentree.Generate(dir, gentree.Options{Size: size, Seed: seed})
	require.NoError(t, err)
	return dir
}

func backup(t *testing.T, r *repo.Repository, root string) *engine.BackupResult {
	t.Helper()
	res, err := engine.Backup(context.Background(), r, &files.Source{Roots: []string{root}}, engine.BackupOptions{})
	require.NoError(t, err)
	require.Empty(t, res.Warnings)
	return res
}

func restoreAndCompare(t *testing.T, r *repo.Repository, sn *snapshot.Snapshot, src string) {
	t.Helper()
	dest := t.TempDir()
	_, err := restore.Files(context.Background(), r, sn, dest, snapshot.RestoreOptions{Entries: snapshot.EntryOptions{KeepSetuid: true, Devices: true, Xattrs: snapshot.XattrsAll}})
	require.NoError(t, err)
	diffs, err := treecmp.Compare(src, filepath.Join(dest, filepath.Base(src)), treecmp.Options{Sparse: true, CompareRoot: true, MaxDifferences: 20})
	require.NoError(t, err)
	require.Empty(t, diffs, "restored tree differs")
}

func TestRoundTrip(t *testing.T) {
	for _, be := range backends {
		t.Run(be.name, func(t *testing.T) {
			src := genTree(t, 12<<20, 1)
			tr := repotest.Init(t, be.open(t), repotest.SmallChunks, 0)
			host := tr.Open(t, tr.Host)
			res := backup(t, host, src)
			st := res.Snapshot.Stats
			assert.Positive(t, st.Files)
			assert.Equal(t, st.BytesIn, st.BytesRead)

			owner := tr.Open(t, tr.Owner)
			sn, err := owner.FindSnapshot(context.Background(), "latest", nil)
			require.NoError(t, err)
			restoreAndCompare(t, owner, sn, src)

			chk, err := owner.Check(context.Background(), repo.CheckOptions{ReadDataPercent: 100})
			require.NoError(t, err)
			require.Empty(t, chk.Errors)
			assert.Equal(t, chk.Packs, chk.PacksRead)
		})
	}
}

func TestHostKeyCannotRestore(t *testing.T) {
	src := genTree(t, 2<<20, 2)
	tr := repotest.Init(t, openURL(t, "mem://"), repotest.SmallChunks, 0)
	host := tr.Open(t, tr.Host)
	backup(t, host, src)
	// The host can read metadata (and so deduplicate) ...
	again := backup(t, host, src)
	assert.Zero(t, again.Snapshot.Stats.BytesAdded)
	assert.False(t, host.CanReadData())
	// ... but not content.
	_, err := restore.Files(context.Background(), host, again.Snapshot, t.TempDir(), snapshot.RestoreOptions{})
	require.ErrorIs(t, err, repo.ErrNoDataKey)
}

func TestDedup(t *testing.T) {
	src := genTree(t, 32<<20, 3)
	tr := repotest.Init(t, openURL(t, "file://"+t.TempDir()), repotest.SmallChunks, 0)
	r := tr.Open(t, tr.Owner)
	first := backup(t, r, src).Snapshot.Stats

	// Unchanged: nothing read, nothing added.
	second := backup(t, r, src).Snapshot.Stats
	assert.Zero(t, second.BytesRead)
	assert.Less(t, float64(second.BytesStored), 0.01*float64(first.BytesIn))

	// Unchanged content, re-read without parent: still nothing new.
	forced, err := engine.Backup(context.Background(), r, &files.Source{Roots: []string{src}}, engine.BackupOptions{NoParent: true})
	require.NoError(t, err)
	assert.Equal(t, first.BytesIn, forced.Snapshot.Stats.BytesRead)
	assert.Less(t, float64(forced.Snapshot.Stats.BytesAdded), 0.01*float64(first.BytesIn))

	// A 1% change adds about that much (chunks around each change).
	changed, err := gentree.Mutate(src, 0.01, 7)
	require.NoError(t, err)
	third := backup(t, r, src)
	added := third.Snapshot.Stats.BytesAdded
	t.Logf("tree %d bytes, changed %d, added %d", first.BytesIn, changed, added)
	assert.Positive(t, added)
	assert.Less(t, float64(added), 0.10*float64(first.BytesIn), "a 1%% change must not re-store the tree")
	restoreAndCompare(t, r, third.Snapshot, src)
}

func TestRestoreInclude(t *testing.T) {
	src := t.TempDir()
	for _, p := range []string{"a/x.txt", "a/y/z.txt", "b/w.txt"} {
		require.NoError(t, os.MkdirAll(filepath.Join(src, filepath.Dir(p)), 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(src, p), []byte(p), 0o644))
	}
	tr := repotest.Init(t, openURL(t, "mem://"), repotest.SmallChunks, 0)
	r := tr.Open(t, tr.Owner)
	sn := backup(t, r, src).Snapshot
	base := filepath.Base(src)

	tests := []struct {
		include []string
		want    []string
		wantErr bool
	}{
		{[]string{base + "/a/y"}, []string{"a/y/z.txt"}, false},
		{[]string{base + "/b/w.txt", base + "/a/x.txt"}, []string{"a/x.txt", "b/w.txt"}, false},
		{[]string{base + "/nope"}, nil, true},
		{[]string{"../etc"}, nil, true},
	}
	for _, tc := range tests {
		t.Run(strings.Join(tc.include, ","), func(t *testing.T) {
			dest := t.TempDir()
			_, err := restore.Files(context.Background(), r, sn, dest, snapshot.RestoreOptions{Include: tc.include})
			if tc.wantErr {
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
			var got []string
			require.NoError(t, filepath.Walk(filepath.Join(dest, base), func(p string, fi os.FileInfo, err error) error {
				if err == nil && fi.Mode().IsRegular() {
					rel, _ := filepath.Rel(filepath.Join(dest, base), p)
					got = append(got, rel)
				}
				return err
			}))
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestUnreadableFileIsNamed(t *testing.T) {
	if os.Geteuid() == 0 {
		// root reads everything; make the file vanish instead via a FIFO-less trick:
		// a directory without read permission is still readable by root, so use a dangling open.
		t.Skip("root can read unreadable files")
	}
	src := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(src, "secret"), []byte("x"), 0o000))
	tr := repotest.Init(t, openURL(t, "mem://"), repotest.SmallChunks, 0)
	r := tr.Open(t, tr.Owner)
	res, err := engine.Backup(context.Background(), r, &files.Source{Roots: []string{src}}, engine.BackupOptions{})
	require.NoError(t, err)
	require.Len(t, res.Warnings, 1)
	assert.Contains(t, res.Warnings[0], "secret")
}

// streamSource is a minimal all-or-nothing source: two entries, the second
// of which cannot be read.
type streamSource struct{}

func (streamSource) Kind() string       { return "dump" }
func (streamSource) Paths() []string    { return []string{"db"} }
func (streamSource) AllOrNothing() bool { return true }
func (streamSource) Walk(ctx context.Context, warn func(string, error), fn func(snapshot.Entry, engine.Opener) error) error {
	ok := func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader("rows")), nil }
	bad := func() (io.ReadCloser, error) { return nil, errors.New("table is gone") }
	if err := fn(snapshot.Entry{Path: "db", Type: snapshot.TypeDir}, nil); err != nil {
		return err
	}
	if err := fn(snapshot.Entry{Path: "db/a.data", Type: snapshot.TypeFile}, ok); err != nil {
		return err
	}
	return fn(snapshot.Entry{Path: "db/b.data", Type: snapshot.TypeFile}, bad)
}

func TestAllOrNothingSourceFailsWhole(t *testing.T) {
	tr := repotest.Init(t, openURL(t, "mem://"), repotest.SmallChunks, 0)
	r := tr.Open(t, tr.Owner)
	_, err := engine.Backup(context.Background(), r, streamSource{}, engine.BackupOptions{})
	require.ErrorContains(t, err, "db/b.data: table is gone")
	ids, err := r.SnapshotIDs(context.Background())
	require.NoError(t, err)
	assert.Empty(t, ids, "no partial snapshot")
}

// blockSource is one stream entry, cut in fixed blocks when block > 0; a
// non-nil readErr is returned after the content.
type blockSource struct {
	data    []byte
	block   int
	readErr error
}

func (s *blockSource) Kind() string       { return "volume" }
func (s *blockSource) Paths() []string    { return []string{"disk"} }
func (s *blockSource) AllOrNothing() bool { return true }
func (s *blockSource) Walk(ctx context.Context, warn func(string, error), fn func(snapshot.Entry, engine.Opener) error) error {
	open := func() (io.ReadCloser, error) {
		var rd io.Reader = bytes.NewReader(s.data)
		if s.readErr != nil {
			rd = io.MultiReader(rd, iotest.ErrReader(s.readErr))
		}
		return io.NopCloser(rd), nil
	}
	return fn(snapshot.Entry{Path: "disk", Type: snapshot.TypeFile, Size: int64(len(s.data))}, open)
}

// fixedSource adds engine.FixedBlocks.
type fixedSource struct{ blockSource }

func (s *fixedSource) BlockSize() int { return s.block }

// TestSingleStream backs up one stream, cut content-defined or in fixed
// blocks, hashed and saved by several workers: the chunk IDs must come back
// in stream order, fixed blocks must be aligned and all-zero blocks stored
// once.
func TestSingleStream(t *testing.T) {
	rnd := make([]byte, 3<<20)
	_, err := rand.NewChaCha8([32]byte{1}).Read(rnd)
	require.NoError(t, err)
	mixed := slices.Concat(rnd[:10000], make([]byte, 64<<10), rnd[10000:20005], make([]byte, 4096))
	cases := []struct {
		name       string
		src        engine.Source
		wantBlobs  int // len(Content); 0: do not check
		wantUnique int // distinct IDs; 0: do not check
		wantErr    string
	}{
		{"content-defined, 3 MiB", &blockSource{data: rnd}, 0, 0, ""},
		{"fixed 4 KiB, holes", &fixedSource{blockSource{data: mixed, block: 4096}}, 22, 8, ""},
		{"fixed, exact multiple", &fixedSource{blockSource{data: rnd, block: 64 << 10}}, 48, 48, ""},
		{"fixed, shorter than a block", &fixedSource{blockSource{data: rnd[:100], block: 64 << 10}}, 1, 1, ""},
		{"fixed, empty", &fixedSource{blockSource{block: 4096}}, 0, 0, ""},
		{"fixed, read error", &fixedSource{blockSource{data: rnd, block: 4096, readErr: errors.New("device gone")}}, 0, 0, "disk: device gone"},
		{"content-defined, read error", &blockSource{data: rnd, readErr: errors.New("pipe broke")}, 0, 0, "disk: pipe broke"},
		{"block size 0", &fixedSource{blockSource{data: rnd}}, 0, 0, "block size 0 out of range"},
		{"block size too big", &fixedSource{blockSource{data: rnd, block: 65 << 20}}, 0, 0, "block size 68157440 out of range"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tr := repotest.Init(t, openURL(t, "mem://"), repotest.SmallChunks, 0)
			r := tr.Open(t, tr.Owner)
			res, err := engine.Backup(context.Background(), r, tc.src, engine.BackupOptions{Workers: 4})
			if tc.wantErr != "" {
				require.ErrorContains(t, err, tc.wantErr)
				ids, err := r.SnapshotIDs(context.Background())
				require.NoError(t, err)
				assert.Empty(t, ids, "no partial snapshot")
				return
			}
			require.NoError(t, err)
			var data []byte
			var block int
			switch s := tc.src.(type) {
			case *fixedSource:
				data, block = s.data, s.block
			case *blockSource:
				data = s.data
			}
			tree, err := r.NewTreeReader(context.Background(), res.Snapshot).Next()
			require.NoError(t, err)
			assert.Equal(t, int64(len(data)), tree.Size)
			if tc.wantBlobs > 0 || block > 0 {
				assert.Len(t, tree.Content, tc.wantBlobs)
			} else {
				assert.Greater(t, len(tree.Content), 10, "many chunks in flight at once")
			}
			if tc.wantUnique > 0 {
				assert.Len(t, uniq(tree.Content), tc.wantUnique)
			}
			var off int
			for i, id := range tree.Content {
				blob, err := r.LoadBlob(context.Background(), id, nil)
				require.NoError(t, err)
				if block > 0 && i < len(tree.Content)-1 {
					require.Len(t, blob, block, "block %d", i)
				}
				require.Equal(t, data[off:off+len(blob)], blob, "blob %d in stream order", i)
				off += len(blob)
			}
			assert.Equal(t, len(data), off)
		})
	}
}

func uniq(ids []snapshot.ID) map[snapshot.ID]bool {
	m := map[snapshot.ID]bool{}
	for _, id := range ids {
		m[id] = true
	}
	return m
}
