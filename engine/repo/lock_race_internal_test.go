package repo

import (
	"context"
	"errors"
	"io"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
	"gocloud.dev/blob"
	"gocloud.dev/blob/driver"
	"gocloud.dev/blob/memblob"
	"gocloud.dev/gcerrors"
)

// TestOthersOwnLockReplacedDuringListing: the refresh replaces the lock's
// object (writes the new one, deletes the old) while others() lists the
// locks: after the listing named an object and before it was read, and
// also once before the listing and again during it, so the listing shows
// neither the object current when others() began nor the one current at
// its end. Any object of ours that was listed tells the storage's clock,
// so others() answers instead of failing with "own lock ... not listed"
// (seen under load with 8 writers refreshing every 800 ms).
func TestOthersOwnLockReplacedDuringListing(t *testing.T) {
	for _, tc := range []struct {
		name       string
		beforeList bool // replace once between others() starting and the listing
		atOwnRead  int  // replacements right before our listed object is read
	}{
		{"replaced between list and read", false, 1},
		{"replaced twice between list and read", false, 2},
		{"replaced before the listing and during it", true, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			mem := memblob.OpenBucket(nil)
			hook := &readHookBucket{b: mem}
			b := blob.NewBucket(hook)
			l, err := AcquireLock(ctx, b, false, "test", 0)
			require.NoError(t, err)
			defer l.Unlock(ctx)
			other, err := AcquireLock(ctx, mem, false, "other", 0)
			require.NoError(t, err)
			defer other.Unlock(ctx)

			replaced := 0
			replace := func() {
				require.True(t, l.renew(), "refresh")
				replaced++
			}
			var listed string
			hook.set(func() {
				if tc.beforeList {
					replace()
				}
				listed = l.Key()
			}, func(key string) {
				if key == listed {
					for i := 0; i < tc.atOwnRead; i++ {
						replace()
					}
				}
			})
			for try := 0; try < 3; try++ {
				live, err := l.others(ctx, b)
				require.NoError(t, err)
				require.Len(t, live, 1)
				require.Equal(t, other.Key(), live[0].key)
			}
			require.Equal(t, 3*(tc.atOwnRead+map[bool]int{true: 1}[tc.beforeList]), replaced)
		})
	}
}

// readHookBucket is a driver over a *blob.Bucket that calls hooks before
// each listing and each read: a test's way to act between a listing and
// its reads. The hooks run one at a time and not for their own calls.
type readHookBucket struct {
	b          *blob.Bucket
	mu         sync.Mutex
	inHook     bool
	beforeList func()
	beforeRead func(key string)
}

func (h *readHookBucket) set(list func(), read func(string)) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.beforeList, h.beforeRead = list, read
}

// run calls f unless a hook is running already.
func (h *readHookBucket) run(f func()) {
	h.mu.Lock()
	if h.inHook {
		h.mu.Unlock()
		return
	}
	h.inHook = true
	h.mu.Unlock()
	f()
	h.mu.Lock()
	h.inHook = false
	h.mu.Unlock()
}

func (h *readHookBucket) ErrorCode(err error) gcerrors.ErrorCode { return gcerrors.Code(err) }
func (h *readHookBucket) As(i any) bool                          { return false }
func (h *readHookBucket) ErrorAs(err error, i any) bool          { return false }
func (h *readHookBucket) Close() error                           { return h.b.Close() }

func (h *readHookBucket) Attributes(ctx context.Context, key string) (*driver.Attributes, error) {
	a, err := h.b.Attributes(ctx, key)
	if err != nil {
		return nil, err
	}
	return &driver.Attributes{ModTime: a.ModTime, Size: a.Size, MD5: a.MD5, ETag: a.ETag}, nil
}

func (h *readHookBucket) ListPaged(ctx context.Context, opts *driver.ListOptions) (*driver.ListPage, error) {
	token := opts.PageToken
	if len(token) == 0 {
		token = blob.FirstPageToken
		if h.beforeList != nil {
			h.run(h.beforeList)
		}
	}
	objs, next, err := h.b.ListPage(ctx, token, 1000, &blob.ListOptions{Prefix: opts.Prefix, Delimiter: opts.Delimiter})
	if err != nil && err != io.EOF {
		return nil, err
	}
	page := &driver.ListPage{NextPageToken: next}
	for _, o := range objs {
		page.Objects = append(page.Objects, &driver.ListObject{Key: o.Key, ModTime: o.ModTime, Size: o.Size, IsDir: o.IsDir})
	}
	return page, nil
}

func (h *readHookBucket) NewRangeReader(ctx context.Context, key string, off, length int64, _ *driver.ReaderOptions) (driver.Reader, error) {
	if h.beforeRead != nil {
		h.run(func() { h.beforeRead(key) })
	}
	rd, err := h.b.NewRangeReader(ctx, key, off, length, nil)
	if err != nil {
		return nil, err
	}
	return hookReader{rd}, nil
}

func (h *readHookBucket) NewTypedWriter(ctx context.Context, key, contentType string, opts *driver.WriterOptions) (driver.Writer, error) {
	return h.b.NewWriter(ctx, key, &blob.WriterOptions{ContentType: contentType, IfNotExist: opts.IfNotExist, DisableContentTypeDetection: true})
}

func (h *readHookBucket) Copy(ctx context.Context, dst, src string, _ *driver.CopyOptions) error {
	return h.b.Copy(ctx, dst, src, nil)
}

func (h *readHookBucket) Delete(ctx context.Context, key string, _ *driver.DeleteOptions) error {
	return h.b.Delete(ctx, key)
}

func (h *readHookBucket) SignedURL(context.Context, string, *driver.SignedURLOptions) (string, error) {
	return "", errors.New("signed URLs: not supported by the test bucket")
}

type hookReader struct{ rd *blob.Reader }

func (r hookReader) Read(p []byte) (int, error) { return r.rd.Read(p) }
func (r hookReader) Close() error               { return r.rd.Close() }
func (r hookReader) As(any) bool                { return false }
func (r hookReader) Attributes() *driver.ReaderAttributes {
	return &driver.ReaderAttributes{ModTime: r.rd.ModTime(), Size: r.rd.Size()}
}

// TestOthersOwnLockRemoved: a lock whose object another process removed
// as stale (its refresh stalled past the lease) is lost; others() says so
// instead of failing on the storage's clock.
func TestOthersOwnLockRemoved(t *testing.T) {
	ctx := context.Background()
	b := memblob.OpenBucket(nil)
	l, err := AcquireLock(ctx, b, false, "test", 0)
	require.NoError(t, err)
	defer l.Unlock(ctx)
	require.NoError(t, b.Delete(ctx, l.Key()))
	_, err = l.others(ctx, b)
	require.ErrorIs(t, err, ErrLockLost)
}
