package browse

import (
	"context"
	"fmt"
	"io"

	"github.com/lifeboat-backup/lifeboat/engine"
	"github.com/lifeboat-backup/lifeboat/engine/snapshot"
)

// Repo is a repository as browsing reads it.
type Repo interface {
	// Snapshots lists all snapshots, oldest first.
	Snapshots(ctx context.Context) ([]*snapshot.Snapshot, error)
	// FindSnapshot picks ref ("latest" or an ID prefix) among the
	// snapshots filter keeps (nil: all).
	FindSnapshot(ctx context.Context, ref string, filter func(*snapshot.Snapshot) bool) (*snapshot.Snapshot, error)
	// Tree reads a snapshot's nodes in tree order (snapshot.ComparePaths).
	// The native engine needs only the host key for it.
	Tree(ctx context.Context, sn *snapshot.Snapshot) (snapshot.TreeReader, error)
	// Open gives the contents of a snapshot's files; it needs the owner key.
	Open(ctx context.Context, sn *snapshot.Snapshot) (snapshot.Reader, error)
	// CanReadData reports whether Open can read contents.
	CanReadData() bool
}

// BlobSizer is what stats --mode raw-data needs besides Repo: the stored
// and plaintext sizes of a blob (the native engine's index).
type BlobSizer interface {
	BlobSize(id snapshot.ID) (stored, raw int64, ok bool)
}

// Engine is e as a Repo: the native engine reads trees with the host key;
// on restic, stream snapshots are read through restic dump (the owner
// key's password) and files snapshots are restic's own trees, refused
// with snapshot.ErrUnsupported (restic ls/find/diff/dump read them).
func Engine(e engine.Engine) Repo {
	if n, ok := e.(engine.Native); ok {
		return native{n}
	}
	return other{e}
}

type native struct{ engine.Native }

func (n native) Tree(ctx context.Context, sn *snapshot.Snapshot) (snapshot.TreeReader, error) {
	return n.R.NewTreeReader(ctx, sn), nil
}

// BlobSize implements BlobSizer.
func (n native) BlobSize(id snapshot.ID) (stored, raw int64, ok bool) {
	loc, ok := n.R.Index().Lookup(id)
	if !ok {
		return 0, 0, false
	}
	return int64(loc.Length), int64(loc.RawLength), true
}

type other struct{ engine.Engine }

// Tree reads the snapshot through the engine's reader, whole: the
// reader's processes end with Close.
func (o other) Tree(ctx context.Context, sn *snapshot.Snapshot) (snapshot.TreeReader, error) {
	var nodes []*snapshot.Node
	err := snapshot.WithReader(ctx, o.Engine, sn, func(s snapshot.Reader) error {
		var err error
		nodes, err = readAll(s.Tree(ctx))
		return err
	})
	if err != nil {
		return nil, err
	}
	return &sliceTree{nodes: nodes}, nil
}

// readAll reads a tree whole.
func readAll(tr snapshot.TreeReader) ([]*snapshot.Node, error) {
	var nodes []*snapshot.Node
	for {
		n, err := tr.Next()
		if err == io.EOF {
			return nodes, nil
		}
		if err != nil {
			return nil, err
		}
		nodes = append(nodes, n)
	}
}

type sliceTree struct{ nodes []*snapshot.Node }

func (s *sliceTree) Next() (*snapshot.Node, error) {
	if len(s.nodes) == 0 {
		return nil, io.EOF
	}
	n := s.nodes[0]
	s.nodes = s.nodes[1:]
	return n, nil
}

// withReader opens sn for its contents, runs fn and closes it.
func withReader(ctx context.Context, r Repo, sn *snapshot.Snapshot, fn func(snapshot.Reader) error) error {
	s, err := r.Open(ctx, sn)
	if err != nil {
		return err
	}
	err = fn(s)
	if cerr := s.Close(); err == nil && cerr != nil {
		return fmt.Errorf("snapshot %s: %w", sn.ID.Short(), cerr)
	}
	return err
}
