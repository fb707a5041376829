package repo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/lifeboat-backup/lifeboat/engine/snapshot"
)

// indexFlushPacks is how many finished packs are collected before an index
// file is written, so an interrupted backup loses at most that many packs
// for the next run's deduplication.
const indexFlushPacks = 8

var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 1<<20); return &b }}

// SaveBlob stores plaintext data as a blob of type t under id (which the
// caller computed with BlobID) unless the repository already has it.
// It compresses in the caller's goroutine and streams into an open pack, so
// concurrency is the number of concurrent callers. It reports whether the
// blob was new.
func (r *Repository) SaveBlob(ctx context.Context, t BlobType, id snapshot.ID, data []byte) (bool, error) {
	if !r.untracked && !r.idx.claim(id) {
		return false, nil
	}
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	stored, compressed := r.comp.compress(*bp, data)
	if compressed {
		*bp = stored[:0]
	} else {
		stored = data
	}
	if err := r.store(ctx, t, id, stored, len(data), compressed); err != nil {
		return false, err
	}
	r.mu.Lock()
	r.stats.Blobs++
	r.stats.BlobBytes += int64(len(data))
	r.stats.StoredBytes += int64(len(stored))
	r.mu.Unlock()
	return true, nil
}

// store appends a blob in its stored form to an open pack of its type and
// finishes the pack when it is full.
func (r *Repository) store(ctx context.Context, t BlobType, id snapshot.ID, stored []byte, rawLen int, compressed bool) error {
	p, err := r.takePack(ctx, t)
	if err != nil {
		return err
	}
	if err := p.add(t, id, stored, rawLen, compressed); err != nil {
		p.abort()
		return err
	}
	if p.size() >= r.cfg.PackSize {
		return r.finishAsync(ctx, p)
	}
	r.putPack(p)
	return nil
}

// DefaultUploads bounds the packs being finished (last upload part, or
// the whole upload of a pack under the store's multipart threshold; fsync)
// in the background while savers fill new ones; SetUploads changes it.
const DefaultUploads = 2

// SetUploads sets how many full packs may be uploaded in the background at
// once (n >= 1; DefaultUploads unless set). Each holds up to a pack in
// memory on s3:// until it is sent. Call it before the first SaveBlob.
func (r *Repository) SetUploads(n int) {
	if n >= 1 {
		r.finishSlots = make(chan struct{}, n)
	}
}

// finishAsync finishes a full pack in the background, so the saver that
// filled it goes on compressing; at most SetUploads' n at a time (the
// caller waits for a slot: backpressure). Flush waits for all of them.
func (r *Repository) finishAsync(ctx context.Context, p *packWriter) error {
	if err := r.finishError(); err != nil {
		p.abort()
		return err
	}
	r.finishSlots <- struct{}{}
	if err := r.finishError(); err != nil {
		// An upload failed while this saver waited for a slot: do not
		// start another one that would fail the same way (a dead store
		// makes each take the whole retry schedule).
		<-r.finishSlots
		p.abort()
		return err
	}
	r.finishing.Add(1)
	// The caller's context may end before Flush (an errgroup's does when
	// its Wait returns); the finish belongs to the repository now.
	ctx = context.WithoutCancel(ctx)
	go func() {
		defer r.finishing.Done()
		defer func() { <-r.finishSlots }()
		if err := r.finishPack(ctx, p); err != nil {
			r.mu.Lock()
			if r.finishErr == nil {
				r.finishErr = err
			}
			r.mu.Unlock()
		}
	}()
	return nil
}

func (r *Repository) finishError() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.finishErr
}

func (r *Repository) takePack(ctx context.Context, t BlobType) (*packWriter, error) {
	r.mu.Lock()
	if ps := r.open[t]; len(ps) > 0 {
		p := ps[len(ps)-1]
		r.open[t] = ps[:len(ps)-1]
		r.mu.Unlock()
		return p, nil
	}
	r.mu.Unlock()
	recips := r.packRecips
	if t == TreeBlob {
		recips = r.metaRecips
	}
	return newPackWriter(ctx, r.b, recips)
}

func (r *Repository) putPack(p *packWriter) {
	r.mu.Lock()
	t := p.entries[0].Type
	r.open[t] = append(r.open[t], p)
	r.mu.Unlock()
}

// finishPack uploads the rest of a pack, adds it to the index and writes an
// index file when enough packs are pending.
func (r *Repository) finishPack(ctx context.Context, p *packWriter) error {
	info, err := p.finish()
	if err != nil {
		return err
	}
	if !r.untracked {
		r.idx.AddPack(info)
	}
	r.mu.Lock()
	r.stats.Packs++
	r.pending = append(r.pending, info)
	var flush []PackInfo
	if len(r.pending) >= indexFlushPacks {
		flush, r.pending = r.pending, nil
	}
	r.mu.Unlock()
	if flush != nil {
		return r.writeIndex(ctx, flush)
	}
	return nil
}

func (r *Repository) writeIndex(ctx context.Context, packs []PackInfo) error {
	enc, err := r.sealMeta(encodeIndex(packs))
	if err != nil {
		return err
	}
	return writeNew(ctx, r.b, "index/"+snapshot.NewRandomID().String(), enc)
}

// Flush finishes all open packs and writes the index for every pack not yet
// indexed. After Flush returns, every blob SaveBlob reported is durable and
// findable by other processes.
func (r *Repository) Flush(ctx context.Context) error {
	r.finishing.Wait()
	if err := r.finishError(); err != nil {
		r.Abort()
		return err
	}
	r.mu.Lock()
	var open []*packWriter
	for t, ps := range r.open {
		open = append(open, ps...)
		delete(r.open, t)
	}
	r.mu.Unlock()
	var firstErr error
	for _, p := range open {
		if firstErr != nil {
			p.abort()
			continue
		}
		if err := r.finishPack(ctx, p); err != nil {
			firstErr = err
		}
	}
	if firstErr != nil {
		return firstErr
	}
	r.mu.Lock()
	flush := r.pending
	r.pending = nil
	r.mu.Unlock()
	if len(flush) == 0 {
		return nil
	}
	return r.writeIndex(ctx, flush)
}

// Abort discards open packs without storing them (on a failed backup).
func (r *Repository) Abort() {
	r.finishing.Wait()
	r.mu.Lock()
	defer r.mu.Unlock()
	for t, ps := range r.open {
		for _, p := range ps {
			p.abort()
		}
		delete(r.open, t)
	}
}

// LoadBlob returns the plaintext of a blob, appended to buf[:0], after
// verifying its ID.
func (r *Repository) LoadBlob(ctx context.Context, id snapshot.ID, buf []byte) ([]byte, error) {
	loc, ok := r.idx.Lookup(id)
	if !ok {
		return nil, fmt.Errorf("blob %s: %w in the index", id, ErrNotFound)
	}
	out, err := r.loadAt(ctx, loc, buf)
	if err == nil || ctx.Err() != nil || errors.Is(err, ErrNoDataKey) {
		return out, err
	}
	// Another copy may be good: bit rot hits one, a host can index garbage.
	for _, alt := range r.idx.Alternates(id) {
		if out, aerr := r.loadAt(ctx, alt, buf); aerr == nil {
			return out, nil
		}
	}
	return nil, err
}

func (r *Repository) loadAt(ctx context.Context, loc Location, buf []byte) ([]byte, error) {
	if loc.Type == DataBlob && !r.readData {
		return nil, fmt.Errorf("%s: %w", packKey(loc.Pack), ErrNoDataKey)
	}
	pr, err := r.packReader(ctx, loc.Pack, loc.PackSize)
	if err != nil {
		return nil, err
	}
	dst := buf
	var scratch *[]byte
	if loc.Compressed {
		scratch = bufPool.Get().(*[]byte)
		defer bufPool.Put(scratch)
		dst = *scratch
	}
	raw, full, err := pr.readAt(ctx, r.b, int64(loc.Offset), int64(loc.Length), dst)
	if err != nil {
		return nil, err
	}
	out := raw
	if loc.Compressed {
		*scratch = full[:0]
		if out, err = decompress(buf, raw, int(loc.RawLength)); err != nil {
			return nil, corrupt(packKey(loc.Pack), "blob %s: %v", loc.ID, err)
		}
	}
	if r.BlobID(out) != loc.ID {
		return nil, corrupt(packKey(loc.Pack), "blob %s: content does not match its ID", loc.ID)
	}
	return out, nil
}

func (r *Repository) packReader(ctx context.Context, id snapshot.ID, size int64) (*packReader, error) {
	if pr := r.readers.get(id); pr != nil {
		return pr, nil
	}
	pr, err := openPackReader(ctx, r.b, id, size, r.ids)
	if err != nil {
		return nil, r.unreadable(id, err)
	}
	r.readers.put(id, pr)
	return pr, nil
}

// unreadable reports a pack whose header no identity of ours opens as
// corrupt when we hold the owner identity: every pack is encrypted to the
// owner, so its recipient stanza must be damaged. For a host identity the
// error stays ErrNoDataKey.
func (r *Repository) unreadable(id snapshot.ID, err error) error {
	if r.readData && errors.Is(err, ErrNoDataKey) {
		return corrupt(packKey(id), "age header: no recipient stanza opens with the owner identity (damaged header)")
	}
	return err
}

// readerCache keeps the most recently opened pack readers (decrypted file
// key plus read-ahead window), bounded so a restore over thousands of packs
// does not keep a window for each.
type readerCache struct {
	mu    sync.Mutex
	m     map[snapshot.ID]*packReader
	order []snapshot.ID // insertion order, oldest first
}

const readerCacheSize = 64

func (c *readerCache) get(id snapshot.ID) *packReader {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.m[id]
}

func (c *readerCache) put(id snapshot.ID, pr *packReader) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[snapshot.ID]*packReader{}
	}
	if _, ok := c.m[id]; ok {
		return
	}
	if len(c.order) >= readerCacheSize {
		delete(c.m, c.order[0])
		c.order = c.order[1:]
	}
	c.m[id] = pr
	c.order = append(c.order, id)
}

// BlobReader streams a sequence of blobs (a file's or a table's content, a
// metadata stream) in order, each verified against its ID as it is loaded;
// one blob in memory at a time.
type BlobReader struct {
	ctx  context.Context
	r    *Repository
	ids  []snapshot.ID
	cur  []byte
	buf  []byte
	next int
}

// NewBlobReader returns a reader of the concatenated blobs ids.
func (r *Repository) NewBlobReader(ctx context.Context, ids []snapshot.ID) *BlobReader {
	return &BlobReader{ctx: ctx, r: r, ids: ids}
}

func (b *BlobReader) Read(p []byte) (int, error) {
	for len(b.cur) == 0 {
		if b.next >= len(b.ids) {
			return 0, io.EOF
		}
		data, err := b.r.LoadBlob(b.ctx, b.ids[b.next], b.buf)
		if err != nil {
			return 0, fmt.Errorf("blob %s: %w", b.ids[b.next].Short(), err)
		}
		b.next++
		b.cur, b.buf = data, data[:0]
	}
	n := copy(p, b.cur)
	b.cur = b.cur[n:]
	return n, nil
}
