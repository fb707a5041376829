package files

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/lifeboat-backup/lifeboat/engine/snapshot"
)

// Source backs up directory trees (a files target).
type Source struct {
	Roots   []string
	Options Options
}

// Kind implements engine.Source.
func (s *Source) Kind() string { return "files" }

// Paths implements engine.Source.
func (s *Source) Paths() []string { return s.Roots }

// Walk implements engine.Source.
func (s *Source) Walk(ctx context.Context, warn func(string, error), fn func(snapshot.Entry, func() (io.ReadCloser, error)) error) error {
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
	return Walk(ctx, s.Roots, opts, func(e snapshot.Entry, src string) error {
		var open func() (io.ReadCloser, error)
		if e.Type == snapshot.TypeFile {
			open = func() (io.ReadCloser, error) { return Open(src, e) }
		}
		return fn(e, open)
	})
}
