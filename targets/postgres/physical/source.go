package physical

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/lifeboat-backup/lifeboat/engine/snapshot"
	"github.com/lifeboat-backup/lifeboat/targets/physicalbase"
	"github.com/lifeboat-backup/lifeboat/targets/postgres"
	"github.com/lifeboat-backup/lifeboat/targets/postgres/wal"
)

// Entry is the name of the one entry of a physical base snapshot.
const Entry = "base.tar"

// Method is the recovery point detail that marks a physical base.
const Method = "physical"

// Options configure a physical base backup.
type Options struct {
	DSN      string // postgres://user@host:port/ (a user with REPLICATION)
	Password string
	BinDir   string // where pg_basebackup and psql are; default PATH
}

// Source streams pg_basebackup's tar into the repository. It has the
// method set of engine.Source, engine.RecoveryPointer and
// engine.AllOrNothing.
type Source struct {
	opts Options
	conn *postgres.Conn
	rp   physicalbase.Point
}

// New checks the options; it does not connect.
func New(opts Options) (*Source, error) {
	if opts.DSN == "" {
		return nil, errors.New("postgres: no DSN")
	}
	c, err := postgres.ParseDSN(opts.DSN, opts.Password)
	if err != nil {
		return nil, err
	}
	return &Source{opts: opts, conn: c}, nil
}

// Kind implements engine.Source.
func (s *Source) Kind() string { return "postgres" }

// Paths implements engine.Source.
func (s *Source) Paths() []string { return []string{s.conn.String() + " (physical)"} }

// AllOrNothing implements engine.AllOrNothing.
func (s *Source) AllOrNothing() bool { return true }

// RecoveryPoint implements engine.RecoveryPointer: the base is consistent
// once the WAL up to its end LSN is replayed, which happened before
// pg_basebackup returned (the time recorded). Details: method=physical,
// start_lsn, end_lsn, timeline, start_wal (the first segment recovery
// needs), start_time, wal_segment_size.
func (s *Source) RecoveryPoint() (time.Time, map[string]string) { return s.rp.Get() }

// Walk implements engine.Source: one file entry, base.tar, whose content
// is pg_basebackup -Ft -X fetch -D - (the cluster plus the WAL from its
// start to its end, so the base alone is consistent).
func (s *Source) Walk(ctx context.Context, warn func(string, error), fn func(snapshot.Entry, func() (io.ReadCloser, error)) error) error {
	segSize, err := s.segmentSize(ctx)
	if err != nil {
		return err
	}
	e := snapshot.Entry{Path: Entry, Type: snapshot.TypeFile, Mode: 0o600, ModTime: time.Now().UTC()}
	return fn(e, func() (io.ReadCloser, error) { return s.start(ctx, segSize) })
}

// segmentSize asks the server for wal_segment_size (bytes).
func (s *Source) segmentSize(ctx context.Context) (int64, error) {
	psql, err := postgres.Binary(s.opts.BinDir, "psql")
	if err != nil {
		return 0, err
	}
	cmd := exec.CommandContext(ctx, psql, "-X", "-A", "-t", "-d", s.conn.URL("postgres"), "-c",
		"SELECT setting FROM pg_settings WHERE name = 'wal_segment_size'")
	cmd.Env = s.conn.Env()
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		return 0, fmt.Errorf("postgres: psql: %v: %s", err, strings.TrimSpace(stderr.String()))
	}
	n, err := strconv.ParseInt(strings.TrimSpace(out.String()), 10, 64)
	if err != nil || n <= 0 || n&(n-1) != 0 {
		return 0, fmt.Errorf("postgres: wal_segment_size %q", strings.TrimSpace(out.String()))
	}
	return n, nil
}

func (s *Source) start(ctx context.Context, segSize int64) (io.ReadCloser, error) {
	bin, err := postgres.Binary(s.opts.BinDir, "pg_basebackup")
	if err != nil {
		return nil, err
	}
	started := time.Now().UTC()
	cmd := exec.CommandContext(ctx, bin, "-D", "-", "-F", "tar", "-X", "fetch", "-c", "fast", "-v",
		"-l", "lifeboat "+started.Format(time.RFC3339), "-d", s.conn.URL("postgres"))
	cmd.Env = s.conn.Env()
	return physicalbase.Start(physicalbase.Tool{
		Cmd:    cmd,
		Kind:   "postgres",
		Name:   "pg_basebackup",
		Finish: func(log string, waitErr error) error { return s.finish(started, segSize, log, waitErr) },
	})
}

var (
	startRE = regexp.MustCompile(`write-ahead log start point: ([0-9A-F]+/[0-9A-F]+) on timeline (\d+)`)
	endRE   = regexp.MustCompile(`write-ahead log end point: ([0-9A-F]+/[0-9A-F]+)`)
)

// finish records the recovery point from the verbose output of a
// pg_basebackup that ended.
func (s *Source) finish(started time.Time, segSize int64, log string, waitErr error) error {
	if waitErr != nil {
		return fmt.Errorf("postgres: pg_basebackup failed: %s (%v)", strings.TrimSpace(log), waitErr)
	}
	ended := time.Now().UTC()
	m1 := startRE.FindStringSubmatch(log)
	m2 := endRE.FindStringSubmatch(log)
	if m1 == nil || m2 == nil {
		return fmt.Errorf("postgres: pg_basebackup did not report its WAL start and end points: %s", strings.TrimSpace(log))
	}
	startLSN, err := wal.ParseLSN(m1[1])
	if err != nil {
		return err
	}
	tl, _ := strconv.ParseUint(m1[2], 10, 32)
	s.rp.Set(ended, map[string]string{
		"method": Method, "start_lsn": m1[1], "end_lsn": m2[1], "timeline": m1[2],
		"start_wal":        wal.SegmentOf(uint32(tl), startLSN, segSize),
		"start_time":       started.Format(time.RFC3339Nano),
		"wal_segment_size": strconv.FormatInt(segSize, 10),
	})
	return nil
}
