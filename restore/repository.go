package restore

import (
	"context"
	"fmt"

	"github.com/lifeboat-backup/lifeboat/engine/repo"
)

// Repository is a repository as restores, drills and exports read it: the
// native repository (Native) or a restic repository (engine/restic's
// Engine). Database, exec, bucket and volume snapshots are read through
// Open as a Snapshot on both; file trees are restored by the engine
// itself (restic keeps them as its own trees).
type Repository interface {
	// FindSnapshot picks ref: "latest" is the newest snapshot filter keeps
	// (nil: any), anything else a unique ID prefix.
	FindSnapshot(ctx context.Context, ref string, filter func(*repo.Snapshot) bool) (*repo.Snapshot, error)
	// Open gives the nodes and contents of a snapshot that is not a
	// files snapshot of another engine. Close it after use.
	Open(ctx context.Context, sn *repo.Snapshot) (Snapshot, error)
	// RestoreFiles restores a files snapshot under dest with the native
	// layout (each root at dest/BASENAME).
	RestoreFiles(ctx context.Context, sn *repo.Snapshot, dest string) (*Stats, error)
}

// WithSnapshot opens sn on r, runs fn on it and closes it; a failed Close
// (a restic dump pass that ended badly) is the error when fn succeeded.
func WithSnapshot(ctx context.Context, r Repository, sn *repo.Snapshot, fn func(Snapshot) error) error {
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

// Native is the native repository as a Repository.
type Native struct{ R *repo.Repository }

// FindSnapshot implements Repository.
func (n Native) FindSnapshot(ctx context.Context, ref string, filter func(*repo.Snapshot) bool) (*repo.Snapshot, error) {
	return n.R.FindSnapshot(ctx, ref, filter)
}

// Open implements Repository; it needs the owner key.
func (n Native) Open(_ context.Context, sn *repo.Snapshot) (Snapshot, error) {
	if !n.R.CanReadData() {
		return nil, fmt.Errorf("snapshot %s: %w", sn.ID.Short(), repo.ErrNoDataKey)
	}
	return FromRepository(n.R, sn), nil
}

// RestoreFiles implements Repository.
func (n Native) RestoreFiles(ctx context.Context, sn *repo.Snapshot, dest string) (*Stats, error) {
	return Files(ctx, n.R, sn, dest, Options{})
}
