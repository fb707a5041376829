package restore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"golang.org/x/sync/errgroup"

	"github.com/lifeboat-backup/lifeboat/engine/repo"
	"github.com/lifeboat-backup/lifeboat/engine/snapshot"
	"github.com/lifeboat-backup/lifeboat/targets/files"
)

// includes are restic's --include patterns: a pattern is matched against
// a stored path one element at a time (path.Match: *, ?, [...] within an
// element; ** any number of elements). A pattern that starts with / is
// anchored at the snapshot's top level, one without matches at any depth
// (bin/gunzip also matches usr/lib/bin/gunzip), and an entry matched
// selects everything below it.
type includes [][]string

func parseIncludes(pats []string) (includes, error) {
	var out includes
	for _, pat := range pats {
		anchored := strings.HasPrefix(pat, "/")
		p := strings.Trim(pat, "/")
		if p == "" {
			return nil, fmt.Errorf("--include %q: an empty pattern", pat)
		}
		elems := strings.Split(p, "/")
		for _, e := range elems {
			if e == "" || e == "." || e == ".." {
				return nil, fmt.Errorf("--include %q: %w: %q element", pat, files.ErrUnsafePath, e)
			}
			if _, err := path.Match(e, ""); err != nil {
				return nil, fmt.Errorf("--include %q: %w", pat, err)
			}
		}
		if !anchored {
			elems = append([]string{"**"}, elems...)
		}
		out = append(out, append(elems, "**")) // and everything below
	}
	return out, nil
}

// match reports whether the stored path p is selected (no patterns:
// everything is).
func (inc includes) match(p string) bool {
	if len(inc) == 0 {
		return true
	}
	elems := strings.Split(p, "/")
	for _, pat := range inc {
		if matchElems(pat, elems) {
			return true
		}
	}
	return false
}

func matchElems(pat, elems []string) bool {
	for len(pat) > 0 {
		if pat[0] == "**" {
			for i := 0; i <= len(elems); i++ {
				if matchElems(pat[1:], elems[i:]) {
					return true
				}
			}
			return false
		}
		if len(elems) == 0 {
			return false
		}
		if ok, _ := path.Match(pat[0], elems[0]); !ok {
			return false
		}
		pat, elems = pat[1:], elems[1:]
	}
	return len(elems) == 0
}

// includeHint explains, when the patterns matched nothing, how paths are
// stored: under each root's base name (/srv/www/img is www/img), with the
// snapshot's top level and a few stored paths, and the pattern rewritten
// when it names a source path.
func includeHint(sn *snapshot.Snapshot, pats, top, samples []string) string {
	if len(top) == 0 {
		return ""
	}
	var b strings.Builder
	fmt.Fprintf(&b, " (paths are stored under each root's base name, not the source path: the snapshot's top level is %s", strings.Join(top, ", "))
	if len(samples) > 0 {
		fmt.Fprintf(&b, "; stored paths look like %s", strings.Join(samples, ", "))
	}
	for _, pat := range pats {
		elems := strings.Split(strings.Trim(pat, "/"), "/")
		for i, e := range elems {
			if i > 0 && slices.Contains(top, e) {
				fmt.Fprintf(&b, "; for %s try --include %s", pat, strings.Join(elems[i:], "/"))
				break
			}
		}
	}
	fmt.Fprintf(&b, ". Patterns work as restic's: * ? [...] within a name, ** across directories, a leading / anchors at the top level; `lifeboat ls %s` lists the paths)", sn.ID.Short())
	return b.String()
}

// Files restores the file entries of sn under dest. File contents are
// written by Workers goroutines in parallel, each blob read with one ranged
// read of its pack and verified against its ID; a big file is written in
// segments by several workers at once (fileJobs). Each file is written
// under a temporary name and renamed into place when complete
// (files.Restorer). The worker that writes a file also creates it: on a
// file system where creating an inode is costly (ext4 without a journal
// skips recently deleted inodes one by one), many small files are then
// created on every core, not by the one goroutine that reads the tree.
//
// An entry that cannot be restored (a damaged or missing pack, an unsafe
// path, a conflict in dest) is reported through OnFailure and left out,
// and the restore goes on; at the end Files returns the Stats and an
// *IncompleteError listing the failures. Other errors (the snapshot's
// metadata cannot be read, the context ends) stop the restore.
func Files(ctx context.Context, r *repo.Repository, sn *snapshot.Snapshot, dest string, opts snapshot.RestoreOptions) (*snapshot.RestoreStats, error) {
	if !r.CanReadData() {
		return nil, fmt.Errorf("restore snapshot %s: %w", sn.ID.Short(), repo.ErrNoDataKey)
	}
	if opts.Workers <= 0 {
		opts.Workers = runtime.GOMAXPROCS(0)
	}
	if opts.Progress == nil {
		opts.Progress = &snapshot.Progress{}
	}
	inc, err := parseIncludes(opts.Include)
	if err != nil {
		return nil, err
	}
	rs, err := files.NewRestorer(dest, opts.Entries)
	if err != nil {
		return nil, err
	}
	st := &snapshot.RestoreStats{}
	var restored, bytes atomic.Int64
	var fmu sync.Mutex
	var failures []snapshot.Failure
	fail := func(path string, err error) {
		fmu.Lock()
		defer fmu.Unlock()
		f := snapshot.Failure{Path: path, Err: err}
		failures = append(failures, f)
		if opts.OnFailure != nil {
			opts.OnFailure(f)
		}
	}
	matched := false
	var top, samples []string // the first top-level entries and deeper paths, for the hint
	// Directories not selected themselves are created only once an entry
	// below them is (a pattern may match at any depth).
	pending := map[string]*snapshot.Node{}
	g, gctx := errgroup.WithContext(ctx)
	// The reader resolves the directories of files ahead of the workers
	// (it also handles directories and links), so give it room to run
	// ahead.
	jobs := make(chan fileJob, 64)
	for range opts.Workers {
		g.Go(func() error {
			var buf []byte
			for j := range jobs {
				if gctx.Err() != nil {
					// Cancelled: drain the jobs, leaving no temporary file.
					abortJob(j, gctx.Err())
					continue
				}
				if j.create {
					if err := j.f.Create(); err != nil {
						if gctx.Err() == nil {
							fail(j.n.Path, err)
						}
						continue
					}
				}
				var err error
				buf, err = restoreFile(gctx, r, j, buf, opts.Progress)
				if j.seg != nil {
					if err = j.seg.done(err); err == errMoreSegments {
						continue
					}
				}
				if err == nil {
					err = commitFile(j, opts.Progress)
				}
				if err != nil {
					j.f.Abort()
					if gctx.Err() == nil {
						fail(j.n.Path, err)
					}
					continue
				}
				restored.Add(1)
				bytes.Add(j.n.Size)
			}
			return gctx.Err()
		})
	}
	// Content of multiply linked files by path, for a hard link whose first
	// path is not restored (outside --include): it becomes a plain copy.
	linked := map[string]*snapshot.Node{}
	// Multiply linked files sent to the workers: their hard links are made
	// once all files are committed.
	sent := map[string]bool{}
	var links []*snapshot.Node
	sendFile := func(n *snapshot.Node) error {
		f, err := rs.PrepareFile(n.Entry)
		if err != nil {
			fail(n.Path, err)
			return nil
		}
		js := fileJobs(r, n, f, opts.Workers)
		if len(js) == 1 {
			js[0].create = true // by the worker that writes it
		} else if err := f.Create(); err != nil {
			// Segments share the file: it exists before they go out.
			fail(n.Path, err)
			return nil
		}
		if n.Links > 1 {
			sent[n.Path] = true
		}
		for i, j := range js {
			select {
			case jobs <- j:
			case <-gctx.Done():
				for _, j := range js[i:] {
					abortJob(j, gctx.Err())
				}
				return gctx.Err()
			}
		}
		return nil
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
			if n.Type == snapshot.TypeFile && n.Links > 1 {
				linked[n.Path] = n
			}
			if !strings.Contains(n.Path, "/") && len(top) < 4 {
				top = append(top, n.Path) // for the hint when nothing matches
			} else if strings.Count(n.Path, "/") > 0 && len(samples) < 3 && n.Type != snapshot.TypeDir {
				samples = append(samples, n.Path)
			}
			if !inc.match(n.Path) {
				if n.Type == snapshot.TypeDir {
					pending[n.Path] = n
				}
				continue
			}
			matched = true
			// Create the directories above n that were put off.
			for i := 0; i < len(n.Path); i++ {
				if n.Path[i] != '/' {
					continue
				}
				d := pending[n.Path[:i]]
				if d == nil {
					continue
				}
				delete(pending, d.Path)
				err := rs.Dir(d.Entry)
				if err == nil {
					err = rs.Finish(d.Entry)
				}
				if err != nil {
					fail(d.Path, err)
					continue
				}
				st.Dirs++
			}
			switch n.Type {
			case snapshot.TypeDir:
				err := rs.Dir(n.Entry)
				if err == nil {
					err = rs.Finish(n.Entry)
				}
				if err != nil {
					fail(n.Path, err)
					continue
				}
				st.Dirs++
			case snapshot.TypeFile:
				if err := sendFile(n); err != nil {
					return err
				}
			case snapshot.TypeHardlink:
				if sent[n.HardlinkTo] {
					links = append(links, n)
					continue
				}
				if t := linked[n.HardlinkTo]; t != nil {
					// The first path is not restored: a plain copy.
					cp := *t
					cp.Path = n.Path
					if err := sendFile(&cp); err != nil {
						return err
					}
					continue
				}
				fail(n.Path, fmt.Errorf("link to %q: %w", n.HardlinkTo, files.ErrHardlinkTarget))
			default:
				err := rs.Other(n.Entry)
				if errors.Is(err, files.ErrDeviceSkipped) {
					st.DevicesSkipped++
					continue
				}
				if err == nil {
					err = rs.Finish(n.Entry)
				}
				if err != nil {
					fail(n.Path, err)
					continue
				}
				st.Other++
				opts.Progress.Restored(n.Path, 0)
			}
		}
	})
	err = g.Wait()
	if err == nil {
		for _, n := range links {
			if err := rs.Other(n.Entry); err != nil {
				fail(n.Path, err)
				continue
			}
			st.Other++
			opts.Progress.Restored(n.Path, 0)
		}
	}
	if cerr := rs.Close(); err == nil && cerr != nil {
		for _, e := range unjoin(cerr) {
			var pe *fs.PathError
			if errors.As(e, &pe) {
				fail(pe.Path, pe.Err)
			} else {
				fail("", e)
			}
		}
	}
	if err != nil {
		return nil, err
	}
	if !matched && len(opts.Include) > 0 {
		return nil, fmt.Errorf("--include %s: %w in snapshot %s%s", strings.Join(opts.Include, ", "), repo.ErrNotFound, sn.ID.Short(),
			includeHint(sn, opts.Include, top, samples))
	}
	st.Files, st.Bytes, st.Failed = restored.Load(), bytes.Load(), int64(len(failures))
	if len(failures) > 0 {
		return st, &snapshot.IncompleteError{Failures: failures}
	}
	return st, nil
}

// unjoin splits an errors.Join result into its errors.
func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

// fileJob is a file to write, whole or one segment of it: blobs, the
// file's content from offset off on.
type fileJob struct {
	n     *snapshot.Node
	f     *files.File
	blobs []snapshot.ID
	off   int64
	size  int64     // content bytes of blobs
	seg   *segments // nil: the whole file
	// create: f is only prepared (files.Restorer.PrepareFile); the worker
	// creates it before writing.
	create bool
}

// segmentBytes: files with at least 2 x segmentBytes of content (and more
// than one blob) are written in segments of about this size by several
// workers at once, so that a big file at the end of a restore keeps every
// core busy instead of one.
const segmentBytes = 8 << 20

// segments tracks the segments of one file: the worker that ends the last
// one commits the file (or aborts it if one failed).
type segments struct {
	pending atomic.Int32
	mu      sync.Mutex
	err     error
}

// errMoreSegments: other segments of the file are still being written.
var errMoreSegments = errors.New("more segments to come")

// done records the end of one segment (err: its failure) and returns
// errMoreSegments unless it was the last; the last gets the first error.
func (s *segments) done(err error) error {
	s.mu.Lock()
	if s.err == nil {
		s.err = err
	}
	s.mu.Unlock()
	if s.pending.Add(-1) > 0 {
		return errMoreSegments
	}
	return s.err
}

// failed tells whether a segment of the file failed already.
func (s *segments) failed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err != nil
}

// fileJobs returns the jobs that write n into f: one for the whole file,
// or segments of about segmentBytes (blob sizes from the index) when the
// file is big, there are several workers, and every blob is indexed.
func fileJobs(r *repo.Repository, n *snapshot.Node, f *files.File, workers int) []fileJob {
	whole := []fileJob{{n: n, f: f, blobs: n.Content, size: n.Size}}
	if workers < 2 || n.Size < 2*segmentBytes || len(n.Content) < 2 {
		return whole
	}
	var jobs []fileJob
	start, off, segOff := 0, int64(0), int64(0)
	for i, id := range n.Content {
		loc, ok := r.Index().Lookup(id)
		if !ok {
			return whole // LoadBlob names the missing blob
		}
		off += int64(loc.RawLength)
		if off-segOff >= segmentBytes || i == len(n.Content)-1 {
			jobs = append(jobs, fileJob{n: n, f: f, blobs: n.Content[start : i+1], off: segOff, size: off - segOff})
			start, segOff = i+1, off
		}
	}
	if off != n.Size {
		return whole // the whole-file job reports the mismatch
	}
	if len(jobs) < 2 {
		return whole
	}
	seg := &segments{}
	seg.pending.Store(int32(len(jobs)))
	for i := range jobs {
		jobs[i].seg = seg
	}
	return jobs
}

// abortJob drops job j unwritten (err: why): the file is aborted unless
// other segments of it are still out (the last one aborts it).
func abortJob(j fileJob, err error) {
	if j.seg == nil || j.seg.done(err) != errMoreSegments {
		j.f.Abort()
	}
}

// restoreFile writes j's blobs at their offsets; on an error the caller
// aborts the file.
func restoreFile(ctx context.Context, r *repo.Repository, j fileJob, buf []byte, p *snapshot.Progress) ([]byte, error) {
	if j.seg != nil && j.seg.failed() {
		return buf, nil // the failed segment's error is reported
	}
	off := j.off
	for _, id := range j.blobs {
		data, err := r.LoadBlob(ctx, id, buf)
		if err != nil {
			return buf, err
		}
		if err := files.WriteAtSparse(j.f, data, off); err != nil {
			return buf, err
		}
		off += int64(len(data))
		p.Bytes.Add(int64(len(data)))
		buf = data[:0]
	}
	if off-j.off != j.size {
		if j.seg == nil {
			return buf, fmt.Errorf("content is %d bytes, metadata says %d", off, j.n.Size)
		}
		return buf, fmt.Errorf("content at %d is %d bytes, the index says %d", j.off, off-j.off, j.size)
	}
	return buf, nil
}

// commitFile commits a file whose content is written.
func commitFile(j fileJob, p *snapshot.Progress) error {
	if err := j.f.Commit(); err != nil {
		return err
	}
	p.Restored(j.n.Path, j.n.Size)
	return nil
}
