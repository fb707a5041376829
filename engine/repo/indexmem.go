package repo

import (
	"bytes"
	"cmp"
	"slices"
	"sort"
	"sync"

	"github.com/lifeboat-backup/lifeboat/engine/snapshot"
)

// The in-memory index (docs/repository.md, "The index in memory") is
// built for repositories of tens of millions of blobs: every copy of every
// blob is one fixed-size entry (48 bytes, no pointers) in a table sorted by
// blob ID and looked up by binary search; pack IDs are interned as the
// entry's pack number. Entries added while the index is loaded go into a
// builder, which sorts them when the first lookup comes (a large table is
// sorted in runs and merged into a temporary file, indextable.go); packs
// added after that (this process's backup) go into a small map.

// Location is where a blob is stored.
type Location struct {
	Pack     snapshot.ID
	PackSize int64
	BlobInfo
}

// entry is one stored copy of a blob.
type entry struct {
	id               snapshot.ID
	pk               uint32 // pack number (low 28 bits), blob type (bits 28-30), compressed (bit 31)
	off, length, raw uint32
}

const (
	entrySize    = 48
	pkPackBits   = 28
	pkPackMask   = 1<<pkPackBits - 1
	pkCompressed = 1 << 31
	// maxPacks is how many packs one index can hold.
	maxPacks = pkPackMask + 1
)

func makeEntry(pack uint32, b BlobInfo) entry {
	pk := pack | uint32(b.Type&7)<<pkPackBits
	if b.Compressed {
		pk |= pkCompressed
	}
	return entry{id: b.ID, pk: pk, off: b.Offset, length: b.Length, raw: b.RawLength}
}

func (e *entry) pack() uint32 { return e.pk & pkPackMask }

func (e *entry) info() BlobInfo {
	return BlobInfo{Type: BlobType(e.pk >> pkPackBits & 7), ID: e.id, Offset: e.off, Length: e.length,
		RawLength: e.raw, Compressed: e.pk&pkCompressed != 0}
}

// cmpEntry orders by blob ID, then by pack number (the order packs were
// added in), then offset: the copies of a blob are adjacent, in the order
// they were added.
func cmpEntry(a, b *entry) int {
	if c := bytes.Compare(a.id[:], b.id[:]); c != 0 {
		return c
	}
	if c := cmp.Compare(a.pk&pkPackMask, b.pk&pkPackMask); c != 0 {
		return c
	}
	return cmp.Compare(a.off, b.off)
}

// Index maps blob IDs to their packs; safe for concurrent use. It also
// tracks blobs claimed by a running backup but not yet in a finished pack,
// so concurrent savers store each blob once.
//
// A blob stored in several packs (after an interrupted prune, a forged
// index) is looked up at its first copy in the order the packs were added,
// except that a copy outside prune's candidates comes first; the others are
// alternates for readers to fall back on.
type Index struct {
	mu      sync.RWMutex
	packs   []PackInfo // without blob lists
	packPos map[snapshot.ID]uint32

	build *builder // entries added before the first lookup; nil once sealed
	tab   table    // the sorted copies (sealed)
	// recent holds the copies of packs added after the index was sealed
	// (this process's own packs), with counts of what they add.
	recent               map[snapshot.ID][]entry
	recentNew, recentDup int

	inflight map[snapshot.ID]struct{}
	// cand holds the packs prune marked as deletion candidates: a blob
	// whose first location is one of them has no other copy, and writers
	// store it again rather than reference it (Reusable).
	cand map[snapshot.ID]bool
}

// NewIndex returns an empty index.
func NewIndex() *Index {
	return &Index{packPos: map[snapshot.ID]uint32{}, build: &builder{}, recent: map[snapshot.ID][]entry{},
		inflight: map[snapshot.ID]struct{}{}}
}

// setCandidates names the packs prune marked (before any AddPack).
func (x *Index) setCandidates(c map[snapshot.ID]bool) {
	x.mu.Lock()
	x.cand = c
	x.mu.Unlock()
}

func (x *Index) candidate(pack snapshot.ID) bool {
	x.mu.RLock()
	defer x.mu.RUnlock()
	return x.cand[pack]
}

func (x *Index) candPack(n uint32) bool { return len(x.cand) > 0 && x.cand[x.packs[n].ID] }

// rlock read-locks a sealed index (sealing it first if need be).
func (x *Index) rlock() {
	x.mu.RLock()
	if x.build == nil {
		return
	}
	x.mu.RUnlock()
	x.mu.Lock()
	x.sealLocked()
	x.mu.Unlock()
	x.mu.RLock()
}

// seal sorts what was loaded; lookups seal on their own, LoadIndex seals
// at once so that the work is done while loading.
func (x *Index) seal() {
	x.mu.Lock()
	x.sealLocked()
	x.mu.Unlock()
}

func (x *Index) sealLocked() {
	if x.build != nil {
		x.tab = x.build.finish()
		x.build = nil
	}
}

// reserve sizes the builder for index files of this many bytes in all
// (38 to 44 bytes a blob, compressed and encrypted), so that loading does
// not grow the entry slice by doubling (which holds up to three times its
// size at once).
func (x *Index) reserve(indexBytes int64) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.build != nil && len(x.build.buf) == 0 {
		x.build.buf = make([]entry, 0, min(indexBytes/36+64, int64(maxMemEntries)))
	}
}

// AddPack makes a pack's blobs visible.
func (x *Index) AddPack(p PackInfo) { x.addPack(p) }

// addPack is AddPack; false when the pack was known already (its blobs
// are not added again).
func (x *Index) addPack(p PackInfo) bool {
	x.mu.Lock()
	defer x.mu.Unlock()
	if _, ok := x.packPos[p.ID]; ok {
		return false
	}
	if len(x.packs) >= maxPacks {
		panic("index: more than 2^28 packs")
	}
	pos := uint32(len(x.packs))
	x.packs = append(x.packs, PackInfo{ID: p.ID, Size: p.Size, Hash: p.Hash})
	x.packPos[p.ID] = pos
	for _, b := range p.Blobs {
		delete(x.inflight, b.ID)
		e := makeEntry(pos, b)
		if x.build != nil {
			x.build.add(e)
			continue
		}
		n := x.tab.count(b.ID) + len(x.recent[b.ID])
		switch n {
		case 0:
			x.recentNew++
		case 1:
			x.recentDup++
		}
		x.recent[b.ID] = append(x.recent[b.ID], e)
	}
	return true
}

// copies calls fn for each copy of id in order until fn returns false.
func (x *Index) copies(id snapshot.ID, fn func(*entry) bool) {
	lo, hi := x.tab.search(id)
	for i := lo; i < hi; i++ {
		e := x.tab.at(i)
		if !fn(&e) {
			return
		}
	}
	for i := range x.recent[id] {
		if !fn(&x.recent[id][i]) {
			return
		}
	}
}

// primary returns the copy lookups use: the first outside the candidates,
// else the first.
func (x *Index) primary(id snapshot.ID) (entry, bool) {
	var first entry
	found := false
	x.copies(id, func(e *entry) bool {
		if !x.candPack(e.pack()) {
			first, found = *e, true
			return false
		}
		if !found {
			first, found = *e, true
		}
		return true
	})
	return first, found
}

func (x *Index) location(e *entry) Location {
	p := &x.packs[e.pack()]
	return Location{Pack: p.ID, PackSize: p.Size, BlobInfo: e.info()}
}

// Reusable reports whether a writer may reference a blob without storing
// it: it is stored in a pack that prune did not mark for deletion.
func (x *Index) Reusable(id snapshot.ID) bool {
	x.rlock()
	defer x.mu.RUnlock()
	return x.reusable(id)
}

func (x *Index) reusable(id snapshot.ID) bool {
	e, ok := x.primary(id)
	return ok && !x.candPack(e.pack())
}

// Alternates returns the further copies of a blob besides Lookup's.
func (x *Index) Alternates(id snapshot.ID) []Location {
	x.rlock()
	defer x.mu.RUnlock()
	p, ok := x.primary(id)
	if !ok {
		return nil
	}
	var out []Location
	skipped := false
	x.copies(id, func(e *entry) bool {
		if !skipped && *e == p {
			skipped = true // the primary itself (an identical second copy is an alternate)
		} else {
			out = append(out, x.location(e))
		}
		return true
	})
	return out
}

// Has reports whether a blob is stored.
func (x *Index) Has(id snapshot.ID) bool {
	x.rlock()
	defer x.mu.RUnlock()
	return x.tab.count(id) > 0 || len(x.recent[id]) > 0
}

// Lookup returns where a blob is stored.
func (x *Index) Lookup(id snapshot.ID) (Location, bool) {
	x.rlock()
	defer x.mu.RUnlock()
	e, ok := x.primary(id)
	if !ok {
		return Location{}, false
	}
	return x.location(&e), true
}

// claim reports whether the caller should store id: false when the blob is
// stored (outside prune's candidates) or another saver already claimed it.
func (x *Index) claim(id snapshot.ID) bool {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.sealLocked()
	if x.reusable(id) {
		return false
	}
	if _, ok := x.inflight[id]; ok {
		return false
	}
	x.inflight[id] = struct{}{}
	return true
}

// Packs returns the known packs (without blob lists).
func (x *Index) Packs() []PackInfo {
	x.mu.RLock()
	defer x.mu.RUnlock()
	return append([]PackInfo(nil), x.packs...)
}

// Len returns the number of blobs.
func (x *Index) Len() int {
	x.rlock()
	defer x.mu.RUnlock()
	return x.tab.distinct + x.recentNew
}

// Duplicates returns how many blobs are stored more than once.
func (x *Index) Duplicates() int {
	x.rlock()
	defer x.mu.RUnlock()
	return x.tab.dups + x.recentDup
}

// EachCopy calls fn for every stored copy of every blob.
func (x *Index) EachCopy(fn func(Location)) {
	x.rlock()
	defer x.mu.RUnlock()
	x.tab.scan(func(e *entry) { fn(x.location(e)) })
	for _, es := range x.recent {
		for i := range es {
			fn(x.location(&es[i]))
		}
	}
}

// EachCopyOf calls fn for every stored copy of blob id.
func (x *Index) EachCopyOf(id snapshot.ID, fn func(Location)) {
	x.rlock()
	defer x.mu.RUnlock()
	x.copies(id, func(e *entry) bool {
		fn(x.location(e))
		return true
	})
}

// Each calls fn for every blob, at the copy Lookup returns.
func (x *Index) Each(fn func(Location)) {
	x.rlock()
	defer x.mu.RUnlock()
	var group []entry
	flush := func() {
		if len(group) == 0 {
			return
		}
		id := group[0].id
		if len(group) == 1 && len(x.recent[id]) == 0 && !x.candPack(group[0].pack()) {
			fn(x.location(&group[0]))
		} else if p, ok := x.primary(id); ok {
			fn(x.location(&p))
		}
		group = group[:0]
	}
	x.tab.scan(func(e *entry) {
		if len(group) > 0 && group[0].id != e.id {
			flush()
		}
		group = append(group, *e)
	})
	flush()
	for id := range x.recent {
		if x.tab.count(id) > 0 {
			continue // done above
		}
		if p, ok := x.primary(id); ok {
			fn(x.location(&p))
		}
	}
}

// sortEntries sorts a slice of entries (cmpEntry). Blob IDs are keyed
// hashes, evenly spread: a counting pass on the first two bytes puts every
// entry in its bucket, and each small bucket is sorted on its own.
func sortEntries(es []entry) {
	if len(es) < 1<<16 {
		slices.SortFunc(es, func(a, b entry) int { return cmpEntry(&a, &b) })
		return
	}
	var start [1<<16 + 1]int
	for i := range es {
		start[int(es[i].id[0])<<8|int(es[i].id[1])+1]++
	}
	for b := 1; b < len(start); b++ {
		start[b] += start[b-1]
	}
	// In-place distribution (American flag sort): swap each entry into
	// the next free slot of its bucket.
	next := start
	for b := 0; b < 1<<16; b++ {
		for next[b] < start[b+1] {
			e := es[next[b]]
			k := int(e.id[0])<<8 | int(e.id[1])
			if k == b {
				next[b]++
				continue
			}
			es[next[b]], es[next[k]] = es[next[k]], e
			next[k]++
		}
	}
	for b := 0; b < 1<<16; b++ {
		if part := es[start[b]:start[b+1]]; len(part) > 1 {
			slices.SortFunc(part, func(a, b entry) int { return cmpEntry(&a, &b) })
		}
	}
}

// searchMem returns the range of entries with id in a sorted slice.
func searchMem(es []entry, id snapshot.ID) (int, int) {
	lo := sort.Search(len(es), func(i int) bool { return bytes.Compare(es[i].id[:], id[:]) >= 0 })
	hi := lo
	for hi < len(es) && es[hi].id == id {
		hi++
	}
	return lo, hi
}
