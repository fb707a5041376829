package snapshot

import (
	"context"
	"errors"
	"fmt"
	"io"
)

// RestoreStats summarize a restore: what was restored, what failed, and the
// device nodes left out (files.ErrDeviceSkipped).
type RestoreStats struct {
	Files          int64 `json:"files"`
	Dirs           int64 `json:"dirs"`
	Other          int64 `json:"others"`
	Bytes          int64 `json:"bytes"`
	Failed         int64 `json:"failed"`
	DevicesSkipped int64 `json:"devices_skipped"`
}

// Reader is what the stream restores (databases, exec, bucket) read: a
// snapshot's record, its nodes in tree order and the content of its files.
// The native repository provides one (repo.Repository.OpenSnapshot); another
// engine (engine/restic) provides its own, so the same restore code serves
// both. File-tree and volume restores work on blobs and stay native.
type Reader interface {
	// Info is the snapshot record: ID, time, target, kind, recovery point.
	Info() *Snapshot
	// Tree reads the snapshot's nodes in tree order.
	Tree(ctx context.Context) TreeReader
	// Open streams the content of a file node. The content is verified as
	// it is read: a read error reports corruption or a missing object.
	Open(ctx context.Context, n *Node) io.ReadCloser
	// Close releases what reading took (another engine's processes).
	Close() error
}

// TreeReader yields nodes until io.EOF.
type TreeReader interface {
	Next() (*Node, error)
}

// ReadNode reads a small file node whole (schemas, views, account lists).
func ReadNode(ctx context.Context, s Reader, n *Node) ([]byte, error) {
	rc := s.Open(ctx, n)
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", n.Path, err)
	}
	return b, nil
}

// ErrUnsupported is returned (wrapped, saying what) when an engine cannot
// do what a restore asks of it; commands report it as a usage error.
var ErrUnsupported = errors.New("not supported by this repository engine")

// Repository is a repository as restores, drills and exports read it: the
// native repository (engine.Native) or a restic repository (engine/restic's
// Engine). Database, exec, bucket and volume snapshots are read through
// Open as a Snapshot on both; file trees are restored by the engine
// itself (restic keeps them as its own trees).
type Repository interface {
	// FindSnapshot picks ref: "latest" is the newest snapshot filter keeps
	// (nil: any), anything else a unique ID prefix.
	FindSnapshot(ctx context.Context, ref string, filter func(*Snapshot) bool) (*Snapshot, error)
	// Open gives the nodes and contents of a snapshot that is not a
	// files snapshot of another engine. Close it after use.
	Open(ctx context.Context, sn *Snapshot) (Reader, error)
	// RestoreFiles restores a files snapshot under dest with the native
	// layout (each root at dest/BASENAME).
	RestoreFiles(ctx context.Context, sn *Snapshot, dest string, opts RestoreOptions) (*RestoreStats, error)
	// CanReadData reports whether contents can be read: a native
	// repository opened with a host key can list snapshots and their
	// trees, not their data.
	CanReadData() bool
}

// WithReader opens sn on r, runs fn on it and closes it; a failed Close
// (a restic dump pass that ended badly) is the error when fn succeeded.
func WithReader(ctx context.Context, r Repository, sn *Snapshot, fn func(Reader) error) error {
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
