package repo

import (
	"context"
	"fmt"
	"io"

	"github.com/lifeboat-backup/lifeboat/engine/snapshot"
)

// SnapshotReader is sn of r as a snapshot.Reader: its nodes from the
// metadata stream, file contents from the blobs (which need the owner
// key; OpenSnapshot checks for it).
func (r *Repository) SnapshotReader(sn *snapshot.Snapshot) snapshot.Reader {
	return nativeSnapshot{r: r, sn: sn}
}

// OpenSnapshot is SnapshotReader for callers that read content: without
// the owner key it fails with ErrNoDataKey before anything is read.
func (r *Repository) OpenSnapshot(_ context.Context, sn *snapshot.Snapshot) (snapshot.Reader, error) {
	if !r.CanReadData() {
		return nil, fmt.Errorf("snapshot %s: %w", sn.ID.Short(), ErrNoDataKey)
	}
	return r.SnapshotReader(sn), nil
}

type nativeSnapshot struct {
	r  *Repository
	sn *snapshot.Snapshot
}

func (s nativeSnapshot) Info() *snapshot.Snapshot { return s.sn }

func (s nativeSnapshot) Tree(ctx context.Context) snapshot.TreeReader {
	return s.r.NewTreeReader(ctx, s.sn)
}

func (nativeSnapshot) Close() error { return nil }

func (s nativeSnapshot) Open(ctx context.Context, n *snapshot.Node) io.ReadCloser {
	return io.NopCloser(s.r.NewBlobReader(ctx, n.Content))
}

// Repository gives the repository the snapshot is read from: restores
// that work on blobs directly (volumes, in parallel) ask for it.
func (s nativeSnapshot) Repository() *Repository { return s.r }
