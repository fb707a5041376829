package repo

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/lifeboat-backup/lifeboat/engine/snapshot"
)

// The oracle: the map-based index lifeboat used before the compact one
// (one Go map entry per blob), kept verbatim as the reference the compact
// index must answer exactly like.

type mapLoc struct {
	pack int32 // index into mapIndex.packs
	BlobInfo
}

// mapIndex maps blob IDs to their packs; safe for concurrent use. It also
// tracks blobs claimed by a running backup but not yet in a finished pack,
// so concurrent savers store each blob once.
type mapIndex struct {
	mu       sync.RWMutex
	packs    []PackInfo
	packPos  map[snapshot.ID]int32
	blobs    map[snapshot.ID]mapLoc
	dups     map[snapshot.ID][]mapLoc // further copies of a blob (rare: an interrupted prune, a forged index)
	inflight map[snapshot.ID]struct{}
	// cand holds the packs prune marked as deletion candidates: a blob
	// whose first location is one of them has no other copy, and writers
	// store it again rather than reference it (Reusable).
	cand map[snapshot.ID]bool
}

// setCandidates names the packs prune marked (before any AddPack).
func (x *mapIndex) setCandidates(c map[snapshot.ID]bool) {
	x.mu.Lock()
	x.cand = c
	x.mu.Unlock()
}

func (x *mapIndex) candidate(pack snapshot.ID) bool {
	x.mu.RLock()
	defer x.mu.RUnlock()
	return x.cand[pack]
}

// Reusable reports whether a writer may reference a blob without storing
// it: it is stored in a pack that prune did not mark for deletion.
func (x *mapIndex) Reusable(id snapshot.ID) bool {
	x.mu.RLock()
	defer x.mu.RUnlock()
	return x.reusable(id)
}

func (x *mapIndex) reusable(id snapshot.ID) bool {
	l, ok := x.blobs[id]
	return ok && !x.cand[x.packs[l.pack].ID]
}

// NewIndex returns an empty index.
func newMapIndex() *mapIndex {
	return &mapIndex{packPos: map[snapshot.ID]int32{}, blobs: map[snapshot.ID]mapLoc{}, dups: map[snapshot.ID][]mapLoc{}, inflight: map[snapshot.ID]struct{}{}}
}

// AddPack makes a pack's blobs visible. A blob stored in several packs (after
// an interrupted prune, say) is looked up at its first location; the others
// are kept as alternates for readers to fall back on.
func (x *mapIndex) AddPack(p PackInfo) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if _, ok := x.packPos[p.ID]; ok {
		return
	}
	pos := int32(len(x.packs))
	x.packs = append(x.packs, PackInfo{ID: p.ID, Size: p.Size, Hash: p.Hash})
	x.packPos[p.ID] = pos
	for _, b := range p.Blobs {
		delete(x.inflight, b.ID)
		if old, ok := x.blobs[b.ID]; !ok {
			x.blobs[b.ID] = mapLoc{pack: pos, BlobInfo: b}
		} else if x.cand[x.packs[old.pack].ID] && !x.cand[p.ID] {
			// A copy outside the candidates comes first.
			x.blobs[b.ID] = mapLoc{pack: pos, BlobInfo: b}
			x.dups[b.ID] = append(x.dups[b.ID], old)
		} else {
			x.dups[b.ID] = append(x.dups[b.ID], mapLoc{pack: pos, BlobInfo: b})
		}
	}
}

// Alternates returns the further copies of a blob besides Lookup's.
func (x *mapIndex) Alternates(id snapshot.ID) []Location {
	x.mu.RLock()
	defer x.mu.RUnlock()
	var out []Location
	for _, l := range x.dups[id] {
		p := x.packs[l.pack]
		out = append(out, Location{Pack: p.ID, PackSize: p.Size, BlobInfo: l.BlobInfo})
	}
	return out
}

// Has reports whether a blob is stored.
func (x *mapIndex) Has(id snapshot.ID) bool {
	x.mu.RLock()
	_, ok := x.blobs[id]
	x.mu.RUnlock()
	return ok
}

// Lookup returns where a blob is stored.
func (x *mapIndex) Lookup(id snapshot.ID) (Location, bool) {
	x.mu.RLock()
	defer x.mu.RUnlock()
	l, ok := x.blobs[id]
	if !ok {
		return Location{}, false
	}
	p := x.packs[l.pack]
	return Location{Pack: p.ID, PackSize: p.Size, BlobInfo: l.BlobInfo}, true
}

// claim reports whether the caller should store id: false when the blob is
// stored (outside prune's candidates) or another saver already claimed it.
func (x *mapIndex) claim(id snapshot.ID) bool {
	x.mu.Lock()
	defer x.mu.Unlock()
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
func (x *mapIndex) Packs() []PackInfo {
	x.mu.RLock()
	defer x.mu.RUnlock()
	return append([]PackInfo(nil), x.packs...)
}

// Len returns the number of blobs.
func (x *mapIndex) Len() int {
	x.mu.RLock()
	defer x.mu.RUnlock()
	return len(x.blobs)
}

// EachCopy calls fn for every stored copy of every blob (Each and the
// alternates).
func (x *mapIndex) EachCopy(fn func(Location)) {
	x.Each(fn)
	x.mu.RLock()
	defer x.mu.RUnlock()
	for _, ls := range x.dups {
		for _, l := range ls {
			p := x.packs[l.pack]
			fn(Location{Pack: p.ID, PackSize: p.Size, BlobInfo: l.BlobInfo})
		}
	}
}

// Duplicates returns how many blobs are stored more than once.
func (x *mapIndex) Duplicates() int {
	x.mu.RLock()
	defer x.mu.RUnlock()
	return len(x.dups)
}

// Each calls fn for every blob.
func (x *mapIndex) Each(fn func(Location)) {
	x.mu.RLock()
	defer x.mu.RUnlock()
	for _, l := range x.blobs {
		p := x.packs[l.pack]
		fn(Location{Pack: p.ID, PackSize: p.Size, BlobInfo: l.BlobInfo})
	}
}

// indexOps drives both indexes through the operations data encodes and
// compares every answer. IDs come from a small pool, so blobs get several
// copies (in one pack, across packs, in candidate packs).
func indexOps(t *testing.T, data []byte) {
	t.Helper()
	pool := make([]snapshot.ID, 40)
	for i := range pool {
		pool[i][0] = byte(i * 37) // spread over the first byte, and a few equal prefixes
		pool[i][31] = byte(i)
		if i%5 == 0 && i > 0 {
			pool[i] = pool[i-1]
			pool[i][20] ^= 1 // same 8-byte prefix as its neighbour, different ID
		}
	}
	packID := func(n byte) snapshot.ID { var id snapshot.ID; id[0], id[1] = 0xAA, n; return id }
	next := func() byte {
		if len(data) == 0 {
			return 0
		}
		b := data[0]
		data = data[1:]
		return b
	}
	x, o := NewIndex(), newMapIndex()
	cand := map[snapshot.ID]bool{}
	for n := next() % 8; n > 0; n-- {
		cand[packID(next()%16)] = true
	}
	x.setCandidates(cand)
	o.setCandidates(cand)
	check := func(id snapshot.ID) {
		require.Equal(t, o.Has(id), x.Has(id), "Has %x", id[:2])
		ol, ook := o.Lookup(id)
		xl, xok := x.Lookup(id)
		require.Equal(t, ook, xok, "Lookup %x", id[:2])
		if ook {
			// The primary copy: the same pack's (offsets may tie-break within a pack).
			require.Equal(t, ol.Pack, xl.Pack, "Lookup %x: pack", id[:2])
		}
		require.Equal(t, o.Reusable(id), x.Reusable(id), "Reusable %x", id[:2])
		all := func(l Location, alts []Location) []string {
			out := []string{fmt.Sprint(l)}
			for _, a := range alts {
				out = append(out, fmt.Sprint(a))
			}
			slices.Sort(out)
			return out
		}
		if ook {
			require.Equal(t, all(ol, o.Alternates(id)), all(xl, x.Alternates(id)), "copies of %x", id[:2])
		}
	}
	for len(data) > 0 {
		switch op := next() % 8; op {
		case 0, 1, 2, 3: // a pack
			p := PackInfo{ID: packID(next() % 16), Size: int64(next()), Hash: [32]byte{next()}}
			for n := next() % 6; n > 0; n-- {
				b := BlobInfo{Type: DataBlob + BlobType(next()%2), ID: pool[int(next())%len(pool)], Offset: uint32(next()) << 20,
					Length: uint32(next()), RawLength: uint32(next()) << 24, Compressed: next()%2 == 0}
				p.Blobs = append(p.Blobs, b)
			}
			x.AddPack(p)
			o.AddPack(p)
		case 4, 5:
			check(pool[int(next())%len(pool)])
		case 6:
			id := pool[int(next())%len(pool)]
			require.Equal(t, o.claim(id), x.claim(id), "claim %x", id[:2])
		case 7:
			require.Equal(t, o.Len(), x.Len(), "Len")
			require.Equal(t, o.Duplicates(), x.Duplicates(), "Duplicates")
			require.Equal(t, o.Packs(), x.Packs(), "Packs")
			each := func(f func(func(Location))) []string {
				var out []string
				f(func(l Location) { out = append(out, fmt.Sprint(l.ID, o.candidate(l.Pack))) })
				slices.Sort(out)
				return out
			}
			require.Equal(t, each(o.Each), each(x.Each), "Each")
			copies := func(f func(func(Location))) []string {
				var out []string
				f(func(l Location) { out = append(out, fmt.Sprint(l)) })
				slices.Sort(out)
				return out
			}
			require.Equal(t, copies(o.EachCopy), copies(x.EachCopy), "EachCopy")
		}
	}
	for _, id := range pool {
		check(id)
	}
	require.Equal(t, o.Len(), x.Len(), "Len")
	require.Equal(t, o.Duplicates(), x.Duplicates(), "Duplicates")
}

// withSpill runs fn with the index spilling to its temporary file after
// n entries.
func withSpill(n int, fn func()) {
	old := maxMemEntries
	maxMemEntries = n
	defer func() { maxMemEntries = old }()
	fn()
}

// TestIndexOracle: random operation sequences, in memory and spilled to
// sorted runs in a file, answer like the map-based index.
func TestIndexOracle(t *testing.T) {
	rng := rand.New(rand.NewPCG(26, 1))
	for _, spill := range []int{1 << 30, 1, 3, 17} {
		withSpill(spill, func() {
			for range 300 {
				data := make([]byte, 50+rng.IntN(400))
				for i := range data {
					data[i] = byte(rng.Uint32())
				}
				indexOps(t, data)
			}
		})
	}
}

func FuzzIndexOracle(f *testing.F) {
	f.Add([]byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 7, 4, 3})
	f.Add([]byte{3, 1, 2, 3, 0, 9, 9, 9, 5, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 1, 1, 1, 1, 1, 1, 1, 1, 1, 7, 4, 1})
	f.Fuzz(func(t *testing.T, data []byte) {
		spill := 1 << 30
		if len(data) > 0 && data[0]%2 == 1 {
			spill = int(data[0]%16) + 1
		}
		withSpill(spill, func() { indexOps(t, data) })
	})
}

// TestIndexSortLarge: the bucketed sort of a large table (and a spilled
// merge of it) gives the order and the counts a plain sort does.
func TestIndexSortLarge(t *testing.T) {
	rng := rand.New(rand.NewPCG(26, 2))
	const n = 200_000
	build := func(spill int) *Index {
		x := NewIndex()
		withSpill(spill, func() {
			for p := range 20 {
				pi := PackInfo{ID: snapshot.ID{0xBB, byte(p)}}
				for i := range n / 20 {
					var id snapshot.ID
					binary.LittleEndian.PutUint64(id[:], rng.Uint64())
					binary.LittleEndian.PutUint64(id[8:], rng.Uint64())
					if i%1000 == 0 {
						id = snapshot.ID{1, 2, 3} // one blob in every pack: 20 copies
					}
					pi.Blobs = append(pi.Blobs, BlobInfo{Type: DataBlob, ID: id, Offset: uint32(i)})
				}
				x.AddPack(pi)
			}
			x.seal()
		})
		return x
	}
	for _, spill := range []int{1 << 30, 30_000} {
		x := build(spill)
		require.Equal(t, spill < n, x.tab.file != nil)
		require.Equal(t, n-20*(n/20/1000)+1, x.Len())
		require.Equal(t, 1, x.Duplicates())
		var prev *entry
		cnt := 0
		x.tab.scan(func(e *entry) {
			if prev != nil {
				require.Negative(t, cmpEntry(prev, e))
			}
			c := *e
			prev = &c
			cnt++
		})
		require.Equal(t, n, cnt)
		require.Len(t, x.Alternates(snapshot.ID{1, 2, 3}), n/1000-1)
		l, ok := x.Lookup(snapshot.ID{1, 2, 3})
		require.True(t, ok)
		require.Equal(t, snapshot.ID{0xBB, 0}, l.Pack) // the first pack added
	}
}

// TestIndexConcurrent (run with -race): savers claim and add packs while
// readers look up, on an index spilled to a file.
func TestIndexConcurrent(t *testing.T) {
	withSpill(64, func() {
		x := NewIndex()
		base := PackInfo{ID: snapshot.ID{0xCC}}
		for i := range 1000 {
			base.Blobs = append(base.Blobs, BlobInfo{Type: DataBlob, ID: snapshot.ID{byte(i), byte(i >> 8), 7}})
		}
		x.AddPack(base)
		var wg sync.WaitGroup
		claimed := make([]int, 4)
		for w := range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range 2000 {
					id := snapshot.ID{byte(i), byte(i >> 8), 7}
					if i < 1000 {
						require.True(t, x.Has(id))
					}
					if x.claim(id) {
						claimed[w]++
						x.AddPack(PackInfo{ID: snapshot.ID{0xDD, byte(i), byte(i >> 8)}, Blobs: []BlobInfo{{Type: DataBlob, ID: id}}})
					}
					_, _ = x.Lookup(id)
				}
			}()
		}
		wg.Wait()
		require.Equal(t, 1000, claimed[0]+claimed[1]+claimed[2]+claimed[3], "each new blob claimed once")
		require.Equal(t, 2000, x.Len())
		require.Equal(t, 0, x.Duplicates())
	})
}
