package repo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/user"
	"strings"
	"sync"
	"syscall"
	"time"

	"gocloud.dev/blob"
	"gocloud.dev/gcerrors"

	"github.com/lifeboat-backup/lifeboat/engine/snapshot"
)

// Locks are leases (docs/reliability.md, "The lock protocol"). locks/<id>
// holds plain JSON (no secrets). The holder writes a new lock object every
// LockRefresh and deletes the old one. Whether a lease has run out is
// judged on the storage's clock: another process calls a lock stale when
// the storage time since the lock object was written (its ModTime, against
// the ModTime of the caller's own lock object written just before) exceeds
// the lease the holder declared. Clocks of hosts never meet, so clock skew
// between hosts cannot make a live lock look stale.
//
// The holder judges its own lease on its local monotonic clock from the
// moment it began the last write that succeeded, minus a margin: it gives
// up (the lock is lost) before anybody else may call it stale. A lease
// that ran out is lost for good and never renewed, even when the holder
// wakes up again (a stalled VM, SIGSTOP): something may have been removed
// under it. Work that must not outlive the lease (saving a snapshot,
// deleting packs) calls Confirm first, and a snapshot is confirmed again
// after it was written.
//
// A lock of a process on this host, in the same PID namespace of the same
// boot, whose process is gone is stale at once, so a crashed backup never
// blocks the next night's run. Read-only listings take no lock at all.
var (
	LockLease   = leaseFromEnv()
	LockRefresh = LockLease / 5
)

// leaseFromEnv reads LIFEBOAT_TEST_LOCK_LEASE (a Go duration), which tests
// and the torture harness use to see leases run out in seconds.
func leaseFromEnv() time.Duration {
	if d, err := time.ParseDuration(os.Getenv("LIFEBOAT_TEST_LOCK_LEASE")); err == nil && d > 0 {
		return d
	}
	return 5 * time.Minute
}

// LockInfo is the content of a lock object.
type LockInfo struct {
	Exclusive bool      `json:"exclusive"`
	Host      string    `json:"host"`
	PID       int       `json:"pid"`
	User      string    `json:"user,omitempty"`
	Purpose   string    `json:"purpose,omitempty"`
	Created   time.Time `json:"created"`
	Expires   time.Time `json:"expires"` // informative: staleness is judged on the storage's clock
	// LeaseSeconds is the lease the holder keeps; others call the lock
	// stale once the object is older than that on the storage's clock.
	LeaseSeconds float64 `json:"lease_seconds,omitempty"`
	// BootID and PIDNamespace say where PID lives: only a process of the
	// same host, boot and PID namespace may judge it gone.
	BootID       string `json:"boot_id,omitempty"`
	PIDNamespace string `json:"pid_namespace,omitempty"`
	// Maintenance marks a prune's lock: shared with writers, exclusive
	// among prunes (docs/repository.md, "Garbage collection beside writers").
	Maintenance bool `json:"maintenance,omitempty"`
	// Protocol 2: the holder loaded the index together with prune's marks
	// after its first lock object was written, and never deduplicates
	// against a marked pack. Locks without it (older clients, holders that
	// did not load marks) hold back every deletion of marked packs.
	Protocol int `json:"protocol,omitempty"`
	// Since is the storage's time of the holder's first lock object, carried
	// in the objects that refresh it (zero in the first object itself: its
	// own ModTime is that time).
	Since time.Time `json:"since,omitzero"`

	key     string
	modTime time.Time // the storage's time of the object's write
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

// ErrLockLost: the lease ran out without a successful refresh (or the lock
// object was removed), so other processes may treat the lock as stale;
// work under it must stop, and nothing may be saved.
var ErrLockLost = errors.New("repository lock lost: its lease ran out (the process stalled or storage was unreachable) or the lock was removed")

// Lock is a held lock; Unlock releases it.
type Lock struct {
	b      *blob.Bucket
	mu     sync.Mutex
	info   LockInfo
	lastOK time.Time // local clock: when the write of the current object began
	stop   chan struct{}
	done   chan struct{}
	lost   chan struct{}
	stopMu sync.Once
	lostMu sync.Once
	// companion is a lock of this same process whose work is done (the
	// shared lock of a policy run that prunes after its backups): others
	// does not count it.
	companion *Lock
	// keys are the lock's recent object names, oldest first, the current
	// one last; gen counts the objects it has had (the current one's
	// number). A listing may show any object that was current while it
	// ran, not only the first or the last.
	keys []string
	gen  int
}

// keepKeys bounds Lock.keys: refreshes during one listing of the locks.
const keepKeys = 64

// keepsPrunesOut reports whether l excludes other prunes.
func (l *Lock) keepsPrunesOut() bool {
	if l == nil {
		return false
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.info.Exclusive || l.info.Maintenance
}

// Lost is closed when the lock is found lost.
func (l *Lock) Lost() <-chan struct{} { return l.lost }

// origin identifies where a PID is meaningful.
type origin struct{ host, boot, pidns string }

func thisOrigin() origin {
	o := origin{host: "unknown"}
	if h, err := os.Hostname(); err == nil {
		o.host = h
	}
	if b, err := os.ReadFile("/proc/sys/kernel/random/boot_id"); err == nil {
		o.boot = strings.TrimSpace(string(b))
	}
	if ns, err := os.Readlink("/proc/self/ns/pid"); err == nil {
		o.pidns = ns
	}
	return o
}

// lease is the lease the holder declared (LockLease for old lock objects).
func (l LockInfo) lease() time.Duration {
	if l.LeaseSeconds > 0 {
		return time.Duration(l.LeaseSeconds * float64(time.Second))
	}
	return LockLease
}

// stale reports whether a lock can be removed: written longer ago than
// its lease on the storage's clock (now is the storage's time), or held by
// a process of this host, boot and PID namespace that no longer runs.
func (l LockInfo) stale(now time.Time, here origin) bool {
	if !l.modTime.IsZero() && now.Sub(l.modTime) > l.lease() {
		return true
	}
	if l.PID > 0 && l.Host == here.host && here.boot != "" && l.BootID == here.boot &&
		here.pidns != "" && l.PIDNamespace == here.pidns {
		if err := syscall.Kill(l.PID, 0); errors.Is(err, syscall.ESRCH) {
			return true
		}
	}
	return false
}

// ListLocks returns the locks present.
func ListLocks(ctx context.Context, b *blob.Bucket) ([]LockInfo, error) {
	locks, _, err := listLocks(ctx, b)
	return locks, err
}

// lockClock holds the storage's modification time of every lock object a
// listing named, including those released before they could be read: a
// refresh replaces its object (write the new one, delete the old) while a
// slow listing reads the others, and the old object's listed time still
// tells the storage's clock.
type lockClock map[string]time.Time

// listLocks returns the locks present and the listed objects' times.
func listLocks(ctx context.Context, b *blob.Bucket) ([]LockInfo, lockClock, error) {
	var locks []LockInfo
	clock := lockClock{}
	it := b.List(&blob.ListOptions{Prefix: "locks/"})
	for {
		obj, err := it.Next(ctx)
		if err != nil {
			if err == io.EOF {
				return locks, clock, nil
			}
			return nil, nil, fmt.Errorf("list locks: %w", err)
		}
		clock[obj.Key] = obj.ModTime
		data, err := b.ReadAll(ctx, obj.Key)
		if err != nil {
			if gcerrors.Code(err) == gcerrors.NotFound {
				continue // released meanwhile
			}
			return nil, nil, fmt.Errorf("read %s: %w", obj.Key, err)
		}
		var li LockInfo
		if err := json.Unmarshal(data, &li); err != nil {
			// An unreadable lock blocks like an exclusive one until its
			// object is older than the default lease.
			li = LockInfo{Exclusive: true, Host: "?", Purpose: "unreadable lock object " + obj.Key}
		}
		li.key, li.modTime = obj.Key, obj.ModTime
		locks = append(locks, li)
	}
}

// storageNow returns the storage's time of the lock object self, as listed.
func (c lockClock) storageNow(self string) (time.Time, bool) {
	t, ok := c[self]
	return t, ok && !t.IsZero()
}

// latest returns the newest listed time of the objects named in keys.
func (c lockClock) latest(keys []string) (time.Time, bool) {
	var now time.Time
	for _, k := range keys {
		if t, ok := c.storageNow(k); ok && t.After(now) {
			now = t
		}
	}
	return now, !now.IsZero()
}

// RemoveStaleLocks deletes stale locks (all locks with all=true) and returns
// how many it removed. To read the storage's clock it writes a shared lock
// of its own for the moment.
func RemoveStaleLocks(ctx context.Context, b *blob.Bucket, all bool) (int, error) {
	probe := newLockInfo(false, "unlock")
	if err := writeLock(ctx, b, &probe); err != nil {
		return 0, err
	}
	defer b.Delete(context.WithoutCancel(ctx), probe.key)
	locks, clock, err := listLocks(ctx, b)
	if err != nil {
		return 0, err
	}
	now, ok := clock.storageNow(probe.key)
	if !ok && !all {
		return 0, fmt.Errorf("list locks: %s not listed, cannot read the storage's clock", probe.key)
	}
	n := 0
	here := thisOrigin()
	for _, l := range locks {
		if l.key == probe.key {
			continue
		}
		if all || l.stale(now, here) {
			if err := b.Delete(ctx, l.key); err != nil && gcerrors.Code(err) != gcerrors.NotFound {
				return n, fmt.Errorf("delete %s: %w", l.key, err)
			}
			n++
		}
	}
	return n, nil
}

// conflict returns a live lock that conflicts with taking one of the given
// kind, skipping self (already written), and removes stale ones on the way.
// It also returns the storage's time of self, when listed.
func conflict(ctx context.Context, b *blob.Bucket, self LockInfo) (*LockInfo, time.Time, error) {
	locks, clock, err := listLocks(ctx, b)
	if err != nil {
		return nil, time.Time{}, err
	}
	now, ok := clock.storageNow(self.key)
	here := thisOrigin()
	for _, l := range locks {
		if l.key == self.key {
			continue
		}
		if ok && l.stale(now, here) {
			_ = b.Delete(ctx, l.key)
			continue
		}
		if self.Exclusive || l.Exclusive || (self.Maintenance && l.Maintenance) {
			return &l, time.Time{}, nil
		}
	}
	if !ok {
		now = time.Time{}
	}
	return nil, now, nil
}

// AcquireLock takes a shared or exclusive lock, waiting up to wait for a
// conflicting lock to go away. The lease is refreshed in the background
// until Unlock.
func AcquireLock(ctx context.Context, b *blob.Bucket, exclusive bool, purpose string, wait time.Duration) (*Lock, error) {
	return acquireLock(ctx, b, lockKind{exclusive: exclusive}, purpose, wait)
}

// lockKind says what a lock allows: exclusive (nothing beside it),
// maintenance (a prune: writers beside it, no other prune) and whether the
// holder follows the marks protocol (Protocol 2, Repository.Lock only).
type lockKind struct{ exclusive, maintenance, marks bool }

func acquireLock(ctx context.Context, b *blob.Bucket, kind lockKind, purpose string, wait time.Duration) (*Lock, error) {
	deadline := time.Now().Add(wait)
	for try := 0; ; try++ {
		l, err := tryLock(ctx, b, kind, purpose)
		if err == nil || !IsLocked(err) || time.Now().After(deadline) {
			return l, err
		}
		// Two lockers that write at the same moment both back off: wait
		// a little differently each time, so one of them wins next.
		pause := min(5*time.Second, (200*time.Millisecond+rand.N(time.Second))<<min(try, 4))
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(min(pause, time.Until(deadline)+10*time.Millisecond)):
		}
	}
}

func newLockInfo(exclusive bool, purpose string) LockInfo {
	now, here := time.Now(), thisOrigin()
	info := LockInfo{Exclusive: exclusive, Host: here.host, PID: os.Getpid(), Purpose: purpose,
		Created: now.UTC(), Expires: now.Add(LockLease).UTC(), LeaseSeconds: LockLease.Seconds(),
		BootID: here.boot, PIDNamespace: here.pidns}
	if u, err := user.Current(); err == nil {
		info.User = u.Username
	}
	return info
}

// tryLock writes a lock object first and then looks for conflicting ones
// (its own object's storage time is the clock stale locks are judged by);
// on a conflict it removes its object again.
func tryLock(ctx context.Context, b *blob.Bucket, kind lockKind, purpose string) (*Lock, error) {
	info := newLockInfo(kind.exclusive, purpose)
	info.Maintenance = kind.maintenance
	if kind.marks {
		info.Protocol = 2
	}
	start := time.Now()
	if err := writeLock(ctx, b, &info); err != nil {
		return nil, err
	}
	c, since, err := conflict(ctx, b, info)
	if err != nil || c != nil {
		_ = b.Delete(context.WithoutCancel(ctx), info.key)
		if err != nil {
			return nil, err
		}
		return nil, &LockedError{Holder: *c}
	}
	// The refreshed objects carry the first one's storage time; unknown
	// (the listing did not show it yet), they claim no protocol at all.
	if info.Since = since; since.IsZero() {
		info.Protocol = 0
	}
	l := &Lock{b: b, info: info, lastOK: start, stop: make(chan struct{}), done: make(chan struct{}), lost: make(chan struct{}),
		keys: []string{info.key}}
	go l.refresh()
	return l, nil
}

func writeLock(ctx context.Context, b *blob.Bucket, info *LockInfo) error {
	data, err := json.Marshal(info)
	if err != nil {
		return err
	}
	key := "locks/" + snapshot.NewRandomID().String()
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
				l.markLost()
				return
			}
		}
	}
}

func (l *Lock) markLost() { l.lostMu.Do(func() { close(l.lost) }) }

// heldUntil is the local time until which the holder may rely on the
// lease: a fifth of the lease before anybody else may call it stale.
func (l *Lock) heldUntil() time.Time {
	lease := l.info.lease()
	return l.lastOK.Add(lease - lease/5)
}

// renew writes a lock with a fresh lease and deletes the old one. A lease
// that ran out is not renewed (it is lost: another process may have
// removed it and acted), nor is a lock whose object is gone. A failed
// write keeps the old lease and the next tick tries again; renew reports
// false once the lease would end before that next try.
func (l *Lock) renew() bool {
	ctx, cancel := context.WithTimeout(context.Background(), LockRefresh)
	defer cancel()
	l.mu.Lock()
	defer l.mu.Unlock()
	if time.Now().After(l.heldUntil()) {
		return false
	}
	if ok, err := l.b.Exists(ctx, l.info.key); err == nil && !ok {
		return false
	}
	next := l.info
	start := time.Now()
	next.Expires = start.Add(l.info.lease()).UTC()
	if err := writeLock(ctx, l.b, &next); err != nil {
		return time.Now().Add(LockRefresh).Before(l.heldUntil())
	}
	if time.Now().After(l.heldUntil()) {
		// The write took so long that the old lease ran out meanwhile.
		_ = l.b.Delete(ctx, next.key)
		return false
	}
	old := l.info.key
	l.info, l.lastOK = next, start
	l.gen++
	if l.keys = append(l.keys, next.key); len(l.keys) > keepKeys {
		l.keys = l.keys[1:]
	}
	_ = l.b.Delete(ctx, old)
	return true
}

// Confirm returns ErrLockLost unless the lease is still held: its local
// time has not run out, and its lock object still exists. Call it right
// before work that must happen under the lock.
func (l *Lock) Confirm(ctx context.Context) error {
	if l == nil {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if time.Now().After(l.heldUntil()) {
		l.markLost()
		return ErrLockLost
	}
	ok, err := l.b.Exists(ctx, l.info.key)
	if err != nil {
		return fmt.Errorf("confirm lock %s: %w", l.info.key, err)
	}
	if !ok || time.Now().After(l.heldUntil()) {
		l.markLost()
		return ErrLockLost
	}
	return nil
}

// Held reports, without touching storage, whether the lease has not run
// out on the local clock: a cheap check before each destructive call.
func (l *Lock) Held() bool {
	if l == nil {
		return true
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return !time.Now().After(l.heldUntil())
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

// since is the storage's time of the holder's first lock object.
func (l LockInfo) since() time.Time {
	if l.Since.IsZero() {
		return l.modTime
	}
	return l.Since
}

// others lists the live locks other than l (all locks when l is nil, none
// judged stale: without a lock object of our own there is no storage
// clock to judge by), removing stale ones on the way.
func (l *Lock) others(ctx context.Context, b *blob.Bucket) ([]LockInfo, error) {
	if l == nil {
		return ListLocks(ctx, b)
	}
	var locks []LockInfo
	var now time.Time
	var own, comp []string
	for try := 0; ; try++ {
		// The refresh may replace our object (more than once) during the
		// listing: any object of ours it shows tells the storage's time,
		// even one deleted before it could be read; when none was
		// listed, list again.
		g, cg := l.generation(), l.companion.generation()
		var clock lockClock
		var err error
		if locks, clock, err = listLocks(ctx, b); err != nil {
			return nil, err
		}
		own, comp = l.keysSince(g), l.companion.keysSince(cg)
		var ok bool
		if now, ok = clock.latest(own); ok {
			break
		}
		// Not listed because it is gone: the lease ran out (a stalled
		// refresh) and another process removed it as stale.
		if err := l.Confirm(ctx); err != nil {
			return nil, err
		}
		if try == 2 {
			return nil, fmt.Errorf("list locks: own lock %s not listed, cannot read the storage's clock", own[len(own)-1])
		}
	}
	skip := make(map[string]bool, len(own)+len(comp))
	for _, k := range append(own, comp...) {
		skip[k] = true
	}
	here := thisOrigin()
	var live []LockInfo
	for _, o := range locks {
		switch {
		case skip[o.key]:
		case o.stale(now, here):
			_ = b.Delete(ctx, o.key)
		default:
			live = append(live, o)
		}
	}
	return live, nil
}

// generation returns the number of the lock's current object (0 for no
// lock).
func (l *Lock) generation() int {
	if l == nil {
		return 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.gen
}

// keysSince returns the lock's object names from generation g on, as far
// as they are kept (none for no lock).
func (l *Lock) keysSince(g int) []string {
	if l == nil {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	first := l.gen - len(l.keys) + 1 // generation of keys[0]
	return append([]string(nil), l.keys[max(g-first, 0):]...)
}

// Key returns the object name of the lock (for tests and messages).
func (l *Lock) Key() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.info.key
}
