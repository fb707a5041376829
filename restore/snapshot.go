package restore

import (
	"context"
	"fmt"
	"io"

	"github.com/lifeboat-backup/lifeboat/engine/repo"
)

// Snapshot is what the stream restores (databases, exec, bucket) read: a
// snapshot's record, its nodes in tree order and the content of its files.
// The native repository provides one through FromRepository; another
// engine (engine/restic) provides its own, so the same restore code serves
// both. File-tree and volume restores work on blobs and stay native.
type Snapshot interface {
	// Info is the snapshot record: ID, time, target, kind, recovery point.
	Info() *repo.Snapshot
	// Tree reads the snapshot's nodes in tree order.
	Tree(ctx context.Context) TreeReader
	// Open streams the content of a file node. The content is verified as
	// it is read: a read error reports corruption or a missing object.
	Open(ctx context.Context, n *repo.Node) io.ReadCloser
	// Close releases what reading took (another engine's processes).
	Close() error
}

// TreeReader yields nodes until io.EOF.
type TreeReader interface {
	Next() (*repo.Node, error)
}

// FromRepository is a native repository snapshot as a Snapshot.
func FromRepository(r *repo.Repository, sn *repo.Snapshot) Snapshot {
	return nativeSnapshot{r: r, sn: sn}
}

type nativeSnapshot struct {
	r  *repo.Repository
	sn *repo.Snapshot
}

func (s nativeSnapshot) Info() *repo.Snapshot { return s.sn }

func (s nativeSnapshot) Tree(ctx context.Context) TreeReader { return s.r.NewTreeReader(ctx, s.sn) }

func (nativeSnapshot) Close() error { return nil }

func (s nativeSnapshot) Open(ctx context.Context, n *repo.Node) io.ReadCloser {
	return io.NopCloser(s.r.NewBlobReader(ctx, n.Content))
}

// Sequential is implemented by snapshots whose files can only be read one
// at a time in tree order (a stream archive in another engine): restores
// then use one worker and open files in tree order.
type Sequential interface {
	Sequential() bool
}

// jobs is the number of files a restore of s reads at once: want, or 1
// when s is sequential.
func jobs(s Snapshot, want int) int {
	if sq, ok := s.(Sequential); ok && sq.Sequential() {
		return 1
	}
	return want
}

// ReadNode reads a small file node whole (schemas, views, account lists).
func ReadNode(ctx context.Context, s Snapshot, n *repo.Node) ([]byte, error) {
	rc := s.Open(ctx, n)
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", n.Path, err)
	}
	return b, nil
}
