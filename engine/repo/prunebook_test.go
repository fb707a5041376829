package repo

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/lifeboat-backup/lifeboat/engine/snapshot"
)

// oraclePlan is prune's bookkeeping as it was before the compact index
// (maps of blob IDs, every pack's blob list): for each pack the blobs it
// keeps (in offset order) and the bytes of those it does not; the
// duplicates checked and the warnings.
type oraclePlan struct {
	used     map[snapshot.ID][]BlobInfo
	unused   map[snapshot.ID]int64
	dups     int
	warnings []string
}

func pruneOracle(packs []PackInfo, cand, used map[snapshot.ID]bool, readData bool, verify func(Location) error) oraclePlan {
	packs = slices.Clone(packs)
	slices.SortFunc(packs, func(a, b PackInfo) int {
		if ca, cb := cand[a.ID], cand[b.ID]; ca != cb {
			if ca {
				return 1
			}
			return -1
		}
		return bytes.Compare(a.ID[:], b.ID[:])
	})
	type keeper struct {
		pack snapshot.ID
		all  bool
	}
	copies := map[snapshot.ID][]Location{}
	for _, p := range packs {
		for _, b := range p.Blobs {
			if used[b.ID] {
				copies[b.ID] = append(copies[b.ID], Location{Pack: p.ID, PackSize: p.Size, BlobInfo: b})
			}
		}
	}
	out := oraclePlan{used: map[snapshot.ID][]BlobInfo{}, unused: map[snapshot.ID]int64{}}
	keep := map[snapshot.ID]keeper{}
	for id, locs := range copies {
		if len(locs) == 1 {
			keep[id] = keeper{pack: locs[0].Pack}
			continue
		}
		out.dups++
		k := keeper{all: true}
		for _, loc := range locs {
			if loc.Type == DataBlob && !readData {
				break
			}
			if verify(loc) == nil {
				k = keeper{pack: loc.Pack}
				break
			}
		}
		if k.all && (locs[0].Type == TreeBlob || readData) {
			out.warnings = append(out.warnings, fmt.Sprintf("blob %s: none of its %d copies verifies; all kept (run check --read-data)", id, len(locs)))
		}
		keep[id] = k
	}
	for _, p := range packs {
		out.used[p.ID] = []BlobInfo{}
		for _, b := range p.Blobs {
			if k, ok := keep[b.ID]; ok && (k.all || k.pack == p.ID) {
				out.used[p.ID] = append(out.used[p.ID], b)
			} else {
				out.unused[p.ID] += int64(b.Length)
			}
		}
		slices.SortStableFunc(out.used[p.ID], func(a, b BlobInfo) int { return cmp.Compare(a.Offset, b.Offset) })
	}
	slices.Sort(out.warnings)
	return out
}

// randomPacks makes packs of blobs drawn from a small pool (so that blobs
// have several copies, a few even in one pack), mostly of one type a pack.
func randomPacks(rng *rand.Rand) []PackInfo {
	pool := make([]snapshot.ID, 1+rng.IntN(40))
	for i := range pool {
		pool[i][0], pool[i][1], pool[i][31] = byte(rng.IntN(4)), byte(i), byte(rng.IntN(256))
	}
	packs := make([]PackInfo, 1+rng.IntN(12))
	for i := range packs {
		p := &packs[i]
		p.ID[0], p.ID[1] = byte(rng.IntN(256)), byte(i)
		t := DataBlob
		if rng.IntN(3) == 0 {
			t = TreeBlob
		}
		off := uint32(0)
		for range rng.IntN(10) {
			b := BlobInfo{Type: t, ID: pool[rng.IntN(len(pool))], Offset: off, Length: uint32(1 + rng.IntN(100)), Compressed: rng.IntN(2) == 0}
			if rng.IntN(20) == 0 {
				b.Type = DataBlob + TreeBlob - t
			}
			b.RawLength = b.Length + uint32(rng.IntN(10))
			off += b.Length
			p.Blobs = append(p.Blobs, b)
		}
		p.Size = int64(off) + 100
	}
	return packs
}

// TestPruneBookOracle: prune's bookkeeping on the compact index (bits over
// the table, per-pack counters, kept blobs from a pass over the table)
// keeps and counts what the map-based bookkeeping kept and counted, on
// random packs with repeated blobs, candidates, copies that fail to
// verify, with and without the owner identity, in memory and spilled.
func TestPruneBookOracle(t *testing.T) {
	rng := rand.New(rand.NewPCG(26, 2))
	ctx := context.Background()
	for _, spill := range []int{1 << 30, 1, 3, 17} {
		withSpill(spill, func() {
			for run := range 400 {
				packs := randomPacks(rng)
				cand, used := map[snapshot.ID]bool{}, map[snapshot.ID]bool{}
				for _, p := range packs {
					if rng.IntN(4) == 0 {
						cand[p.ID] = true
					}
					for _, b := range p.Blobs {
						if rng.IntN(3) > 0 {
							used[b.ID] = true
						}
					}
				}
				bad := map[string]bool{}
				verify := func(l Location) error {
					k := fmt.Sprint(l.Pack, l.ID, l.Offset)
					if _, ok := bad[k]; !ok {
						bad[k] = rng.IntN(3) == 0
					}
					if bad[k] {
						return fmt.Errorf("bad copy")
					}
					return nil
				}
				readData := rng.IntN(2) == 0
				want := pruneOracle(packs, cand, used, readData, verify)

				// The packs are loaded in another order than prune sorts them.
				x := NewIndex()
				x.setCandidates(cand)
				for _, i := range rng.Perm(len(packs)) {
					x.AddPack(packs[i])
				}
				book := newPruneBook(x, nil, nil, cand)
				for id := range used {
					require.True(t, book.markUsed(id))
				}
				require.False(t, book.markUsed(snapshot.ID{0xff, 0xfe}), "a blob no pack holds")
				res := &PruneResult{}
				require.NoError(t, book.choose(ctx, readData, verify, res))
				slices.Sort(res.Warnings)
				require.Equal(t, want.dups, res.DuplicatesChecked, "run %d: duplicates checked", run)
				require.Equal(t, want.warnings, res.Warnings, "run %d: warnings", run)

				var all []uint32
				for n := range book.packs {
					all = append(all, uint32(n))
				}
				kept := book.keptBlobs(all)
				for n, p := range book.packs {
					w := want.used[p.ID]
					require.Equal(t, len(w), book.keptN[n], "run %d: pack %s kept", run, p.ID.Short())
					require.Equal(t, want.unused[p.ID], book.unused[n], "run %d: pack %s unused bytes", run, p.ID.Short())
					i := slices.IndexFunc(packs, func(q PackInfo) bool { return q.ID == p.ID })
					require.Equal(t, len(packs[i].Blobs), book.blobs[n], "run %d: pack %s blobs", run, p.ID.Short())
					require.Equal(t, slices.ContainsFunc(w, func(b BlobInfo) bool { return b.Type == DataBlob }), book.keptData[n])
					got := kept[uint32(n)]
					slices.SortStableFunc(got, func(a, b BlobInfo) int { return cmp.Compare(a.Offset, b.Offset) })
					require.Equal(t, w, got, "run %d: pack %s kept blobs", run, p.ID.Short())
				}
			}
		})
	}
}
