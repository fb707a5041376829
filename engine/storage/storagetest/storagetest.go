// Package storagetest is the conformance suite for the buckets that hold
// lifeboat repositories: everything engine/repo relies on from a
// *blob.Bucket opened by storage.Open, checked per driver.
package storagetest

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"gocloud.dev/blob"
	"golang.org/x/sync/errgroup"

	"github.com/lifeboat-backup/lifeboat/engine/storage"
)

// Run runs the suite. open returns a new, empty bucket for each subtest
// (it may register cleanups on t).
func Run(t *testing.T, open func(t *testing.T) *blob.Bucket) {
	tests := []struct {
		name string
		fn   func(t *testing.T, b *blob.Bucket)
	}{
		{"RoundTrip", testRoundTrip},
		{"Streamed20MiB", testStreamed},
		{"WriteNewClash", testWriteNewClash},
		{"WriteNewClashStreamed", testWriteNewClashStreamed},
		{"WriteNewRace", testWriteNewRace},
		{"ReadMissing", testReadMissing},
		{"RangeReader", testRangeReader},
		{"Attributes", testAttributes},
		{"ListDelimiter", testListDelimiter},
		{"ListPagination", testListPagination},
		{"Delete", testDelete},
		{"CanceledWriter", testCanceledWriter},
		{"AbortedWriter", testAbortedWriter},
		{"ConcurrentWriters", testConcurrentWriters},
		{"Ping", testPing},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := open(t)
			tc.fn(t, b)
		})
	}
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func randBytes(t *testing.T, n int) []byte {
	p := make([]byte, n)
	_, err := rand.Read(p)
	require.NoError(t, err)
	return p
}

// objects lists all keys under prefix, without staging files.
func objects(t *testing.T, b *blob.Bucket, prefix string) []string {
	t.Helper()
	var keys []string
	it := b.List(&blob.ListOptions{Prefix: prefix})
	for {
		o, err := it.Next(ctxT(t))
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(t, err)
		if !storage.IsTempKey(o.Key) {
			keys = append(keys, o.Key)
		}
	}
	return keys
}

func testRoundTrip(t *testing.T, b *blob.Bucket) {
	ctx := ctxT(t)
	for _, n := range []int{0, 1, 1000, 1 << 20} {
		key := fmt.Sprintf("data/00/rt-%d", n)
		data := randBytes(t, n)
		require.NoError(t, storage.WriteNew(ctx, b, key, data))
		got, err := storage.Read(ctx, b, key)
		require.NoError(t, err)
		require.Equal(t, len(data), len(got))
		require.True(t, bytes.Equal(data, got), "content of %s", key)
		// Plain blob API too.
		got, err = b.ReadAll(ctx, key)
		require.NoError(t, err)
		require.True(t, bytes.Equal(data, got))
	}
}

func testStreamed(t *testing.T, b *blob.Bucket) {
	ctx := ctxT(t)
	const size = 20 << 20
	data := randBytes(t, size)
	w, err := storage.NewWriter(ctx, b, "data/ab/big")
	require.NoError(t, err)
	// Uneven pieces, as a packer would produce.
	rng := mrand.New(mrand.NewPCG(1, 2))
	for off := 0; off < size; {
		n := min(1+rng.IntN(3<<20), size-off)
		m, err := w.Write(data[off : off+n])
		require.NoError(t, err)
		require.Equal(t, n, m)
		off += n
	}
	require.NoError(t, w.Close())

	r, err := b.NewReader(ctx, "data/ab/big", nil)
	require.NoError(t, err)
	defer r.Close()
	require.EqualValues(t, size, r.Size())
	got, err := io.ReadAll(r)
	require.NoError(t, err)
	require.True(t, bytes.Equal(data, got), "20 MiB content differs")

	// The same through the plain blob API (as replication would write).
	bw, err := b.NewWriter(ctx, "data/ab/big2", nil)
	require.NoError(t, err)
	_, err = io.Copy(bw, bytes.NewReader(data))
	require.NoError(t, err)
	require.NoError(t, bw.Close())
	got, err = b.ReadAll(ctx, "data/ab/big2")
	require.NoError(t, err)
	require.True(t, bytes.Equal(data, got))
}

func testWriteNewClash(t *testing.T, b *blob.Bucket) {
	ctx := ctxT(t)
	first := []byte("first version")
	require.NoError(t, storage.WriteNew(ctx, b, "snapshots/s1", first))
	err := storage.WriteNew(ctx, b, "snapshots/s1", []byte("second version, longer"))
	require.Error(t, err)
	require.ErrorIs(t, err, storage.ErrExist)
	got, err := storage.Read(ctx, b, "snapshots/s1")
	require.NoError(t, err)
	require.Equal(t, first, got, "WriteNew clash must keep the original")

	// The plain blob API with IfNotExist: the store refuses too (for
	// file://, through fileblob's own check).
	w, err := b.NewWriter(ctx, "snapshots/s1", &blob.WriterOptions{IfNotExist: true})
	require.NoError(t, err)
	_, err = w.Write([]byte("third"))
	require.NoError(t, err)
	err = w.Close()
	require.Error(t, err)
	require.ErrorIs(t, storage.Wrap(err), storage.ErrExist, "IfNotExist via blob API: %v", err)
	got, err = storage.Read(ctx, b, "snapshots/s1")
	require.NoError(t, err)
	require.Equal(t, first, got)
	require.Equal(t, []string{"snapshots/s1"}, objects(t, b, "snapshots/"))
}

// A clash on a large object: 20 MiB is past the S3 transfer manager's
// 16 MiB multipart threshold, so CompleteMultipartUpload
// must honour If-None-Match).
func testWriteNewClashStreamed(t *testing.T, b *blob.Bucket) {
	ctx := ctxT(t)
	const size = 20 << 20
	first := randBytes(t, size)
	require.NoError(t, storage.WriteNew(ctx, b, "data/cd/pack", first))
	w, err := storage.NewWriter(ctx, b, "data/cd/pack")
	require.NoError(t, err)
	second := randBytes(t, size)
	for off := 0; off < size; off += 1 << 20 {
		_, err := w.Write(second[off : off+1<<20])
		if err != nil {
			require.ErrorIs(t, err, storage.ErrExist)
			w.Abort()
			break
		}
	}
	err = w.Close()
	require.Error(t, err)
	if !strings.Contains(err.Error(), "closed") {
		require.ErrorIs(t, err, storage.ErrExist)
	}
	got, err := storage.Read(ctx, b, "data/cd/pack")
	require.NoError(t, err)
	require.True(t, bytes.Equal(first, got), "streamed clash replaced the original")
}

// Many writers race for one key: exactly one wins and its content stays.
func testWriteNewRace(t *testing.T, b *blob.Bucket) {
	ctx := ctxT(t)
	const writers = 8
	for round := 0; round < 5; round++ {
		key := fmt.Sprintf("locks/race-%d", round)
		var (
			mu      sync.Mutex
			winners []int
		)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := 0; i < writers; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				err := storage.WriteNew(ctx, b, key, bytes.Repeat([]byte{byte('a' + i)}, 1000+i))
				if err == nil {
					mu.Lock()
					winners = append(winners, i)
					mu.Unlock()
					return
				}
				if !errors.Is(err, storage.ErrExist) {
					t.Errorf("writer %d: %v", i, err)
				}
			}()
		}
		close(start)
		wg.Wait()
		require.Len(t, winners, 1, "round %d: winners %v", round, winners)
		got, err := storage.Read(ctx, b, key)
		require.NoError(t, err)
		w := winners[0]
		require.Equal(t, bytes.Repeat([]byte{byte('a' + w)}, 1000+w), got, "round %d: content is not the winner's", round)
	}
}

func testReadMissing(t *testing.T, b *blob.Bucket) {
	ctx := ctxT(t)
	_, err := storage.Read(ctx, b, "index/missing")
	require.ErrorIs(t, err, storage.ErrNotExist)
	_, err = b.NewReader(ctx, "index/missing", nil)
	require.ErrorIs(t, storage.Wrap(err), storage.ErrNotExist)
	_, err = b.NewRangeReader(ctx, "index/missing", 10, 10, nil)
	require.ErrorIs(t, storage.Wrap(err), storage.ErrNotExist)
	_, err = b.Attributes(ctx, "index/missing")
	require.ErrorIs(t, storage.Wrap(err), storage.ErrNotExist)
	ok, err := storage.Exists(ctx, b, "index/missing")
	require.NoError(t, err)
	require.False(t, ok)
}

func testRangeReader(t *testing.T, b *blob.Bucket) {
	ctx := ctxT(t)
	const size = 100_000
	data := randBytes(t, size)
	require.NoError(t, storage.WriteNew(ctx, b, "data/ef/ranged", data))
	for _, c := range []struct {
		off, length int64
		want        []byte
	}{
		{0, 10, data[:10]},
		{0, -1, data},
		{1, -1, data[1:]},
		{size - 1, 1, data[size-1:]},
		{size - 10, 100, data[size-10:]}, // past the end: truncated
		{50_000, 0, []byte{}},
		{12_345, 54_321, data[12_345 : 12_345+54_321]},
	} {
		r, err := b.NewRangeReader(ctx, "data/ef/ranged", c.off, c.length, nil)
		require.NoError(t, err, "off %d len %d", c.off, c.length)
		got, err := io.ReadAll(r)
		require.NoError(t, err)
		require.NoError(t, r.Close())
		require.True(t, bytes.Equal(c.want, got), "off %d len %d: got %d bytes, want %d", c.off, c.length, len(got), len(c.want))
		require.EqualValues(t, size, r.Size(), "Reader.Size is the object size")
	}
	// A range that starts at the end: empty on mem:// and file://, an
	// error (416 InvalidRange) on S3. The repository never asks for it.
	if r, err := b.NewRangeReader(ctx, "data/ef/ranged", size, -1, nil); err == nil {
		got, err := io.ReadAll(r)
		require.NoError(t, err)
		require.Empty(t, got)
		require.NoError(t, r.Close())
	} else {
		t.Logf("range at end of object: %v", err)
	}
}

func testAttributes(t *testing.T, b *blob.Bucket) {
	ctx := ctxT(t)
	before := time.Now().Add(-2 * time.Minute) // clock skew between us and the server
	data := randBytes(t, 4321)
	require.NoError(t, storage.WriteNew(ctx, b, "keys/k1", data))
	a, err := b.Attributes(ctx, "keys/k1")
	require.NoError(t, err)
	require.EqualValues(t, 4321, a.Size)
	require.False(t, a.ModTime.IsZero())
	require.True(t, a.ModTime.After(before), "ModTime %v", a.ModTime)
	require.True(t, a.ModTime.Before(time.Now().Add(2*time.Minute)), "ModTime %v", a.ModTime)
}

func testListDelimiter(t *testing.T, b *blob.Bucket) {
	ctx := ctxT(t)
	keys := []string{"config", "data/00/a", "data/00/b", "data/01/c", "data/ff/d", "index/i1", "snapshots/s1"}
	for _, k := range keys {
		require.NoError(t, storage.WriteNew(ctx, b, k, []byte(k)))
	}
	list := func(prefix, delim string) (dirs, files []string) {
		it := b.List(&blob.ListOptions{Prefix: prefix, Delimiter: delim})
		for {
			o, err := it.Next(ctx)
			if errors.Is(err, io.EOF) {
				return
			}
			require.NoError(t, err)
			if storage.IsTempKey(o.Key) {
				continue
			}
			if o.IsDir {
				dirs = append(dirs, o.Key)
			} else {
				files = append(files, o.Key)
				require.EqualValues(t, len(o.Key), o.Size, "size of %s", o.Key)
				require.False(t, o.ModTime.IsZero(), "ModTime of %s", o.Key)
			}
		}
	}
	dirs, files := list("", "/")
	require.Equal(t, []string{"config"}, files)
	require.Subset(t, dirs, []string{"data/", "index/", "snapshots/"})
	for _, d := range dirs { // file:// may show its staging directory
		require.True(t, d == "data/" || d == "index/" || d == "snapshots/" || d == storage.TempDir+"/", "dir %q", d)
	}
	dirs, files = list("data/", "/")
	require.Empty(t, files)
	require.Equal(t, []string{"data/00/", "data/01/", "data/ff/"}, dirs)
	dirs, files = list("data/00/", "/")
	require.Empty(t, dirs)
	require.Equal(t, []string{"data/00/a", "data/00/b"}, files)
	dirs, files = list("data/", "")
	require.Empty(t, dirs)
	require.Equal(t, []string{"data/00/a", "data/00/b", "data/01/c", "data/ff/d"}, files)
	dirs, files = list("data/0", "")
	require.Empty(t, dirs)
	require.Equal(t, []string{"data/00/a", "data/00/b", "data/01/c"}, files)
	_, files = list("nothing/", "/")
	require.Empty(t, files)
}

func testListPagination(t *testing.T, b *blob.Bucket) {
	ctx := ctxT(t)
	const n = 1200
	var want []string
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(16)
	for i := 0; i < n; i++ {
		key := fmt.Sprintf("index/%02x/%06d", i%7, i)
		want = append(want, key)
		g.Go(func() error { return storage.WriteNew(gctx, b, key, []byte{byte(i)}) })
	}
	require.NoError(t, g.Wait())
	sort.Strings(want)

	got := objects(t, b, "index/")
	require.Equal(t, want, got, "List iterator")

	// Explicit pages.
	var paged []string
	pages := 0
	token := blob.FirstPageToken
	for {
		objs, next, err := b.ListPage(ctx, token, 100, &blob.ListOptions{Prefix: "index/"})
		require.NoError(t, err)
		require.LessOrEqual(t, len(objs), 100)
		for _, o := range objs {
			paged = append(paged, o.Key)
		}
		pages++
		if next == nil {
			break
		}
		token = next
		require.Less(t, pages, 100, "pagination does not end")
	}
	require.Equal(t, want, paged, "ListPage")
	require.GreaterOrEqual(t, pages, n/100)
}

func testDelete(t *testing.T, b *blob.Bucket) {
	ctx := ctxT(t)
	require.NoError(t, storage.WriteNew(ctx, b, "locks/l1", []byte("lock")))
	require.NoError(t, storage.Delete(ctx, b, "locks/l1"))
	_, err := storage.Read(ctx, b, "locks/l1")
	require.ErrorIs(t, err, storage.ErrNotExist)
	require.ErrorIs(t, storage.Delete(ctx, b, "locks/l1"), storage.ErrNotExist)
	require.ErrorIs(t, storage.Delete(ctx, b, "locks/never"), storage.ErrNotExist)
	require.Empty(t, objects(t, b, "locks/"))
	// A deleted key can be written anew (lock refresh, repack).
	require.NoError(t, storage.WriteNew(ctx, b, "locks/l1", []byte("again")))
}

// A writer whose context is canceled before Close must leave nothing.
func testCanceledWriter(t *testing.T, b *blob.Bucket) {
	for _, size := range []int{0, 100, 3 << 20, 20 << 20} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			key := fmt.Sprintf("data/99/canceled-%d", size)
			ctx, cancel := context.WithCancel(ctxT(t))
			w, err := storage.NewWriter(ctx, b, key)
			require.NoError(t, err)
			if size > 0 {
				_, _ = w.Write(randBytes(t, size)) // may fail: the upload runs
			}
			cancel()
			require.Error(t, w.Close(), "Close after cancel must fail")

			// And via the plain blob API.
			ctx2, cancel2 := context.WithCancel(ctxT(t))
			bw, err := b.NewWriter(ctx2, key+"-plain", nil)
			require.NoError(t, err)
			if size > 0 {
				_, _ = bw.Write(randBytes(t, size))
			}
			cancel2()
			require.Error(t, bw.Close())

			time.Sleep(100 * time.Millisecond) // let aborted uploads settle
			ctx3 := ctxT(t)
			for _, k := range []string{key, key + "-plain"} {
				ok, err := storage.Exists(ctx3, b, k)
				require.NoError(t, err)
				require.False(t, ok, "%s exists after a canceled write", k)
			}
			require.Empty(t, objects(t, b, "data/99/"))
		})
	}
}

func testAbortedWriter(t *testing.T, b *blob.Bucket) {
	ctx := ctxT(t)
	w, err := storage.NewWriter(ctx, b, "data/98/aborted")
	require.NoError(t, err)
	_, err = w.Write(randBytes(t, 1<<20))
	require.NoError(t, err)
	w.Abort()
	require.Error(t, w.Close())
	ok, err := storage.Exists(ctx, b, "data/98/aborted")
	require.NoError(t, err)
	require.False(t, ok)
	// The key is still free.
	require.NoError(t, storage.WriteNew(ctx, b, "data/98/aborted", []byte("x")))
}

func testConcurrentWriters(t *testing.T, b *blob.Bucket) {
	ctx := ctxT(t)
	const n = 32
	contents := make([][]byte, n)
	g, gctx := errgroup.WithContext(ctx)
	for i := 0; i < n; i++ {
		contents[i] = randBytes(t, 1000+i*20_000)
		g.Go(func() error {
			key := fmt.Sprintf("data/%02x/w%02d", i%4, i)
			w, err := storage.NewWriter(gctx, b, key)
			if err != nil {
				return err
			}
			for off := 0; off < len(contents[i]); off += 4096 {
				if _, err := w.Write(contents[i][off:min(off+4096, len(contents[i]))]); err != nil {
					w.Abort()
					return err
				}
			}
			return w.Close()
		})
	}
	require.NoError(t, g.Wait())
	for i := 0; i < n; i++ {
		got, err := storage.Read(ctx, b, fmt.Sprintf("data/%02x/w%02d", i%4, i))
		require.NoError(t, err)
		require.True(t, bytes.Equal(contents[i], got), "writer %d", i)
	}
	require.Len(t, objects(t, b, "data/"), n)
}

func testPing(t *testing.T, b *blob.Bucket) {
	ctx := ctxT(t)
	require.NoError(t, storage.Ping(ctx, b), "empty bucket")
	require.NoError(t, storage.WriteNew(ctx, b, "config", []byte("{}")))
	require.NoError(t, storage.Ping(ctx, b))
}
