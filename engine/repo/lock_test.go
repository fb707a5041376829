package repo_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gocloud.dev/blob"

	"github.com/lifeboat-backup/lifeboat/engine/repo"
	"github.com/lifeboat-backup/lifeboat/engine/snapshot"
)

// writeLockObject stores a lock object by hand, as another process or host
// would have left it.
func writeLockObject(t *testing.T, b *blob.Bucket, li repo.LockInfo) string {
	t.Helper()
	data, err := json.Marshal(li)
	require.NoError(t, err)
	key := "locks/" + snapshot.NewRandomID().String()
	require.NoError(t, b.WriteAll(ctx, key, data, nil))
	return key
}

func lockKeys(t *testing.T, b *blob.Bucket) []string {
	return keysOf(listObjects(t, b, "locks/"), "locks/")
}

func exists(t *testing.T, b *blob.Bucket, key string) bool {
	t.Helper()
	ok, err := b.Exists(ctx, key)
	require.NoError(t, err)
	return ok
}

// deadPID returns the PID of a process that has exited (and been reaped).
func deadPID(t *testing.T) int {
	t.Helper()
	cmd := exec.Command("true")
	require.NoError(t, cmd.Run())
	return cmd.Process.Pid
}

func hostname(t *testing.T) string {
	h, err := os.Hostname()
	require.NoError(t, err)
	return h
}

func TestLockCompatibility(t *testing.T) {
	tests := []struct {
		first, second bool // exclusive?
		conflict      bool
	}{
		{false, false, false},
		{false, true, true},
		{true, false, true},
		{true, true, true},
	}
	for _, tc := range tests {
		name := map[bool]string{false: "shared", true: "exclusive"}
		t.Run(name[tc.first]+"+"+name[tc.second], func(t *testing.T) {
			b := memBucket(t)
			l1, err := repo.AcquireLock(ctx, b, tc.first, "first", 0)
			require.NoError(t, err)
			l2, err := repo.AcquireLock(ctx, b, tc.second, "second", 0)
			if !tc.conflict {
				require.NoError(t, err)
				assert.Len(t, lockKeys(t, b), 2)
				require.NoError(t, l2.Unlock(ctx))
				require.NoError(t, l1.Unlock(ctx))
				assert.Empty(t, lockKeys(t, b))
				return
			}
			require.Error(t, err)
			assert.True(t, repo.IsLocked(err))
			var le *repo.LockedError
			require.ErrorAs(t, err, &le)
			assert.Equal(t, tc.first, le.Holder.Exclusive)
			assert.Equal(t, os.Getpid(), le.Holder.PID)
			assert.Equal(t, hostname(t), le.Holder.Host)
			assert.Equal(t, "first", le.Holder.Purpose)
			assert.Contains(t, err.Error(), hostname(t))
			assert.Contains(t, err.Error(), "pid ")
			assert.Equal(t, []string{l1.Key()}, lockKeys(t, b), "the refused lock leaves no object")

			require.NoError(t, l1.Unlock(ctx))
			assert.False(t, exists(t, b, l1.Key()), "Unlock removes the object")
			l2, err = repo.AcquireLock(ctx, b, tc.second, "second", 0)
			require.NoError(t, err, "free after Unlock")
			require.NoError(t, l2.Unlock(ctx))
		})
	}
}

// here returns where this process's PIDs mean something, as a lock
// written by a process of this host, boot and PID namespace records it.
func here(t *testing.T, li repo.LockInfo) repo.LockInfo {
	t.Helper()
	boot, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	require.NoError(t, err)
	ns, err := os.Readlink("/proc/self/ns/pid")
	require.NoError(t, err)
	li.Host, li.BootID, li.PIDNamespace = hostname(t), strings.TrimSpace(string(boot)), ns
	return li
}

func TestStaleLocksRemovedByAcquire(t *testing.T) {
	future := time.Now().Add(time.Hour).UTC()
	tests := []struct {
		name  string
		lock  func(t *testing.T) repo.LockInfo
		stale bool
	}{
		{"dead pid on this host", func(t *testing.T) repo.LockInfo {
			return here(t, repo.LockInfo{Exclusive: true, PID: deadPID(t), Created: time.Now().UTC(), Expires: future})
		}, true},
		{"dead pid, same host name, other PID namespace", func(t *testing.T) repo.LockInfo {
			// A container or `unshare -p` with the same host name: its
			// PIDs say nothing about the processes here.
			li := here(t, repo.LockInfo{Exclusive: true, PID: deadPID(t), Created: time.Now().UTC(), Expires: future})
			li.PIDNamespace = "pid:[4026599999]"
			return li
		}, false},
		{"dead pid, same host name, no namespace recorded", func(t *testing.T) repo.LockInfo {
			return repo.LockInfo{Exclusive: true, Host: hostname(t), PID: deadPID(t), Created: time.Now().UTC(), Expires: future}
		}, false},
		{"lease ran out on the storage's clock", func(t *testing.T) repo.LockInfo {
			return repo.LockInfo{Exclusive: true, Host: "far-away.example", PID: os.Getpid(), LeaseSeconds: 0.05,
				Created: time.Now().UTC(), Expires: future}
		}, true},
		{"expiry in the past by a skewed clock, lease live on the storage's clock", func(t *testing.T) repo.LockInfo {
			return repo.LockInfo{Exclusive: true, Host: "far-away.example", PID: os.Getpid(), LeaseSeconds: 300,
				Created: time.Now().Add(-time.Hour).UTC(), Expires: time.Now().Add(-time.Minute).UTC()}
		}, false},
		{"live lease of another host", func(t *testing.T) repo.LockInfo {
			// Its PID is dead here, which says nothing about the other host.
			return repo.LockInfo{Exclusive: true, Host: "far-away.example", PID: deadPID(t), Created: time.Now().UTC(), Expires: future}
		}, false},
		{"live process on this host", func(t *testing.T) repo.LockInfo {
			return here(t, repo.LockInfo{Exclusive: true, PID: os.Getppid(), Created: time.Now().UTC(), Expires: future})
		}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := memBucket(t)
			li := tc.lock(t)
			key := writeLockObject(t, b, li)
			time.Sleep(100 * time.Millisecond)
			l, err := repo.AcquireLock(ctx, b, false, "backup", 0)
			if tc.stale {
				require.NoError(t, err)
				assert.False(t, exists(t, b, key), "the stale lock is removed")
				assert.Equal(t, []string{l.Key()}, lockKeys(t, b))
				require.NoError(t, l.Unlock(ctx))
				return
			}
			require.True(t, repo.IsLocked(err), "want LockedError, got %v", err)
			var le *repo.LockedError
			require.ErrorAs(t, err, &le)
			assert.Equal(t, li.Host, le.Holder.Host)
			assert.Equal(t, li.PID, le.Holder.PID)
			assert.True(t, exists(t, b, key), "a live lock is kept")
		})
	}
}

func TestRemoveStaleLocks(t *testing.T) {
	b := memBucket(t)
	// First our own live lock (AcquireLock would clear stale ones itself).
	own, err := repo.AcquireLock(ctx, b, false, "mine", 0)
	require.NoError(t, err)
	future := time.Now().Add(time.Hour).UTC()
	live := writeLockObject(t, b, repo.LockInfo{Host: "far-away.example", PID: 1, Created: time.Now().UTC(), Expires: future})
	expired := writeLockObject(t, b, repo.LockInfo{Host: "far-away.example", PID: 1, LeaseSeconds: 0.05, Expires: future})
	dead := writeLockObject(t, b, here(t, repo.LockInfo{PID: deadPID(t), Expires: future}))
	garbage := "locks/" + snapshot.NewRandomID().String()
	require.NoError(t, b.WriteAll(ctx, garbage, []byte("{not json"), nil))
	require.Len(t, lockKeys(t, b), 5)
	time.Sleep(100 * time.Millisecond)

	n, err := repo.RemoveStaleLocks(ctx, b, false)
	require.NoError(t, err)
	assert.Equal(t, 2, n)
	for _, k := range []string{expired, dead} {
		assert.False(t, exists(t, b, k), "%s is stale", k)
	}
	// An unreadable lock blocks until it is older than a lease.
	for _, k := range []string{live, garbage, own.Key()} {
		assert.True(t, exists(t, b, k), "%s is kept", k)
	}

	n, err = repo.RemoveStaleLocks(ctx, b, true)
	require.NoError(t, err)
	assert.Equal(t, 3, n)
	assert.Empty(t, lockKeys(t, b))
	// Unlocking a lock that was removed meanwhile is not an error.
	require.NoError(t, own.Unlock(ctx))
}

func TestAcquireLockWaits(t *testing.T) {
	b := memBucket(t)
	holder, err := repo.AcquireLock(ctx, b, true, "prune", 0)
	require.NoError(t, err)

	// Without waiting: refused at once.
	start := time.Now()
	_, err = repo.AcquireLock(ctx, b, false, "backup", 0)
	require.True(t, repo.IsLocked(err))
	assert.Less(t, time.Since(start), time.Second)

	released := make(chan error, 1)
	go func() {
		time.Sleep(100 * time.Millisecond)
		released <- holder.Unlock(ctx)
	}()
	l, err := repo.AcquireLock(ctx, b, false, "backup", 600*time.Millisecond)
	require.NoError(t, err, "the lock is free before the wait ends")
	require.NoError(t, <-released)
	assert.Equal(t, []string{l.Key()}, lockKeys(t, b))
	require.NoError(t, l.Unlock(ctx))

	// Waiting in vain ends with the LockedError, after about the wait.
	holder, err = repo.AcquireLock(ctx, b, true, "prune", 0)
	require.NoError(t, err)
	defer holder.Unlock(ctx)
	start = time.Now()
	_, err = repo.AcquireLock(ctx, b, true, "prune2", 200*time.Millisecond)
	require.True(t, repo.IsLocked(err))
	assert.GreaterOrEqual(t, time.Since(start), 200*time.Millisecond)
}

func TestLockObjectContent(t *testing.T) {
	b := memBucket(t)
	l, err := repo.AcquireLock(ctx, b, true, "prune", 0)
	require.NoError(t, err)
	defer l.Unlock(ctx)
	locks, err := repo.ListLocks(ctx, b)
	require.NoError(t, err)
	require.Len(t, locks, 1)
	li := locks[0]
	assert.True(t, li.Exclusive)
	assert.Equal(t, os.Getpid(), li.PID)
	assert.Equal(t, "prune", li.Purpose)
	// The lease runs LockLease from now and is pushed forward every
	// LockRefresh, well before it ends.
	assert.WithinDuration(t, time.Now().Add(repo.LockLease), li.Expires, 10*time.Second)
	assert.Less(t, 2*repo.LockRefresh, repo.LockLease)
	// Unlock is idempotent.
	require.NoError(t, l.Unlock(ctx))
	require.NoError(t, l.Unlock(ctx))
	var nilLock *repo.Lock
	require.NoError(t, nilLock.Unlock(ctx))
}
