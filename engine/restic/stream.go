package restic

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"

	"github.com/lifeboat-backup/lifeboat/engine/snapshot"
)

// smallEntry is the largest content Tree keeps in memory: schemas, views,
// small tables are then read without a second dump pass.
const smallEntry = 1 << 20

// maxPasses bounds the restic dump processes one snapshot runs at once for
// readers of big entries.
const maxPasses = 4

// Open returns a stream snapshot (mysql, postgres, exec, bucket, volume)
// as a restore.Snapshot, read through `restic dump`. Tree makes one pass
// over the archive; content bigger than smallEntry is streamed by further
// passes: a reader takes the running pass nearest before its entry and
// skips forward, or starts one (up to maxPasses at once), so readers in
// parallel and out of tree order work, and a restore in tree order costs
// one more pass. Close the snapshot to stop passes left. Files snapshots
// are restic's own trees: RestoreFiles restores them.
func (e *Engine) Open(_ context.Context, sn *snapshot.Snapshot) (snapshot.Reader, error) {
	if sn.Kind == "files" {
		return nil, fmt.Errorf("%w: snapshot %s is restic's own file tree, not a lifeboat archive: restore it as files (--to DIR)", snapshot.ErrUnsupported, sn.ID.Short())
	}
	s := &streamSnapshot{r: e.R, sn: sn, file: "/" + sn.Target + ArchiveSuffix}
	s.cond = sync.NewCond(&s.mu)
	return s, nil
}

type streamSnapshot struct {
	r    *Restic
	sn   *snapshot.Snapshot
	file string

	once  sync.Once
	nodes []*snapshot.Node
	index map[string]int
	small map[string][]byte
	err   error

	mu   sync.Mutex
	cond *sync.Cond
	free []*dumpPass // running passes no reader holds
	all  []*dumpPass // running passes, free or held
}

func (s *streamSnapshot) Info() *snapshot.Snapshot { return s.sn }

func (s *streamSnapshot) Tree(ctx context.Context) snapshot.TreeReader {
	s.once.Do(func() { s.err = s.load(ctx) })
	return &nodeList{nodes: s.nodes, err: s.err}
}

// load reads the whole archive once: nodes with their real sizes, small
// contents, and the recovery point from the end record.
func (s *streamSnapshot) load(ctx context.Context) error {
	p, err := s.startPass(ctx)
	if err != nil {
		return err
	}
	defer p.close()
	s.index, s.small = map[string]int{}, map[string][]byte{}
	buf := make([]byte, smallEntry+1)
	for {
		e, err := p.ar.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return s.fail(p, err)
		}
		n := &snapshot.Node{Entry: *e}
		if e.Type == snapshot.TypeFile {
			k, err := io.ReadFull(p.ar, buf)
			switch err {
			case io.EOF, io.ErrUnexpectedEOF:
				s.small[e.Path] = bytes.Clone(buf[:k])
				n.Size = int64(k)
			case nil:
				rest, err := io.Copy(io.Discard, p.ar)
				if err != nil {
					return s.fail(p, err)
				}
				n.Size = int64(k) + rest
			default:
				return s.fail(p, err)
			}
		}
		s.index[e.Path] = len(s.nodes)
		s.nodes = append(s.nodes, n)
	}
	end := p.ar.end
	s.sn.RecoveryPoint = snapshot.RecoveryPoint{Time: end.RecoveryPoint, Details: end.Details}
	return p.close()
}

func (s *streamSnapshot) fail(p *dumpPass, err error) error {
	if werr := p.close(); werr != nil {
		return werr // restic's own failure explains a cut stream
	}
	return fmt.Errorf("snapshot %s %s: %w", s.sn.ID.Short(), s.file, err)
}

func (s *streamSnapshot) Open(ctx context.Context, n *snapshot.Node) io.ReadCloser {
	if b, ok := s.small[n.Path]; ok {
		return io.NopCloser(bytes.NewReader(b))
	}
	idx, ok := s.index[n.Path]
	if !ok {
		return errReader{fmt.Errorf("snapshot %s: no entry %q (read the tree first)", s.sn.ID.Short(), n.Path)}
	}
	p, err := s.take(ctx, idx)
	if err != nil {
		return errReader{err}
	}
	for p.pos < idx {
		if _, err := p.ar.Next(); err != nil {
			err = s.fail(p, err)
			s.release(p, true)
			return errReader{err}
		}
		p.pos++
	}
	return &entryReader{s: s, p: p}
}

// take returns a dump pass positioned before entry idx, for one reader:
// the free pass nearest before it, else a new one (at most maxPasses run;
// a free pass already past idx is stopped to make room), else it waits for
// a reader to close.
func (s *streamSnapshot) take(ctx context.Context, idx int) (*dumpPass, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for {
		var best, past *dumpPass
		for _, p := range s.free {
			if p.pos < idx && (best == nil || p.pos > best.pos) {
				best = p
			}
			if p.pos >= idx {
				past = p
			}
		}
		if best != nil {
			s.remove(best)
			return best, nil
		}
		if past != nil && len(s.all) >= maxPasses {
			s.remove(past)
			s.end(past)
		}
		if len(s.all) < maxPasses {
			p, err := s.startPass(ctx)
			if err != nil {
				return nil, err
			}
			s.all = append(s.all, p)
			return p, nil
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		s.cond.Wait()
	}
}

func (s *streamSnapshot) remove(p *dumpPass) {
	s.free = slices.DeleteFunc(s.free, func(q *dumpPass) bool { return q == p })
}

// end stops a pass and forgets it; s.mu is held.
func (s *streamSnapshot) end(p *dumpPass) error {
	s.all = slices.DeleteFunc(s.all, func(q *dumpPass) bool { return q == p })
	return p.close()
}

// release gives a pass back after its reader closed; a broken one ends.
func (s *streamSnapshot) release(p *dumpPass, broken bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if broken {
		_ = s.end(p)
	} else {
		s.free = append(s.free, p)
	}
	s.cond.Broadcast()
}

// Close ends the dump passes left running, also those of readers not
// closed.
func (s *streamSnapshot) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var err error
	for _, p := range slices.Clone(s.all) {
		err = errors.Join(err, s.end(p))
	}
	s.free = nil
	s.cond.Broadcast()
	return err
}

// dumpPass is one running `restic dump SNAPSHOT /TARGET.lifeboat`.
type dumpPass struct {
	ar     *archiveReader
	pr     *io.PipeReader
	cancel context.CancelFunc
	done   chan error
	pos    int // index of the entry whose content is next
	err    error
	closed bool
}

func (s *streamSnapshot) startPass(ctx context.Context) (*dumpPass, error) {
	ctx, cancel := context.WithCancel(ctx)
	pr, pw := io.Pipe()
	p := &dumpPass{pr: pr, cancel: cancel, done: make(chan error, 1), pos: -1}
	go func() {
		err := s.r.run(ctx, cmd{args: []string{"dump", s.sn.ID.String(), s.file}, stdout: pw})
		_ = pw.CloseWithError(err)
		p.done <- err
	}()
	ar, err := newArchiveReader(pr)
	if err != nil {
		return nil, s.fail(p, err)
	}
	p.ar = ar
	return p, nil
}

// close stops the pass and returns restic's error, if it failed before
// it was stopped. A running restic gets SIGINT (it then removes its lock)
// and its remaining output is drained: closing the pipe instead would
// kill it by SIGPIPE and leave its lock behind.
func (p *dumpPass) close() error {
	if p.closed {
		return p.err
	}
	p.closed = true
	var err error
	select {
	case err = <-p.done:
		p.err = err
		_ = p.pr.Close()
		return err
	default:
	}
	p.cancel()
	_, _ = io.Copy(io.Discard, p.pr)
	<-p.done // stopped by us: not a failure
	return nil
}

// entryReader reads one entry's content of a pass; Close gives the pass
// back.
type entryReader struct {
	s      *streamSnapshot
	p      *dumpPass
	broken bool
	closed bool
}

func (r *entryReader) Read(b []byte) (int, error) {
	if r.closed {
		return 0, errors.New("read after close")
	}
	n, err := r.p.ar.Read(b)
	if err != nil && err != io.EOF {
		r.broken = true
		if werr := r.p.close(); werr != nil {
			err = werr
		}
		err = fmt.Errorf("snapshot %s %s: %w", r.s.sn.ID.Short(), r.s.file, err)
	}
	return n, err
}

func (r *entryReader) Close() error {
	if !r.closed {
		r.closed = true
		r.s.release(r.p, r.broken)
	}
	return nil
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }
func (errReader) Close() error               { return nil }

type nodeList struct {
	nodes []*snapshot.Node
	i     int
	err   error
}

func (l *nodeList) Next() (*snapshot.Node, error) {
	if l.err != nil {
		return nil, l.err
	}
	if l.i == len(l.nodes) {
		return nil, io.EOF
	}
	l.i++
	return l.nodes[l.i-1], nil
}
