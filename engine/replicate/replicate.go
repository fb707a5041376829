package replicate

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"runtime"
	"strings"
	"sync"
	"time"

	"gocloud.dev/blob"
	"golang.org/x/sync/errgroup"

	"github.com/lifeboat-backup/lifeboat/engine/logarchive"
	"github.com/lifeboat-backup/lifeboat/engine/repo"
	"github.com/lifeboat-backup/lifeboat/engine/snapshot"
	"github.com/lifeboat-backup/lifeboat/engine/storage"
)

// Options tune a replication run.
type Options struct {
	Workers int // parallel copies; default 2 x GOMAXPROCS (copies wait on the network)
	// VerifyAll re-reads and hashes every pack already in the secondary,
	// not only the ones copied now, and recopies damaged ones.
	VerifyAll bool
	// Progress, if set, is called after each copied object.
	Progress func(p Progress)
	// DeleteAfter keeps objects the primary no longer has this long in
	// the secondary before deleting them (counted from the first run that
	// found them gone). Zero means DefaultDeleteAfter; negative: at once.
	DeleteAfter time.Duration
	// MaxDeletePercent refuses a run that finds more than this percent of
	// the secondary's snapshots newly gone from the primary (and more than
	// one): an emptied primary must not empty its replicas. Zero means
	// DefaultMaxDeletePercent; 100 or more: no limit.
	MaxDeletePercent int
}

// Defaults of Options.
const (
	DefaultDeleteAfter      = 7 * 24 * time.Hour
	DefaultMaxDeletePercent = 50
)

// ErrMassDeletion: the primary lost more of its snapshots at once than a
// replication will follow.
var ErrMassDeletion = errors.New("refusing to replicate deletions")

// Progress counts a running replication.
type Progress struct {
	Objects, ObjectsTotal int
	Bytes, BytesTotal     int64
}

// Result says what a run did.
type Result struct {
	Copied   int   `json:"copied"`
	Bytes    int64 `json:"bytes"`
	Recopied int   `json:"recopied"`         // found damaged in the secondary and copied again
	Deleted  int   `json:"deleted"`          // gone from the primary (forget/prune) longer than DeleteAfter, removed from the secondary
	Pending  int   `json:"pending_deletion"` // gone from the primary, kept in the secondary until DeleteAfter
	// Postponed says why due deletions wait for the next run (a reader
	// holds a lock on the secondary).
	Postponed string `json:"deletions_postponed,omitempty"`
	Snapshots int    `json:"snapshots"`
	// Lag is the age of the newest primary snapshot the secondary lacked
	// when the run started (0: it was up to date).
	Lag time.Duration `json:"lag_ns"`
}

type object struct {
	key  string
	size int64
	hash *[32]byte // known stored hash (packs, from the index); nil: hash the source
}

// Replicate brings dst up to date with the repository src: config and keys,
// then packs (verified against the SHA-256 recorded in the index), then
// index files, then snapshot manifests last, so the secondary never shows a
// snapshot whose data it lacks. Objects gone from the primary are deleted
// from the secondary in the reverse order, only after the copies. An
// interrupted run leaves no half-written object and is simply run again:
// what is there is skipped.
func Replicate(ctx context.Context, src *repo.Repository, dst *blob.Bucket, opts Options) (*Result, error) {
	if opts.Workers <= 0 {
		opts.Workers = 2 * runtime.GOMAXPROCS(0)
	}
	sb := src.Bucket()
	res := &Result{}
	if err := sameRepository(ctx, sb, dst); err != nil {
		return nil, err
	}
	lag, err := Lag(ctx, src, dst)
	if err != nil {
		return nil, err
	}
	res.Lag = lag.Lag

	c := &copier{src: sb, dst: dst, opts: opts, res: res}
	// 1. config and keys
	for _, prefix := range []string{"config", "keys/"} {
		objs, err := listObjects(ctx, sb, prefix)
		if err != nil {
			return nil, err
		}
		if err := c.sync(ctx, objs, prefix); err != nil {
			return nil, err
		}
	}
	// What to copy is fixed first: the snapshots and index files listed
	// now, then the index loaded again, which covers every pack they need
	// (a backup writes its index before its snapshot). A snapshot that a
	// concurrent backup saves later waits for the next run; copied from a
	// listing made after the index load, it would show in the secondary
	// without its packs.
	snaps, err := listObjects(ctx, sb, "snapshots/")
	if err != nil {
		return nil, err
	}
	indexes, err := listObjects(ctx, sb, "index/")
	if err != nil {
		return nil, err
	}
	if err := src.LoadIndex(ctx); err != nil {
		return nil, err
	}
	// 2. packs, verified against the index
	var packs []object
	for _, p := range src.Index().Packs() {
		p := p
		s := p.ID.String()
		packs = append(packs, object{key: "data/" + s[:2] + "/" + s, size: p.Size, hash: &p.Hash})
	}
	if err := c.sync(ctx, packs, "data/"); err != nil {
		return nil, err
	}
	// 3. index files, 4. snapshots
	if err := c.sync(ctx, indexes, "index/"); err != nil {
		return nil, err
	}
	if err := c.sync(ctx, snaps, "snapshots/"); err != nil {
		return nil, err
	}
	res.Snapshots = len(snaps)
	// 5. the log archive (engine/logarchive): write-once segments that
	// stand alone, copied as they are.
	segs, err := listObjects(ctx, sb, logarchive.Prefix)
	if err != nil {
		return nil, err
	}
	if err := c.sync(ctx, segs, logarchive.Prefix); err != nil {
		return nil, err
	}
	if err := c.deletions(ctx); err != nil {
		return res, err
	}
	return res, nil
}

// sameRepository refuses to mix two different repositories.
func sameRepository(ctx context.Context, src, dst *blob.Bucket) error {
	a, err := src.ReadAll(ctx, "config")
	if err != nil {
		return fmt.Errorf("primary config: %w", storage.Wrap(err))
	}
	b, err := dst.ReadAll(ctx, "config")
	if errors.Is(storage.Wrap(err), storage.ErrNotExist) {
		return nil // a new secondary
	}
	if err != nil {
		return fmt.Errorf("secondary config: %w", err)
	}
	if !bytes.Equal(a, b) {
		return errors.New("the secondary holds a different repository (config differs); refusing to replicate into it")
	}
	return nil
}

// LagInfo says how far a secondary is behind its primary.
type LagInfo struct {
	// Lag is the age of the newest primary snapshot the secondary lacks
	// (0: up to date).
	Lag              time.Duration `json:"lag_ns"`
	SnapshotsMissing int           `json:"snapshots_missing"`
	PacksMissing     int           `json:"packs_missing"`
	BytesPending     int64         `json:"bytes_pending"`
	// NewestReplicated is the time of the newest snapshot the secondary has.
	NewestReplicated time.Time `json:"newest_replicated"`
}

// Lag measures how far dst is behind src, from listings only.
func Lag(ctx context.Context, src *repo.Repository, dst *blob.Bucket) (*LagInfo, error) {
	have, err := listObjects(ctx, dst, "snapshots/")
	if err != nil {
		return nil, err
	}
	got := map[string]bool{}
	for _, o := range have {
		got[o.key] = true
	}
	sns, err := src.Snapshots(ctx)
	if err != nil {
		return nil, err
	}
	li := &LagInfo{}
	for i := len(sns) - 1; i >= 0; i-- {
		if !got["snapshots/"+sns[i].ID.String()] {
			li.SnapshotsMissing++
			if li.Lag == 0 {
				li.Lag = time.Since(sns[i].Time)
			}
		} else if li.NewestReplicated.IsZero() {
			li.NewestReplicated = sns[i].Time
		}
	}
	packs, err := listObjects(ctx, dst, "data/")
	if err != nil {
		return nil, err
	}
	size := map[string]int64{}
	for _, o := range packs {
		size[o.key] = o.size
	}
	for _, p := range src.Index().Packs() {
		s := p.ID.String()
		if size["data/"+s[:2]+"/"+s] != p.Size {
			li.PacksMissing++
			li.BytesPending += p.Size
		}
	}
	return li, nil
}

func listObjects(ctx context.Context, b *blob.Bucket, prefix string) ([]object, error) {
	var out []object
	it := b.List(&blob.ListOptions{Prefix: prefix})
	for {
		o, err := it.Next(ctx)
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("list %s: %w", prefix, err)
		}
		if o.IsDir || storage.IsTempKey(o.Key) || (prefix == "config" && o.Key != "config") {
			continue
		}
		out = append(out, object{key: o.Key, size: o.Size})
	}
}

type copier struct {
	src, dst *blob.Bucket
	opts     Options
	res      *Result
	mu       sync.Mutex
	progress Progress
	wanted   map[string]bool
}

// sync copies objs that dst lacks, or holds with another size, or (packs
// with VerifyAll) holds damaged, and remembers them for prune.
func (c *copier) sync(ctx context.Context, objs []object, prefix string) error {
	have, err := listObjects(ctx, c.dst, prefix)
	if err != nil {
		return err
	}
	size := map[string]int64{}
	for _, o := range have {
		size[o.key] = o.size
	}
	if c.wanted == nil {
		c.wanted = map[string]bool{}
	}
	var todo []object
	for _, o := range objs {
		c.wanted[o.key] = true
		s, ok := size[o.key]
		switch {
		case !ok:
			todo = append(todo, o)
		case s != o.size:
			todo = append(todo, o)
			c.res.Recopied++
		case c.opts.VerifyAll && o.hash != nil:
			if h, err := hashObject(ctx, c.dst, o.key); err != nil || h != *o.hash {
				todo = append(todo, o)
				c.res.Recopied++
			}
		}
	}
	c.mu.Lock()
	c.progress.ObjectsTotal += len(todo)
	for _, o := range todo {
		c.progress.BytesTotal += o.size
	}
	c.mu.Unlock()
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(c.opts.Workers)
	for _, o := range todo {
		g.Go(func() error { return c.copy(gctx, o, size) })
	}
	return g.Wait()
}

// copy streams one object, hashing it on the way; the copy is accepted
// only if the secondary then holds exactly the expected bytes.
func (c *copier) copy(ctx context.Context, o object, existing map[string]int64) error {
	if _, ok := existing[o.key]; ok {
		// damaged or truncated: objects are write-once, so remove first
		if err := c.dst.Delete(ctx, o.key); err != nil && !errors.Is(storage.Wrap(err), storage.ErrNotExist) {
			return fmt.Errorf("secondary: delete damaged %s: %w", o.key, err)
		}
	}
	r, err := c.src.NewReader(ctx, o.key, nil)
	if err != nil {
		return fmt.Errorf("primary: read %s: %w", o.key, storage.Wrap(err))
	}
	defer r.Close()
	w, err := storage.NewWriter(ctx, c.dst, o.key)
	if err != nil {
		return fmt.Errorf("secondary: write %s: %w", o.key, err)
	}
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(w, h), r)
	if err != nil {
		w.Abort()
		return fmt.Errorf("copy %s: %w", o.key, err)
	}
	var sum [32]byte
	h.Sum(sum[:0])
	if o.hash != nil && sum != *o.hash {
		w.Abort()
		return &repo.CorruptError{Object: o.key, Err: errors.New("primary copy does not match the hash in the index; not replicated (run check on the primary)")}
	}
	if err := w.Close(); err != nil {
		if errors.Is(err, storage.ErrExist) {
			return nil // a concurrent run copied it
		}
		return fmt.Errorf("secondary: write %s: %w", o.key, err)
	}
	// Verify what the secondary stored.
	got, err := hashObject(ctx, c.dst, o.key)
	if err != nil {
		return fmt.Errorf("secondary: verify %s: %w", o.key, err)
	}
	if got != sum {
		return &repo.CorruptError{Object: "secondary " + o.key, Err: errors.New("stored bytes differ from the bytes sent")}
	}
	c.mu.Lock()
	c.res.Copied++
	c.res.Bytes += n
	c.progress.Objects++
	c.progress.Bytes += n
	p := c.progress
	c.mu.Unlock()
	if c.opts.Progress != nil {
		c.opts.Progress(p)
	}
	return nil
}

// goneKey holds, in the secondary, when each object the primary no longer
// has was first found gone (JSON: key -> RFC 3339 time). It is rewritten
// as a new object each run (storage is write-once) and the old ones
// deleted; replication copies nothing under replication/.
const goneKey = "replication/gone-"

// deletions follows the primary's deletions: objects gone from the
// primary are kept DeleteAfter (from the first run that found them gone),
// then deleted newest layer first (snapshots, index, packs), under an
// exclusive lock on the secondary so no failover or drill reading it sees
// packs vanish. A run that finds too many snapshots newly gone refuses.
func (c *copier) deletions(ctx context.Context) error {
	after := c.opts.DeleteAfter
	if after == 0 {
		after = DefaultDeleteAfter
	}
	maxPct := c.opts.MaxDeletePercent
	if maxPct == 0 {
		maxPct = DefaultMaxDeletePercent
	}
	var gone []object
	secondarySnapshots := 0
	for _, prefix := range []string{"snapshots/", "index/", "data/", logarchive.Prefix} {
		have, err := listObjects(ctx, c.dst, prefix)
		if err != nil {
			return err
		}
		if prefix == "snapshots/" {
			secondarySnapshots = len(have)
		}
		for _, o := range have {
			if c.wanted[o.key] || !strings.HasPrefix(o.key, prefix) {
				continue
			}
			if prefix == "data/" && !c.goneFromPrimary(ctx, o) {
				continue
			}
			gone = append(gone, o)
		}
	}
	seen, oldKeys, err := loadGone(ctx, c.dst)
	if err != nil {
		return err
	}
	newSnaps := 0
	for _, o := range gone {
		if _, ok := seen[o.key]; !ok && strings.HasPrefix(o.key, "snapshots/") {
			newSnaps++
		}
	}
	if maxPct < 100 && newSnaps > 1 && newSnaps*100 > maxPct*secondarySnapshots {
		return fmt.Errorf("%w: %d of the secondary's %d snapshots are gone from the primary since the last run (more than max_delete_percent %d%%): kept; if the primary's deletions are intended, replicate with a higher limit",
			ErrMassDeletion, newSnaps, secondarySnapshots, maxPct)
	}
	now := time.Now().UTC()
	keep := map[string]time.Time{}
	var due []object
	for _, o := range gone {
		first, ok := seen[o.key]
		if !ok {
			first = now
		}
		if after < 0 || now.Sub(first) >= after {
			due = append(due, o)
		} else {
			keep[o.key] = first
		}
	}
	c.res.Pending = len(keep)
	if len(due) > 0 {
		lk, err := repo.AcquireLock(ctx, c.dst, true, "replicate: delete what the primary forgot", 0)
		if repo.IsLocked(err) {
			// A failover or drill reads the secondary: delete next time.
			c.res.Postponed = err.Error()
			for _, o := range due {
				keep[o.key] = seen[o.key]
				if keep[o.key].IsZero() {
					keep[o.key] = now
				}
			}
			c.res.Pending = len(keep)
			return saveGone(ctx, c.dst, keep, oldKeys)
		}
		if err != nil {
			return fmt.Errorf("secondary: %w", err)
		}
		defer lk.Unlock(context.WithoutCancel(ctx))
		for _, o := range due { // in the order listed: snapshots, index, packs
			if !lk.Held() {
				return fmt.Errorf("secondary: delete %s: %w", o.key, repo.ErrLockLost)
			}
			if err := c.dst.Delete(ctx, o.key); err != nil && !errors.Is(storage.Wrap(err), storage.ErrNotExist) {
				return fmt.Errorf("secondary: delete %s: %w", o.key, err)
			}
			c.res.Deleted++
		}
	}
	return saveGone(ctx, c.dst, keep, oldKeys)
}

// loadGone reads the gone-lists of earlier runs (all of them: a run that
// died between writing the new one and deleting the old one left two).
func loadGone(ctx context.Context, b *blob.Bucket) (map[string]time.Time, []string, error) {
	objs, err := listObjects(ctx, b, goneKey)
	if err != nil {
		return nil, nil, err
	}
	seen := map[string]time.Time{}
	var keys []string
	for _, o := range objs {
		keys = append(keys, o.key)
		data, err := b.ReadAll(ctx, o.key)
		if err != nil {
			return nil, nil, fmt.Errorf("secondary: read %s: %w", o.key, storage.Wrap(err))
		}
		var m map[string]time.Time
		if err := json.Unmarshal(data, &m); err != nil {
			continue // unreadable: its objects count as newly gone
		}
		for k, t := range m {
			if old, ok := seen[k]; !ok || t.Before(old) {
				seen[k] = t
			}
		}
	}
	return seen, keys, nil
}

// saveGone writes the new gone-list (if any) and removes the old ones.
func saveGone(ctx context.Context, b *blob.Bucket, keep map[string]time.Time, old []string) error {
	if len(keep) > 0 {
		data, err := json.Marshal(keep)
		if err != nil {
			return err
		}
		key := goneKey + time.Now().UTC().Format("20060102T150405Z") + "-" + snapshot.NewRandomID().Short()
		if err := storage.WriteNew(ctx, b, key, data); err != nil {
			return fmt.Errorf("secondary: write %s: %w", key, err)
		}
	}
	for _, k := range old {
		if err := b.Delete(ctx, k); err != nil && !errors.Is(storage.Wrap(err), storage.ErrNotExist) {
			return fmt.Errorf("secondary: delete %s: %w", k, err)
		}
	}
	return nil
}

// goneFromPrimary reports whether a secondary pack may be deleted: it is
// not in the primary's index and not in the primary's bucket either (a
// pack of a running backup, not yet indexed, stays until it is indexed and
// copied, or pruned on the primary).
func (c *copier) goneFromPrimary(ctx context.Context, o object) bool {
	ok, err := c.src.Exists(ctx, o.key)
	return err == nil && !ok
}

func hashObject(ctx context.Context, b *blob.Bucket, key string) ([32]byte, error) {
	var sum [32]byte
	r, err := b.NewReader(ctx, key, nil)
	if err != nil {
		return sum, storage.Wrap(err)
	}
	defer r.Close()
	h := sha256.New()
	if _, err := io.Copy(h, r); err != nil {
		return sum, err
	}
	h.Sum(sum[:0])
	return sum, nil
}
