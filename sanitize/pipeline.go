package sanitize

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"runtime"
	"slices"

	"golang.org/x/sync/errgroup"
)

// The export pipeline: one producer reads the snapshot and cuts table
// data into chunks of whole rows, workers (one faker each) render chunks
// in parallel, and one writer emits static text and rendered chunks in
// the producer's order. Chunk boundaries depend only on the input bytes,
// so the output is the same whatever the number of workers. Memory is
// bounded by the queue: at most queueLen+jobs chunks are alive.

// renderer turns a chunk of whole input rows (each ending in '\n') into
// output text.
type renderer interface {
	// render appends the output of rows in to out. first is the 1-based
	// number of the chunk's first row (for error messages).
	render(f *faker, in []byte, first int64, out []byte) (_ []byte, read, written int64, err error)
}

// chunk is one piece of table data on its way through the workers.
type chunk struct {
	r      renderer
	in     []byte
	first  int64
	out    []byte
	read   int64
	rows   int64
	err    error
	stats  *TableStats
	errCtx string // names the table in errors
	done   chan struct{}
}

// piece is static text or a chunk, in output order.
type piece struct {
	text []byte
	c    *chunk
}

const (
	defaultChunk = 1 << 20 // input bytes per chunk (whole rows: a long row makes it longer)
	textFlush    = 256 << 10
)

// pipeline is the producer's side: Write queues static text, data queues
// a table's rows.
type pipeline struct {
	ctx       context.Context
	queue     chan piece
	work      chan *chunk
	pending   []byte
	chunkSize int
	free      chan []byte // recycled input buffers
}

// runPipeline runs produce (the producer) with jobs workers and writes
// the output to w in order. produce writes static text to the pipeline
// and calls data for table rows.
func runPipeline(ctx context.Context, jobs, chunkSize int, key []byte, w io.Writer, produce func(p *pipeline) error) error {
	if jobs <= 0 {
		jobs = runtime.GOMAXPROCS(0)
	}
	if chunkSize <= 0 {
		chunkSize = defaultChunk
	}
	g, ctx := errgroup.WithContext(ctx)
	p := &pipeline{ctx: ctx, queue: make(chan piece, 2*jobs+2), work: make(chan *chunk, jobs), chunkSize: chunkSize,
		free: make(chan []byte, 2*jobs+4)}
	outFree := make(chan []byte, 2*jobs+4)
	for range jobs {
		g.Go(func() error {
			f := &faker{key: key}
			for c := range p.work {
				if err := ctx.Err(); err != nil {
					c.err = err
				} else {
					var out []byte
					select {
					case out = <-outFree:
					default:
						out = make([]byte, 0, len(c.in)+len(c.in)/2) // SQL is ~1.2 times the data
					}
					c.out, c.read, c.rows, c.err = c.r.render(f, c.in, c.first, out[:0])
				}
				close(c.done)
			}
			return nil
		})
	}
	g.Go(func() error {
		defer close(p.work)
		defer close(p.queue)
		if err := produce(p); err != nil {
			return err
		}
		return p.flushText()
	})
	g.Go(func() error {
		for pc := range p.queue {
			if pc.c == nil {
				if _, err := w.Write(pc.text); err != nil {
					return err
				}
				continue
			}
			c := pc.c
			select {
			case <-c.done:
			case <-ctx.Done():
				return ctx.Err()
			}
			if c.err != nil {
				return fmt.Errorf("%s: %w", c.errCtx, c.err)
			}
			if _, err := w.Write(c.out); err != nil {
				return err
			}
			c.stats.RowsRead += c.read
			c.stats.Rows += c.rows
			recycle(p.free, c.in)
			recycle(outFree, c.out)
		}
		return nil
	})
	return g.Wait()
}

func recycle(pool chan []byte, b []byte) {
	select {
	case pool <- b[:0]:
	default:
	}
}

func (p *pipeline) send(pc piece) error {
	select {
	case p.queue <- pc:
		return nil
	case <-p.ctx.Done():
		return p.ctx.Err()
	}
}

// Write queues static text.
func (p *pipeline) Write(b []byte) (int, error) {
	p.pending = append(p.pending, b...)
	if len(p.pending) >= textFlush {
		if err := p.flushText(); err != nil {
			return 0, err
		}
	}
	return len(b), nil
}

// WriteString queues static text.
func (p *pipeline) WriteString(s string) (int, error) { return p.Write([]byte(s)) }

func (p *pipeline) flushText() error {
	if len(p.pending) == 0 {
		return nil
	}
	t := p.pending
	p.pending = nil
	return p.send(piece{text: t})
}

// data cuts a table's rows from r into chunks of whole lines and queues
// them for rendering by rd; their counts go to st. errCtx names the table
// in errors.
func (p *pipeline) data(r io.Reader, rd renderer, st *TableStats, errCtx string) error {
	if err := p.flushText(); err != nil {
		return err
	}
	var carry []byte
	row := int64(1)
	for eof := false; ; {
		var buf []byte
		select {
		case buf = <-p.free:
		default:
			buf = make([]byte, 0, p.chunkSize+p.chunkSize/4)
		}
		// The chunk ends at the first row end at or after chunkSize bytes
		// (or at the end of the data): boundaries depend on the bytes only.
		buf = append(buf[:0], carry...)
		cut, scan := -1, p.chunkSize-1
		for {
			if len(buf) > scan {
				if i := bytes.IndexByte(buf[scan:], '\n'); i >= 0 {
					cut = scan + i + 1
					break
				}
				scan = len(buf)
			}
			if eof {
				break
			}
			if len(buf) == cap(buf) {
				buf = slices.Grow(buf, len(buf))
			}
			n, err := r.Read(buf[len(buf):cap(buf)])
			buf = buf[:len(buf)+n]
			if err == io.EOF {
				eof = true
			} else if err != nil {
				return err
			}
		}
		if cut < 0 {
			cut = len(buf)
			if cut > 0 && buf[cut-1] != '\n' {
				buf = append(buf, '\n') // a last row without its newline
				cut++
			}
		}
		carry = append(carry[:0], buf[cut:]...)
		buf = buf[:cut]
		if len(buf) == 0 {
			return nil
		}
		c := &chunk{r: rd, in: buf, first: row, stats: st, errCtx: errCtx, done: make(chan struct{})}
		row += int64(bytes.Count(buf, []byte{'\n'}))
		if err := p.send(piece{c: c}); err != nil {
			return err
		}
		select {
		case p.work <- c:
		case <-p.ctx.Done():
			return p.ctx.Err()
		}
	}
}
