package repo

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gocloud.dev/blob/memblob"
)

// TestFinishAsyncAfterFailedUpload: a saver that waited for an upload slot
// while another upload failed returns that failure and starts no upload
// of its own (with the store dead, each would run the whole retry
// schedule); SetUploads sets the slots.
func TestFinishAsyncAfterFailedUpload(t *testing.T) {
	ctx := context.Background()
	b := memblob.OpenBucket(nil)
	res, err := Init(ctx, b, InitOptions{})
	require.NoError(t, err)
	owner, err := ParseCredentials([]byte(res.OwnerIdentity))
	require.NoError(t, err)
	r, err := Open(ctx, b, owner)
	require.NoError(t, err)
	assert.Equal(t, DefaultUploads, cap(r.finishSlots))
	r.SetUploads(0)
	assert.Equal(t, DefaultUploads, cap(r.finishSlots), "n < 1 is ignored")
	r.SetUploads(1)
	require.Equal(t, 1, cap(r.finishSlots))

	p, err := newPackWriter(ctx, b, r.packRecips)
	require.NoError(t, err)
	d := []byte("a blob that is never uploaded")
	require.NoError(t, p.add(DataBlob, r.BlobID(d), d, len(d), false))

	r.finishSlots <- struct{}{} // the one upload in flight
	done := make(chan error, 1)
	go func() { done <- r.finishAsync(ctx, p) }()
	select {
	case err := <-done:
		t.Fatalf("finishAsync returned (%v) without a free slot", err)
	case <-time.After(100 * time.Millisecond):
	}
	failed := errors.New("upload pack: the store is gone")
	r.mu.Lock()
	r.finishErr = failed // the upload in flight fails ...
	r.mu.Unlock()
	<-r.finishSlots // ... and frees its slot
	select {
	case err := <-done:
		require.ErrorIs(t, err, failed)
	case <-time.After(10 * time.Second):
		t.Fatal("finishAsync did not return")
	}
	r.finishing.Wait()
	assert.Empty(t, r.finishSlots, "the slot is given back")
	exists, err := b.Exists(ctx, packKey(p.id))
	require.NoError(t, err)
	assert.False(t, exists, "the waiting saver started no upload")
}
