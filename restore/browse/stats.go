package browse

import (
	"context"
	"fmt"

	"github.com/lifeboat-backup/lifeboat/engine/snapshot"
)

// Stats modes.
const (
	ModeRestoreSize = "restore-size" // what a restore writes: entries and file sizes
	ModeRawData     = "raw-data"     // the distinct blobs the snapshots reference, as stored
)

// StatsResult is restic stats' shape: restore-size fills TotalSize
// (file bytes, hard links once) and TotalFileCount (all entries);
// raw-data fills TotalSize (stored bytes), TotalUncompressedSize,
// TotalBlobCount and CompressionRatio.
type StatsResult struct {
	Mode                  string  `json:"mode"`
	SnapshotsCount        int     `json:"snapshots_count"`
	TotalSize             int64   `json:"total_size"`
	TotalFileCount        int64   `json:"total_file_count,omitempty"`
	TotalBlobCount        int64   `json:"total_blob_count,omitempty"`
	TotalUncompressedSize int64   `json:"total_uncompressed_size,omitempty"`
	CompressionRatio      float64 `json:"compression_ratio,omitempty"`
}

// Stats counts sns by mode. raw-data counts each blob once, however many
// snapshots share it, and needs r to be a BlobSizer (the native engine).
func Stats(ctx context.Context, r Repo, sns []*snapshot.Snapshot, mode string) (*StatsResult, error) {
	res := &StatsResult{Mode: mode, SnapshotsCount: len(sns)}
	var sizer BlobSizer
	seen := map[snapshot.ID]bool{}
	switch mode {
	case ModeRestoreSize:
	case ModeRawData:
		var ok bool
		if sizer, ok = r.(BlobSizer); !ok {
			return nil, fmt.Errorf("stats --mode raw-data: %w", snapshot.ErrUnsupported)
		}
	default:
		return nil, fmt.Errorf("stats: unknown mode %q (restore-size or raw-data)", mode)
	}
	blob := func(id snapshot.ID) error {
		if seen[id] {
			return nil
		}
		seen[id] = true
		stored, raw, ok := sizer.BlobSize(id)
		if !ok {
			return fmt.Errorf("blob %s is not in the index", id.Short())
		}
		res.TotalBlobCount++
		res.TotalSize += stored
		res.TotalUncompressedSize += raw
		return nil
	}
	for _, sn := range sns {
		if sizer != nil {
			for _, id := range sn.Tree {
				if err := blob(id); err != nil {
					return nil, fmt.Errorf("snapshot %s: %w", sn.ID.Short(), err)
				}
			}
		}
		tr, err := r.Tree(ctx, sn)
		if err != nil {
			return nil, err
		}
		for {
			n, err := next(tr)
			if err != nil {
				return nil, err
			}
			if n == nil {
				break
			}
			if sizer != nil {
				for _, id := range n.Content {
					if err := blob(id); err != nil {
						return nil, fmt.Errorf("snapshot %s: /%s: %w", sn.ID.Short(), n.Path, err)
					}
				}
				continue
			}
			res.TotalFileCount++
			if n.Type == snapshot.TypeFile {
				res.TotalSize += n.Size
			}
		}
	}
	if res.TotalSize > 0 && sizer != nil {
		res.CompressionRatio = float64(res.TotalUncompressedSize) / float64(res.TotalSize)
	}
	return res, nil
}
