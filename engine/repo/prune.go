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
	res, err := r.prune(ctx, opts)
	// The index is loaded again (with the marks); the pass's index is let
	// go first, so the two are not held at once.
	r.idx = NewIndex()
	if lerr := r.LoadIndex(ctx); err == nil && lerr != nil {
		return res, lerr
	}
	if err != nil {
		return nil, err
	}
	return res, nil
}

func (r *Repository) prune(ctx context.Context, opts PruneOptions) (*PruneResult, error) {
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
	return res, nil
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

	// 3. Every index file, into the compact index (prunebook.go). The
	// index loaded before is let go first: the two are not held at once.
	r.idx = NewIndex()
	book, err := r.loadPruneBook(ctx, cand)
	if err != nil {
		return stop(err)
	}
	r.idx = book.x

	// 4. Everything the listed snapshots reference.
	n, err := r.referenced(ctx, ids, book)
	if err != nil {
		return stop(err)
	}
	res.Snapshots = n

	// 5. Keep one copy of each used blob: among several, one that reads
	// back and verifies (a host can write an index that claims a blob in a
	// pack of garbage; bit rot hits one copy); without a verified copy, all.
	var buf []byte
	verify := func(loc Location) (err error) {
		buf, err = r.loadAt(ctx, loc, buf[:0])
		return err
	}
	if err := book.choose(ctx, r.readData, verify, res); err != nil {
		return stop(err)
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
	var obsolete []snapshot.ID
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
	// Deterministic order, packs outside the candidates first: the same
	// repository prunes the same way.
	order := make([]uint32, len(book.packs))
	for i := range order {
		order[i] = uint32(i)
	}
	slices.SortFunc(order, func(a, b uint32) int {
		pa, pb := &book.packs[a], &book.packs[b]
		if ca, cb := cand[pa.ID], cand[pb.ID]; ca != cb {
			if ca {
				return 1
			}
			return -1
		}
		return bytes.Compare(pa.ID[:], pb.ID[:])
	})
	keep := make([]bool, len(book.packs))
	var repack []uint32
	for _, pn := range order {
		p := &book.packs[pn]
		keep[pn] = true
		switch kept := book.keptN[pn]; {
		case kept == book.blobs[pn]:
		case recent(p.ID):
			res.RecentKept++
		case kept == 0:
			if unneeded(p.ID) {
				keep[pn] = false
				obsolete = append(obsolete, p.ID)
				res.PacksDeleted++
				res.BlobsRemoved += book.blobs[pn]
				res.BytesFreed += p.Size
			}
		case float64(book.unused[pn]) > opts.RepackUnused*float64(p.Size) && book.keptData[pn] && !r.readData:
			res.NeedOwnerKey++
			res.PartlyUsedKept++
		case float64(book.unused[pn]) > opts.RepackUnused*float64(p.Size):
			// Its used blobs are copied now; the pack itself stays
			// indexed, a candidate, until a later pass deletes it.
			repack = append(repack, pn)
			res.PacksRepacked++
			if allRipe {
				res.PacksDeleted++
				res.BytesFreed += book.unused[pn]
			} else if !cand[p.ID] || ripe[p.ID] {
				newMark = append(newMark, p.ID)
				res.PacksMarked++
			}
		default:
			res.PartlyUsedKept++
		}
		if keep[pn] {
			res.PacksKept++
		}
	}

	// Packs no index lists, older than the grace period.
	var unindexed []string
	for id, sp := range stored {
		if _, indexed := book.num(id); indexed || sp.ModTime.After(cutoff) {
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
		len(newMark) == 0 && len(ripeMarks) == 0 && len(book.files) <= 1 {
		return false, nil
	}

	// 6. Repack: copy used blobs as stored (no recompression) into new packs.
	if err := r.repack(ctx, book, repack); err != nil {
		return false, err
	}

	// 7. One index for everything kept, the new mark, then drop the old
	// index files. From here on objects are deleted: only under a lease
	// still held.
	if err := r.lock.Confirm(ctx); err != nil {
		return stop(err)
	}
	if err := r.writeKeptIndex(ctx, book, keep, res.PacksKept); err != nil {
		return false, err
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
	for _, k := range book.files {
		if err := del(k); err != nil {
			return false, err
		}
	}
	res.IndexFilesMerged = len(book.files)

	// 8. The ripe candidates still unneeded, orphaned staging files, then
	// the ripe marks (what they named is deleted, used again, or in the
	// new mark).
	for _, id := range obsolete {
		if err := del(packKey(id)); err != nil {
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

// referenced records in book every blob the snapshots ids reference, and
// returns how many of them there still are. A snapshot that cannot be
// read, or that references a blob no index file lists, is an error; one
// forgotten since the listing is skipped.
func (r *Repository) referenced(ctx context.Context, ids []snapshot.ID, book *pruneBook) (int, error) {
	n := 0
	use := func(id snapshot.ID) error {
		if !book.markUsed(id) {
			return fmt.Errorf("blob %s is referenced but not indexed (run check)", id)
		}
		return nil
	}
	for _, id := range ids {
		sn, err := r.LoadSnapshot(ctx, id)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return 0, err
		}
		n++
		for _, t := range sn.Tree {
			if err := use(t); err != nil {
				return 0, err
			}
		}
		err = r.EachNode(ctx, sn, func(n *snapshot.Node) error {
			for _, c := range n.Content {
				if err := use(c); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return 0, err
		}
	}
	return n, nil
}
