package repo

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/lifeboat-backup/lifeboat/engine/snapshot"
	"github.com/lifeboat-backup/lifeboat/engine/storage"
)

// CheckOptions select how deep check goes.
type CheckOptions struct {
	// ReadDataPercent > 0 downloads that share of packs (100: all), decrypts
	// them and verifies every blob's ID against its content.
	ReadDataPercent float64
	// Progress, if set, is called after each pack is read.
	Progress func(done, total int)
}

// CheckResult lists problems; an empty Errors means the repository is sound.
type CheckResult struct {
	Snapshots     int       `json:"snapshots"`
	Packs         int       `json:"packs"`
	Blobs         int       `json:"blobs"`
	PacksRead     int       `json:"packs_read"`
	PacksFailed   int       `json:"packs_failed"`    // read, but damaged (named in Errors)
	UnindexedPack int       `json:"unindexed_packs"` // harmless: left by an interrupted backup, removed by prune
	Errors        []string  `json:"errors"`
	Warnings      []string  `json:"warnings,omitempty"`
	Keys          []KeyInfo `json:"keys"` // every object under keys/ (checkKeys)
}

// OK reports whether no error was found.
func (c *CheckResult) OK() bool { return len(c.Errors) == 0 }

// Check verifies structure: every index file and snapshot decodes, every
// referenced blob is indexed, every indexed pack exists with its size; and
// with ReadDataPercent, pack contents.
func (r *Repository) Check(ctx context.Context, opts CheckOptions) (*CheckResult, error) {
	res := &CheckResult{}
	var mu sync.Mutex
	fail := func(format string, args ...any) {
		mu.Lock()
		res.Errors = append(res.Errors, fmt.Sprintf(format, args...))
		mu.Unlock()
	}

	if err := r.checkKeys(ctx, res); err != nil {
		return nil, err
	}

	// The snapshots are listed first, then the index is read: a backup
	// writes its index before its snapshot, so every snapshot listed here
	// finds its blobs (read the other way round, a snapshot saved in
	// between was reported broken).
	written, err := r.listSnapshots(ctx)
	if err != nil {
		return nil, err
	}

	// Prune's marks: a candidate pack may be deleted while check runs (a
	// prune beside it whose mark ripened before check locked).
	marks, err := r.loadMarks(ctx)
	if err != nil {
		return nil, err
	}
	cand := candidates(marks)

	// Index files, one by one, so a damaged one is named and the rest still
	// count. The index loaded before is let go first (the two are not held
	// at once), and the new one is sized from the files' bytes.
	r.idx = NewIndex()
	idx := NewIndex()
	keys, total, err := r.listIndexFiles(ctx)
	if err != nil {
		return nil, err
	}
	idx.reserve(total)
	for _, key := range keys {
		plain, err := r.loadMeta(ctx, key)
		if errors.Is(err, ErrNotFound) {
			continue // merged into a new index file by a prune meanwhile
		}
		if err != nil {
			fail("%v", err)
			continue
		}
		if err := walkIndex(plain, idx.AddPack); err != nil {
			fail("%v", &CorruptError{Object: key, Err: err})
			continue
		}
	}
	r.idx = idx
	res.Blobs = idx.Len()
	if n := idx.Duplicates(); n > 0 {
		res.Warnings = append(res.Warnings, fmt.Sprintf("%d blobs are stored more than once (each copy is verified with --read-data; prune keeps one that verifies)", n))
	}

	// Packs present with the indexed size.
	stored, err := r.storedPacks(ctx)
	if err != nil {
		return nil, err
	}
	packs := idx.Packs()
	res.Packs = len(packs)
	indexed := map[snapshot.ID]bool{}
	for _, p := range packs {
		indexed[p.ID] = true
		sp, ok := stored[p.ID]
		switch {
		case !ok && cand[p.ID]:
			// a deletion candidate, deleted by a prune meanwhile
		case !ok:
			fail("%s: missing (listed in the index)", packKey(p.ID))
		case sp.Size != p.Size:
			fail("%s: size %d, index says %d", sp.Key, sp.Size, p.Size)
		}
	}
	for id := range stored {
		if !indexed[id] {
			res.UnindexedPack++
		}
	}
	if res.UnindexedPack > 0 {
		res.Warnings = append(res.Warnings, fmt.Sprintf("%d packs are not in any index (left by an interrupted backup or prune; prune removes them)", res.UnindexedPack))
	}

	// Snapshots: every tree and content blob indexed; those dated in the
	// future flagged (never latest). Each manifest is read once.
	ids := make([]snapshot.ID, 0, len(written))
	for id := range written {
		ids = append(ids, id)
	}
	slices.SortFunc(ids, func(a, b snapshot.ID) int { return slices.Compare(a[:], b[:]) })
	res.Snapshots = len(ids)
	for _, id := range ids {
		if err := r.checkSnapshot(ctx, id, written[id], res, fail); err != nil {
			return nil, err
		}
	}

	if opts.ReadDataPercent > 0 {
		r.checkData(ctx, packs, stored, cand, opts, res, fail)
	}
	return res, nil
}

func (r *Repository) checkSnapshot(ctx context.Context, id snapshot.ID, written time.Time, res *CheckResult, fail func(string, ...any)) error {
	sn, err := r.LoadSnapshot(ctx, id)
	if errors.Is(err, ErrNotFound) {
		return nil // forgotten since the listing
	}
	if err != nil {
		fail("%v", err)
		return nil
	}
	if r.flagSuspect(sn, written); sn.Suspect != "" {
		res.Warnings = append(res.Warnings, fmt.Sprintf("snapshot %s: %s", sn.ID.Short(), sn.Suspect))
	}
	for _, t := range sn.Tree {
		if !r.idx.Has(t) {
			fail("snapshot %s: tree blob %s not in the index", id.Short(), t)
			return nil
		}
	}
	missing := 0
	err = r.EachNode(ctx, sn, func(n *snapshot.Node) error {
		for _, c := range n.Content {
			if !r.idx.Has(c) {
				if missing < 10 {
					fail("snapshot %s: %s: data blob %s not in the index", id.Short(), n.Path, c)
				}
				missing++
			}
		}
		return nil
	})
	if err != nil {
		fail("%v", err)
		return nil
	}
	if missing > 10 {
		fail("snapshot %s: %d more missing blobs", id.Short(), missing-10)
	}
	return nil
}

// packWant is what the index says of one pack: how many blob copies it
// holds and the type of the first (a pack holds one type).
type packWant struct {
	blobs int
	typ   BlobType
}

func (r *Repository) checkData(ctx context.Context, packs []PackInfo, stored map[snapshot.ID]storedPack, cand map[snapshot.ID]bool, opts CheckOptions, res *CheckResult, fail func(string, ...any)) {
	// How many blobs each pack should hold, from the loaded index: a
	// counter per pack (memory grows with the packs, not the blobs); each
	// pack's entries are matched against the index as it is read.
	want := map[snapshot.ID]packWant{}
	r.idx.EachCopy(func(l Location) {
		w, ok := want[l.Pack]
		if !ok {
			w.typ = l.Type
		}
		w.blobs++
		want[l.Pack] = w
	})
	var sel []PackInfo
	skipped := 0
	for _, p := range packs {
		if _, ok := stored[p.ID]; !ok {
			continue // already reported missing
		}
		if w := want[p.ID]; !r.readData && w.blobs > 0 && w.typ == DataBlob {
			skipped++
			continue
		}
		sel = append(sel, p)
	}
	// A share of the packs, rounded up: --read-data=10 of 3 packs reads one.
	n := int(math.Ceil(float64(len(sel)) * min(opts.ReadDataPercent, 100) / 100))
	rand.Shuffle(len(sel), func(i, j int) { sel[i], sel[j] = sel[j], sel[i] })
	sel = sel[:n]
	if skipped > 0 {
		res.Warnings = append(res.Warnings, fmt.Sprintf("%d data packs not read: the owner identity is required to decrypt them", skipped))
	}
	var mu sync.Mutex
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(runtime.GOMAXPROCS(0))
	for _, p := range sel {
		g.Go(func() error {
			ok := r.checkPack(gctx, p, want[p.ID].blobs, cand[p.ID], fail)
			mu.Lock()
			res.PacksRead++
			if !ok {
				res.PacksFailed++
			}
			done := res.PacksRead
			mu.Unlock()
			if opts.Progress != nil {
				opts.Progress(done, len(sel))
			}
			return nil
		})
	}
	_ = g.Wait()
}

// checkPack reads and verifies one pack, which the index says holds
// blobs copies; false when it reported a problem. A deletion candidate
// that vanished was deleted by a prune meanwhile.
func (r *Repository) checkPack(ctx context.Context, p PackInfo, blobs int, candidate bool, fail func(string, ...any)) bool {
	key := packKey(p.ID)
	plain, entries, err := readWholePack(ctx, r.b, p.ID, r.ids, &p.Hash)
	if candidate && errors.Is(storage.Wrap(err), storage.ErrNotExist) {
		return true
	}
	if err != nil {
		fail("%v", err)
		return false
	}
	ok := true
	matched := 0
	var buf []byte
	for _, e := range entries {
		indexed := 0
		r.idx.EachCopyOf(e.ID, func(l Location) {
			if l.Pack == p.ID && l.BlobInfo == e {
				indexed++
			}
		})
		if indexed == 0 {
			continue // not in the index: prune removes it
		}
		matched += indexed
		if buf, err = r.verifyBlob(plain, e, buf); err != nil {
			fail("%s: blob %s: %v", key, e.ID, err)
			ok = false
		}
	}
	if matched != blobs {
		// Name the index entries the header does not hold (rare: a pass
		// over the whole index for this pack only).
		inPack := make(map[snapshot.ID][]BlobInfo, len(entries))
		for _, e := range entries {
			inPack[e.ID] = append(inPack[e.ID], e)
		}
		r.idx.EachCopy(func(l Location) {
			if l.Pack == p.ID && !slices.Contains(inPack[l.ID], l.BlobInfo) {
				fail("%s: blob %s: pack header disagrees with the index", key, l.ID)
				ok = false
			}
		})
	}
	return ok
}

// verifyBlob checks that the blob e of a decrypted pack decompresses and
// matches its ID; buf is scratch space, returned for reuse.
func (r *Repository) verifyBlob(plain []byte, e BlobInfo, buf []byte) ([]byte, error) {
	if uint64(e.Offset)+uint64(e.Length) > uint64(len(plain)) {
		return buf, errors.New("outside the pack")
	}
	data := plain[e.Offset : e.Offset+e.Length]
	if e.Compressed {
		var err error
		if buf, err = decompress(buf, data, int(e.RawLength)); err != nil {
			return buf, err
		}
		data = buf
	}
	if r.BlobID(data) != e.ID {
		return buf, errors.New("content does not match its ID")
	}
	return buf, nil
}
