package repo

import (
	"context"
	"fmt"
	"io"
	"time"
)

// DefaultGrace is how old an unindexed pack must be before prune deletes it.
const DefaultGrace = time.Hour

// PruneOptions tune prune.
type PruneOptions struct {
	// Grace keeps packs that no index lists yet if they are younger than
	// this: a backup may be about to index them, and some stores list new
	// objects late. Zero means DefaultGrace; negative means none.
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
	BlobsRemoved     int   `json:"blobs_removed"`
	BytesFreed       int64 `json:"bytes_freed"`
	IndexFilesMerged int   `json:"index_files_merged"`
	NeedOwnerKey     int   `json:"packs_needing_owner_key,omitempty"`
}

type packUse struct {
	info       PackInfo
	used       []BlobInfo
	unusedSize int64
}

// Prune removes data no snapshot references: wholly unused packs are
// deleted, mostly unused ones repacked, and the index is rewritten. The
// caller must hold an exclusive lock. Order makes it crash-safe: new packs,
// then the new index, then old index files, then obsolete packs; at every
// step the index covers every referenced blob.
func (r *Repository) Prune(ctx context.Context, opts PruneOptions) (*PruneResult, error) {
	if opts.Grace == 0 {
		opts.Grace = DefaultGrace
	}
	if opts.RepackUnused == 0 {
		opts.RepackUnused = 0.2
	}
	res := &PruneResult{}

	// 1. Everything referenced. A snapshot that cannot be read stops prune:
	// deleting on partial knowledge would lose data.
	used := map[ID]bool{}
	ids, err := r.SnapshotIDs(ctx)
	if err != nil {
		return nil, err
	}
	res.Snapshots = len(ids)
	for _, id := range ids {
		sn, err := r.LoadSnapshot(ctx, id)
		if err != nil {
			return nil, fmt.Errorf("prune stopped, nothing deleted: %w", err)
		}
		for _, t := range sn.Tree {
			used[t] = true
		}
		tr := r.NewTreeReader(ctx, sn)
		for {
			n, err := tr.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				return nil, fmt.Errorf("prune stopped, nothing deleted: %w", err)
			}
			for _, c := range n.Content {
				used[c] = true
			}
		}
	}

	// 2. Every pack of every index file, with all its blobs.
	var indexKeys []string
	var packs []*packUse
	seen := map[ID]bool{}
	err = r.eachIndexFile(ctx, func(key string, ps []PackInfo) error {
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
		return nil, fmt.Errorf("prune stopped, nothing deleted: %w", err)
	}
	for id := range used {
		if !r.idx.Has(id) {
			return nil, fmt.Errorf("prune stopped, nothing deleted: blob %s is referenced but not indexed (run check)", id)
		}
	}

	// 3. Keep one copy of each used blob.
	kept := map[ID]bool{}
	for _, p := range packs {
		for _, b := range p.info.Blobs {
			if used[b.ID] && !kept[b.ID] {
				kept[b.ID] = true
				p.used = append(p.used, b)
			} else {
				p.unusedSize += int64(b.Length)
				res.BlobsRemoved++
			}
		}
	}

	var keepPacks []PackInfo
	var obsolete []PackInfo
	var repack []*packUse
	for _, p := range packs {
		switch {
		case len(p.used) == len(p.info.Blobs):
			keepPacks = append(keepPacks, p.info)
		case len(p.used) == 0:
			obsolete = append(obsolete, p.info)
			res.PacksDeleted++
			res.BytesFreed += p.info.Size
		case float64(p.unusedSize) > opts.RepackUnused*float64(p.info.Size):
			if p.used[0].Type == DataBlob && !r.readData {
				res.NeedOwnerKey++
				res.PartlyUsedKept++
				keepPacks = append(keepPacks, p.info)
				continue
			}
			repack = append(repack, p)
			res.PacksRepacked++
		default:
			res.PartlyUsedKept++
			keepPacks = append(keepPacks, p.info)
		}
	}
	res.PacksKept = len(keepPacks)

	// Packs no index lists, older than the grace period.
	var unindexed []string
	cutoff := time.Now().Add(-opts.Grace)
	stored, err := r.storedPacks(ctx)
	if err != nil {
		return nil, err
	}
	for id, sp := range stored {
		if seen[id] || sp.ModTime.After(cutoff) {
			continue
		}
		unindexed = append(unindexed, sp.Key)
		res.BytesFreed += sp.Size
	}
	res.PacksUnindexed = len(unindexed)
	if opts.DryRun {
		return res, nil
	}
	if len(obsolete) == 0 && len(repack) == 0 && len(unindexed) == 0 && len(indexKeys) <= 1 {
		return res, nil
	}

	// 4. Repack: copy used blobs as stored (no recompression) into new packs.
	for _, p := range repack {
		plain, _, err := readWholePack(ctx, r.b, p.info.ID, r.ids, &p.info.Hash)
		if err != nil {
			r.Abort()
			return nil, err
		}
		for _, b := range p.used {
			if err := r.store(ctx, b.Type, b.ID, plain[b.Offset:b.Offset+b.Length], int(b.RawLength), b.Compressed); err != nil {
				r.Abort()
				return nil, err
			}
		}
		obsolete = append(obsolete, p.info)
		res.BytesFreed += p.unusedSize
	}
	if err := r.Flush(ctx); err != nil {
		return nil, err
	}

	// 5. One index for everything kept, then drop the old index files.
	for start := 0; start < len(keepPacks); start += 4096 {
		batch := keepPacks[start:min(start+4096, len(keepPacks))]
		if err := r.writeIndex(ctx, batch); err != nil {
			return nil, err
		}
	}
	for _, k := range indexKeys {
		if err := r.b.Delete(ctx, k); err != nil {
			return nil, fmt.Errorf("delete %s: %w", k, err)
		}
	}
	res.IndexFilesMerged = len(indexKeys)

	// 6. Obsolete and orphaned packs.
	for _, p := range obsolete {
		if err := r.b.Delete(ctx, packKey(p.ID)); err != nil {
			return nil, fmt.Errorf("delete %s: %w", packKey(p.ID), err)
		}
	}
	for _, k := range unindexed {
		if err := r.b.Delete(ctx, k); err != nil {
			return nil, fmt.Errorf("delete %s: %w", k, err)
		}
	}
	return res, r.LoadIndex(ctx)
}
