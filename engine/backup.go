package engine

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/user"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lifeboat-backup/lifeboat/engine/repo"
	"github.com/lifeboat-backup/lifeboat/engine/repo/chunker"
	"github.com/lifeboat-backup/lifeboat/targets"
	"golang.org/x/sync/errgroup"
)

// Version is the program version recorded in snapshots.
var Version = "dev"

// Progress counts a running backup or restore; fields are updated
// atomically and may be read at any time.
type Progress struct {
	Files     atomic.Int64 // entries finished
	Bytes     atomic.Int64 // content bytes processed (read, or skipped as unchanged)
	BytesRead atomic.Int64 // content bytes actually read
}

// BackupOptions configure one backup.
type BackupOptions struct {
	Target string // target name recorded in the snapshot (default: the source kind)
	Host   string // default: the hostname
	Tags   []string
	// Parent is the snapshot to compare with; unchanged files are not read
	// again. Nil: the latest snapshot of the same target, host and paths.
	Parent *repo.ID
	// NoParent reads everything.
	NoParent bool
	Workers  int // default: GOMAXPROCS
	Progress *Progress
	// Time overrides the snapshot time (tests).
	Time time.Time
}

// BackupResult is what a backup stored and what it could not read.
type BackupResult struct {
	Snapshot *repo.Snapshot
	Warnings []string // unreadable source entries, each naming the path
}

// Backup stores one snapshot of src. The order of writes makes it
// crash-safe: packs, then index, then the manifest; an interrupted backup
// leaves unreferenced packs only.
func Backup(ctx context.Context, r *repo.Repository, src Source, opts BackupOptions) (*BackupResult, error) {
	start := time.Now()
	if opts.Target == "" {
		opts.Target = src.Kind()
	}
	if opts.Host == "" {
		opts.Host, _ = os.Hostname()
	}
	if opts.Workers <= 0 {
		opts.Workers = runtime.GOMAXPROCS(0)
	}
	if opts.Progress == nil {
		opts.Progress = &Progress{}
	}
	sn := &repo.Snapshot{Time: start.UTC(), Host: opts.Host, Target: opts.Target, Kind: src.Kind(),
		Paths: src.Paths(), Tags: opts.Tags, Program: "lifeboat " + Version}
	if !opts.Time.IsZero() {
		sn.Time = opts.Time.UTC()
	}
	if u, err := user.Current(); err == nil {
		sn.Username = u.Username
	}
	aon, ok := src.(AllOrNothing)
	strict := ok && aon.AllOrNothing()
	var parent *repo.Snapshot
	if !opts.NoParent && !strict {
		var err error
		if parent, err = findParent(ctx, r, sn, opts.Parent); err != nil {
			return nil, err
		}
		if parent != nil {
			sn.Parent = &parent.ID
		}
	}
	before := r.Stats()
	b := &backup{r: r, opts: opts, sn: sn, strict: strict}
	if err := b.run(ctx, src, parent); err != nil {
		r.Abort()
		return nil, err
	}
	if err := r.Flush(ctx); err != nil {
		return nil, err
	}
	after := r.Stats()
	sn.Stats.BytesAdded = after.BlobBytes - before.BlobBytes
	sn.Stats.BytesStored = after.StoredBytes - before.StoredBytes
	sn.Stats.Blobs = after.Blobs - before.Blobs
	sn.Stats.BytesRead = opts.Progress.BytesRead.Load()
	sn.Stats.Duration = time.Since(start).Seconds()
	sn.RecoveryPoint.Time = start.UTC()
	if rp, ok := src.(RecoveryPointer); ok {
		t, details := rp.RecoveryPoint()
		if !t.IsZero() {
			sn.RecoveryPoint.Time = t.UTC()
		}
		sn.RecoveryPoint.Details = details
	}
	if _, err := r.SaveSnapshot(ctx, sn); err != nil {
		return nil, err
	}
	return &BackupResult{Snapshot: sn, Warnings: b.warnings}, nil
}

func findParent(ctx context.Context, r *repo.Repository, sn *repo.Snapshot, want *repo.ID) (*repo.Snapshot, error) {
	if want != nil {
		return r.LoadSnapshot(ctx, *want)
	}
	p, err := r.FindSnapshot(ctx, "latest", func(c *repo.Snapshot) bool {
		return c.Target == sn.Target && c.Host == sn.Host && c.Kind == sn.Kind && slices.Equal(c.Paths, sn.Paths)
	})
	if errors.Is(err, repo.ErrNotFound) {
		return nil, nil
	}
	return p, err
}

type backup struct {
	r        *repo.Repository
	opts     BackupOptions
	sn       *repo.Snapshot
	strict   bool            // AllOrNothing source: unreadable entries fail the backup
	zeroIDs  map[int]repo.ID // IDs of all-zero chunks by length (under mu)
	mu       sync.Mutex
	warnings []string
}

func (b *backup) warn(path string, err error) {
	b.mu.Lock()
	b.warnings = append(b.warnings, fmt.Sprintf("%s: %v", path, err))
	b.mu.Unlock()
}

// fileJob is one entry on its way into the metadata stream; done is closed
// when its content is chunked (err set if it could not be read).
type fileJob struct {
	node *repo.Node
	open Opener
	err  error
	done chan struct{}
}

// saveReq is one chunk on its way to compression and a pack.
type saveReq struct {
	id  repo.ID
	buf *[]byte
}

var chunkPool = sync.Pool{New: func() any { b := make([]byte, 0, 1<<20); return &b }}

// run drives the pipeline:
//
//	walk -> [jobs] -> chunk+hash (workers) -> [saves] -> compress+pack (workers)
//	walk -> [ordered] -> metadata stream
//
// Channels are small and every stage blocks when the next is busy, so
// memory is bounded by workers x max chunk size, not by the input.
func (b *backup) run(ctx context.Context, src Source, parent *repo.Snapshot) error {
	g, ctx := errgroup.WithContext(ctx)
	jobs := make(chan *fileJob)
	// Entries travel to the metadata stream in batches: one goroutine
	// handoff per entry costs more than stat-ing it.
	ordered := make(chan []*fileJob, 8)
	saves := make(chan saveReq, b.opts.Workers)
	var chunkers sync.WaitGroup

	for range b.opts.Workers {
		chunkers.Add(1)
		g.Go(func() error {
			defer chunkers.Done()
			c := chunker.New(nil, b.r.Gear(), b.r.ChunkerParams())
			for j := range jobs {
				if err := b.chunkFile(ctx, c, j, saves); err != nil {
					return err
				}
			}
			return nil
		})
	}
	g.Go(func() error {
		chunkers.Wait()
		close(saves)
		return nil
	})
	for range b.opts.Workers {
		g.Go(func() error {
			for s := range saves {
				_, err := b.r.SaveBlob(ctx, repo.DataBlob, s.id, *s.buf)
				chunkPool.Put(s.buf)
				if err != nil {
					return err
				}
			}
			return nil
		})
	}
	g.Go(func() error { return b.writeTree(ctx, ordered) })
	g.Go(func() error {
		defer close(ordered)
		defer close(jobs)
		// (batches are sent in order; a batch may hold files still being chunked)
		var pc *parentCursor
		if parent != nil {
			pc = newParentCursor(ctx, b.r.NewTreeReader(ctx, parent))
			defer pc.stop()
		}
		batch := make([]*fileJob, 0, orderedBatch)
		send := func() error {
			select {
			case ordered <- batch:
				batch = make([]*fileJob, 0, orderedBatch)
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		err := src.Walk(ctx, b.warn, func(e targets.Entry, open Opener) error {
			j := &fileJob{node: &repo.Node{Entry: e}, open: open, done: make(chan struct{})}
			reuse := false
			if e.Type == targets.TypeFile {
				reuse = b.unchanged(pc, j.node)
			}
			if batch = append(batch, j); len(batch) == orderedBatch {
				if err := send(); err != nil {
					return err
				}
			}
			if e.Type != targets.TypeFile || reuse {
				if reuse {
					b.opts.Progress.Bytes.Add(e.Size)
				}
				close(j.done)
				return nil
			}
			select {
			case jobs <- j:
			case <-ctx.Done():
				return ctx.Err()
			}
			return nil
		})
		if err == nil && len(batch) > 0 {
			err = send()
		}
		return err
	})
	return g.Wait()
}

// orderedBatch is how many entries go to the metadata stream at once.
const orderedBatch = 256

// unchanged reports whether a file matches its parent entry (size, mtime,
// ctime, inode) and all of the parent's blobs are still indexed; if so the
// node takes the parent's content list.
func (b *backup) unchanged(pc *parentCursor, n *repo.Node) bool {
	if pc == nil {
		return false
	}
	p := pc.find(n.Path)
	if p == nil || p.Type != targets.TypeFile || p.Size != n.Size || !p.ModTime.Equal(n.ModTime) ||
		!p.ChangeTime.Equal(n.ChangeTime) || p.Inode != n.Inode {
		return false
	}
	idx := b.r.Index()
	for _, id := range p.Content {
		if !idx.Has(id) {
			return false
		}
	}
	n.Content = p.Content
	return true
}

func (b *backup) chunkFile(ctx context.Context, c *chunker.Chunker, j *fileJob, saves chan<- saveReq) error {
	defer close(j.done)
	f, err := j.open()
	if err != nil {
		j.err = err
		return nil
	}
	defer f.Close()
	c.Reset(f)
	var size int64
	idx := b.r.Index()
	for {
		data, err := c.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			j.err = err
			return nil
		}
		id := b.blobID(data)
		j.node.Content = append(j.node.Content, id)
		size += int64(len(data))
		b.opts.Progress.Bytes.Add(int64(len(data)))
		b.opts.Progress.BytesRead.Add(int64(len(data)))
		if idx.Has(id) {
			continue
		}
		buf := chunkPool.Get().(*[]byte)
		*buf = append((*buf)[:0], data...)
		select {
		case saves <- saveReq{id: id, buf: buf}:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	// The file may have changed while it was read; store what was read.
	j.node.Size = size
	return nil
}

// blobID is r.BlobID with a shortcut for all-zero chunks (sparse images,
// preallocated files): they recur with few lengths, so their IDs are
// computed once per length. A non-zero chunk costs one compare of its
// leading bytes.
func (b *backup) blobID(data []byte) repo.ID {
	if len(data) == 0 || data[0] != 0 || data[len(data)-1] != 0 || !isZero(data) {
		return b.r.BlobID(data)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.zeroIDs == nil {
		b.zeroIDs = map[int]repo.ID{}
	}
	id, ok := b.zeroIDs[len(data)]
	if !ok {
		id = b.r.BlobID(data)
		b.zeroIDs[len(data)] = id
	}
	return id
}

var zeroBlock [64 << 10]byte

func isZero(p []byte) bool {
	for len(p) > 0 {
		n := min(len(p), len(zeroBlock))
		if !bytes.Equal(p[:n], zeroBlock[:n]) {
			return false
		}
		p = p[n:]
	}
	return true
}

// writeTree writes the metadata stream in walk order as entries finish.
func (b *backup) writeTree(ctx context.Context, ordered <-chan []*fileJob) error {
	tw := b.r.NewTreeWriter(ctx)
	st := &b.sn.Stats
	for batch := range ordered {
		if err := b.addToTree(ctx, tw, st, batch); err != nil {
			tw.Abort(err)
			return err
		}
	}
	if ctx.Err() != nil {
		tw.Abort(ctx.Err())
		return ctx.Err()
	}
	ids, err := tw.Close()
	if err != nil {
		return err
	}
	b.sn.Tree = ids
	return nil
}

func (b *backup) addToTree(ctx context.Context, tw *repo.TreeWriter, st *repo.SnapshotStats, batch []*fileJob) error {
	for _, j := range batch {
		select {
		case <-j.done:
		case <-ctx.Done():
			return ctx.Err()
		}
		if j.err != nil {
			if b.strict {
				return fmt.Errorf("%s: %w", j.node.Path, j.err)
			}
			b.warn(j.node.Path, j.err)
			continue
		}
		switch j.node.Type {
		case targets.TypeFile:
			st.Files++
			st.BytesIn += j.node.Size
		case targets.TypeDir:
			st.Dirs++
		default:
			st.Others++
		}
		b.opts.Progress.Files.Add(1)
		if err := tw.Add(j.node); err != nil {
			return err
		}
	}
	return nil
}

// parentCursor walks the parent's metadata stream in step with the new walk
// (both in ComparePaths order), so memory does not grow with the tree. The
// stream is decoded ahead by its own goroutine, in batches.
type parentCursor struct {
	batches <-chan []*repo.Node
	cancel  context.CancelFunc
	batch   []*repo.Node
	done    bool
}

func newParentCursor(ctx context.Context, tr *repo.TreeReader) *parentCursor {
	ctx, cancel := context.WithCancel(ctx)
	ch := make(chan []*repo.Node, 4)
	go func() {
		defer close(ch)
		batch := make([]*repo.Node, 0, 256)
		for {
			n, err := tr.Next()
			if err != nil { // EOF, or unreadable: then the rest is read anew
				break
			}
			if batch = append(batch, n); len(batch) == cap(batch) {
				select {
				case ch <- batch:
				case <-ctx.Done():
					return
				}
				batch = make([]*repo.Node, 0, 256)
			}
		}
		if len(batch) > 0 {
			select {
			case ch <- batch:
			case <-ctx.Done():
			}
		}
	}()
	return &parentCursor{batches: ch, cancel: cancel}
}

func (p *parentCursor) stop() {
	p.cancel()
	for range p.batches {
	}
}

func (p *parentCursor) find(path string) *repo.Node {
	for !p.done {
		if len(p.batch) == 0 {
			b, ok := <-p.batches
			if !ok {
				p.done = true
				return nil
			}
			p.batch = b
		}
		switch c := targets.ComparePaths(p.batch[0].Path, path); {
		case c == 0:
			return p.batch[0]
		case c > 0:
			return nil
		}
		p.batch = p.batch[1:]
	}
	return nil
}
