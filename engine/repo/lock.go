package repo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/user"
	"sync"
	"syscall"
	"time"

	"gocloud.dev/blob"
	"gocloud.dev/gcerrors"
)

// Locks are leases: locks/<id> holds plain JSON (no secrets) with an expiry
// that the holder pushes forward every LockRefresh by writing a new lock
// object and deleting the old one. A lock whose lease expired, or whose
// process is gone on this host, is stale and removed by whoever finds it, so
// a crashed backup never blocks the next night's run. Read-only commands
// take no lock at all.
const (
	LockLease   = 5 * time.Minute
	LockRefresh = time.Minute
)

// LockInfo is the content of a lock object.
type LockInfo struct {
	Exclusive bool      `json:"exclusive"`
	Host      string    `json:"host"`
	PID       int       `json:"pid"`
	User      string    `json:"user,omitempty"`
	Purpose   string    `json:"purpose,omitempty"`
	Created   time.Time `json:"created"`
	Expires   time.Time `json:"expires"`
	key       string
}

// LockedError says who holds a conflicting lock.
type LockedError struct{ Holder LockInfo }

func (e *LockedError) Error() string {
	kind := "shared"
	if e.Holder.Exclusive {
		kind = "exclusive"
	}
	return fmt.Sprintf("repository is locked (%s lock by %s pid %d for %q since %s, lease until %s; `lifeboat unlock` removes stale locks)",
		kind, e.Holder.Host, e.Holder.PID, e.Holder.Purpose, e.Holder.Created.Format(time.RFC3339), e.Holder.Expires.Format(time.RFC3339))
}

// IsLocked reports whether err is a LockedError.
func IsLocked(err error) bool {
	var le *LockedError
	return errors.As(err, &le)
}

// Lock is a held lock; Unlock releases it.
type Lock struct {
	b      *blob.Bucket
	mu     sync.Mutex
	info   LockInfo
	stop   chan struct{}
	done   chan struct{}
	lost   chan struct{}
	stopMu sync.Once
}

// ErrLockLost: the lease could not be refreshed before it expired, so other
// processes may now treat the lock as stale; work under it must stop.
var ErrLockLost = errors.New("repository lock lost: its lease expired because it could not be refreshed")

// Lost is closed when the lease expired without a successful refresh.
func (l *Lock) Lost() <-chan struct{} { return l.lost }

func hostname() string {
	h, err := os.Hostname()
	if err != nil {
		return "unknown"
	}
	return h
}

// stale reports whether a lock can be removed: lease expired, or held by a
// process of this host that no longer runs.
func (l LockInfo) stale(now time.Time, host string) bool {
	if now.After(l.Expires) {
		return true
	}
	if l.Host == host && l.PID > 0 {
		if err := syscall.Kill(l.PID, 0); errors.Is(err, syscall.ESRCH) {
			return true
		}
	}
	return false
}

// ListLocks returns the locks present.
func ListLocks(ctx context.Context, b *blob.Bucket) ([]LockInfo, error) {
	var locks []LockInfo
	it := b.List(&blob.ListOptions{Prefix: "locks/"})
	for {
		obj, err := it.Next(ctx)
		if err != nil {
			if err == io.EOF {
				return locks, nil
			}
			return nil, fmt.Errorf("list locks: %w", err)
		}
		data, err := b.ReadAll(ctx, obj.Key)
		if err != nil {
			if gcerrors.Code(err) == gcerrors.NotFound {
				continue // released meanwhile
			}
			return nil, fmt.Errorf("read %s: %w", obj.Key, err)
		}
		var li LockInfo
		if err := json.Unmarshal(data, &li); err != nil {
			// unreadable lock: treat as expired so it cannot block forever
			li = LockInfo{Host: "?", Purpose: "unreadable lock object"}
		}
		li.key = obj.Key
		locks = append(locks, li)
	}
}

// RemoveStaleLocks deletes stale locks (all locks with all=true) and returns
// how many it removed.
func RemoveStaleLocks(ctx context.Context, b *blob.Bucket, all bool) (int, error) {
	locks, err := ListLocks(ctx, b)
	if err != nil {
		return 0, err
	}
	n := 0
	now, host := time.Now(), hostname()
	for _, l := range locks {
		if all || l.stale(now, host) {
			if err := b.Delete(ctx, l.key); err != nil && gcerrors.Code(err) != gcerrors.NotFound {
				return n, fmt.Errorf("delete %s: %w", l.key, err)
			}
			n++
		}
	}
	return n, nil
}

// conflict returns a live lock that conflicts with taking one of the given
// kind, skipping self, and removes stale ones on the way.
func conflict(ctx context.Context, b *blob.Bucket, exclusive bool, self string) (*LockInfo, error) {
	locks, err := ListLocks(ctx, b)
	if err != nil {
		return nil, err
	}
	now, host := time.Now(), hostname()
	for _, l := range locks {
		if l.key == self {
			continue
		}
		if l.stale(now, host) {
			_ = b.Delete(ctx, l.key)
			continue
		}
		if exclusive || l.Exclusive {
			return &l, nil
		}
	}
	return nil, nil
}

// AcquireLock takes a shared or exclusive lock, waiting up to wait for a
// conflicting lock to go away. The lease is refreshed in the background
// until Unlock.
func AcquireLock(ctx context.Context, b *blob.Bucket, exclusive bool, purpose string, wait time.Duration) (*Lock, error) {
	deadline := time.Now().Add(wait)
	for {
		l, err := tryLock(ctx, b, exclusive, purpose)
		if err == nil || !IsLocked(err) || time.Now().After(deadline) {
			return l, err
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(min(5*time.Second, time.Until(deadline)+10*time.Millisecond)):
		}
	}
}

func tryLock(ctx context.Context, b *blob.Bucket, exclusive bool, purpose string) (*Lock, error) {
	if c, err := conflict(ctx, b, exclusive, ""); err != nil {
		return nil, err
	} else if c != nil {
		return nil, &LockedError{Holder: *c}
	}
	now := time.Now()
	info := LockInfo{Exclusive: exclusive, Host: hostname(), PID: os.Getpid(), Purpose: purpose,
		Created: now.UTC(), Expires: now.Add(LockLease).UTC()}
	if u, err := user.Current(); err == nil {
		info.User = u.Username
	}
	if err := writeLock(ctx, b, &info); err != nil {
		return nil, err
	}
	// Two processes may have written at the same moment: look again, and
	// back off if someone else conflicts.
	if c, err := conflict(ctx, b, exclusive, info.key); err != nil || c != nil {
		_ = b.Delete(ctx, info.key)
		if err != nil {
			return nil, err
		}
		return nil, &LockedError{Holder: *c}
	}
	l := &Lock{b: b, info: info, stop: make(chan struct{}), done: make(chan struct{}), lost: make(chan struct{})}
	go l.refresh()
	return l, nil
}

func writeLock(ctx context.Context, b *blob.Bucket, info *LockInfo) error {
	data, err := json.Marshal(info)
	if err != nil {
		return err
	}
	key := "locks/" + NewRandomID().String()
	if err := writeNew(ctx, b, key, data); err != nil {
		return err
	}
	info.key = key
	return nil
}

func (l *Lock) refresh() {
	defer close(l.done)
	t := time.NewTicker(LockRefresh)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
			if !l.renew() {
				close(l.lost)
				return
			}
		}
	}
}

// renew writes a lock with a fresh lease and deletes the old one. On
// failure the old lease stays and the next tick tries again; it reports
// false once the lease would end before that next try.
func (l *Lock) renew() bool {
	ctx, cancel := context.WithTimeout(context.Background(), LockRefresh)
	defer cancel()
	l.mu.Lock()
	defer l.mu.Unlock()
	next := l.info
	next.Expires = time.Now().Add(LockLease).UTC()
	if err := writeLock(ctx, l.b, &next); err != nil {
		return time.Now().Add(LockRefresh).Before(l.info.Expires)
	}
	old := l.info.key
	l.info = next
	_ = l.b.Delete(ctx, old)
	return true
}

// Unlock stops the refresh and removes the lock object.
func (l *Lock) Unlock(ctx context.Context) error {
	if l == nil {
		return nil
	}
	l.stopMu.Do(func() { close(l.stop) })
	<-l.done
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.b.Delete(ctx, l.info.key); err != nil && gcerrors.Code(err) != gcerrors.NotFound {
		return fmt.Errorf("delete %s: %w", l.info.key, err)
	}
	return nil
}

// Key returns the object name of the lock (for tests and messages).
func (l *Lock) Key() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.info.key
}
