package repo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"gocloud.dev/blob"

	"github.com/lifeboat-backup/lifeboat/engine/snapshot"
)

// DefaultMaxClockSkew is how far a snapshot's time may lie after the
// storage's time of its manifest before it is flagged as suspect.
const DefaultMaxClockSkew = time.Hour

func snapshotKey(id snapshot.ID) string { return "snapshots/" + id.String() }

// SaveSnapshot stores a manifest. Call it after Flush: only then are all
// blobs it references indexed. Under a lock (Lock) the lease is confirmed
// before the manifest is written and again after: if it ran out in
// between, a prune may have removed blobs the snapshot deduplicated
// against, so the manifest is deleted again and ErrLockLost returned.
func (r *Repository) SaveSnapshot(ctx context.Context, sn *snapshot.Snapshot) (snapshot.ID, error) {
	plain, err := json.Marshal(sn)
	if err != nil {
		return snapshot.ID{}, err
	}
	enc, err := r.sealMeta(plain)
	if err != nil {
		return snapshot.ID{}, err
	}
	if err := r.lock.Confirm(ctx); err != nil {
		return snapshot.ID{}, fmt.Errorf("snapshot not saved: %w", err)
	}
	id := snapshot.NewRandomID()
	key := snapshotKey(id)
	if err := writeNew(ctx, r.b, key, enc); err != nil {
		return snapshot.ID{}, err
	}
	if err := r.lock.Confirm(ctx); err != nil {
		if derr := r.b.Delete(context.WithoutCancel(ctx), key); derr != nil {
			return snapshot.ID{}, fmt.Errorf("snapshot %s may be incomplete and could not be deleted (%v); run `lifeboat check`: %w", id.Short(), derr, err)
		}
		return snapshot.ID{}, fmt.Errorf("snapshot not saved: %w", err)
	}
	sn.ID = id
	return id, nil
}

// LoadSnapshot reads one manifest.
func (r *Repository) LoadSnapshot(ctx context.Context, id snapshot.ID) (*snapshot.Snapshot, error) {
	key := snapshotKey(id)
	plain, err := r.loadMeta(ctx, key)
	if err != nil {
		return nil, err
	}
	var sn snapshot.Snapshot
	if err := json.Unmarshal(plain, &sn); err != nil {
		return nil, corrupt(key, "%v", err)
	}
	sn.ID = id
	return &sn, nil
}

// SnapshotIDs lists the IDs of all snapshots.
func (r *Repository) SnapshotIDs(ctx context.Context) ([]snapshot.ID, error) {
	objs, err := r.listSnapshots(ctx)
	if err != nil {
		return nil, err
	}
	ids := make([]snapshot.ID, 0, len(objs))
	for id := range objs {
		ids = append(ids, id)
	}
	slices.SortFunc(ids, func(a, b snapshot.ID) int { return slices.Compare(a[:], b[:]) })
	return ids, nil
}

// listSnapshots lists the manifests with the storage's time of each.
func (r *Repository) listSnapshots(ctx context.Context) (map[snapshot.ID]time.Time, error) {
	out := map[snapshot.ID]time.Time{}
	err := listObjects(ctx, r.b, "snapshots/", func(obj *blob.ListObject) {
		if id, err := snapshot.ParseID(strings.TrimPrefix(obj.Key, "snapshots/")); err == nil && !obj.IsDir {
			out[id] = obj.ModTime
		}
	})
	return out, err
}

// flagSuspect sets sn.Suspect when its time lies further after written,
// the storage's time of its manifest, than the allowed clock skew.
func (r *Repository) flagSuspect(sn *snapshot.Snapshot, written time.Time) {
	skew := r.maxSkew
	if skew <= 0 {
		skew = DefaultMaxClockSkew
	}
	if !written.IsZero() && sn.Time.After(written.Add(skew)) {
		sn.Suspect = fmt.Sprintf("dated %s, %s after the storage wrote it (%s): a wrong clock or a forged time",
			sn.Time.UTC().Format(time.RFC3339), sn.Time.Sub(written).Round(time.Second), written.UTC().Format(time.RFC3339))
	}
}

// SetMaxClockSkew sets how far a snapshot's time may lie after the
// storage's time of its manifest (default DefaultMaxClockSkew).
func (r *Repository) SetMaxClockSkew(d time.Duration) { r.maxSkew = d }

// Snapshots loads all manifests, oldest first. A manifest that cannot be
// read or decoded (or vanished since the listing) is skipped; the damaged
// ones are reported by DamagedSnapshots until the next call.
func (r *Repository) Snapshots(ctx context.Context) ([]*snapshot.Snapshot, error) {
	objs, err := r.listSnapshots(ctx)
	if err != nil {
		return nil, err
	}
	sns := make([]*snapshot.Snapshot, 0, len(objs))
	var bad []error
	for id, written := range objs {
		sn, err := r.LoadSnapshot(ctx, id)
		var ce *CorruptError
		switch {
		case errors.As(err, &ce):
			bad = append(bad, err)
			continue
		case errors.Is(err, ErrNotFound):
			continue // forgotten meanwhile
		case err != nil:
			return nil, err
		}
		r.flagSuspect(sn, written)
		sns = append(sns, sn)
	}
	slices.SortFunc(sns, func(a, b *snapshot.Snapshot) int {
		if c := a.Time.Compare(b.Time); c != 0 {
			return c
		}
		return slices.Compare(a.ID[:], b.ID[:])
	})
	r.mu.Lock()
	r.badSnapshots = bad
	r.mu.Unlock()
	return sns, nil
}

// DamagedSnapshots lists the manifests the last Snapshots call skipped.
func (r *Repository) DamagedSnapshots() []error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.badSnapshots
}

// FindSnapshot resolves "latest" or a (prefix of a) snapshot ID. With
// "latest", filter restricts the candidates (nil: all); suspect snapshots
// (future times) are never "latest".
func (r *Repository) FindSnapshot(ctx context.Context, ref string, filter func(*snapshot.Snapshot) bool) (*snapshot.Snapshot, error) {
	if ref == "latest" {
		sns, err := r.Snapshots(ctx)
		if err != nil {
			return nil, err
		}
		for i := len(sns) - 1; i >= 0; i-- {
			if sns[i].Suspect == "" && (filter == nil || filter(sns[i])) {
				return sns[i], nil
			}
		}
		return nil, fmt.Errorf("latest snapshot: %w (repository has no matching snapshot)", ErrNotFound)
	}
	id, err := r.ResolveID(ctx, ref)
	if err != nil {
		return nil, err
	}
	return r.LoadSnapshot(ctx, id)
}

// ResolveID finds the snapshot whose ID starts with ref, without reading
// its manifest (so a damaged snapshot can still be forgotten).
func (r *Repository) ResolveID(ctx context.Context, ref string) (snapshot.ID, error) {
	ids, err := r.SnapshotIDs(ctx)
	if err != nil {
		return snapshot.ID{}, err
	}
	var match []snapshot.ID
	for _, id := range ids {
		if strings.HasPrefix(id.String(), strings.ToLower(ref)) {
			match = append(match, id)
		}
	}
	switch {
	case ref == "" || len(match) == 0:
		return snapshot.ID{}, fmt.Errorf("snapshot %q: %w", ref, ErrNotFound)
	case len(match) > 1:
		return snapshot.ID{}, fmt.Errorf("snapshot prefix %q is ambiguous: %d snapshots match", ref, len(match))
	}
	return match[0], nil
}

// DeleteSnapshot removes a manifest (forget). The data it referenced stays
// until prune.
func (r *Repository) DeleteSnapshot(ctx context.Context, id snapshot.ID) error {
	if err := r.b.Delete(ctx, snapshotKey(id)); err != nil {
		return fmt.Errorf("delete %s: %w", snapshotKey(id), err)
	}
	return nil
}

// RewriteSnapshot replaces snapshot id's manifest by what edit makes of
// it (tag --add/--remove/--set) and returns the new ID. The new manifest
// is written first (SaveSnapshot: under the caller's lock, the lease
// confirmed around the write) and only then the old one deleted, so a
// crash between the two leaves both, never neither; the blobs they
// reference are the same, so no prune can take them from either.
func (r *Repository) RewriteSnapshot(ctx context.Context, id snapshot.ID, edit func(*snapshot.Snapshot)) (snapshot.ID, error) {
	sn, err := r.LoadSnapshot(ctx, id)
	if err != nil {
		return snapshot.ID{}, err
	}
	edit(sn)
	nid, err := r.SaveSnapshot(ctx, sn)
	if err != nil {
		return snapshot.ID{}, err
	}
	if err := r.DeleteSnapshot(ctx, id); err != nil {
		return nid, fmt.Errorf("snapshot %s saved as %s, but the old manifest stays (forget it): %w", id.Short(), nid.Short(), err)
	}
	return nid, nil
}

// SaveRecord stores a small record (a run journal entry, say) under
// records/<kind>/<UTC time>-<random>, compressed and encrypted to owner and
// host like every metadata object, and returns its key. Records are not
// snapshots: check, prune and replication leave them alone.
func (r *Repository) SaveRecord(ctx context.Context, kind string, t time.Time, data []byte) (string, error) {
	enc, err := r.sealMeta(data)
	if err != nil {
		return "", err
	}
	key := "records/" + kind + "/" + t.UTC().Format("20060102T150405Z") + "-" + snapshot.NewRandomID().Short()
	return key, writeNew(ctx, r.b, key, enc)
}

// LoadRecord reads a record stored by SaveRecord.
func (r *Repository) LoadRecord(ctx context.Context, key string) ([]byte, error) {
	return r.loadMeta(ctx, key)
}
