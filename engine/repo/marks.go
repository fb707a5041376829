package repo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"gocloud.dev/blob"

	"github.com/lifeboat-backup/lifeboat/engine/snapshot"
)

// Garbage collection beside writers (docs/repository.md): prune deletes
// nothing on the spot. It writes a mark, marks/<random id>, naming the
// packs no snapshot needs (the candidates); a later prune deletes those of
// them still unneeded, once no lock is live whose holder may have seen the
// index without that mark. Everyone who loads the index under a lock
// loads the marks with it: writers store again what only a candidate
// holds, readers read a candidate copy last.

// markPrefix holds the marks.
const markPrefix = "marks/"

// mark is one prune's list of deletion candidates (zstd + age to the
// metadata recipients, like the index).
type mark struct {
	Packs []snapshot.ID `json:"packs"`
	// LeaseSeconds is the lease of the prune that wrote the mark: the
	// mark was visible at most that long after its object's storage time
	// (the writer checked its lease after the write returned).
	LeaseSeconds float64 `json:"lease_seconds"`

	key     string
	modTime time.Time
}

// visibleBy is the storage time by which every process could list the mark.
func (m *mark) visibleBy() time.Time {
	return m.modTime.Add(time.Duration(m.LeaseSeconds * float64(time.Second)))
}

// loadMarks reads every mark. One that vanished meanwhile (a prune
// finished it) is skipped, and so is one that does not decode: no prune
// can delete by it either.
func (r *Repository) loadMarks(ctx context.Context) ([]*mark, error) {
	var marks []*mark
	err := listObjects(ctx, r.b, markPrefix, func(obj *blob.ListObject) {
		if !obj.IsDir {
			marks = append(marks, &mark{key: obj.Key, modTime: obj.ModTime})
		}
	})
	if err != nil {
		return nil, err
	}
	out := marks[:0]
	for _, m := range marks {
		plain, err := r.loadMeta(ctx, m.key)
		var ce *CorruptError
		switch {
		case errors.Is(err, ErrNotFound):
			continue
		case errors.As(err, &ce):
			r.warnings = append(r.warnings, fmt.Sprintf("skipped %v", err))
			continue
		case err != nil:
			return nil, err
		}
		if err := json.Unmarshal(plain, m); err != nil {
			r.warnings = append(r.warnings, fmt.Sprintf("skipped %v", &CorruptError{Object: m.key, Err: err}))
			continue
		}
		out = append(out, m)
	}
	return out, nil
}

// candidates is the union of the marks' packs.
func candidates(marks []*mark) map[snapshot.ID]bool {
	c := map[snapshot.ID]bool{}
	for _, m := range marks {
		for _, p := range m.Packs {
			c[p] = true
		}
	}
	return c
}

// ripe reports whether a mark's candidates may be deleted, given the live
// locks of everybody else: each must be held by a process that loaded the
// marks with the index (Protocol 2) after the mark was visible, so none
// can deduplicate against a candidate.
func (m *mark) ripe(others []LockInfo) bool {
	for _, o := range others {
		if o.Protocol < 2 || !o.since().After(m.visibleBy()) {
			return false
		}
	}
	return true
}

// writeMark stores a mark for packs. The lease must still be held when the
// write returns, as it was when it began: then the mark was visible less
// than a lease after its storage time, which ripe counts on. Otherwise the
// mark is deleted again and prune stops.
func (r *Repository) writeMark(ctx context.Context, packs []snapshot.ID) error {
	slices.SortFunc(packs, func(a, b snapshot.ID) int { return slices.Compare(a[:], b[:]) })
	m := mark{Packs: packs, LeaseSeconds: LockLease.Seconds()}
	if r.lock != nil {
		r.lock.mu.Lock()
		m.LeaseSeconds = r.lock.info.lease().Seconds()
		r.lock.mu.Unlock()
	}
	plain, err := json.Marshal(m)
	if err != nil {
		return err
	}
	sealed, err := r.sealMeta(plain)
	if err != nil {
		return err
	}
	held := r.lock.heldUntilNow()
	key := markPrefix + snapshot.NewRandomID().String()
	if err := writeNew(ctx, r.b, key, sealed); err != nil {
		return fmt.Errorf("write %s: %w", key, err)
	}
	if r.lock != nil && time.Now().After(held) {
		_ = r.b.Delete(context.WithoutCancel(ctx), key)
		return fmt.Errorf("prune stopped after writing %s (deleted again): %w", key, ErrLockLost)
	}
	return nil
}

// heldUntilNow is the local time until which the lease holds as of now.
func (l *Lock) heldUntilNow() time.Time {
	if l == nil {
		return time.Time{}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.heldUntil()
}
