package engine

import (
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

	"golang.org/x/sync/errgroup"

	"github.com/lifeboat-backup/lifeboat/engine/repo"
	"github.com/lifeboat-backup/lifeboat/engine/repo/chunker"
	"github.com/lifeboat-backup/lifeboat/engine/snapshot"
	"github.com/lifeboat-backup/lifeboat/internal/blockdigest"
	"github.com/lifeboat-backup/lifeboat/internal/zeros"
)

// Version is the program version recorded in snapshots.
var Version = "dev"

// Progress counts a running backup or restore; fields are updated
// atomically and may be read at any time.
type Progress struct {
	Files     atomic.Int64 // entries finished
	Bytes     atomic.Int64 // content bytes processed (read, or skipped as unchanged)
	BytesRead atomic.Int64 // content bytes actually read
	// File, if set, is called for each file stored, in the snapshot's
	// order, one call at a time (backup -v): action is new (no file at
	// that path in the parent), modified or unchanged (not read again).
	File func(path, action string, size int64)
}

// BackupOptions configure one backup.
type BackupOptions struct {
	Target string // target name recorded in the snapshot (default: the source kind)
	Host   string // default: the hostname
	Tags   []string
	// Parent is the snapshot to compare with; unchanged files are not read
	// again. Nil: the latest snapshot of the same target, host and paths.
	Parent *snapshot.ID
	// NoParent reads everything.
	NoParent bool
	Workers  int // default: GOMAXPROCS
	Progress *Progress
	// Time overrides the snapshot time (backup --time: imports from other
	// tools, retention tests over simulated years).
	Time time.Time
	// DryRun reads and chunks everything as a backup would and counts what
	// would be new, and writes nothing to the repository: no pack, no
	// index, no snapshot (backup --dry-run). The result's snapshot has no
	// ID; its Stats.BytesAdded and Blobs are the new data's raw size and
	// count (BytesStored stays 0: nothing is compressed).
	DryRun bool
}

// BackupResult is what a backup stored and what it could not read.
type BackupResult struct {
	Snapshot *snapshot.Snapshot
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
	sn := &snapshot.Snapshot{Time: start.UTC(), Host: opts.Host, Target: opts.Target, Kind: src.Kind(),
		Paths: src.Paths(), Tags: opts.Tags, Program: "lifeboat " + Version}
	if !opts.Time.IsZero() {
		sn.Time = opts.Time.UTC()
	}
	if u, err := user.Current(); err == nil {
		sn.Username = u.Username
	}
	aon, ok := src.(AllOrNothing)
	strict := ok && aon.AllOrNothing()
	var parent *snapshot.Snapshot
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
	if opts.DryRun {
		b.wouldAdd = map[snapshot.ID]bool{}
	}
	if err := b.run(ctx, src, parent); err != nil {
		r.Abort()
		return nil, err
	}
	if opts.DryRun {
		sn.Stats.BytesRead = opts.Progress.BytesRead.Load()
		sn.Stats.Duration = time.Since(start).Seconds()
		return &BackupResult{Snapshot: sn, Warnings: b.warnings}, nil
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
	sn.RecoveryPoint.Time = sn.Time // start, or the time the caller gave
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

func findParent(ctx context.Context, r *repo.Repository, sn *snapshot.Snapshot, want *snapshot.ID) (*snapshot.Snapshot, error) {
	if want != nil {
		return r.LoadSnapshot(ctx, *want)
	}
	p, err := r.FindSnapshot(ctx, "latest", func(c *snapshot.Snapshot) bool {
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
	sn       *snapshot.Snapshot
	strict   bool                // AllOrNothing source: unreadable entries fail the backup
	zeroIDs  map[int]snapshot.ID // IDs of all-zero chunks by length (under mu)
	mu       sync.Mutex
	warnings []string
	wouldAdd map[snapshot.ID]bool // DryRun: the new blobs seen (under mu)
}

func (b *backup) warn(path string, err error) {
	b.mu.Lock()
	b.warnings = append(b.warnings, fmt.Sprintf("%s: %v", path, err))
	b.mu.Unlock()
}

// fileJob is one entry on its way into the metadata stream; done is closed
// when its content is cut into chunks (err set if it could not be read).
// The IDs of its last chunks may still be computed then: they are in
// pending, in order after node.Content. digest (FixedBlocks sources) takes
// the blocks' sums in the same order.
type fileJob struct {
	node    *snapshot.Node
	open    Opener
	action  string // new, modified or unchanged (Progress.File)
	err     error
	pending []*chunkTask
	digest  *blockdigest.Digest
	done    chan struct{}
}

// chunkTask is one chunk on its way through hashing and saving: a future
// for its ID. done is closed once id is set and the blob is stored or
// known; a failed save stops the whole backup instead. With sum set (a
// fixed block), the saver also computes its block digest record.
type chunkTask struct {
	buf  *[]byte
	id   snapshot.ID
	done chan struct{}
	sum  bool
	n    int
	zero bool
	hash [32]byte
}

var chunkPool = sync.Pool{New: func() any { b := make([]byte, 0, 1<<20); return &b }}

// FixedBlocks is implemented by sources whose content changes in place at
// fixed offsets (block devices, disk images). Their entries are cut into
// aligned blocks of BlockSize bytes instead of content-defined chunks:
// nothing shifts on a block device, so a write costs exactly the blocks it
// touches, and the cut costs no scan. Their nodes record the content's
// block digest (snapshot.BlockDigest, over the same blocks), which volume
// restores verify without hashing the holes.
type FixedBlocks interface {
	BlockSize() int
}

// maxBlockSize bounds FixedBlocks.BlockSize (as chunker.Params.Max).
const maxBlockSize = 64 << 20

// run drives the pipeline:
//
//	walk -> [jobs] -> read+cut (workers) -> [tasks] -> hash+compress+pack (workers)
//	walk -> [ordered] -> metadata stream (chunk IDs taken in order)
//
// A single stream (a volume, a dump) is cut by one goroutine while the
// others hash, compress and encrypt its chunks; the IDs come back in order
// as futures. Channels are small and every stage blocks when the next is
// busy, so memory is bounded by workers x max chunk size, not by the input:
// in flight are one chunk per saver, one queued, and one per reader.
func (b *backup) run(ctx context.Context, src Source, parent *snapshot.Snapshot) error {
	block := 0
	if fb, ok := src.(FixedBlocks); ok {
		if block = fb.BlockSize(); block <= 0 || block > maxBlockSize {
			return fmt.Errorf("%s source: block size %d out of range (1 to %d bytes)", src.Kind(), block, maxBlockSize)
		}
	}
	g, ctx := errgroup.WithContext(ctx)
	jobs := make(chan *fileJob)
	// Entries travel to the metadata stream in batches: one goroutine
	// handoff per entry costs more than stat-ing it.
	ordered := make(chan []*fileJob, 8)
	tasks := make(chan *chunkTask, 1)
	var chunkers sync.WaitGroup

	for range b.opts.Workers {
		chunkers.Add(1)
		g.Go(func() error {
			defer chunkers.Done()
			var c *chunker.Chunker
			if block == 0 {
				c = chunker.New(nil, b.r.Gear(), b.r.ChunkerParams())
			}
			for j := range jobs {
				if err := b.chunkFile(ctx, c, block, j, tasks); err != nil {
					return err
				}
			}
			return nil
		})
	}
	g.Go(func() error {
		chunkers.Wait()
		close(tasks)
		return nil
	})
	for range b.opts.Workers {
		g.Go(func() error { return b.saveChunks(ctx, tasks) })
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
		err := src.Walk(ctx, b.warn, func(e snapshot.Entry, open Opener) error {
			j := &fileJob{node: &snapshot.Node{Entry: e}, open: open, done: make(chan struct{})}
			reuse := false
			if e.Type == snapshot.TypeFile {
				j.action = b.unchanged(pc, j.node)
				reuse = j.action == "unchanged"
			}
			if batch = append(batch, j); len(batch) == orderedBatch {
				if err := send(); err != nil {
					return err
				}
			}
			if e.Type != snapshot.TypeFile || reuse {
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

// saveChunks hashes chunks, and compresses and packs the new ones, until
// tasks is closed.
func (b *backup) saveChunks(ctx context.Context, tasks <-chan *chunkTask) error {
	idx := b.r.Index()
	for t := range tasks {
		data := *t.buf
		var zero bool
		t.id, zero = b.blobID(data)
		if t.sum {
			t.n, t.zero = len(data), zero
			if !zero {
				t.hash, _ = blockdigest.BlockSum(data)
			}
		}
		var err error
		switch {
		case idx.Reusable(t.id):
		case b.wouldAdd != nil:
			b.countNew(t.id, len(data))
		default:
			_, err = b.r.SaveBlob(ctx, repo.DataBlob, t.id, data)
		}
		chunkPool.Put(t.buf)
		if err != nil {
			return err
		}
		close(t.done)
	}
	return nil
}

// countNew counts a blob a dry run would add, once per ID.
func (b *backup) countNew(id snapshot.ID, n int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.wouldAdd[id] {
		b.wouldAdd[id] = true
		b.sn.Stats.BytesAdded += int64(n)
		b.sn.Stats.Blobs++
	}
}

// orderedBatch is how many entries go to the metadata stream at once.
const orderedBatch = 256

// unchanged compares a file with its parent entry: "unchanged" when they
// match (size, mtime, ctime, inode) and all of the parent's blobs are
// still indexed and add up to its size (the node then takes the parent's
// content list); "modified" when the parent has a file there, "new" when
// not.
func (b *backup) unchanged(pc *parentCursor, n *snapshot.Node) string {
	if pc == nil {
		return "new"
	}
	p := pc.find(n.Path)
	if p == nil || p.Type != snapshot.TypeFile {
		return "new"
	}
	if p.Size != n.Size || !p.ModTime.Equal(n.ModTime) || !p.ChangeTime.Equal(n.ChangeTime) || p.Inode != n.Inode {
		return "modified"
	}
	// Every blob still indexed, and together exactly the file's size: a
	// parent's content list is a host's claim, and must at least add up.
	idx := b.r.Index()
	var total int64
	for _, id := range p.Content {
		loc, ok := idx.Lookup(id)
		if !ok || !idx.Reusable(id) {
			return "modified" // not stored, or only in a pack prune marked for deletion: read again
		}
		total += int64(loc.RawLength)
	}
	if total != n.Size {
		return "modified"
	}
	n.Content = p.Content
	return "unchanged"
}

// chunkFile reads one file, cuts it into chunks (content-defined with c,
// or fixed blocks of block bytes when c is nil) and hands them to the
// savers. IDs that are already known are moved to node.Content as it
// goes, so a long stream keeps only the chunks in flight; the rest stay in
// j.pending for the metadata stream to wait for.
func (b *backup) chunkFile(ctx context.Context, c *chunker.Chunker, block int, j *fileJob, tasks chan<- *chunkTask) error {
	defer close(j.done)
	f, err := j.open()
	if err != nil {
		j.err = err
		return nil
	}
	defer f.Close()
	var next func() (*[]byte, error)
	if c == nil {
		next = fixedBlocks(f, block)
		j.digest = blockdigest.New(block)
	} else {
		c.Reset(f)
		next = func() (*[]byte, error) {
			data, err := c.Next()
			if err != nil {
				return nil, err
			}
			buf := chunkPool.Get().(*[]byte)
			*buf = append((*buf)[:0], data...)
			return buf, nil
		}
	}
	var size int64
	for {
		buf, err := next()
		if err == io.EOF {
			break
		}
		if err != nil {
			j.err = err
			return nil
		}
		n := int64(len(*buf))
		size += n
		b.opts.Progress.Bytes.Add(n)
		b.opts.Progress.BytesRead.Add(n)
		t := &chunkTask{buf: buf, done: make(chan struct{}), sum: j.digest != nil}
		select {
		case tasks <- t:
		case <-ctx.Done():
			chunkPool.Put(buf)
			return ctx.Err()
		}
		j.pending = append(j.pending, t)
		if err := j.collect(); err != nil {
			j.err = err
			return nil
		}
	}
	// The file may have changed while it was read; store what was read.
	j.node.Size = size
	return nil
}

// fixedBlocks returns a reader of f in blocks of block bytes (the last one
// shorter), each in a pooled buffer; io.EOF after the last.
func fixedBlocks(f io.Reader, block int) func() (*[]byte, error) {
	return func() (*[]byte, error) {
		buf := chunkPool.Get().(*[]byte)
		if cap(*buf) < block {
			*buf = make([]byte, block)
		}
		n, err := io.ReadFull(f, (*buf)[:block])
		*buf = (*buf)[:n]
		switch {
		case err == nil:
			return buf, nil
		case n > 0 && errors.Is(err, io.ErrUnexpectedEOF):
			return buf, nil // the last, short block; EOF on the next read
		}
		chunkPool.Put(buf)
		return nil, err
	}
}

// collect moves the IDs of the leading finished chunks to node.Content
// (and their sums to the digest).
func (j *fileJob) collect() error {
	for len(j.pending) > 0 {
		select {
		case <-j.pending[0].done:
		default:
			return nil
		}
		if err := j.take(j.pending[0]); err != nil {
			return err
		}
		j.pending[0] = nil
		j.pending = j.pending[1:]
	}
	return nil
}

// finish waits for the IDs still pending, in order, and ends the digest.
func (j *fileJob) finish(ctx context.Context) error {
	for _, t := range j.pending {
		select {
		case <-t.done:
		case <-ctx.Done():
			return ctx.Err()
		}
		if err := j.take(t); err != nil {
			return err
		}
	}
	j.pending = nil
	if j.digest != nil {
		j.node.Digest = &snapshot.BlockDigest{Version: blockdigest.Version, BlockSize: j.digest.BlockSize(), SHA256: j.digest.Sum()}
	}
	return nil
}

func (j *fileJob) take(t *chunkTask) error {
	j.node.Content = append(j.node.Content, t.id)
	if j.digest == nil {
		return nil
	}
	return j.digest.AddBlock(t.n, t.hash, t.zero)
}

// blobID is r.BlobID with a shortcut for all-zero chunks (sparse images,
// preallocated files): they recur with few lengths, so their IDs are
// computed once per length. A non-zero chunk costs one compare of its
// leading bytes. zero tells which it was.
func (b *backup) blobID(data []byte) (id snapshot.ID, zero bool) {
	if len(data) == 0 || data[0] != 0 || data[len(data)-1] != 0 || !zeros.All(data) {
		return b.r.BlobID(data), false
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.zeroIDs == nil {
		b.zeroIDs = map[int]snapshot.ID{}
	}
	id, ok := b.zeroIDs[len(data)]
	if !ok {
		id = b.r.BlobID(data)
		b.zeroIDs[len(data)] = id
	}
	return id, true
}

// writeTree writes the metadata stream in walk order as entries finish (a
// dry run only counts them).
func (b *backup) writeTree(ctx context.Context, ordered <-chan []*fileJob) error {
	if b.opts.DryRun {
		for batch := range ordered {
			if err := b.addToTree(ctx, nil, &b.sn.Stats, batch); err != nil {
				return err
			}
		}
		return ctx.Err()
	}
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

func (b *backup) addToTree(ctx context.Context, tw *repo.TreeWriter, st *snapshot.Stats, batch []*fileJob) error {
	for _, j := range batch {
		select {
		case <-j.done:
		case <-ctx.Done():
			return ctx.Err()
		}
		if j.err == nil {
			if err := j.finish(ctx); err != nil {
				return err
			}
		}
		if j.err != nil {
			if b.strict {
				return fmt.Errorf("%s: %w", j.node.Path, j.err)
			}
			b.warn(j.node.Path, j.err)
			continue
		}
		switch j.node.Type {
		case snapshot.TypeFile:
			st.Files++
			st.BytesIn += j.node.Size
			if b.opts.Progress.File != nil {
				b.opts.Progress.File(j.node.Path, j.action, j.node.Size)
			}
		case snapshot.TypeDir:
			st.Dirs++
		default:
			st.Others++
		}
		b.opts.Progress.Files.Add(1)
		if tw == nil {
			continue // dry run
		}
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
	batches <-chan []*snapshot.Node
	cancel  context.CancelFunc
	batch   []*snapshot.Node
	done    bool
}

func newParentCursor(ctx context.Context, tr *repo.TreeReader) *parentCursor {
	ctx, cancel := context.WithCancel(ctx)
	ch := make(chan []*snapshot.Node, 4)
	go func() {
		defer close(ch)
		batch := make([]*snapshot.Node, 0, 256)
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
				batch = make([]*snapshot.Node, 0, 256)
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

func (p *parentCursor) find(path string) *snapshot.Node {
	for !p.done {
		if len(p.batch) == 0 {
			b, ok := <-p.batches
			if !ok {
				p.done = true
				return nil
			}
			p.batch = b
		}
		switch c := snapshot.ComparePaths(p.batch[0].Path, path); {
		case c == 0:
			return p.batch[0]
		case c > 0:
			return nil
		}
		p.batch = p.batch[1:]
	}
	return nil
}
