package wal

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/lifeboat-backup/lifeboat/engine/logarchive"
	"github.com/lifeboat-backup/lifeboat/internal/atomicfile"
)

// ReceiveArchive is what the receiver needs of engine/logarchive (the
// host key suffices).
type ReceiveArchive interface {
	Put(ctx context.Context, seg logarchive.Segment, data []byte) (bool, error)
	Delete(ctx context.Context, seg logarchive.Segment) error
	Names(ctx context.Context, target, stream, prefix string) ([]string, error)
}

// Receiver streams a server's WAL with pg_receivewal into a spool
// directory and archives it: every completed segment as wal push would,
// and every MaxDelay the segment being written as a partial version
// (PartialName), so the archive is never more than MaxDelay plus an
// upload behind the server, whether the server switches segments or not.
// A physical replication slot keeps the server from removing WAL the
// receiver has not got yet.
type Receiver struct {
	Archive ReceiveArchive
	Target  string
	Binary  string   // pg_receivewal
	Conn    string   // connection string (pg_receivewal adds replication)
	Env     []string // its environment (PGPASSWORD)
	Slot    string   // physical replication slot, created if missing
	// Spool is the receiver's private directory; a lock file in it keeps
	// a second receiver of the same target out.
	Spool    string
	MaxDelay time.Duration
	Poll     time.Duration // how often the spool is looked at; default 1s
	Log      *slog.Logger

	mu     sync.Mutex
	status ReceiveStatus
	// passMu serializes passes over the spool (the fields below).
	passMu sync.Mutex
	// pushed: complete files archived (kept in the spool until a newer
	// segment is archived, so pg_receivewal resumes after it).
	pushed map[string]bool
	// partial: the newest partial version stored per segment.
	partial map[string]string
	// newest archived complete segment (gap check) and its number.
	newest      string
	newestSegno uint64
	checked     map[string]bool
	gap         *GapError
}

// ReceiveStatus is the receiver's state (metrics, status).
type ReceiveStatus struct {
	Streaming bool      // pg_receivewal is connected and running
	LastWrite time.Time // newest archived WAL: last write of the file it came from
	Newest    string    // its object name
	Segments  int       // complete files archived by this receiver
	Partials  int       // partial versions stored
	Bytes     int64     // bytes archived
	Restarts  int       // pg_receivewal restarts
	Gap       string    // the gap found, if any
}

// ErrReceiverRunning: another receiver holds the spool directory.
var ErrReceiverRunning = errors.New("another wal receiver runs for this target")

// GapError reports WAL the archive will never have: the server removed
// it before it was received, or streaming resumed past the end of the
// archive. The receiver returns it after it stored the first WAL past
// the gap; check and restore --until see the same hole.
type GapError struct {
	After  string // newest archived segment before the gap ("" if unknown)
	Next   string // first segment streamed after it
	Reason string
}

func (e *GapError) Error() string {
	return fmt.Sprintf("gap in the WAL archive after %s: streaming resumed at %s (%s); point-in-time recovery into the gap is impossible, take a new base backup",
		orUnknown(e.After), e.Next, e.Reason)
}

func orUnknown(s string) string {
	if s == "" {
		return "(unknown)"
	}
	return s
}

// Status returns a copy of the receiver's state.
func (r *Receiver) Status() ReceiveStatus {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.status
}

// Run streams and archives until ctx ends (nil, after a last pass that
// archives what was received) or a gap is found (*GapError, after WAL
// past it was stored). Failures to reach the server or the repository
// are retried: pg_receivewal is started again with a backoff, and spool
// files stay until they are archived.
func (r *Receiver) Run(ctx context.Context) error {
	if r.MaxDelay <= 0 {
		return errors.New("wal receive: max delay must be positive")
	}
	if r.Poll <= 0 {
		r.Poll = time.Second
	}
	if r.Log == nil {
		r.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	r.pushed, r.partial, r.checked = map[string]bool{}, map[string]string{}, map[string]bool{}
	dir := filepath.Join(r.Spool, "wal")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("wal receive: %w", err)
	}
	unlock, err := lockSpool(r.Spool)
	if err != nil {
		return err
	}
	defer unlock()
	if err := r.loadNewest(ctx); err != nil {
		return err
	}

	sctx, stopStream := context.WithCancel(ctx)
	defer stopStream()
	streamDone := make(chan error, 1)
	go func() { streamDone <- r.stream(sctx, dir) }()

	tick := time.NewTicker(r.Poll)
	defer tick.Stop()
	var lastPartial time.Time
	for {
		select {
		case <-ctx.Done():
			stopStream()
			<-streamDone
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
			defer cancel()
			if err := r.pass(fctx, dir, true); err != nil {
				r.Log.Warn("last pass of the spool", "error", err)
			}
			return nil
		case err := <-streamDone:
			return err
		case <-tick.C:
		}
		due := time.Since(lastPartial) >= r.MaxDelay
		if err := r.pass(ctx, dir, due); err != nil {
			if ctx.Err() != nil {
				continue
			}
			r.Log.Warn("archiving streamed WAL (retried)", "error", err)
			continue
		}
		if due {
			lastPartial = time.Now()
		}
		r.mu.Lock()
		gap := r.gap
		stored := r.status.Newest != "" && gap != nil && r.status.Newest >= gap.Next
		r.mu.Unlock()
		if stored {
			stopStream()
			<-streamDone
			return gap
		}
	}
}

// loadNewest finds the newest complete segment archived (from names
// only: the gap check compares segment numbers) and the partial versions
// an earlier run stored: those of segments archived whole are deleted,
// the newest of the others is replaced by the next version stored.
func (r *Receiver) loadNewest(ctx context.Context) error {
	names, err := r.Archive.Names(ctx, r.Target, Stream, "")
	if err != nil {
		return fmt.Errorf("wal receive: %w", err)
	}
	whole := map[string]bool{}
	for _, n := range names {
		if IsSegment(n) {
			r.newest = n
			whole[n] = true
		}
	}
	for _, n := range names {
		seg, _, ok := ParsePartial(n)
		switch {
		case !ok:
		case whole[seg]:
			r.deleteObject(ctx, n)
		default:
			if prev := r.partial[seg]; prev != "" {
				r.deleteObject(ctx, prev)
			}
			r.partial[seg] = n // names sort by bytes received
		}
	}
	return nil
}

// stream runs pg_receivewal until ctx ends, starting it again after it
// exits (server restart, network) with a backoff up to 10 s. A server
// that removed the WAL the spool continues from ends this stream: the
// spool's partial segment (archived already) is set aside and streaming
// starts again from the slot, and the gap shows when its first segment
// appears.
func (r *Receiver) stream(ctx context.Context, dir string) error {
	backoff := time.Second
	for ctx.Err() == nil {
		if err := r.createSlot(ctx); err != nil {
			r.Log.Warn("create replication slot (retried)", "slot", r.Slot, "error", err)
		} else {
			started := time.Now()
			removed, err := r.receive(ctx, dir)
			if ctx.Err() != nil {
				return nil
			}
			if time.Since(started) > 30*time.Second {
				backoff = time.Second
			}
			r.mu.Lock()
			r.status.Restarts++
			r.mu.Unlock()
			if removed != "" {
				r.Log.Error("the server removed WAL before it was streamed", "detail", removed)
				if err := r.setAsidePartials(ctx, dir, removed); err != nil {
					return err
				}
				continue
			}
			r.Log.Warn("pg_receivewal ended; starting it again", "in", backoff, "error", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 10*time.Second)
	}
	return nil
}

func (r *Receiver) createSlot(ctx context.Context) error {
	cmd := exec.CommandContext(ctx, r.Binary, "--create-slot", "--if-not-exists", "--slot", r.Slot, "-d", r.Conn, "--no-password")
	cmd.Env = r.Env
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s --create-slot: %w: %s", r.Binary, err, bytes.TrimSpace(out))
	}
	return nil
}

// receive runs pg_receivewal once. removed is set when the server no
// longer has the WAL asked for.
func (r *Receiver) receive(ctx context.Context, dir string) (removed string, err error) {
	cmd := exec.CommandContext(ctx, r.Binary, "-D", dir, "-d", r.Conn, "--slot", r.Slot, "--no-loop",
		"--no-password", "--status-interval", "1", "-v")
	cmd.Env = r.Env
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	// A receiver killed outright takes pg_receivewal with it: an orphan
	// would hold the slot and write into the spool.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	cmd.WaitDelay = 10 * time.Second
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return "", err
	}
	if err := cmd.Start(); err != nil {
		return "", fmt.Errorf("start %s: %w", r.Binary, err)
	}
	var last []string
	sc := bufio.NewScanner(stderr)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.Contains(line, "has already been removed"):
			removed = line
		case strings.Contains(line, "starting log streaming at"):
			r.mu.Lock()
			r.status.Streaming = true
			r.mu.Unlock()
		}
		r.Log.Info("pg_receivewal", "msg", strings.TrimPrefix(line, "pg_receivewal: "))
		last = append(last, line)
		if len(last) > 5 {
			last = last[1:]
		}
	}
	err = cmd.Wait()
	r.mu.Lock()
	r.status.Streaming = false
	r.mu.Unlock()
	if err != nil {
		err = fmt.Errorf("%s: %w: %s", r.Binary, err, strings.Join(last, "; "))
	}
	return removed, err
}

// setAsidePartials moves the spool's partial segments (their newest
// version is archived first) out of pg_receivewal's way, so the next
// start streams from what the server still has.
func (r *Receiver) setAsidePartials(ctx context.Context, dir, why string) error {
	if err := r.pass(ctx, dir, true); err != nil {
		return fmt.Errorf("wal receive: archive the spool before the gap (%s): %w", why, err)
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), ".partial") {
			if err := os.Rename(filepath.Join(dir, e.Name()), filepath.Join(r.Spool, "gap-"+e.Name())); err != nil {
				return fmt.Errorf("wal receive: set aside %s: %w", e.Name(), err)
			}
		}
	}
	return nil
}

// pass archives the spool: complete files not archived yet, then, when
// partial is set, the segment being written if it grew.
func (r *Receiver) pass(ctx context.Context, dir string, partial bool) error {
	r.passMu.Lock()
	defer r.passMu.Unlock()
	ents, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("wal receive: %w", err)
	}
	var complete, segs []string
	var writing string
	for _, e := range ents {
		n := e.Name()
		if seg, ok := strings.CutSuffix(n, ".partial"); ok && IsSegment(seg) {
			writing = max(writing, seg)
			segs = append(segs, seg)
		} else if ValidName(n) && !strings.HasSuffix(n, ".partial") {
			complete = append(complete, n)
			if IsSegment(n) {
				segs = append(segs, n)
			}
		}
	}
	slices.Sort(complete)
	slices.Sort(segs)
	if fi, err := os.Stat(filepath.Join(dir, firstOr(complete, writing+".partial"))); err == nil {
		r.checkGaps(segs, fi.Size())
	}
	for _, n := range complete {
		if r.pushed[n] {
			continue
		}
		existed, seg, err := pushFile(ctx, r.Archive, r.Target, filepath.Join(dir, n))
		if err != nil {
			return err
		}
		r.pushed[n] = true
		r.stored(seg, existed, false)
		if IsSegment(n) {
			r.dropPartial(ctx, n)
		}
	}
	// Keep the newest complete segment: pg_receivewal resumes after it.
	keep := ""
	for _, n := range complete {
		if IsSegment(n) {
			keep = n
		}
	}
	for _, n := range complete {
		if r.pushed[n] && n != keep {
			if err := os.Remove(filepath.Join(dir, n)); err != nil && !os.IsNotExist(err) {
				return fmt.Errorf("wal receive: %w", err)
			}
			delete(r.pushed, n)
		}
	}
	if partial && writing != "" {
		return r.storePartial(ctx, filepath.Join(dir, writing+".partial"), writing)
	}
	return nil
}

// checkGaps compares the segments in the spool (sorted) with the newest
// one archived: on one timeline each must be at most the next one after
// the newest archived or an earlier one in the spool (archived in this
// pass).
func (r *Receiver) checkGaps(segs []string, size int64) {
	last := r.newest
	for _, seg := range segs {
		prev := last
		last = max(last, seg)
		if r.checked[seg] {
			continue
		}
		r.checked[seg] = true
		if prev == "" || Timeline(seg) != Timeline(prev) || seg <= prev {
			continue
		}
		_, n, err1 := Parse(seg, size)
		_, p, err2 := Parse(prev, size)
		if err1 != nil || err2 != nil || n <= p+1 {
			continue
		}
		g := &GapError{After: prev, Next: seg, Reason: fmt.Sprintf("%d segments missing", n-p-1)}
		r.Log.Error("WAL gap", "error", g)
		r.mu.Lock()
		if r.gap == nil {
			r.gap = g
			r.status.Gap = g.Error()
		}
		r.mu.Unlock()
	}
}

func firstOr(names []string, alt string) string {
	for _, n := range names {
		if IsSegment(n) {
			return n
		}
	}
	return alt
}

// storePartial stores the segment being written (padded to the segment
// size by pg_receivewal) under PartialName when it holds more WAL than
// the version stored last; the older version is deleted.
func (r *Receiver) storePartial(ctx context.Context, path, seg string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		if os.IsNotExist(err) { // completed under us: the next pass archives it
			return nil
		}
		return fmt.Errorf("wal receive: %w", err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		return nil
	}
	size := int64(len(data))
	if size <= 0 || size&(size-1) != 0 {
		return nil // pg_receivewal is still padding it
	}
	received := int64(len(bytes.TrimRight(data, "\x00")))
	if received == 0 {
		return nil
	}
	name := PartialName(seg, received)
	r.mu.Lock()
	prev := r.partial[seg]
	r.mu.Unlock()
	if prev == name {
		return nil
	}
	_, n, err := Parse(seg, size)
	if err != nil {
		return err
	}
	s := logarchive.Segment{Target: r.Target, Stream: Stream, Name: name, LastTime: fi.ModTime().UTC(),
		Timeline: Timeline(seg), Start: FormatLSN(n * uint64(size)), End: FormatLSN(n*uint64(size) + uint64(received)),
		Details: map[string]string{"wal_segment_size": strconv.FormatInt(size, 10), "partial_of": seg}}
	existed, err := r.Archive.Put(ctx, s, data)
	if err != nil {
		return fmt.Errorf("wal receive: store %s: %w", name, err)
	}
	s.Size = size
	r.stored(s, existed, true)
	r.mu.Lock()
	r.partial[seg] = name
	r.mu.Unlock()
	if prev != "" {
		r.deleteObject(ctx, prev)
	}
	return nil
}

// dropPartial deletes the partial version of seg once seg is archived
// whole (best effort: retention removes what stays).
func (r *Receiver) dropPartial(ctx context.Context, seg string) {
	r.mu.Lock()
	prev := r.partial[seg]
	delete(r.partial, seg)
	r.mu.Unlock()
	if prev != "" {
		r.deleteObject(ctx, prev)
	}
}

func (r *Receiver) deleteObject(ctx context.Context, name string) {
	if err := r.Archive.Delete(ctx, logarchive.Segment{Target: r.Target, Stream: Stream, Name: name}); err != nil {
		r.Log.Warn("delete superseded partial segment (retention removes it later)", "segment", name, "error", err)
	}
}

func (r *Receiver) stored(s logarchive.Segment, existed, partial bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if partial {
		r.status.Partials++
	} else {
		r.status.Segments++
	}
	if !existed {
		r.status.Bytes += s.Size
	}
	if IsSegment(s.Name) && s.Name > r.newest {
		r.newest = s.Name
	}
	if s.LastTime.After(r.status.LastWrite) {
		r.status.LastWrite = s.LastTime
	}
	// Names sort in log order; a history file names no WAL position.
	if (IsSegment(s.Name) || partial) && s.Name > r.status.Newest {
		r.status.Newest = s.Name
	}
}

// lockSpool takes an exclusive flock on dir/lock.
func lockSpool(dir string) (func(), error) {
	fh, err := os.OpenFile(filepath.Join(dir, "lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("wal receive: %w", err)
	}
	if err := syscall.Flock(int(fh.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		fh.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w (its spool %s is locked)", ErrReceiverRunning, dir)
		}
		return nil, fmt.Errorf("wal receive: lock %s: %w", dir, err)
	}
	return func() { fh.Close() }, nil
}

// WriteReceiveMetrics writes the receiver's gauges as a Prometheus
// textfile.
func WriteReceiveMetrics(path, policy, target string, s ReceiveStatus, now time.Time) error {
	labels := fmt.Sprintf(`{policy=%q,target=%q}`, policy, target)
	var b strings.Builder
	gauge := func(name, help string, v float64) {
		fmt.Fprintf(&b, "# HELP %s %s\n# TYPE %s gauge\n%s%s %g\n", name, help, name, name, labels, v)
	}
	lag, last := -1.0, 0.0
	if !s.LastWrite.IsZero() {
		lag = max(now.Sub(s.LastWrite).Seconds(), 0)
		last = float64(s.LastWrite.Unix())
	}
	gap, streaming := 0.0, 0.0
	if s.Gap != "" {
		gap = 1
	}
	if s.Streaming {
		streaming = 1
	}
	gauge("lifeboat_wal_receive_lag_seconds", "seconds since the last write of the newest WAL archived by wal receive (-1: none yet)", lag)
	gauge("lifeboat_wal_archive_last_segment_timestamp_seconds", "last write of the newest WAL file archived (unix seconds): time() minus this is the archive lag", last)
	gauge("lifeboat_wal_archive_gap", "1: WAL was lost before it was archived (a gap in the chain)", gap)
	gauge("lifeboat_wal_receive_streaming", "1: pg_receivewal is connected", streaming)
	gauge("lifeboat_wal_receive_segments", "complete WAL files archived by this receiver", float64(s.Segments))
	gauge("lifeboat_wal_receive_partials", "partial segment versions stored by this receiver", float64(s.Partials))
	gauge("lifeboat_wal_receive_bytes", "bytes archived by this receiver", float64(s.Bytes))
	gauge("lifeboat_wal_receive_restarts", "times pg_receivewal was started again", float64(s.Restarts))
	return atomicfile.WriteFile(path, []byte(b.String()), 0o644)
}
