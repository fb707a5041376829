package restore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"sync/atomic"

	"github.com/lifeboat-backup/lifeboat/engine/repo"
	"github.com/lifeboat-backup/lifeboat/targets"
	"github.com/lifeboat-backup/lifeboat/targets/files"
	"golang.org/x/sync/errgroup"
)

// Options configure a file restore.
type Options struct {
	// Include restricts the restore to these paths (as stored, e.g.
	// "media/catalog") and everything below them; their parent
	// directories are created. Empty: everything.
	Include  []string
	Workers  int
	Files    files.RestoreOptions
	Progress *Progress
}

// Progress counts a running restore.
type Progress struct {
	Files atomic.Int64
	Bytes atomic.Int64
}

// Stats summarize a restore.
type Stats struct {
	Files int64 `json:"files"`
	Dirs  int64 `json:"dirs"`
	Other int64 `json:"others"`
	Bytes int64 `json:"bytes"`
}

// selected reports whether path is to be restored (at or below an
// include) and whether it is a parent directory of an include, which is
// created but not restored whole.
func selected(path string, include []string) (restore, parent bool) {
	if len(include) == 0 {
		return true, false
	}
	for _, inc := range include {
		inc = strings.Trim(inc, "/")
		if inc == "" || path == inc || strings.HasPrefix(path, inc+"/") {
			return true, false
		}
		if strings.HasPrefix(inc, path+"/") {
			parent = true
		}
	}
	return false, parent
}

// Files restores the file entries of sn under dest. File contents are
// written by Workers goroutines in parallel, each blob read with one ranged
// read of its pack and verified against its ID.
func Files(ctx context.Context, r *repo.Repository, sn *repo.Snapshot, dest string, opts Options) (*Stats, error) {
	if opts.Workers <= 0 {
		opts.Workers = runtime.GOMAXPROCS(0)
	}
	if opts.Progress == nil {
		opts.Progress = &Progress{}
	}
	for _, inc := range opts.Include {
		if err := files.CheckPath(strings.Trim(inc, "/")); err != nil {
			return nil, fmt.Errorf("--include %q: %w", inc, err)
		}
	}
	rs, err := files.NewRestorer(dest, opts.Files)
	if err != nil {
		return nil, err
	}
	st := &Stats{}
	matched := false
	g, gctx := errgroup.WithContext(ctx)
	// The reader creates files ahead of the workers (it also handles
	// directories and links), so give it room to run ahead.
	jobs := make(chan fileJob, 64)
	for range opts.Workers {
		g.Go(func() error {
			var buf []byte
			for j := range jobs {
				var err error
				if buf, err = restoreFile(gctx, r, rs, j, buf, opts.Progress); err != nil {
					return err
				}
			}
			return nil
		})
	}
	// Content of multiply linked files by path, for a hard link whose first
	// path is not restored (outside --include): it becomes a plain copy.
	linked := map[string]*repo.Node{}
	sendFile := func(n *repo.Node) error {
		// Created here, in snapshot order, so later hard links find it.
		f, err := rs.File(n.Entry)
		if err != nil {
			return err
		}
		select {
		case jobs <- fileJob{n, f}:
			return nil
		case <-gctx.Done():
			f.Close()
			return gctx.Err()
		}
	}
	g.Go(func() error {
		defer close(jobs)
		tr := r.NewTreeReader(gctx, sn)
		for {
			n, err := tr.Next()
			if err == io.EOF {
				return nil
			}
			if err != nil {
				return err
			}
			if n.Type == targets.TypeFile && n.Links > 1 {
				linked[n.Path] = n
			}
			sel, parent := selected(n.Path, opts.Include)
			if !sel && !parent {
				continue
			}
			matched = matched || sel
			switch n.Type {
			case targets.TypeDir:
				st.Dirs++
				if err := rs.Dir(n.Entry); err != nil {
					return err
				}
				if err := rs.Finish(n.Entry); err != nil {
					return err
				}
			case targets.TypeFile:
				st.Files++
				st.Bytes += n.Size
				if err := sendFile(n); err != nil {
					return err
				}
			default:
				st.Other++
				err := rs.Other(n.Entry)
				if t := linked[n.HardlinkTo]; errors.Is(err, files.ErrHardlinkTarget) && t != nil {
					cp := *t
					cp.Path = n.Path
					if err := sendFile(&cp); err != nil {
						return err
					}
					continue
				}
				if err != nil {
					return err
				}
				if err := rs.Finish(n.Entry); err != nil {
					return err
				}
				opts.Progress.Files.Add(1)
			}
		}
	})
	err = g.Wait()
	if cerr := rs.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, err
	}
	if !matched && len(opts.Include) > 0 {
		return nil, fmt.Errorf("--include %s: %w in snapshot %s", strings.Join(opts.Include, ", "), repo.ErrNotFound, sn.ID.Short())
	}
	return st, nil
}

type fileJob struct {
	n *repo.Node
	f *os.File
}

func restoreFile(ctx context.Context, r *repo.Repository, rs *files.Restorer, j fileJob, buf []byte, p *Progress) ([]byte, error) {
	n, f := j.n, j.f
	var off int64
	for _, id := range n.Content {
		data, err := r.LoadBlob(ctx, id, buf)
		if err != nil {
			f.Close()
			return buf, fmt.Errorf("restore %s: %w", n.Path, err)
		}
		if err := files.WriteAtSparse(f, data, off); err != nil {
			f.Close()
			return buf, fmt.Errorf("restore %s: %w", n.Path, err)
		}
		off += int64(len(data))
		p.Bytes.Add(int64(len(data)))
		buf = data[:0]
	}
	if off != n.Size {
		f.Close()
		return buf, fmt.Errorf("restore %s: content is %d bytes, metadata says %d", n.Path, off, n.Size)
	}
	if err := rs.FinishFile(f, n.Entry); err != nil {
		f.Close()
		return buf, err
	}
	if err := f.Close(); err != nil {
		return buf, fmt.Errorf("restore %s: %w", n.Path, err)
	}
	p.Files.Add(1)
	return buf, nil
}
