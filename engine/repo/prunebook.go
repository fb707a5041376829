package repo

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/lifeboat-backup/lifeboat/engine/snapshot"
)

// Prune's bookkeeping (docs/repository.md, "Prune's memory") is built on
// the compact index, so that it stays bounded as the repository grows: the
// index files are loaded into an Index (sorted entries, spilled to a
// temporary file when large); "referenced" and "kept" are bits over the
// sealed table's positions; what prune needs per pack (blobs, kept blobs,
// unused bytes) are counters from one pass over the table. Blob lists are
// never held whole: a repacked pack's kept blobs come from another pass
// over the table (a bounded batch of packs at a time), the kept packs'
// lists are read again from the index files when the new index is written.

// repackBatchBlobs bounds the kept blobs of the packs repacked together:
// their lists are collected by one pass over the table.
var repackBatchBlobs = 1 << 20

// bitset is a set of table positions.
type bitset []uint64

func newBitset(n int) bitset    { return make(bitset, (n+63)/64) }
func (b bitset) set(i int)      { b[i>>6] |= 1 << (i & 63) }
func (b bitset) has(i int) bool { return b[i>>6]&(1<<(i&63)) != 0 }

// pruneBook is what one prune pass knows about the index it read.
type pruneBook struct {
	x     *Index     // sealed; the positions below are its table's
	packs []PackInfo // the index's packs by number (no blob lists)
	// files are the index files read; file[p] is the one pack p's blob list
	// was taken from (a pack listed twice is taken once).
	files []string
	file  []int
	cand  map[snapshot.ID]bool
	used  bitset // the first copy of each referenced blob
	kept  bitset // every copy prune keeps
	// per pack: blobs listed, blobs kept, bytes of the blobs not kept,
	// whether a kept blob is a data blob
	blobs, keptN []int
	unused       []int64
	keptData     []bool
}

// loadPruneBook reads every index file into a new index (cand's packs
// marked as candidates). Any damaged or vanished index file stops it:
// deleting on partial knowledge would lose data.
func (r *Repository) loadPruneBook(ctx context.Context, cand map[snapshot.ID]bool) (*pruneBook, error) {
	x := NewIndex()
	x.setCandidates(cand)
	var file []int
	var damaged []error
	files, err := r.walkIndexFiles(ctx, x.reserve, func(f int, p PackInfo) {
		if x.addPack(p) {
			file = append(file, f)
		}
	}, func(_ string, err error) { damaged = append(damaged, err) })
	if err != nil {
		return nil, err
	}
	if len(damaged) > 0 {
		return nil, fmt.Errorf("%w (and %d damaged index files in all; `lifeboat check --repair` rebuilds the index)", damaged[0], len(damaged))
	}
	return newPruneBook(x, files, file, cand), nil
}

// newPruneBook seals x (packs added, nothing looked up yet) and sizes the
// bookkeeping for it.
func newPruneBook(x *Index, files []string, file []int, cand map[snapshot.ID]bool) *pruneBook {
	x.seal()
	n, np := x.tab.n, len(x.packs)
	return &pruneBook{x: x, packs: x.Packs(), files: files, file: file, cand: cand,
		used: newBitset(n), kept: newBitset(n),
		blobs: make([]int, np), keptN: make([]int, np), unused: make([]int64, np), keptData: make([]bool, np)}
}

// num returns a pack's number, if the index read lists it.
func (b *pruneBook) num(id snapshot.ID) (uint32, bool) {
	b.x.mu.RLock()
	defer b.x.mu.RUnlock()
	n, ok := b.x.packPos[id]
	return n, ok && int(n) < len(b.packs)
}

// markUsed records that a snapshot references id; false when no index
// file lists it.
func (b *pruneBook) markUsed(id snapshot.ID) bool {
	lo, hi := b.x.tab.search(id)
	if lo == hi {
		return false
	}
	b.used.set(lo)
	return true
}

func (b *pruneBook) location(e *entry) Location {
	p := &b.packs[e.pack()]
	return Location{Pack: p.ID, PackSize: p.Size, BlobInfo: e.info()}
}

// choose keeps one copy of each referenced blob and counts per pack, in
// one pass over the table. A blob stored once keeps that copy. Of several
// copies (in the order of their packs outside the candidates first, then
// by pack ID) the first that verify accepts is kept, with every other copy
// in the same pack; when none can be read (data blobs without readData) or
// none verifies, all stay.
func (b *pruneBook) choose(ctx context.Context, readData bool, verify func(Location) error, res *PruneResult) error {
	var group []entry
	var order []int
	var err error
	settle := func(start int) {
		if len(group) == 0 || err != nil {
			return
		}
		used := b.used.has(start)
		all, found, keepPack := len(group) == 1, false, uint32(0)
		if used && !all {
			res.DuplicatesChecked++
			order = order[:0]
			for i := range group {
				order = append(order, i)
			}
			slices.SortStableFunc(order, func(i, j int) int {
				pi, pj := &b.packs[group[i].pack()], &b.packs[group[j].pack()]
				if ci, cj := b.cand[pi.ID], b.cand[pj.ID]; ci != cj {
					if ci {
						return 1
					}
					return -1
				}
				return slices.Compare(pi.ID[:], pj.ID[:])
			})
			for _, i := range order {
				e := &group[i]
				if e.info().Type == DataBlob && !readData {
					break // cannot tell the copies apart: keep them all
				}
				if verify(b.location(e)) == nil {
					found, keepPack = true, e.pack()
					break
				}
				if ctx.Err() != nil {
					err = ctx.Err()
					return
				}
			}
			if !found {
				all = true
				if first := group[order[0]].info(); first.Type == TreeBlob || readData {
					res.Warnings = append(res.Warnings, fmt.Sprintf("blob %s: none of its %d copies verifies; all kept (run check --read-data)", first.ID, len(group)))
				}
			}
		}
		for i := range group {
			e := &group[i]
			p := e.pack()
			b.blobs[p]++
			if used && (all || p == keepPack) {
				b.kept.set(start + i)
				b.keptN[p]++
				if e.info().Type == DataBlob {
					b.keptData[p] = true
				}
			} else {
				b.unused[p] += int64(e.length)
			}
		}
	}
	pos, start := 0, 0
	b.x.tab.scan(func(e *entry) {
		if len(group) > 0 && group[0].id != e.id {
			settle(start)
			group, start = group[:0], pos
		}
		group = append(group, *e)
		pos++
	})
	settle(start)
	return err
}

// keptBlobs returns the kept blobs of the packs numbered ps, in offset
// order, from one pass over the table.
func (b *pruneBook) keptBlobs(ps []uint32) map[uint32][]BlobInfo {
	out := make(map[uint32][]BlobInfo, len(ps))
	for _, p := range ps {
		out[p] = make([]BlobInfo, 0, b.keptN[p])
	}
	pos := 0
	b.x.tab.scan(func(e *entry) {
		if b.kept.has(pos) {
			if l, ok := out[e.pack()]; ok {
				out[e.pack()] = append(l, e.info())
			}
		}
		pos++
	})
	for _, l := range out {
		slices.SortFunc(l, func(a, b BlobInfo) int { return cmp.Compare(a.Offset, b.Offset) })
	}
	return out
}

// repack copies the kept blobs of the packs numbered ps, as stored (no
// recompression), into new packs, a bounded batch of packs at a time. The
// new packs are indexed by the index files Flush writes; they are not
// added to the index in memory (which would grow with the blobs copied).
func (r *Repository) repack(ctx context.Context, b *pruneBook, ps []uint32) error {
	tracked := r.untracked
	r.untracked = true
	defer func() { r.untracked = tracked }()
	for len(ps) > 0 {
		n, blobs := 0, 0
		for n < len(ps) && (n == 0 || blobs+b.keptN[ps[n]] <= repackBatchBlobs) {
			blobs += b.keptN[ps[n]]
			n++
		}
		used := b.keptBlobs(ps[:n])
		for _, p := range ps[:n] {
			info := &b.packs[p]
			plain, _, err := readWholePack(ctx, r.b, info.ID, r.ids, &info.Hash)
			if err != nil {
				r.Abort()
				return err
			}
			for _, bl := range used[p] {
				if uint64(bl.Offset)+uint64(bl.Length) > uint64(len(plain)) {
					r.Abort()
					return corrupt(packKey(info.ID), "blob %s: outside the pack", bl.ID)
				}
				if err := r.store(ctx, bl.Type, bl.ID, plain[bl.Offset:bl.Offset+bl.Length], int(bl.RawLength), bl.Compressed); err != nil {
					r.Abort()
					return err
				}
			}
		}
		ps = ps[n:]
	}
	return r.Flush(ctx)
}

// writeKeptIndex writes the new index files for the packs numbered in keep
// (want of them): their blob lists are read again, file by file, from the
// index files they were taken from, and written in files of at most
// indexFilePacks packs and indexFileBlobs blobs. An index file that cannot
// be read again, or lists a pack otherwise than before, stops prune before
// anything is deleted.
func (r *Repository) writeKeptIndex(ctx context.Context, b *pruneBook, keep []bool, want int) error {
	var batch []PackInfo
	blobs, written := 0, 0
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		err := r.writeIndex(ctx, batch)
		batch, blobs = batch[:0], 0
		return err
	}
	for f, key := range b.files {
		plain, err := r.loadMeta(ctx, key)
		if err != nil {
			return fmt.Errorf("prune stopped reading %s again, nothing deleted: %w", key, err)
		}
		var werr error // the index file changed, or writing failed
		err = walkIndex(plain, func(p PackInfo) {
			n, ok := b.num(p.ID)
			if werr != nil || !ok || b.file[n] != f || !keep[n] {
				return
			}
			if len(p.Blobs) != b.blobs[n] {
				werr = fmt.Errorf("pack %s listed with %d blobs, %d when prune read it", p.ID.Short(), len(p.Blobs), b.blobs[n])
				return
			}
			if len(batch) > 0 && (len(batch) >= indexFilePacks || blobs+len(p.Blobs) > indexFileBlobs) {
				if werr = flush(); werr != nil {
					return
				}
			}
			p.Blobs = slices.Clone(p.Blobs)
			batch = append(batch, p)
			blobs += len(p.Blobs)
			written++
		})
		if err == nil {
			err = werr
		}
		if err != nil {
			return fmt.Errorf("prune stopped reading %s again, nothing deleted: %w", key, err)
		}
	}
	if err := flush(); err != nil {
		return err
	}
	if written != want {
		return errors.New("prune stopped, nothing deleted: the index files listed fewer kept packs than when prune read them")
	}
	return nil
}
