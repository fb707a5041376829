package repo

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gocloud.dev/blob/memblob"
)

// TestLockRenew covers the heartbeat without waiting for its ticker: a
// renewal moves the lease forward and replaces the object; a failed
// renewal keeps the old lease while there is time, and reports the lock
// lost when the lease would end before the next try.
func TestLockRenew(t *testing.T) {
	ctx := context.Background()
	b := memblob.OpenBucket(nil)
	l, err := AcquireLock(ctx, b, false, "test", 0)
	require.NoError(t, err)
	defer l.Unlock(ctx)

	before, oldKey := l.info.Expires, l.Key()
	time.Sleep(10 * time.Millisecond)
	require.True(t, l.renew())
	assert.True(t, l.info.Expires.After(before))
	assert.NotEqual(t, oldKey, l.Key())
	locks, err := ListLocks(ctx, b)
	require.NoError(t, err)
	assert.Len(t, locks, 1, "the old lock object is deleted")

	require.NoError(t, b.Close()) // every write fails from now on
	assert.True(t, l.renew(), "a failure with most of the lease left is retried")
	l.lastOK = time.Now().Add(-LockLease + LockLease/5 + LockRefresh/2)
	assert.False(t, l.renew(), "the lease ends before the next try: lost")
	l.lastOK = time.Now().Add(-LockLease)
	assert.False(t, l.renew(), "a lease that ran out is never renewed")
}

func TestRecords(t *testing.T) {
	ctx := context.Background()
	b := memblob.OpenBucket(nil)
	res, err := Init(ctx, b, InitOptions{})
	require.NoError(t, err)
	host, err := ParseIdentities([]byte(res.HostIdentity))
	require.NoError(t, err)
	r, err := Open(ctx, b, Credentials{Identities: host})
	require.NoError(t, err)
	key, err := r.SaveRecord(ctx, "runs/shop", time.Date(2026, 11, 25, 2, 30, 0, 0, time.UTC), []byte(`{"policy":"shop"}`))
	require.NoError(t, err)
	assert.Contains(t, key, "records/runs/shop/20261125T023000Z-")
	raw, err := b.ReadAll(ctx, key)
	require.NoError(t, err)
	assert.NotContains(t, string(raw), "shop", "records are encrypted")
	got, err := r.LoadRecord(ctx, key)
	require.NoError(t, err)
	assert.JSONEq(t, `{"policy":"shop"}`, string(got))
}
