// Package volume backs up a block device or a disk image file as one
// entry. Optional before/after hooks (an LVM snapshot, fsfreeze) run around
// the read; after always runs once before was attempted. The volume is cut
// into aligned fixed-size blocks (engine.FixedBlocks), not content-defined
// chunks: data on a block device changes in place, so a write costs the
// blocks it touches and nothing around them. Holes of image files
// (SEEK_DATA/SEEK_HOLE) are never read: they are produced as zeros in
// memory, and every all-zero block has the same ID and is stored once.
package volume

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/lifeboat-backup/lifeboat/engine/snapshot"
	lbexec "github.com/lifeboat-backup/lifeboat/targets/exec"
)

// HookTimeout bounds each hook.
const HookTimeout = 10 * time.Minute

// Options configure a volume source.
type Options struct {
	// Path of the block device or image file.
	Path string
	// Name is the entry path in the snapshot (default: the base name of Path).
	Name string
	// Before and After are argv run before and after the read (no shell).
	Before, After []string
	// BlockSize is the size of the aligned blocks the volume is cut into: a
	// power of two from MinBlockSize to MaxBlockSize (default
	// DefaultBlockSize).
	BlockSize int
}

// Block sizes. Smaller blocks store less around each write but cost one
// blob ID (32 bytes in memory, about 70 in the metadata stream) per block
// of the volume: 256 KiB gives 4096 IDs per GiB.
const (
	DefaultBlockSize = 256 << 10
	MinBlockSize     = 4 << 10
	MaxBlockSize     = 16 << 20
)

// Source reads one volume. It has the method set of engine.Source and
// engine.AllOrNothing.
type Source struct {
	opts Options
}

// New checks the options.
func New(opts Options) (*Source, error) {
	if opts.Path == "" {
		return nil, errors.New("volume: no path")
	}
	if opts.Name == "" {
		opts.Name = filepath.Base(opts.Path)
	}
	if opts.BlockSize == 0 {
		opts.BlockSize = DefaultBlockSize
	}
	if bs := opts.BlockSize; bs < MinBlockSize || bs > MaxBlockSize || bs&(bs-1) != 0 {
		return nil, fmt.Errorf("volume: block size %d must be a power of two from %d to %d", bs, MinBlockSize, MaxBlockSize)
	}
	return &Source{opts: opts}, nil
}

// BlockSize implements engine.FixedBlocks.
func (s *Source) BlockSize() int { return s.opts.BlockSize }

// Kind implements engine.Source.
func (s *Source) Kind() string { return "volume" }

// Paths implements engine.Source.
func (s *Source) Paths() []string { return []string{s.opts.Path} }

// AllOrNothing implements engine.AllOrNothing: a volume is one whole and
// is read each time (chunks dedupe against the previous days).
func (s *Source) AllOrNothing() bool { return true }

// Walk implements engine.Source: runs before, emits the volume's entry,
// waits until the engine has read it (or given up), then runs after.
func (s *Source) Walk(ctx context.Context, warn func(string, error), fn func(snapshot.Entry, func() (io.ReadCloser, error)) error) (err error) {
	if len(s.opts.Before) > 0 {
		defer func() {
			if aerr := s.runAfter(ctx); aerr != nil && err == nil {
				err = aerr
			}
		}()
		if err := RunHook(ctx, "before", s.opts.Before); err != nil {
			return err
		}
	} else if len(s.opts.After) > 0 {
		defer func() {
			if aerr := s.runAfter(ctx); aerr != nil && err == nil {
				err = aerr
			}
		}()
	}
	fi, err := os.Stat(s.opts.Path)
	if err != nil {
		return fmt.Errorf("volume: %w", err)
	}
	if !fi.Mode().IsRegular() && fi.Mode()&os.ModeDevice == 0 {
		return fmt.Errorf("volume: %s is neither a block device nor a regular file", s.opts.Path)
	}
	f, err := os.Open(s.opts.Path)
	if err != nil {
		return fmt.Errorf("volume: %w", err)
	}
	size, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		f.Close()
		return fmt.Errorf("volume: size of %s: %w", s.opts.Path, err)
	}
	e := snapshot.Entry{Path: s.opts.Name, Type: snapshot.TypeFile, Mode: uint32(fi.Mode().Perm()),
		ModTime: fi.ModTime().UTC(), Size: size}
	if st, ok := fi.Sys().(*unix.Stat_t); ok {
		e.UID, e.GID = st.Uid, st.Gid
	}
	g := &gate{closed: make(chan struct{})}
	open := func() (io.ReadCloser, error) {
		g.mu.Lock()
		defer g.mu.Unlock()
		if g.abandoned || g.opened {
			return nil, errors.New("volume: read after the walk ended")
		}
		g.opened = true
		return &closer{Reader: NewReader(f, size, fi.Mode().IsRegular()), f: f, g: g}, nil
	}
	if err := fn(e, open); err != nil {
		g.abandon(f)
		return err
	}
	// The engine reads the entry in a worker after fn returns: wait for it
	// before after runs (a snapshot must not be removed under the reader).
	select {
	case <-g.closed:
		return nil
	case <-ctx.Done():
		if g.abandon(f) {
			return ctx.Err()
		}
		<-g.closed // opened: the worker closes it as it stops
		return ctx.Err()
	}
}

func (s *Source) runAfter(ctx context.Context) error {
	if len(s.opts.After) == 0 {
		return nil
	}
	return RunHook(context.WithoutCancel(ctx), "after", s.opts.After)
}

// gate tracks the one opening of the volume.
type gate struct {
	mu                sync.Mutex
	opened, abandoned bool
	once              sync.Once
	closed            chan struct{}
}

// abandon marks the gate so a late open fails and closes f, unless the
// entry is already open (then it returns false).
func (g *gate) abandon(f *os.File) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.opened {
		return false
	}
	g.abandoned = true
	f.Close()
	return true
}

type closer struct {
	*Reader
	f *os.File
	g *gate
}

func (c *closer) Close() error {
	err := c.f.Close()
	c.g.once.Do(func() { close(c.g.closed) })
	return err
}

// RunHook runs a hook argv, failing with the tail of its output.
func RunHook(ctx context.Context, which string, argv []string) error {
	ctx, cancel := context.WithTimeout(ctx, HookTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	tail := &lbexec.TailBuffer{Max: lbexec.StderrTail}
	cmd.Stdout, cmd.Stderr = tail, tail
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("volume: %s hook: %w", which, lbexec.CommandError(argv[0], err, tail.String()))
	}
	return nil
}

// Reader reads a volume sequentially; on regular files it finds holes
// with SEEK_DATA/SEEK_HOLE and returns zeros for them without reading.
type Reader struct {
	f      *os.File
	size   int64
	pos    int64
	sparse bool  // SEEK_DATA/SEEK_HOLE usable
	segEnd int64 // end of the current segment
	hole   bool  // current segment is a hole
	// HoleBytes counts bytes produced for holes, DataBytes bytes read.
	HoleBytes, DataBytes int64
}

// NewReader returns a reader of the first size bytes of f; sparse enables
// hole detection (regular files).
func NewReader(f *os.File, size int64, sparse bool) *Reader {
	return &Reader{f: f, size: size, sparse: sparse}
}

func (r *Reader) Read(p []byte) (int, error) {
	if r.pos >= r.size {
		return 0, io.EOF
	}
	if r.pos >= r.segEnd {
		r.nextSegment()
	}
	n := int64(len(p))
	if rem := r.segEnd - r.pos; n > rem {
		n = rem
	}
	if r.hole {
		clear(p[:n])
		r.pos += n
		r.HoleBytes += n
		return int(n), nil
	}
	m, err := r.f.ReadAt(p[:n], r.pos)
	r.pos += int64(m)
	r.DataBytes += int64(m)
	if err == io.EOF {
		if r.pos < r.size {
			return m, fmt.Errorf("volume: %s shrank while read (at %d of %d bytes)", r.f.Name(), r.pos, r.size)
		}
		err = nil
	}
	return m, err
}

// nextSegment finds the segment at r.pos.
func (r *Reader) nextSegment() {
	r.hole, r.segEnd = false, r.size
	if !r.sparse {
		return
	}
	fd := int(r.f.Fd())
	d, err := unix.Seek(fd, r.pos, unix.SEEK_DATA)
	switch {
	case errors.Is(err, unix.ENXIO): // no data after pos
		r.hole = true
		return
	case err != nil: // not supported: read everything
		r.sparse = false
		return
	case d > r.pos:
		r.hole, r.segEnd = true, min(d, r.size)
		return
	}
	h, err := unix.Seek(fd, r.pos, unix.SEEK_HOLE)
	if err != nil {
		r.sparse = false
		return
	}
	if h > r.pos {
		r.segEnd = min(h, r.size)
	}
}
