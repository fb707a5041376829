package wal

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/lifeboat-backup/lifeboat/engine/logarchive"
)

// Archive is what push and fetch need of engine/logarchive.
type Archive interface {
	Put(ctx context.Context, seg logarchive.Segment, data []byte) (bool, error)
	Fetch(ctx context.Context, target, stream, name string) ([]byte, logarchive.Segment, error)
	Names(ctx context.Context, target, stream, prefix string) ([]string, error)
}

type putter interface {
	Put(ctx context.Context, seg logarchive.Segment, data []byte) (bool, error)
}

// PushResult says what one archive_command call stored.
type PushResult struct {
	Name    string // the file PostgreSQL asked for
	Existed bool   // it was archived already with the same content
	// LastWrite is the asked-for file's last write (its newest WAL).
	LastWrite time.Time
	Ahead     []string // other ready files pushed with it
	Failed    []error  // ready files pushed ahead that failed (PostgreSQL asks again)
}

// Push archives the WAL file at path (archive_command's %p) for target.
// With parallel > 1 it also pushes up to parallel-1 other files that
// PostgreSQL marked ready (pg_wal/archive_status/*.ready), oldest first,
// at the same time: when PostgreSQL then asks for them, they are archived
// already and the call returns after one header read (Put is
// idempotent). Only the asked-for file decides the result.
func Push(ctx context.Context, a Archive, target, path string, parallel int) (PushResult, error) {
	name := filepath.Base(path)
	res := PushResult{Name: name}
	if !ValidName(name) {
		return res, fmt.Errorf("wal push: %s is not a WAL file name", path)
	}
	ahead := readyAhead(filepath.Dir(path), name, parallel-1)
	var mu sync.Mutex
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		existed, seg, err := pushFile(gctx, a, target, path)
		res.Existed, res.LastWrite = existed, seg.LastTime
		return err
	})
	for _, n := range ahead {
		g.Go(func() error {
			_, _, err := pushFile(gctx, a, target, filepath.Join(filepath.Dir(path), n))
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				if gctx.Err() == nil {
					res.Failed = append(res.Failed, err)
				}
				return nil
			}
			res.Ahead = append(res.Ahead, n)
			return nil
		})
	}
	err := g.Wait()
	slices.Sort(res.Ahead)
	return res, err
}

// readyAhead lists up to n ready files in walDir other than name, oldest
// name first (segments in log order; history files of a timeline come
// before its segments).
func readyAhead(walDir, name string, n int) []string {
	if n <= 0 {
		return nil
	}
	ents, err := os.ReadDir(filepath.Join(walDir, "archive_status"))
	if err != nil {
		return nil
	}
	var out []string
	for _, e := range ents {
		f, ok := strings.CutSuffix(e.Name(), ".ready")
		if ok && f != name && ValidName(f) {
			out = append(out, f)
		}
	}
	slices.Sort(out)
	if len(out) > n {
		out = out[:n]
	}
	return out
}

// pushFile archives one file. A segment's header records its timeline,
// start and end LSN, and its modification time as the last event time
// (PostgreSQL writes a segment until it switches to the next one).
func pushFile(ctx context.Context, a putter, target, path string) (bool, logarchive.Segment, error) {
	f, err := os.Open(path)
	if err != nil {
		return false, logarchive.Segment{}, fmt.Errorf("wal push: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return false, logarchive.Segment{}, fmt.Errorf("wal push: %w", err)
	}
	data := make([]byte, fi.Size())
	if _, err := readFull(f, data); err != nil {
		return false, logarchive.Segment{}, fmt.Errorf("wal push: read %s: %w", path, err)
	}
	name := filepath.Base(path)
	seg := logarchive.Segment{Target: target, Stream: Stream, Name: name, LastTime: fi.ModTime().UTC(),
		Timeline: Timeline(name)}
	if IsSegment(name) {
		size := int64(len(data))
		if size <= 0 || size&(size-1) != 0 {
			return false, logarchive.Segment{}, fmt.Errorf("wal push: %s: size %d is not a WAL segment size", path, size)
		}
		_, n, err := Parse(name, size)
		if err != nil {
			return false, logarchive.Segment{}, err
		}
		seg.Start, seg.End = FormatLSN(n*uint64(size)), FormatLSN((n+1)*uint64(size))
		seg.Details = map[string]string{"wal_segment_size": strconv.FormatInt(size, 10)}
	}
	existed, err := a.Put(ctx, seg, data)
	if err != nil {
		return false, seg, fmt.Errorf("wal push %s: %w", name, err)
	}
	return existed, seg, nil
}

func readFull(f *os.File, buf []byte) (int, error) {
	n := 0
	for n < len(buf) {
		m, err := f.Read(buf[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// ErrNotFound is returned by Fetch for a file the archive does not hold
// (restore_command's "not found": PostgreSQL then tries its other
// sources or ends recovery).
var ErrNotFound = logarchive.ErrNotFound

// Fetch writes the archived file name of target to dest
// (restore_command's %f and %p): complete or not at all (a temporary file
// beside dest, fsynced, renamed into place). A segment that is not
// archived whole but was streamed (wal receive) is served from its
// newest partial version: recovery replays what it holds and ends there.
// served names the object written.
func Fetch(ctx context.Context, a Archive, target, name, dest string) (served string, n int64, err error) {
	if !ValidName(name) {
		return "", 0, fmt.Errorf("wal fetch: %q is not a WAL file name", name)
	}
	data, served, err := fetchSegment(ctx, a, target, name)
	if err != nil {
		if errors.Is(err, logarchive.ErrNotFound) {
			return "", 0, err
		}
		return "", 0, fmt.Errorf("wal fetch %s: %w", served, err)
	}
	n, err = writeAtomic(data, dest)
	return served, n, err
}

// writeAtomic writes data to dest through a fsynced temporary file.
func writeAtomic(data []byte, dest string) (int64, error) {
	tmp, err := os.CreateTemp(filepath.Dir(dest), ".lifeboat-wal-*")
	if err != nil {
		return 0, fmt.Errorf("wal fetch: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return 0, fmt.Errorf("wal fetch: write %s: %w", tmp.Name(), err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return 0, fmt.Errorf("wal fetch: sync %s: %w", tmp.Name(), err)
	}
	if err := tmp.Close(); err != nil {
		return 0, fmt.Errorf("wal fetch: %w", err)
	}
	if err := os.Rename(tmp.Name(), dest); err != nil {
		return 0, fmt.Errorf("wal fetch: %w", err)
	}
	return int64(len(data)), nil
}
