package engine

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/lifeboat-backup/lifeboat/engine/snapshot"
	"github.com/lifeboat-backup/lifeboat/targets/files"
)

// Opener opens the content of a file entry. It is an alias, so targets
// implement Source without importing engine.
type Opener = func() (io.ReadCloser, error)

// Source is what a target offers to back up: its entries in
// targets.ComparePaths order, with a way to read each file's content.
// A Source reports entries it cannot read through warn and goes on; an
// error it returns aborts the backup.
type Source interface {
	Kind() string
	Paths() []string
	Walk(ctx context.Context, warn func(path string, err error), fn func(e snapshot.Entry, open Opener) error) error
}

// RecoveryPointer is implemented by sources whose data is consistent with
// a moment of their own (a database's consistent snapshot) rather than the
// backup's start. Backup calls it after Walk returns and records the time
// and details (binlog file/position, GTID set, LSN) in the snapshot.
// Details must hold no secret.
type RecoveryPointer interface {
	RecoveryPoint() (time.Time, map[string]string)
}

// AllOrNothing is implemented by sources whose entries form one consistent
// whole, such as a database dump: every entry is read each time (no reuse
// of the parent snapshot's content by metadata), and an entry that cannot
// be read fails the backup instead of being skipped with a warning.
type AllOrNothing interface {
	AllOrNothing() bool
}

// FilesSource backs up directory trees.
type FilesSource struct {
	Roots   []string
	Options files.Options
}

// Kind implements Source.
func (s *FilesSource) Kind() string { return "files" }

// Paths implements Source.
func (s *FilesSource) Paths() []string { return s.Roots }

// Walk implements Source.
func (s *FilesSource) Walk(ctx context.Context, warn func(string, error), fn func(snapshot.Entry, Opener) error) error {
	// A missing root is a mistake in the command or policy, not unreadable
	// data: fail before a misleading empty snapshot is saved.
	for _, root := range s.Roots {
		if _, err := os.Lstat(root); err != nil {
			return fmt.Errorf("backup root: %w", err)
		}
	}
	opts := s.Options
	opts.OnError = func(path string, err error) error {
		warn(path, err)
		return nil
	}
	return files.Walk(ctx, s.Roots, opts, func(e snapshot.Entry, src string) error {
		var open Opener
		if e.Type == snapshot.TypeFile {
			open = func() (io.ReadCloser, error) { return files.Open(src, e) }
		}
		return fn(e, open)
	})
}
