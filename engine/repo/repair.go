package repo

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"

	"gocloud.dev/gcerrors"

	"github.com/lifeboat-backup/lifeboat/engine/snapshot"
)

// RepairOptions tune Repair.
type RepairOptions struct {
	// ForgetDamaged removes the snapshots that reference data no pack
	// holds any more (and manifests that cannot be read). Without it they
	// are only listed.
	ForgetDamaged bool
	// Progress, if set, is called after each pack is read.
	Progress func(done, total int)
}

// RepairResult says what Repair found and did.
type RepairResult struct {
	PacksRead        int      `json:"packs_read"`
	PacksMissing     []string `json:"packs_missing,omitempty"`     // indexed, but not in storage
	PacksDamaged     []string `json:"packs_damaged,omitempty"`     // unreadable, or some blobs did not verify
	PacksRecovered   int      `json:"packs_recovered"`             // in no readable index; their headers are indexed now
	BlobsDropped     int      `json:"blobs_dropped"`               // index entries of lost or damaged blobs removed
	IndexFilesMerged int      `json:"index_files_merged"`          // old index files replaced by the rebuilt index
	IndexFilesBad    int      `json:"index_files_damaged"`         // of those, the ones that could not be decoded
	DamagedSnapshots []string `json:"damaged_snapshots,omitempty"` // reference lost data, or unreadable
	SnapshotsRemoved []string `json:"snapshots_removed,omitempty"` // with ForgetDamaged
}

// Repair rebuilds the index from what the packs really hold, as restic's
// `repair index` and `repair snapshots --forget` do: every pack in storage
// is read, decrypted and its blobs verified; the new index lists exactly
// the blobs that verify (packs in no readable index are indexed again from
// their headers), then the old index files are removed. Blobs of missing
// or damaged packs are no longer indexed, so the next backup stores again
// whatever its source still has instead of deduplicating against lost
// data. Snapshots that reference lost data are listed, and removed with
// ForgetDamaged. Damaged packs stay in storage, unindexed, until prune
// removes them. It needs the owner identity and an exclusive lock.
func (r *Repository) Repair(ctx context.Context, opts RepairOptions) (*RepairResult, error) {
	if !r.readData {
		return nil, fmt.Errorf("repair reads every pack: %w", ErrNoDataKey)
	}
	res := &RepairResult{}

	// What the readable index files claim.
	indexed := map[snapshot.ID]PackInfo{}
	var indexKeys []string
	err := r.eachIndexFile(ctx, func(key string, ps []PackInfo, err error) error {
		indexKeys = append(indexKeys, key)
		if err != nil {
			res.IndexFilesBad++
			return nil
		}
		for _, p := range ps {
			if _, ok := indexed[p.ID]; !ok {
				indexed[p.ID] = p
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	stored, err := r.storedPacks(ctx)
	if err != nil {
		return nil, err
	}
	oldBlobs := 0
	for id, p := range indexed {
		oldBlobs += len(p.Blobs)
		if _, ok := stored[id]; !ok {
			res.PacksMissing = append(res.PacksMissing, packKey(id))
		}
	}
	slices.Sort(res.PacksMissing)

	// Read every stored pack; keep the blobs that verify.
	ids := make([]snapshot.ID, 0, len(stored))
	for id := range stored {
		ids = append(ids, id)
	}
	slices.SortFunc(ids, func(a, b snapshot.ID) int { return slices.Compare(a[:], b[:]) })
	var good []PackInfo
	newBlobs := 0
	for i, id := range ids {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		p, damaged, err := r.readPack(ctx, id)
		if err != nil {
			return nil, err
		}
		res.PacksRead++
		if opts.Progress != nil {
			opts.Progress(i+1, len(ids))
		}
		if damaged {
			res.PacksDamaged = append(res.PacksDamaged, packKey(id))
		}
		if len(p.Blobs) == 0 {
			continue
		}
		if _, ok := indexed[id]; !ok {
			res.PacksRecovered++
		}
		good = append(good, p)
		newBlobs += len(p.Blobs)
	}
	res.BlobsDropped = max(0, oldBlobs-newBlobs)

	// The new index, then the old files; at every step the index covers
	// every blob that is still there.
	if err := r.lock.Confirm(ctx); err != nil {
		return nil, err
	}
	idx := NewIndex()
	for start := 0; start < len(good); start += 4096 {
		batch := good[start:min(start+4096, len(good))]
		if err := r.writeIndex(ctx, batch); err != nil {
			return nil, err
		}
		for _, p := range batch {
			idx.AddPack(p)
		}
	}
	for _, k := range indexKeys {
		if !r.lock.Held() {
			return nil, fmt.Errorf("repair stopped before deleting %s: %w", k, ErrLockLost)
		}
		if err := r.b.Delete(ctx, k); err != nil {
			return nil, fmt.Errorf("delete %s: %w", k, err)
		}
	}
	res.IndexFilesMerged = len(indexKeys)
	r.idx, r.badIndexes = idx, nil

	// Snapshots that lost data.
	snaps, err := r.SnapshotIDs(ctx)
	if err != nil {
		return nil, err
	}
	for _, id := range snaps {
		ok, err := r.snapshotComplete(ctx, id)
		if err != nil {
			return nil, err
		}
		if ok {
			continue
		}
		res.DamagedSnapshots = append(res.DamagedSnapshots, id.String())
		if opts.ForgetDamaged {
			if err := r.DeleteSnapshot(ctx, id); err != nil {
				return nil, err
			}
			res.SnapshotsRemoved = append(res.SnapshotsRemoved, id.String())
		}
	}
	return res, nil
}

// readPack reads a stored pack and returns its PackInfo with the blobs
// that verify; damaged is true when the pack or some blob did not.
// A storage error other than a vanished object is returned as error.
func (r *Repository) readPack(ctx context.Context, id snapshot.ID) (p PackInfo, damaged bool, err error) {
	key := packKey(id)
	data, err := r.b.ReadAll(ctx, key)
	if gcerrors.Code(err) == gcerrors.NotFound {
		return p, true, nil // vanished since the listing: nothing of it is indexed
	}
	if err != nil {
		return p, false, fmt.Errorf("read %s: %w", key, err) // an outage must not empty the index
	}
	p = PackInfo{ID: id, Size: int64(len(data)), Hash: sha256.Sum256(data)}
	plain, entries, err := decodePack(key, data, r.ids)
	if err != nil {
		return p, true, nil
	}
	var buf []byte
	for _, e := range entries {
		if buf, err = r.verifyBlob(plain, e, buf); err != nil {
			damaged = true
			continue
		}
		p.Blobs = append(p.Blobs, e)
	}
	return p, damaged, nil
}

// snapshotComplete reports whether a snapshot's manifest reads and every
// blob it references is indexed.
func (r *Repository) snapshotComplete(ctx context.Context, id snapshot.ID) (bool, error) {
	sn, err := r.LoadSnapshot(ctx, id)
	var ce *CorruptError
	if errors.As(err, &ce) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	for _, t := range sn.Tree {
		if !r.idx.Has(t) {
			return false, nil
		}
	}
	errIncomplete := errors.New("incomplete")
	err = r.EachNode(ctx, sn, func(n *snapshot.Node) error {
		for _, c := range n.Content {
			if !r.idx.Has(c) {
				return errIncomplete
			}
		}
		return nil
	})
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, errIncomplete), errors.As(err, &ce), errors.Is(err, ErrNotFound):
		return false, nil
	}
	return false, err
}
