package schedule

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/lifeboat-backup/lifeboat/policies"
)

// Clock is the daemon's time source; tests step a fake one.
type Clock interface {
	Now() time.Time
	After(d time.Duration) <-chan time.Time
}

// SystemClock is the real clock.
type SystemClock struct{}

// Now returns time.Now().
func (SystemClock) Now() time.Time { return time.Now() }

// After is time.After.
func (SystemClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// Daemon runs policies on their schedule.calendar in-process, for hosts
// without systemd: what the timer units of SystemdUnits do.
//
//   - Each start is the calendar's next time plus a random delay in
//     [0, schedule.randomized_delay).
//   - A policy never runs twice at once; runs of different policies are
//     serialized too (they would compete for the same disks and network).
//   - A start missed while the daemon was down (the journal's last run is
//     older than the previous calendar time) or while the previous run
//     overran is caught up once, right away, like Persistent=true.
//   - Cancelling the context stops it: waits end at once, a running run
//     gets the cancelled context and Serve returns when it has ended.
//   - With Archive set, every mysql or postgres target with an archive
//     block has its log archiver (binlog archive, wal receive) running
//     beside the schedule, restarted when it ends.
type Daemon struct {
	Policies []*policies.Policy
	// Run runs one policy once (the code path of `lifeboat run`); its
	// error is logged, the schedule goes on.
	Run func(ctx context.Context, p *policies.Policy) error
	// LastRun returns when the policy's last run started (zero: never),
	// from the journal. Optional: without it nothing is caught up.
	LastRun func(p *policies.Policy) (time.Time, error)
	// Archive, when set, runs the log archiver of one archived target
	// (the code path of `lifeboat binlog archive` for mysql, `lifeboat wal
	// receive` for postgres) until ctx ends; the daemon starts it for
	// every such target of its policies and starts it again 5 s after it
	// returns (Restart=always of the lifeboat-binlog@ and
	// lifeboat-walreceive@ units), also after a gap.
	Archive func(ctx context.Context, p *policies.Policy, target string) error
	// Clock defaults to SystemClock.
	Clock Clock
	// Delay returns a random duration in [0, max); default math/rand.
	Delay func(max time.Duration) time.Duration
	// Log receives scheduling decisions; default discarded.
	Log *slog.Logger

	sem chan struct{}
}

// ErrNoCalendar: a policy given to the daemon has no schedule.calendar.
var ErrNoCalendar = errors.New("no schedule.calendar")

// Serve runs the schedules until ctx is cancelled; it then returns nil.
func (d *Daemon) Serve(ctx context.Context) error {
	if len(d.Policies) == 0 {
		return errors.New("daemon: no policies")
	}
	for _, p := range d.Policies {
		if p.Schedule.Calendar.IsZero() {
			return fmt.Errorf("policy %s: %w", p.Name, ErrNoCalendar)
		}
	}
	if d.Clock == nil {
		d.Clock = SystemClock{}
	}
	if d.Delay == nil {
		d.Delay = func(max time.Duration) time.Duration {
			if max <= 0 {
				return 0
			}
			return rand.N(max)
		}
	}
	if d.Log == nil {
		d.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	d.sem = make(chan struct{}, 1)
	var wg sync.WaitGroup
	for _, p := range d.Policies {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d.loop(ctx, p)
		}()
		for _, t := range p.Targets {
			if d.Archive == nil || (t.Kind != policies.KindMySQL && t.Kind != policies.KindPostgres) || t.Archive == nil {
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				d.archive(ctx, p, t.Name)
			}()
		}
	}
	wg.Wait()
	return nil
}

// archiveRestart is how long the daemon waits before it starts an
// archiver that returned again.
const archiveRestart = 5 * time.Second

// archive keeps one target's binlog archiver running until ctx ends.
func (d *Daemon) archive(ctx context.Context, p *policies.Policy, target string) {
	for {
		d.Log.Info("log archive", "policy", p.Name, "target", target)
		err := d.Archive(ctx, p, target)
		if ctx.Err() != nil {
			return
		}
		d.Log.Error("log archive ended; starting it again", "policy", p.Name, "target", target, "in", archiveRestart, "error", err)
		select {
		case <-ctx.Done():
			return
		case <-d.Clock.After(archiveRestart):
		}
	}
}

func (d *Daemon) loop(ctx context.Context, p *policies.Policy) {
	cal := p.Schedule.Calendar
	now := d.Clock.Now()
	base := now // the last calendar time handled
	if d.LastRun != nil {
		last, err := d.LastRun(p)
		if err != nil {
			d.Log.Warn("cannot read the last run; no catch-up", "policy", p.Name, "error", err)
		} else if !last.IsZero() && last.Before(now) {
			base = last
		}
	}
	for {
		now := d.Clock.Now()
		next := cal.Next(base)
		if next.IsZero() {
			d.Log.Warn("the calendar has no further start", "policy", p.Name, "calendar", cal.String())
			<-ctx.Done()
			return
		}
		if next.After(now) {
			due := next.Add(d.Delay(p.Schedule.RandomizedDelay.D()))
			d.Log.Info("next run", "policy", p.Name, "at", due)
			select {
			case <-ctx.Done():
				return
			case <-d.Clock.After(due.Sub(now)):
			}
			base = next
		} else {
			d.Log.Info("catching up a missed run", "policy", p.Name, "scheduled", next)
			base = now
		}
		select {
		case <-ctx.Done():
			return
		case d.sem <- struct{}{}:
		}
		d.Log.Info("run", "policy", p.Name)
		err := d.Run(ctx, p)
		<-d.sem
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			d.Log.Error("run failed", "policy", p.Name, "error", err)
		}
	}
}
