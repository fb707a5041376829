package pitr

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/lifeboat-backup/lifeboat/engine/logarchive"
	"github.com/lifeboat-backup/lifeboat/engine/repo"
	"github.com/lifeboat-backup/lifeboat/internal/atomicfile"
	"github.com/lifeboat-backup/lifeboat/policies"
	"github.com/lifeboat-backup/lifeboat/targets/mysql/binlog"
)

// ArchiveOptions configure RunArchive.
type ArchiveOptions struct {
	Policy   string
	Target   policies.Target // a mysql target with an archive block
	Password string
	Repo     *repo.Repository // host key suffices
	// Spool is the follower's private directory; a lock file in it keeps
	// a second archiver of the same target out.
	Spool string
	// Metrics: a Prometheus textfile rewritten every few seconds with the
	// archive's lag and gap state ("": none).
	Metrics string
	Log     *slog.Logger
}

// ErrArchiverRunning: another archiver holds the spool directory.
var ErrArchiverRunning = errors.New("another binlog archiver runs for this target")

// RunArchive follows the target's binary log into the repository's log
// archive until ctx ends (nil) or a gap is found (*binlog.GapError, after
// the first segment past it is stored).
func RunArchive(ctx context.Context, o ArchiveOptions) error {
	t := o.Target
	if t.Kind != policies.KindMySQL || t.Archive == nil {
		return fmt.Errorf("target %s has no archive block (archive: {max_delay: 10s})", t.Name)
	}
	log := o.Log
	if log == nil {
		log = slog.Default()
	}
	if err := os.MkdirAll(o.Spool, 0o700); err != nil {
		return err
	}
	unlock, err := lockDir(o.Spool)
	if err != nil {
		return err
	}
	defer unlock()
	spool := filepath.Join(o.Spool, "spool")

	st := NewBinlog(logarchive.New(o.Repo), t.Name)
	st.Damaged = func(err error) { log.Warn("damaged binlog segment skipped", "error", err) }
	var startAt binlog.Pos
	snaps, err := o.Repo.Snapshots(ctx)
	if err != nil {
		return err
	}
	if c := candidates(snaps, t.Name); len(c) > 0 {
		startAt, _ = SnapshotPos(c[0])
	}
	sid := ServerID(o.Policy, t.Name)
	if t.Archive.ServerID > 0 {
		sid = uint32(t.Archive.ServerID)
	}
	f, err := binlog.NewFollower(binlog.Config{DSN: t.DSN, Password: o.Password, ServerID: sid,
		MaxDelay: t.Archive.MaxDelay.D(), SegmentSize: int64(t.Archive.SegmentSize), Spool: spool,
		Store: st, StartAt: startAt, Log: log.With("target", t.Name)})
	if err != nil {
		return err
	}
	mctx, stop := context.WithCancel(ctx)
	defer stop()
	done := make(chan struct{})
	if o.Metrics != "" {
		go func() {
			defer close(done)
			tick := time.NewTicker(5 * time.Second)
			defer tick.Stop()
			for {
				if err := writeMetrics(o.Metrics, o.Policy, t.Name, f.Status(), time.Now()); err != nil {
					log.Warn("binlog archive metrics", "file", o.Metrics, "error", err)
				}
				select {
				case <-mctx.Done():
					return
				case <-tick.C:
				}
			}
		}()
	} else {
		close(done)
	}
	err = f.Run(ctx)
	stop()
	<-done
	if o.Metrics != "" {
		if merr := writeMetrics(o.Metrics, o.Policy, t.Name, f.Status(), time.Now()); merr != nil {
			log.Warn("binlog archive metrics", "file", o.Metrics, "error", merr)
		}
	}
	return err
}

// lockDir takes an exclusive flock on dir/lock.
func lockDir(dir string) (func(), error) {
	fh, err := os.OpenFile(filepath.Join(dir, "lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(fh.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		fh.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w (its spool %s is locked)", ErrArchiverRunning, dir)
		}
		return nil, err
	}
	return func() { fh.Close() }, nil
}

// writeMetrics writes the archiver's gauges as a Prometheus textfile.
func writeMetrics(path, policy, target string, s binlog.Status, now time.Time) error {
	labels := fmt.Sprintf(`{policy=%q,target=%q}`, policy, target)
	var b strings.Builder
	gauge := func(name, help string, v float64) {
		fmt.Fprintf(&b, "# HELP %s %s\n# TYPE %s gauge\n%s%s %g\n", name, help, name, name, labels, v)
	}
	lag := -1.0
	last := 0.0
	if !s.Last.LastTime.IsZero() {
		lag = max(now.Sub(s.Last.LastTime).Seconds(), 0)
		last = float64(s.Last.LastTime.Unix())
	}
	gap := 0.0
	if s.Gap != nil {
		gap = 1
	}
	gauge("lifeboat_binlog_archive_lag_seconds", "seconds since the newest archived binlog event (-1: none archived by this archiver yet)", lag)
	gauge("lifeboat_binlog_archive_last_event_timestamp_seconds", "time of the newest archived binlog event", last)
	gauge("lifeboat_binlog_archive_gap", "1: the archiver found binlog events lost before they were archived", gap)
	gauge("lifeboat_binlog_archive_segments", "segments stored by this archiver", float64(s.Segments))
	gauge("lifeboat_binlog_archive_bytes", "bytes stored by this archiver", float64(s.Bytes))
	return atomicfile.WriteFile(path, []byte(b.String()), 0o644)
}
