package repo

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"gocloud.dev/blob"

	"github.com/lifeboat-backup/lifeboat/engine/snapshot"
	"github.com/lifeboat-backup/lifeboat/engine/storage"
)

// DefaultGrace is how old a pack must be before prune deletes or repacks it.
const DefaultGrace = time.Hour

// The index files prune writes hold at most indexFilePacks packs and
// indexFileBlobs blobs (unless one pack has more): readers decode a file
// whole, so its size bounds their memory.
const (
	indexFilePacks = 4096
	indexFileBlobs = 1 << 17
)

// PruneOptions tune prune.
type PruneOptions struct {
	// Grace keeps every pack younger than this, whether an index lists it
	// or not: a backup may be about to index or reference it (a writer
	// whose lease ran out is still committing; some stores list new
	// objects late). Zero means DefaultGrace; negative means none.
	Grace time.Duration
	// RepackUnused repacks a partly used pack when more than this share of
	// its bytes is unused (default 0.2). Repacking data packs needs the
	// owner identity; without it such packs are kept.
	RepackUnused float64
	// DryRun reports what would happen and changes nothing.
	DryRun bool
}

// PruneResult says what prune did (or would do).
type PruneResult struct {
	Snapshots        int   `json:"snapshots"`
	PacksKept        int   `json:"packs_kept"`
	PacksDeleted     int   `json:"packs_deleted"`
	PacksRepacked    int   `json:"packs_repacked"`
	PacksUnindexed   int   `json:"unindexed_packs_deleted"`
	PartlyUsedKept   int   `json:"partly_used_packs_kept"`
	RecentKept       int   `json:"recent_packs_kept"`
	StagingFiles     int   `json:"staging_files_deleted,omitempty"`
	BlobsRemoved     int   `json:"blobs_removed"`
	BytesFreed       int64 `json:"bytes_freed"`
	IndexFilesMerged int   `json:"index_files_merged"`
	NeedOwnerKey     int   `json:"packs_needing_owner_key,omitempty"`
	// DuplicatesChecked counts used blobs stored more than once whose
	// copies were read to keep one that verifies.
	DuplicatesChecked int `json:"duplicates_checked,omitempty"`
	// Warnings name used blobs no copy of which verified (all copies kept).
	Warnings []string `json:"warnings,omitempty"`
	// PacksMarked counts packs marked as deletion candidates; PacksWaiting
	// those an earlier mark names that wait for older writers to finish.
	PacksMarked  int `json:"packs_marked"`
	PacksWaiting int `json:"packs_waiting"`
}

type packUse struct {
	info       PackInfo
	used       []BlobInfo
	unusedSize int64
}

// Prune removes data no snapshot references, in two phases, beside
// writers (docs/repository.md, "Garbage collection beside writers"): it
// deletes the candidates of ripe marks that are still unneeded, and marks
// what is unneeded now (wholly unused packs, packs it repacked, unindexed
// packs) in a new mark. Mostly unused packs are repacked and the index is
// rewritten. When no other lock is live after the new mark was written, a
// second pass deletes its candidates at once.
//
// Prune needs a lock that keeps other prunes out (LockForPrune, or
// Lock exclusive); it confirms the lease before it deletes anything. Order
// makes it crash-safe: new packs, then the new index, then the new mark,
// then old index files, then the ripe candidates, then their marks; at
// every step the index covers every referenced blob. It refuses to run on
// damaged index files or unreadable snapshots: deleting on partial
// knowledge would lose data.
func (r *Repository) Prune(ctx context.Context, opts PruneOptions) (*PruneResult, error) {
	if opts.Grace == 0 {
		opts.Grace = DefaultGrace
	}
	if opts.RepackUnused == 0 {
		opts.RepackUnused = 0.2
	}
	// Two prunes at once could each index what the other deletes: under a
	// lock that does not keep other prunes out (a policy run's shared lock,
	// or none), prune takes a maintenance lock for itself. The caller's own
	// lock counts as ours: its work before the prune is done.
	if !r.lock.keepsPrunesOut() {
		ml, err := acquireLock(ctx, r.b, lockKind{maintenance: true, marks: true}, "prune", 0)
		if err != nil {
			return nil, fmt.Errorf("prune: %w", err)
		}
		defer ml.Unlock(context.WithoutCancel(ctx))
		ml.companion, r.lock = r.lock, ml
		defer func() { r.lock = ml.companion }()
	}
	res := &PruneResult{}
	marked, err := r.prunePass(ctx, opts, res)
	if err != nil {
		return nil, err
	}
	if marked && !opts.DryRun {
		others, err := r.lock.others(ctx, r.b)
		if err != nil {
			return nil, fmt.Errorf("prune: %w", err)
		}
		if len(others) == 0 {
			if _, err := r.prunePass(ctx, opts, res); err != nil {
				return nil, err
			}
		}
	}
	return res, r.LoadIndex(ctx)
}

// prunePass is one pass of Prune; it adds what it did to res and reports
// whether it wrote a mark.
func (r *Repository) prunePass(ctx context.Context, opts PruneOptions, total *PruneResult) (bool, error) {
	res := &PruneResult{}
	stop := func(err error) (bool, error) {
		return false, fmt.Errorf("prune stopped, nothing deleted: %w", err)
	}

	// 1. The marks, and which are ripe: judged on the locks live now,
	// before the snapshots are listed. A writer that locks later loads the
	// marks with its index.
	marks, err := r.loadMarks(ctx)
	if err != nil {
		return stop(err)
	}
	cand := candidates(marks)
	others, err := r.lock.others(ctx, r.b)
	if err != nil {
		return stop(err)
	}
	var ripeMarks []*mark
	ripe := map[snapshot.ID]bool{}
	// A dry run with nobody else at work reports what a prune deletes in
	// its two passes.
	allRipe := opts.DryRun && len(others) == 0
	for _, m := range marks {
		if m.ripe(others) {
			ripeMarks = append(ripeMarks, m)
			for _, p := range m.Packs {
				ripe[p] = true
			}
		}
	}

	// 2. The snapshots, listed before the index is read: a backup writes
	// its index before its manifest, so every snapshot listed here finds
	// its blobs in the index.
	ids, err := r.SnapshotIDs(ctx)
	if err != nil {
		return stop(err)
	}

	// 3. Every pack of every index file, with all its blobs.
	var indexKeys []string
	var packs []*packUse
	seen := map[snapshot.ID]bool{}
	var damaged []error
	err = r.eachIndexFile(ctx, func(key string, ps []PackInfo, err error) error {
		if err != nil {
			damaged = append(damaged, err)
			return nil
		}
		indexKeys = append(indexKeys, key)
		for _, p := range ps {
			if !seen[p.ID] {
				seen[p.ID] = true
				packs = append(packs, &packUse{info: p})
			}
		}
		return nil
	})
	if err != nil {
		return stop(err)
	}
	if len(damaged) > 0 {
		return stop(fmt.Errorf("%w (and %d damaged index files in all; `lifeboat check --repair` rebuilds the index)", damaged[0], len(damaged)))
	}
	// Deterministic order, copies outside the candidates first: the same
	// repository prunes the same way, and a blob keeps a copy no mark names.
	slices.SortFunc(packs, func(a, b *packUse) int {
		if ca, cb := cand[a.info.ID], cand[b.info.ID]; ca != cb {
			if ca {
				return 1
			}
			return -1
		}
		return bytes.Compare(a.info.ID[:], b.info.ID[:])
	})
	idx := NewIndex()
	for _, p := range packs {
		idx.AddPack(p.info)
	}
	r.idx = idx

	// 4. Everything the listed snapshots reference.
	used, n, err := r.referenced(ctx, ids)
	if err != nil {
		return stop(err)
	}
	res.Snapshots = n
	for id := range used {
		if !r.idx.Has(id) {
			return stop(fmt.Errorf("blob %s is referenced but not indexed (run check)", id))
		}
	}

	// 5. Keep one copy of each used blob: among several, one that reads
	// back and verifies (a host can write an index that claims a blob in a
	// pack of garbage; bit rot hits one copy); without a verified copy, all.
	keepers, err := r.chooseCopies(ctx, packs, used, res)
	if err != nil {
		return stop(err)
	}
	for _, p := range packs {
		for _, b := range p.info.Blobs {
			if k, ok := keepers[b.ID]; ok && (k.all || k.pack == p.info.ID) {
				p.used = append(p.used, b)
			} else {
				p.unusedSize += int64(b.Length)
			}
		}
	}

	stored, err := r.storedPacks(ctx)
	if err != nil {
		return stop(err)
	}
	cutoff := time.Now().Add(-opts.Grace)
	recent := func(id snapshot.ID) bool {
		sp, ok := stored[id]
		return ok && sp.ModTime.After(cutoff)
	}
	// An unneeded pack is deleted when a ripe mark names it, waits when
	// another mark does, and is marked now otherwise.
	var keepPacks, obsolete []PackInfo
	var newMark []snapshot.ID
	unneeded := func(id snapshot.ID) bool {
		switch {
		case ripe[id] || allRipe:
			return true
		case !cand[id]:
			newMark = append(newMark, id)
			res.PacksMarked++
		default:
			res.PacksWaiting++
		}
		return false
	}
	var repack []*packUse
	for _, p := range packs {
		switch {
		case len(p.used) == len(p.info.Blobs):
			keepPacks = append(keepPacks, p.info)
		case recent(p.info.ID):
			res.RecentKept++
			keepPacks = append(keepPacks, p.info)
		case len(p.used) == 0:
			if unneeded(p.info.ID) {
				obsolete = append(obsolete, p.info)
				res.PacksDeleted++
				res.BlobsRemoved += len(p.info.Blobs)
				res.BytesFreed += p.info.Size
			} else {
				keepPacks = append(keepPacks, p.info)
			}
		case float64(p.unusedSize) > opts.RepackUnused*float64(p.info.Size):
			if p.used[0].Type == DataBlob && !r.readData {
				res.NeedOwnerKey++
				res.PartlyUsedKept++
				keepPacks = append(keepPacks, p.info)
				continue
			}
			// Its used blobs are copied now; the pack itself stays
			// indexed, a candidate, until a later pass deletes it.
			repack = append(repack, p)
			res.PacksRepacked++
			keepPacks = append(keepPacks, p.info)
			if allRipe {
				res.PacksDeleted++
				res.BytesFreed += p.unusedSize
			} else if !cand[p.info.ID] || ripe[p.info.ID] {
				newMark = append(newMark, p.info.ID)
				res.PacksMarked++
			}
		default:
			res.PartlyUsedKept++
			keepPacks = append(keepPacks, p.info)
		}
	}
	res.PacksKept = len(keepPacks)

	// Packs no index lists, older than the grace period.
	var unindexed []string
	for id, sp := range stored {
		if seen[id] || sp.ModTime.After(cutoff) {
			continue
		}
		if unneeded(id) {
			unindexed = append(unindexed, sp.Key)
			res.BytesFreed += sp.Size
		}
	}
	slices.Sort(unindexed)
	res.PacksUnindexed = len(unindexed)
	staging, err := r.oldStagingFiles(ctx, cutoff)
	if err != nil {
		return stop(err)
	}
	res.StagingFiles = len(staging)
	defer total.add(res)
	if opts.DryRun {
		return false, nil
	}
	if len(obsolete) == 0 && len(repack) == 0 && len(unindexed) == 0 && len(staging) == 0 &&
		len(newMark) == 0 && len(ripeMarks) == 0 && len(indexKeys) <= 1 {
		return false, nil
	}

	// 6. Repack: copy used blobs as stored (no recompression) into new packs.
	for _, p := range repack {
		plain, _, err := readWholePack(ctx, r.b, p.info.ID, r.ids, &p.info.Hash)
		if err != nil {
			r.Abort()
			return false, err
		}
		for _, b := range p.used {
			if err := r.store(ctx, b.Type, b.ID, plain[b.Offset:b.Offset+b.Length], int(b.RawLength), b.Compressed); err != nil {
				r.Abort()
				return false, err
			}
		}
	}
	if err := r.Flush(ctx); err != nil {
		return false, err
	}

	// 7. One index for everything kept, the new mark, then drop the old
	// index files. From here on objects are deleted: only under a lease
	// still held.
	if err := r.lock.Confirm(ctx); err != nil {
		return stop(err)
	}
	for len(keepPacks) > 0 {
		n, blobs := 0, 0
		for n < len(keepPacks) && n < indexFilePacks && (n == 0 || blobs+len(keepPacks[n].Blobs) <= indexFileBlobs) {
			blobs += len(keepPacks[n].Blobs)
			n++
		}
		if err := r.writeIndex(ctx, keepPacks[:n]); err != nil {
			return false, err
		}
		keepPacks = keepPacks[n:]
	}
	if len(newMark) > 0 {
		if err := r.writeMark(ctx, newMark); err != nil {
			return false, err
		}
	}
	if err := r.lock.Confirm(ctx); err != nil {
		return false, fmt.Errorf("prune stopped after writing the new index (old index files and packs kept; the next prune finishes): %w", err)
	}
	del := func(key string) error {
		if !r.lock.Held() {
			return fmt.Errorf("prune stopped before deleting %s: %w", key, ErrLockLost)
		}
		if err := r.b.Delete(ctx, key); err != nil && !errors.Is(storage.Wrap(err), storage.ErrNotExist) {
			return fmt.Errorf("delete %s: %w", key, err)
		}
		return nil
	}
	for _, k := range indexKeys {
		if err := del(k); err != nil {
			return false, err
		}
	}
	res.IndexFilesMerged = len(indexKeys)

	// 8. The ripe candidates still unneeded, orphaned staging files, then
	// the ripe marks (what they named is deleted, used again, or in the
	// new mark).
	for _, p := range obsolete {
		if err := del(packKey(p.ID)); err != nil {
			return false, err
		}
	}
	for _, k := range append(unindexed, staging...) {
		if err := del(k); err != nil {
			return false, err
		}
	}
	for _, m := range ripeMarks {
		if err := del(m.key); err != nil {
			return false, err
		}
	}
	return len(newMark) > 0, nil
}

// add counts what a pass did into the whole prune's result: deletions add
// up, the state of the repository is the last pass's.
func (t *PruneResult) add(p *PruneResult) {
	t.Snapshots, t.PacksKept, t.PartlyUsedKept, t.RecentKept = p.Snapshots, p.PacksKept, p.PartlyUsedKept, p.RecentKept
	t.NeedOwnerKey, t.Warnings, t.PacksWaiting = p.NeedOwnerKey, p.Warnings, p.PacksWaiting
	t.PacksDeleted += p.PacksDeleted
	t.PacksRepacked += p.PacksRepacked
	t.PacksUnindexed += p.PacksUnindexed
	t.StagingFiles += p.StagingFiles
	t.BlobsRemoved += p.BlobsRemoved
	t.BytesFreed += p.BytesFreed
	t.IndexFilesMerged += p.IndexFilesMerged
	t.DuplicatesChecked += p.DuplicatesChecked
	t.PacksMarked += p.PacksMarked
}

// oldStagingFiles lists the staging files (file:// only) that killed
// writers left in storage.TempDir before cutoff.
func (r *Repository) oldStagingFiles(ctx context.Context, cutoff time.Time) ([]string, error) {
	var keys []string
	it := r.b.List(&blob.ListOptions{Prefix: storage.TempDir + "/"})
	for {
		obj, err := it.Next(ctx)
		if err == io.EOF {
			return keys, nil
		}
		if err != nil {
			return nil, fmt.Errorf("list %s/: %w", storage.TempDir, err)
		}
		if !obj.IsDir && storage.IsTempKey(obj.Key) && obj.ModTime.Before(cutoff) {
			keys = append(keys, obj.Key)
		}
	}
}

// referenced returns every blob the snapshots ids reference, and how many
// of them there still are. A snapshot that cannot be read is an error; one
// forgotten since the listing is skipped.
func (r *Repository) referenced(ctx context.Context, ids []snapshot.ID) (map[snapshot.ID]bool, int, error) {
	used := map[snapshot.ID]bool{}
	n := 0
	for _, id := range ids {
		sn, err := r.LoadSnapshot(ctx, id)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, 0, err
		}
		n++
		for _, t := range sn.Tree {
			used[t] = true
		}
		err = r.EachNode(ctx, sn, func(n *snapshot.Node) error {
			for _, c := range n.Content {
				used[c] = true
			}
			return nil
		})
		if err != nil {
			return nil, 0, err
		}
	}
	return used, n, nil
}

// keeper says which copy of a used blob prune keeps: the one in pack, or
// all of them.
type keeper struct {
	pack snapshot.ID
	all  bool
}

// chooseCopies picks, for every used blob, the copy to keep. A blob stored
// once keeps that copy. Of several copies (packs in ID order) the first
// that reads back and matches its ID is kept; when none can be read with
// our identity (a host key and data blobs) or none verifies, all stay.
func (r *Repository) chooseCopies(ctx context.Context, packs []*packUse, used map[snapshot.ID]bool, res *PruneResult) (map[snapshot.ID]keeper, error) {
	copies := map[snapshot.ID][]Location{}
	for _, p := range packs {
		for _, b := range p.info.Blobs {
			if used[b.ID] {
				copies[b.ID] = append(copies[b.ID], Location{Pack: p.info.ID, PackSize: p.info.Size, BlobInfo: b})
			}
		}
	}
	keep := make(map[snapshot.ID]keeper, len(copies))
	var buf []byte
	for id, locs := range copies {
		if len(locs) == 1 {
			keep[id] = keeper{pack: locs[0].Pack}
			continue
		}
		res.DuplicatesChecked++
		k := keeper{all: true}
		for _, loc := range locs {
			if loc.Type == DataBlob && !r.readData {
				break // cannot tell the copies apart: keep them all
			}
			var err error
			if buf, err = r.loadAt(ctx, loc, buf[:0]); err == nil {
				k = keeper{pack: loc.Pack}
				break
			}
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
		}
		if k.all && (locs[0].Type == TreeBlob || r.readData) {
			res.Warnings = append(res.Warnings, fmt.Sprintf("blob %s: none of its %d copies verifies; all kept (run check --read-data)", id, len(locs)))
		}
		keep[id] = k
	}
	return keep, nil
}
