package binlog

import (
	"bytes"
	"context"
	"database/sql"
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
	"time"

	driver "github.com/go-sql-driver/mysql"
	"golang.org/x/sys/unix"

	"github.com/lifeboat-backup/lifeboat/targets/mysql"
)

// Default segment limits (policy archive.max_delay, archive.segment_size).
const (
	DefaultMaxDelay    = 30 * time.Second
	DefaultSegmentSize = 16 << 20
)

// GapError says the archive has a break: binlog events were lost before
// they could be archived. The follower goes on after the break; PITR is
// possible again from the next snapshot.
type GapError struct {
	Reason string
	At     Pos // where archiving starts again
}

func (e *GapError) Error() string {
	return fmt.Sprintf("binlog gap: %s; archiving goes on from %s, point-in-time restores across the gap are impossible until the next snapshot", e.Reason, e.At)
}

// Config configures a Follower.
type Config struct {
	DSN, Password string
	// ServerID is the replica server id the follower connects with; it
	// must differ from every server's and replica's in the topology.
	ServerID uint32
	// MaxDelay: a segment is cut at most this long after its first event
	// arrived; SegmentSize: or when it reaches this many bytes.
	MaxDelay    time.Duration
	SegmentSize int64
	// Spool is a private directory for mariadb-binlog's output (emptied
	// at each start).
	Spool string
	// Store receives the segments.
	Store Store
	// StartAt is where to start when the archive is empty (the binlog
	// position of the newest snapshot); zero, or a file the server no
	// longer has: the server's current position.
	StartAt Pos
	// Binary is the mariadb-binlog program; default looked up.
	Binary string
	// Log receives progress and problems; default slog's.
	Log *slog.Logger
	// OnSegment is called after each stored segment.
	OnSegment func(Segment)
	// Poll is how often the spool is read; default 200 ms.
	Poll time.Duration
}

// Follower archives a server's binary log into a Store.
type Follower struct {
	cfg    Config
	conn   *driver.Config
	binary string
	log    *slog.Logger

	mu     sync.Mutex
	status Status
}

// Status is what a follower has done so far.
type Status struct {
	Segments int
	Events   int
	Bytes    int64
	Last     Segment // newest stored
	Gap      *GapError
}

// NewFollower checks the configuration.
func NewFollower(cfg Config) (*Follower, error) {
	conn, err := mysql.ParseDSN(cfg.DSN, cfg.Password)
	if err != nil {
		return nil, err
	}
	if cfg.Store == nil || cfg.Spool == "" {
		return nil, errors.New("binlog follower: no store or spool directory")
	}
	if cfg.MaxDelay <= 0 {
		cfg.MaxDelay = DefaultMaxDelay
	}
	if cfg.SegmentSize <= 0 {
		cfg.SegmentSize = DefaultSegmentSize
	}
	if cfg.Poll <= 0 {
		cfg.Poll = 200 * time.Millisecond
	}
	if cfg.ServerID == 0 {
		cfg.ServerID = 0x4c42 << 8 // "LB"
	}
	bin := cfg.Binary
	if bin == "" {
		if bin, err = clientBinary("mariadb-binlog", "mysqlbinlog"); err != nil {
			return nil, err
		}
	}
	log := cfg.Log
	if log == nil {
		log = slog.Default()
	}
	return &Follower{cfg: cfg, conn: conn, binary: bin, log: log}, nil
}

// Status returns what the follower did so far.
func (f *Follower) Status() Status {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.status
}

// Run follows the server until ctx ends (nil) or a gap is found (a
// *GapError, after the first segment past the gap is stored). Lost
// connections, server restarts and failures of mariadb-binlog start it
// again from where the archive ends.
func (f *Follower) Run(ctx context.Context) error {
	backoff := time.Second
	for {
		stored := f.Status().Segments
		err := f.session(ctx)
		if ctx.Err() != nil {
			return nil
		}
		var gap *GapError
		if errors.As(err, &gap) {
			return err
		}
		if f.Status().Segments > stored {
			backoff = time.Second
		}
		f.log.Warn("binlog follower restarts", "error", err, "in", backoff)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 30*time.Second)
	}
}

// binlogFile is one of the server's binary logs.
type binlogFile struct {
	name string
	size uint64
}

func (f *Follower) serverLogs(ctx context.Context) ([]binlogFile, Pos, error) {
	db, err := mysql.Open(ctx, f.conn, 1)
	if err != nil {
		return nil, Pos{}, err
	}
	defer db.Close()
	rows, err := db.QueryContext(ctx, "SHOW BINARY LOGS")
	if err != nil {
		return nil, Pos{}, fmt.Errorf("mysql %s: SHOW BINARY LOGS (needs the BINLOG MONITOR or REPLICATION CLIENT privilege; is log_bin on?): %w", mysql.RedactConfig(f.conn), err)
	}
	var logs []binlogFile
	cols, _ := rows.Columns()
	for rows.Next() {
		vals := make([]sql.RawBytes, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			rows.Close()
			return nil, Pos{}, err
		}
		n, _ := strconv.ParseUint(string(vals[1]), 10, 64)
		logs = append(logs, binlogFile{name: string(vals[0]), size: n})
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, Pos{}, err
	}
	if len(logs) == 0 {
		return nil, Pos{}, fmt.Errorf("mysql %s: the binary log is off (log_bin)", mysql.RedactConfig(f.conn))
	}
	cur := logs[len(logs)-1]
	return logs, Pos{File: cur.name, Offset: cur.size}, nil
}

// resume decides where this session starts: where the archive ends, or
// after a gap where the server's binary log starts.
func (f *Follower) resume(ctx context.Context) (start Pos, last *Segment, gap *GapError, err error) {
	segs, err := f.cfg.Store.List(ctx)
	if err != nil {
		return Pos{}, nil, nil, err
	}
	logs, cur, err := f.serverLogs(ctx)
	if err != nil {
		return Pos{}, nil, nil, err
	}
	find := func(name string) int {
		return slices.IndexFunc(logs, func(l binlogFile) bool { return l.name == name })
	}
	oldest := Pos{File: logs[0].name, Offset: 4}
	if len(segs) == 0 {
		if p := f.cfg.StartAt; !p.IsZero() {
			if i := find(p.File); i >= 0 && logs[i].size >= p.Offset {
				return p, nil, nil, nil
			}
			f.log.Warn("binlog archive starts at the server's current position: the newest snapshot's position is no longer on the server", "snapshot_position", p.String(), "server_position", cur.String())
		}
		return cur, nil, nil, nil
	}
	l := segs[len(segs)-1]
	last = &l
	want := l.End
	if i := find(want.File); i >= 0 {
		if logs[i].size >= want.Offset {
			return want, last, nil, nil
		}
		return oldest, last, &GapError{At: oldest, Reason: fmt.Sprintf("the server's binary log history changed: %s is %d bytes, the archive ends at %s", want.File, logs[i].size, want)}, nil
	}
	switch {
	case want.Compare(oldest) < 0:
		return oldest, last, &GapError{At: oldest, Reason: fmt.Sprintf("the server purged %s before it was archived (the archive ends at %s; the oldest binary log on the server is %s)", want.File, want, logs[0].name)}, nil
	case l.Closed != "" && want.Offset == 4 && want.Compare(cur) > 0:
		// The archive ends with a stopped server's last file; the server
		// has not begun the next one (yet).
		return Pos{}, last, nil, fmt.Errorf("the archive ends at %s (%s) and the server's binary log at %s: waiting for %s", want, l.Closed, cur, want.File)
	}
	return oldest, last, &GapError{At: oldest, Reason: fmt.Sprintf("the server's binary log history changed: it has no %s (the archive ends at %s; its binary logs are %s to %s)", want.File, want, logs[0].name, cur.File)}, nil
}

// nextFile is the name of the binary log after f (binlog.000041 ->
// binlog.000042).
func nextFile(f string) (string, bool) {
	base, n, ok := fileSeq(f)
	if !ok {
		return "", false
	}
	return fmt.Sprintf("%s.%0*d", base, len(f)-len(base)-1, n+1), true
}

// session runs mariadb-binlog once and archives what it writes.
func (f *Follower) session(ctx context.Context) error {
	start, last, gap, err := f.resume(ctx)
	if err != nil {
		return err
	}
	f.mu.Lock()
	if last != nil && f.status.Last.Name == "" {
		f.status.Last = *last
	}
	f.mu.Unlock()
	if gap != nil {
		f.log.Error("binlog gap", "reason", gap.Reason, "resume", gap.At.String())
		f.mu.Lock()
		f.status.Gap = gap
		f.mu.Unlock()
	}
	if err := os.MkdirAll(f.cfg.Spool, 0o700); err != nil {
		return err
	}
	if err := clearDir(f.cfg.Spool); err != nil {
		return err
	}
	defaults, err := writeDefaults(f.cfg.Spool, f.conn)
	if err != nil {
		return err
	}
	defer os.Remove(defaults)

	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	args := []string{"--defaults-extra-file=" + defaults, "--read-from-remote-server", "--raw", "--stop-never",
		"--stop-never-slave-server-id=" + strconv.FormatUint(uint64(f.cfg.ServerID), 10),
		"--start-position=" + strconv.FormatUint(start.Offset, 10),
		"--result-file=" + f.cfg.Spool + string(filepath.Separator), start.File}
	cmd := exec.CommandContext(sctx, f.binary, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	cmd.Dir = f.cfg.Spool
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", f.binary, err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	f.log.Info("binlog follower started", "server", mysql.RedactConfig(f.conn), "from", start.String())

	t := &tailer{f: f, start: start, gap: gap}
	if last != nil && last.End == start {
		t.gtid = last.GTID
	}
	tick := time.NewTicker(f.cfg.Poll)
	defer tick.Stop()
	// The watchdog: a connection can die without mariadb-binlog noticing
	// (no heartbeat in raw mode); when nothing arrived for a while and the
	// server's binary log is ahead of what was read, start again.
	stall := max(30*time.Second, 3*f.cfg.MaxDelay)
	watch := time.NewTicker(stall)
	defer watch.Stop()
	t.progress = time.Now()
	var exitErr error
loop:
	for {
		select {
		case <-watch.C:
			if time.Since(t.progress) < stall {
				continue
			}
			_, cur, err := f.serverLogs(ctx)
			ref := t.readEnd
			if ref.IsZero() {
				ref = start
			}
			if err == nil && cur.Compare(ref) <= 0 {
				t.progress = time.Now() // an idle server
				continue
			}
			f.log.Warn("binlog follower: nothing from mariadb-binlog; reconnecting", "for", time.Since(t.progress).Round(time.Second), "read_to", t.readEnd.String(), "server_at", cur.String(), "error", err)
			cancel()
			exitErr = <-done
			break loop
		case <-ctx.Done():
			cancel()
			<-done
			break loop
		case exitErr = <-done:
			break loop
		case <-tick.C:
			if err := t.poll(ctx, false); err != nil {
				cancel()
				<-done
				return err
			}
			if gap != nil && t.stored > 0 {
				// The gap is on record in the archive: say so loudly.
				cancel()
				<-done
				break loop
			}
		}
	}
	// Archive everything complete the child wrote before it ended.
	if err := t.poll(context.WithoutCancel(ctx), true); err != nil {
		return err
	}
	if t.gap != nil && t.stored == 0 {
		// Nothing stored past the gap yet: the next session finds it again.
		return fmt.Errorf("%s: %v: %s", f.binary, exitErr, tail(stderr.Bytes()))
	}
	if gap != nil {
		return gap
	}
	if ctx.Err() != nil {
		return nil
	}
	return fmt.Errorf("%s ended: %v: %s", f.binary, exitErr, tail(stderr.Bytes()))
}

func clearDir(dir string) error {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range ents {
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			return err
		}
	}
	return nil
}

// pending is one event read and not yet stored.
type pending struct {
	end      int // offset in tailer.buf after the event
	ev       Event
	arrived  time.Time
	boundary bool // a transaction ends with it (or it is outside one)
}

// tailer reads mariadb-binlog's output files in order and cuts them
// into segments.
type tailer struct {
	f     *Follower
	start Pos
	gap   *GapError // put on the first segment stored
	gtid  string    // the last GTID of the stored segments

	file    string // spool file being read
	fh      *os.File
	read    int64  // bytes of it read
	punched int64  // bytes of it released (archived)
	raw     []byte // bytes read and not yet parsed
	magic   bool
	format  Format
	fd      []byte // the file's format description event
	atStart bool   // the file was read from its start: its first segment starts at 4
	grouper grouper

	buf    []byte // events pending, whole
	events []pending
	stored int
	// The end of the newest event read, and when it arrived (watchdog).
	readEnd  Pos
	progress time.Time
}

// spoolFiles lists the output files in log order.
func (t *tailer) spoolFiles() ([]string, error) {
	ents, err := os.ReadDir(t.f.cfg.Spool)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, e := range ents {
		if !strings.HasPrefix(e.Name(), ".") && e.Type().IsRegular() {
			names = append(names, e.Name())
		}
	}
	slices.SortFunc(names, func(a, b string) int { return Pos{File: a}.Compare(Pos{File: b}) })
	return names, nil
}

// poll reads what is new and stores the segments due; final: the child
// has ended, store everything complete.
func (t *tailer) poll(ctx context.Context, final bool) error {
	for {
		files, err := t.spoolFiles()
		if err != nil {
			return err
		}
		if t.file == "" {
			if len(files) == 0 {
				return nil
			}
			if err := t.open(files[0]); err != nil {
				return err
			}
		}
		if err := t.readMore(); err != nil {
			return err
		}
		next := ""
		if i := slices.Index(files, t.file); i >= 0 && i+1 < len(files) {
			next = files[i+1]
		}
		if next == "" {
			break
		}
		// A newer file exists: this one is complete.
		if len(t.raw) > 0 {
			return fmt.Errorf("binlog spool %s: %d bytes of an incomplete event before %s began", t.file, len(t.raw), next)
		}
		if err := t.cut(ctx, true); err != nil {
			return err
		}
		t.fh.Close()
		if err := os.Remove(filepath.Join(t.f.cfg.Spool, t.file)); err != nil {
			return err
		}
		t.file, t.fh = "", nil
		if err := t.open(next); err != nil {
			return err
		}
	}
	return t.cut(ctx, final)
}

func (t *tailer) open(name string) error {
	fh, err := os.OpenFile(filepath.Join(t.f.cfg.Spool, name), os.O_RDWR, 0)
	if err != nil {
		return err
	}
	if err := validFile(name); err != nil {
		fh.Close()
		return err
	}
	t.file, t.fh, t.read, t.punched, t.raw, t.magic, t.fd = name, fh, 0, 0, t.raw[:0], false, nil
	t.grouper = grouper{}
	return nil
}

// readMore reads the bytes appended to the current file and parses the
// whole events among them.
func (t *tailer) readMore() error {
	chunk := make([]byte, 256<<10)
	for {
		n, err := t.fh.ReadAt(chunk, t.read)
		t.raw = append(t.raw, chunk[:n]...)
		t.read += int64(n)
		if err == io.EOF || n == 0 {
			break
		}
		if err != nil {
			return err
		}
	}
	now := time.Now()
	for {
		if !t.magic {
			if len(t.raw) < 4 {
				return nil
			}
			if !bytes.Equal(t.raw[:4], Magic) {
				return fmt.Errorf("binlog spool %s: not a binlog file", t.file)
			}
			t.raw, t.magic = t.raw[4:], true
		}
		if t.fd == nil {
			h, err := ParseHeader(t.raw)
			if errors.Is(err, ErrShort) || err == nil && len(t.raw) < int(h.Size) {
				return nil
			}
			if err != nil {
				return fmt.Errorf("binlog spool %s: %w", t.file, err)
			}
			if t.format, err = ParseFormat(t.raw[:h.Size]); err != nil {
				return fmt.Errorf("binlog spool %s: %w", t.file, err)
			}
			t.fd = slices.Clone(t.raw[:h.Size])
			t.atStart = !h.Artificial() || t.file == t.start.File && t.start.Offset <= 4
			t.raw = t.raw[h.Size:]
			continue
		}
		ev, n, err := Decode(t.raw, t.format)
		if errors.Is(err, ErrShort) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("binlog spool %s: %w", t.file, err)
		}
		raw := t.raw[:n]
		t.raw = t.raw[n:]
		if ev.Artificial() || ev.Type == TypeHeartbeat {
			continue
		}
		if ev.Type == TypeFormatDescription {
			return fmt.Errorf("binlog spool %s: a second format description at %d", t.file, ev.Start())
		}
		_, end := t.grouper.step(ev)
		t.buf = append(t.buf, raw...)
		t.events = append(t.events, pending{end: len(t.buf), ev: ev, arrived: now, boundary: end})
		t.readEnd, t.progress = Pos{File: t.file, Offset: uint64(ev.LogPos)}, now
	}
}

// cut stores the pending events that are due: all of them with force,
// else up to the last transaction boundary once the oldest waited
// MaxDelay or they fill SegmentSize.
func (t *tailer) cut(ctx context.Context, force bool) error {
	for len(t.events) > 0 {
		n := len(t.events)
		if !force {
			due := time.Since(t.events[0].arrived) >= t.f.cfg.MaxDelay || int64(len(t.buf)) >= t.f.cfg.SegmentSize
			if !due {
				return nil
			}
			// Up to the last boundary within SegmentSize; else the last
			// boundary; else every event.
			b := -1
			for i := n - 1; i >= 0; i-- {
				if t.events[i].boundary && (b < 0 || int64(t.events[i].end) <= t.f.cfg.SegmentSize) {
					b = i
					if int64(t.events[i].end) <= t.f.cfg.SegmentSize {
						break
					}
				}
			}
			if b >= 0 {
				n = b + 1
			}
		}
		if err := t.store(ctx, n); err != nil {
			return err
		}
		if !force {
			return nil
		}
	}
	return nil
}

// store stores the first n pending events as one segment.
func (t *tailer) store(ctx context.Context, n int) error {
	evs := t.events[:n]
	first, lastEv := evs[0].ev, evs[n-1].ev
	size := evs[n-1].end
	seg := Segment{
		Start:     Pos{File: t.file, Offset: uint64(first.Start())},
		End:       Pos{File: t.file, Offset: uint64(lastEv.LogPos)},
		FirstTime: first.Time(),
		LastTime:  lastEv.Time(),
		Events:    n,
	}
	for _, p := range evs {
		if p.ev.Time().After(seg.LastTime) {
			seg.LastTime = p.ev.Time()
		}
	}
	if t.atStart {
		// The file's format description and everything before the first
		// event are in the segment: it starts where the file does.
		seg.Start.Offset, t.atStart = 4, false
	}
	seg.GTID = t.gtidAt(n)
	seg.Name = SegmentName(seg.Start)
	// A segment that closes its file ends where the next file starts, so
	// that segments chain by position alone (logarchive.Contiguous).
	switch lastEv.Type {
	case TypeRotate:
		seg.Closed = "rotate to " + lastEv.NextFile
		seg.End = Pos{File: lastEv.NextFile, Offset: lastEv.NextPos}
	case TypeStop:
		seg.Closed = "server stopped"
		if next, ok := nextFile(t.file); ok {
			seg.End = Pos{File: next, Offset: 4}
		}
	}
	if t.gap != nil {
		seg.Gap = t.gap.Reason
	}
	data := make([]byte, 0, 4+len(t.fd)+size)
	data = append(append(append(data, Magic...), t.fd...), t.buf[:size]...)
	seg.Size = int64(len(data))
	if err := t.f.cfg.Store.Put(ctx, seg, data); err != nil {
		return fmt.Errorf("store binlog segment %s: %w", seg.Name, err)
	}
	t.gap = nil
	t.gtid = seg.GTID
	t.stored++
	t.release()
	t.buf = t.buf[:copy(t.buf, t.buf[size:])]
	rest := t.events[n:]
	for i := range rest {
		rest[i].end -= size
	}
	t.events = t.events[:copy(t.events, rest)]
	f := t.f
	f.mu.Lock()
	f.status.Segments++
	f.status.Events += n
	f.status.Bytes += seg.Size
	f.status.Last = seg
	f.mu.Unlock()
	f.log.Debug("binlog segment stored", "segment", seg.Name, "end", seg.End.String(), "events", n, "last_event", seg.LastTime)
	if f.cfg.OnSegment != nil {
		f.cfg.OnSegment(seg)
	}
	return nil
}

// release frees the disk space of what is archived of the current spool
// file (a hole punched below the archived end; mariadb-binlog goes on
// appending at its own offset), so the spool holds about one segment, not
// a whole binary log. Where the file system cannot punch holes, the file
// keeps its size until the binary log rotates.
func (t *tailer) release() {
	if t.fh == nil {
		return
	}
	upTo := t.read - int64(len(t.raw)) - int64(len(t.buf))
	upTo &^= 1<<16 - 1
	if upTo > t.punched {
		if unix.Fallocate(int(t.fh.Fd()), unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, 0, upTo) == nil {
			t.punched = upTo
		}
	}
}

// gtidAt is the last GTID among the first n pending events, else the
// one the stored segments end with.
func (t *tailer) gtidAt(n int) string {
	for j := n - 1; j >= 0; j-- {
		if g := t.events[j].ev.GTID; g != nil {
			return g.String()
		}
	}
	return t.gtid
}
