package bucket_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gocloud.dev/blob"
	"golang.org/x/sync/errgroup"

	"github.com/lifeboat-backup/lifeboat/engine"
	"github.com/lifeboat-backup/lifeboat/engine/repo"
	"github.com/lifeboat-backup/lifeboat/engine/repo/repotest"
	"github.com/lifeboat-backup/lifeboat/engine/snapshot"
	"github.com/lifeboat-backup/lifeboat/engine/storage"
	"github.com/lifeboat-backup/lifeboat/engine/storage/miniotest"
	"github.com/lifeboat-backup/lifeboat/restore"
	"github.com/lifeboat-backup/lifeboat/targets/bucket"
)

func TestMain(m *testing.M) { os.Exit(miniotest.Main(m)) }

func newRepo(t testing.TB) *repo.Repository {
	t.Helper()
	b, err := storage.OpenWith(context.Background(), "mem://", storage.OpenOptions{Create: true})
	require.NoError(t, err)
	t.Cleanup(func() { b.Close() })
	tr := repotest.Init(t, b, repotest.SmallChunks, 0)
	return tr.Open(t, tr.Owner)
}

func openBucket(t testing.TB, url string) *blob.Bucket {
	t.Helper()
	b, err := storage.OpenWith(context.Background(), url, storage.OpenOptions{Create: true})
	require.NoError(t, err)
	t.Cleanup(func() { b.Close() })
	return b
}

type object struct {
	data        []byte
	contentType string
}

func put(t testing.TB, b *blob.Bucket, objs map[string]object) {
	t.Helper()
	g, ctx := errgroup.WithContext(context.Background())
	g.SetLimit(32)
	for k, o := range objs {
		g.Go(func() error {
			return b.WriteAll(ctx, k, o.data, &blob.WriterOptions{ContentType: o.contentType, Metadata: map[string]string{"origin": "test"}})
		})
	}
	require.NoError(t, g.Wait())
}

// contents lists a bucket: key -> object (with content type).
func contents(t testing.TB, b *blob.Bucket, prefix string) map[string]object {
	t.Helper()
	ctx := context.Background()
	var keys []string
	it := b.List(&blob.ListOptions{Prefix: prefix})
	for {
		o, err := it.Next(ctx)
		if err == io.EOF {
			break
		}
		require.NoError(t, err)
		keys = append(keys, o.Key)
	}
	out := map[string]object{}
	var mu sync.Mutex
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(32)
	for _, k := range keys {
		g.Go(func() error {
			data, err := b.ReadAll(gctx, k)
			if err != nil {
				return err
			}
			a, err := b.Attributes(gctx, k)
			if err != nil {
				return err
			}
			mu.Lock()
			out[strings.TrimPrefix(k, prefix)] = object{data, a.ContentType}
			mu.Unlock()
			return nil
		})
	}
	require.NoError(t, g.Wait())
	return out
}

func genObjects(n int, seed uint64) map[string]object {
	rng := rand.New(rand.NewPCG(seed, 7))
	types := []string{"image/jpeg", "text/plain; charset=utf-8", "application/octet-stream", "image/png"}
	out := map[string]object{}
	for i := range n {
		// Nested keys whose byte order differs from ComparePaths order
		// ("a/x" vs "a.b", "a-1/...").
		key := fmt.Sprintf("catalog/%c/%c%c/img-%05d.jpg", 'a'+i%3, 'a'+i%5, "-./"[i%3], i)
		key = strings.ReplaceAll(key, "//", "/_/")
		data := make([]byte, 100+rng.IntN(8000))
		for j := range data {
			data[j] = byte(rng.Uint32())
		}
		out[key] = object{data, types[i%len(types)]}
	}
	out["catalog.txt"] = object{[]byte("top"), "text/plain"}
	out["catalog-x"] = object{[]byte("dash"), "text/plain"}
	return out
}

func backupBucket(t testing.TB, r *repo.Repository, o bucket.Options) (*engine.BackupResult, error) {
	src, err := bucket.New(o)
	require.NoError(t, err)
	return engine.Backup(context.Background(), r, src, engine.BackupOptions{Workers: 8})
}

func TestMinIOBucket(t *testing.T) {
	n := 1000
	if os.Getenv("LIFEBOAT_LARGE") == "1" {
		n = 10000
	}
	srv := miniotest.Shared(t)
	srv.CreateBucket(t, "shop-media")
	srv.CreateBucket(t, "shop-media-restored")
	ctx := context.Background()
	src := openBucket(t, srv.URL("shop-media", ""))
	t0 := time.Now()
	lap := func(what string) { t.Logf("%s: %v", what, time.Since(t0)); t0 = time.Now() }
	objs := genObjects(n, 1)
	put(t, src, objs)
	put(t, src, map[string]object{"other/not-backed-up": {[]byte("x"), "text/plain"}})

	lap("upload")
	r := newRepo(t)
	opts := bucket.Options{URL: srv.URL("shop-media", ""), Prefix: "catalog"}
	res1, err := backupBucket(t, r, opts)
	require.NoError(t, err)
	require.Empty(t, res1.Warnings)
	assert.Equal(t, int64(len(objs)), res1.Snapshot.Stats.Files)
	lap("backup 1")

	// Entries are in ComparePaths order and carry the metadata.
	var prev string
	tr := r.NewTreeReader(ctx, res1.Snapshot)
	for {
		nd, err := tr.Next()
		if err == io.EOF {
			break
		}
		require.NoError(t, err)
		if prev != "" {
			require.Negative(t, snapshot.ComparePaths(prev, nd.Path), "%s before %s", prev, nd.Path)
		}
		prev = nd.Path
		names := map[string]bool{}
		for _, x := range nd.Xattrs {
			names[x.Name] = true
		}
		assert.True(t, names[bucket.XattrContentType] && names[bucket.XattrETag] && names[bucket.XattrMetaPrefix+"origin"], nd.Path)
	}

	// Change 100 objects (same size: only the ETag and mtime tell).
	changed := map[string]object{}
	var changedBytes int64
	i := 0
	for k, o := range objs {
		if i == 100 {
			break
		}
		d := bytes.Clone(o.data)
		d[0] ^= 0xff
		changed[k] = object{d, o.contentType}
		objs[k] = changed[k]
		changedBytes += int64(len(d))
		i++
	}
	put(t, src, changed)
	res2, err := backupBucket(t, r, opts)
	require.NoError(t, err)
	lap("backup 2")
	require.NotNil(t, res2.Snapshot.Parent)
	assert.Equal(t, changedBytes, res2.Snapshot.Stats.BytesRead, "only the changed objects are read")
	assert.Equal(t, int64(len(objs)), res2.Snapshot.Stats.Files)

	st, err := restore.Bucket(ctx, r.SnapshotReader(res2.Snapshot), srv.URL("shop-media-restored", ""), restore.BucketOptions{})
	require.NoError(t, err)
	assert.Equal(t, int64(len(objs)), st.Objects)
	lap("restore")
	got := contents(t, openBucket(t, srv.URL("shop-media-restored", "")), "")
	want := objs
	require.Equal(t, len(want), len(got))
	for k, o := range want {
		g, ok := got[k]
		if !assert.True(t, ok, k) {
			continue
		}
		assert.True(t, bytes.Equal(o.data, g.data), k)
		assert.Equal(t, o.contentType, g.contentType, k)
	}
}

func TestMinIOMissingBucket(t *testing.T) {
	srv := miniotest.Shared(t)
	r := newRepo(t)
	_, err := backupBucket(t, r, bucket.Options{URL: srv.URL("no-such-bucket", "")})
	require.Error(t, err)
	sns, err := r.Snapshots(context.Background())
	require.NoError(t, err)
	assert.Empty(t, sns)
}

func TestWalkOrderAndFilters(t *testing.T) {
	keys := []string{"a", "a.b", "a/b", "a/b/c", "a-b/x", "b/x.tmp", "b/keep.jpg", "b/deep/er/x.jpg"}
	cases := []struct {
		name             string
		include, exclude []string
		want             []string
	}{
		{"all", nil, nil, []string{"a", "a/b", "a/b/c", "a-b/x", "a.b", "b/deep/er/x.jpg", "b/keep.jpg", "b/x.tmp"}},
		{"exclude base", nil, []string{"*.tmp"}, []string{"a", "a/b", "a/b/c", "a-b/x", "a.b", "b/deep/er/x.jpg", "b/keep.jpg"}},
		{"include doublestar", []string{"b/**/*.jpg"}, nil, []string{"b/deep/er/x.jpg", "b/keep.jpg"}},
		{"include star stays in segment", []string{"b/*.jpg"}, nil, []string{"b/keep.jpg"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			mem := openBucket(t, "mem://")
			for _, k := range keys {
				require.NoError(t, mem.WriteAll(context.Background(), k, []byte("data of "+k), &blob.WriterOptions{ContentType: "text/plain"}))
			}
			s, err := bucket.New(bucket.Options{URL: "mem://", Include: tc.include, Exclude: tc.exclude})
			require.NoError(t, err)
			s.Open = func(context.Context, string) (*blob.Bucket, error) { return mem, nil }
			var got []string
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			err = s.Walk(ctx, func(p string, err error) { t.Errorf("warn %s: %v", p, err) }, func(e snapshot.Entry, _ func() (io.ReadCloser, error)) error {
				got = append(got, e.Path)
				assert.Equal(t, e.ModTime, e.ChangeTime)
				assert.NotZero(t, e.Inode)
				return nil
			})
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
	_, err := bucket.New(bucket.Options{URL: "mem://", Include: []string{""}})
	require.Error(t, err)
}

func TestRestoreToDirectory(t *testing.T) {
	mem := openBucket(t, "mem://")
	objs := map[string]object{"x/y/z.txt": {[]byte("z"), "text/plain"}, "top.bin": {bytes.Repeat([]byte{1}, 100000), "application/octet-stream"}, "bad//key": {[]byte("b"), ""}}
	put(t, mem, objs)
	s, err := bucket.New(bucket.Options{URL: "mem://"})
	require.NoError(t, err)
	s.Open = func(context.Context, string) (*blob.Bucket, error) { return mem, nil }
	r := newRepo(t)
	res, err := engine.Backup(context.Background(), r, s, engine.BackupOptions{})
	require.NoError(t, err)
	require.Len(t, res.Warnings, 1, "invalid key skipped with a warning")
	assert.Contains(t, res.Warnings[0], "bad//key")
	dest := t.TempDir()
	st, err := restore.Bucket(context.Background(), r.SnapshotReader(res.Snapshot), dest, restore.BucketOptions{})
	require.NoError(t, err)
	assert.Equal(t, int64(2), st.Objects)
	for _, k := range []string{"x/y/z.txt", "top.bin"} {
		got, err := os.ReadFile(filepath.Join(dest, k))
		require.NoError(t, err)
		assert.Equal(t, objs[k].data, got)
	}
	// Wrong kind.
	_, err = restore.Volume(context.Background(), r.SnapshotReader(res.Snapshot), filepath.Join(dest, "img"), restore.VolumeOptions{})
	require.Error(t, err)
}
