package repo

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync"

	"github.com/lifeboat-backup/lifeboat/engine/snapshot"
)

// Index file plaintext (zstd-compressed, then age-encrypted to the metadata
// recipients, stored as index/<random id>):
//
//	"LBIDX001" uvarint(npacks)
//	per pack: id(32) sha256(32) uvarint(size) uvarint(nblobs)
//	per blob: type(1) flags(1) id(32) uvarint(offset) uvarint(length) uvarint(rawLength)
const indexMagic = "LBIDX001"

func encodeIndex(packs []PackInfo) []byte {
	n := len(indexMagic) + 10
	for _, p := range packs {
		n += 32 + 32 + 20 + len(p.Blobs)*(34+15)
	}
	buf := make([]byte, 0, n)
	buf = append(buf, indexMagic...)
	buf = binary.AppendUvarint(buf, uint64(len(packs)))
	for _, p := range packs {
		buf = append(buf, p.ID[:]...)
		buf = append(buf, p.Hash[:]...)
		buf = binary.AppendUvarint(buf, uint64(p.Size))
		buf = binary.AppendUvarint(buf, uint64(len(p.Blobs)))
		for _, b := range p.Blobs {
			var flags byte
			if b.Compressed {
				flags = flagCompressed
			}
			buf = append(buf, byte(b.Type), flags)
			buf = append(buf, b.ID[:]...)
			buf = binary.AppendUvarint(buf, uint64(b.Offset))
			buf = binary.AppendUvarint(buf, uint64(b.Length))
			buf = binary.AppendUvarint(buf, uint64(b.RawLength))
		}
	}
	return buf
}

var errShortIndex = errors.New("index data ends early (truncated)")

func decodeIndex(data []byte) ([]PackInfo, error) {
	if len(data) < len(indexMagic) || string(data[:len(indexMagic)]) != indexMagic {
		return nil, errors.New("not an index (bad magic)")
	}
	p := data[len(indexMagic):]
	uv := func() (uint64, error) {
		v, n := binary.Uvarint(p)
		if n <= 0 {
			return 0, errShortIndex
		}
		p = p[n:]
		return v, nil
	}
	fixed := func(dst []byte) error {
		if len(p) < len(dst) {
			return errShortIndex
		}
		copy(dst, p)
		p = p[len(dst):]
		return nil
	}
	np, err := uv()
	if err != nil {
		return nil, err
	}
	if np > uint64(len(p)) {
		return nil, fmt.Errorf("index claims %d packs in %d bytes", np, len(p))
	}
	packs := make([]PackInfo, 0, np)
	for range np {
		var pi PackInfo
		if err := fixed(pi.ID[:]); err != nil {
			return nil, err
		}
		if err := fixed(pi.Hash[:]); err != nil {
			return nil, err
		}
		size, err := uv()
		if err != nil {
			return nil, err
		}
		pi.Size = int64(size)
		nb, err := uv()
		if err != nil {
			return nil, err
		}
		if nb > uint64(len(p)) {
			return nil, fmt.Errorf("index claims %d blobs in %d bytes", nb, len(p))
		}
		pi.Blobs = make([]BlobInfo, nb)
		for i := range pi.Blobs {
			b := &pi.Blobs[i]
			if len(p) < 2 {
				return nil, errShortIndex
			}
			b.Type, b.Compressed = BlobType(p[0]), p[1]&flagCompressed != 0
			p = p[2:]
			if err := fixed(b.ID[:]); err != nil {
				return nil, err
			}
			var vs [3]uint64
			for j := range vs {
				if vs[j], err = uv(); err != nil {
					return nil, err
				}
				if vs[j] > 1<<32-1 {
					return nil, fmt.Errorf("blob %s: value %d out of range", b.ID.Short(), vs[j])
				}
			}
			b.Offset, b.Length, b.RawLength = uint32(vs[0]), uint32(vs[1]), uint32(vs[2])
		}
		packs = append(packs, pi)
	}
	if len(p) != 0 {
		return nil, fmt.Errorf("%d trailing bytes after the index", len(p))
	}
	return packs, nil
}

// Location is where a blob is stored.
type Location struct {
	Pack     snapshot.ID
	PackSize int64
	BlobInfo
}

type blobLoc struct {
	pack int32 // index into Index.packs
	BlobInfo
}

// Index maps blob IDs to their packs; safe for concurrent use. It also
// tracks blobs claimed by a running backup but not yet in a finished pack,
// so concurrent savers store each blob once.
type Index struct {
	mu       sync.RWMutex
	packs    []PackInfo
	packPos  map[snapshot.ID]int32
	blobs    map[snapshot.ID]blobLoc
	dups     map[snapshot.ID][]blobLoc // further copies of a blob (rare: an interrupted prune, a forged index)
	inflight map[snapshot.ID]struct{}
	// cand holds the packs prune marked as deletion candidates: a blob
	// whose first location is one of them has no other copy, and writers
	// store it again rather than reference it (Reusable).
	cand map[snapshot.ID]bool
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

// Reusable reports whether a writer may reference a blob without storing
// it: it is stored in a pack that prune did not mark for deletion.
func (x *Index) Reusable(id snapshot.ID) bool {
	x.mu.RLock()
	defer x.mu.RUnlock()
	return x.reusable(id)
}

func (x *Index) reusable(id snapshot.ID) bool {
	l, ok := x.blobs[id]
	return ok && !x.cand[x.packs[l.pack].ID]
}

// NewIndex returns an empty index.
func NewIndex() *Index {
	return &Index{packPos: map[snapshot.ID]int32{}, blobs: map[snapshot.ID]blobLoc{}, dups: map[snapshot.ID][]blobLoc{}, inflight: map[snapshot.ID]struct{}{}}
}

// AddPack makes a pack's blobs visible. A blob stored in several packs (after
// an interrupted prune, say) is looked up at its first location; the others
// are kept as alternates for readers to fall back on.
func (x *Index) AddPack(p PackInfo) {
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
			x.blobs[b.ID] = blobLoc{pack: pos, BlobInfo: b}
		} else if x.cand[x.packs[old.pack].ID] && !x.cand[p.ID] {
			// A copy outside the candidates comes first.
			x.blobs[b.ID] = blobLoc{pack: pos, BlobInfo: b}
			x.dups[b.ID] = append(x.dups[b.ID], old)
		} else {
			x.dups[b.ID] = append(x.dups[b.ID], blobLoc{pack: pos, BlobInfo: b})
		}
	}
}

// Alternates returns the further copies of a blob besides Lookup's.
func (x *Index) Alternates(id snapshot.ID) []Location {
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
func (x *Index) Has(id snapshot.ID) bool {
	x.mu.RLock()
	_, ok := x.blobs[id]
	x.mu.RUnlock()
	return ok
}

// Lookup returns where a blob is stored.
func (x *Index) Lookup(id snapshot.ID) (Location, bool) {
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
func (x *Index) claim(id snapshot.ID) bool {
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
func (x *Index) Packs() []PackInfo {
	x.mu.RLock()
	defer x.mu.RUnlock()
	return append([]PackInfo(nil), x.packs...)
}

// Len returns the number of blobs.
func (x *Index) Len() int {
	x.mu.RLock()
	defer x.mu.RUnlock()
	return len(x.blobs)
}

// EachCopy calls fn for every stored copy of every blob (Each and the
// alternates).
func (x *Index) EachCopy(fn func(Location)) {
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
func (x *Index) Duplicates() int {
	x.mu.RLock()
	defer x.mu.RUnlock()
	return len(x.dups)
}

// Each calls fn for every blob.
func (x *Index) Each(fn func(Location)) {
	x.mu.RLock()
	defer x.mu.RUnlock()
	for _, l := range x.blobs {
		p := x.packs[l.pack]
		fn(Location{Pack: p.ID, PackSize: p.Size, BlobInfo: l.BlobInfo})
	}
}
