package schedule

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lifeboat-backup/lifeboat/policies"
)

// fakeClock is stepped by the test; every After call is announced on
// added (the deadline), so the test knows the daemon is waiting.
type fakeClock struct {
	mu      sync.Mutex
	now     time.Time
	waiters []fakeWaiter
	added   chan time.Time
}

type fakeWaiter struct {
	at time.Time
	ch chan time.Time
}

func newFakeClock(now time.Time) *fakeClock {
	return &fakeClock{now: now, added: make(chan time.Time, 16)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	ch := make(chan time.Time, 1)
	at := c.now.Add(d)
	c.waiters = append(c.waiters, fakeWaiter{at, ch})
	c.mu.Unlock()
	c.added <- at
	return ch
}

// Set moves the clock to t and fires the waiters due by then.
func (c *fakeClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
	kept := c.waiters[:0]
	for _, w := range c.waiters {
		if !w.at.After(t) {
			w.ch <- t
		} else {
			kept = append(kept, w)
		}
	}
	c.waiters = kept
}

func recv[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(5 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
		var zero T
		return zero
	}
}

func daemonPolicy(t *testing.T, name, calendar, delay string) *policies.Policy {
	t.Helper()
	cal, err := policies.ParseCalendar(calendar)
	require.NoError(t, err)
	d, err := policies.ParseDuration(delay)
	require.NoError(t, err)
	return &policies.Policy{Name: name, Schedule: policies.Schedule{Calendar: cal, RandomizedDelay: policies.Duration(d)}}
}

func utc(s string) time.Time {
	t, err := time.Parse("2006-01-02 15:04", s)
	if err != nil {
		panic(err)
	}
	return t
}

func TestDaemonSchedule(t *testing.T) {
	tests := []struct {
		name    string
		start   string
		lastRun string // "" never
		delay   string // randomized_delay; the fake Delay returns max/3
		// Expected sequence: "wait T" (the daemon waits until T, the
		// test steps there) or "run T" (a run starts at T).
		want []string
	}{
		{"daily at 02:30", "2026-01-01 00:00", "", "0",
			[]string{"wait 2026-01-01 02:30", "run 2026-01-01 02:30", "wait 2026-01-02 02:30", "run 2026-01-02 02:30", "wait 2026-01-03 02:30"}},
		{"randomized delay added", "2026-01-01 00:00", "", "15m",
			[]string{"wait 2026-01-01 02:35", "run 2026-01-01 02:35", "wait 2026-01-02 02:35"}},
		{"started after today's time", "2026-01-01 03:00", "", "0",
			[]string{"wait 2026-01-02 02:30", "run 2026-01-02 02:30", "wait 2026-01-03 02:30"}},
		{"missed runs caught up once", "2026-01-04 10:00", "2026-01-01 02:30", "0",
			[]string{"run 2026-01-04 10:00", "wait 2026-01-05 02:30", "run 2026-01-05 02:30", "wait 2026-01-06 02:30"}},
		{"last run today: nothing to catch up", "2026-01-04 10:00", "2026-01-04 02:30", "0",
			[]string{"wait 2026-01-05 02:30", "run 2026-01-05 02:30"}},
		{"month end and leap day", "2028-02-28 12:00", "", "0",
			[]string{"wait 2028-02-29 02:30", "run 2028-02-29 02:30", "wait 2028-03-01 02:30"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := newFakeClock(utc(tt.start))
			ran := make(chan time.Time, 16)
			d := &Daemon{
				Policies: []*policies.Policy{daemonPolicy(t, "shop", "*-*-* 02:30:00", tt.delay)},
				Run: func(ctx context.Context, p *policies.Policy) error {
					ran <- clock.Now()
					return errors.New("a failed run does not stop the schedule")
				},
				Clock: clock,
				Delay: func(max time.Duration) time.Duration { return max / 3 },
			}
			if tt.lastRun != "" {
				d.LastRun = func(*policies.Policy) (time.Time, error) { return utc(tt.lastRun), nil }
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- d.Serve(ctx) }()
			for i, step := range tt.want {
				kind, at := step[:4], utc(step[len(step)-16:])
				switch kind {
				case "wait":
					got := recv(t, clock.added, step)
					require.Equal(t, at, got, step)
					require.Empty(t, ran, "no run before %s", step)
					if i < len(tt.want)-1 {
						clock.Set(got)
					}
				case "run ":
					require.Equal(t, at, recv(t, ran, step), step)
				}
			}
			cancel()
			require.NoError(t, recv(t, done, "Serve to return"))
			assert.Empty(t, ran, "no extra runs")
		})
	}
}

func TestDaemonNoOverlapAndOneCatchUp(t *testing.T) {
	clock := newFakeClock(utc("2026-01-01 00:00"))
	var active, maxActive atomic.Int32
	started := make(chan time.Time, 16)
	release := make(chan struct{})
	d := &Daemon{
		Policies: []*policies.Policy{daemonPolicy(t, "shop", "*-*-* 02:30:00", "0"), daemonPolicy(t, "blog", "*-*-* 02:30:00", "0")},
		Run: func(ctx context.Context, p *policies.Policy) error {
			n := active.Add(1)
			if n > maxActive.Load() {
				maxActive.Store(n)
			}
			started <- clock.Now()
			<-release
			active.Add(-1)
			return nil
		},
		Clock: clock,
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Serve(ctx) }()
	recv(t, clock.added, "first wait")
	recv(t, clock.added, "second wait")
	clock.Set(utc("2026-01-01 02:30"))
	recv(t, started, "first run")
	// The run overruns by three days; the other policy waits its turn.
	clock.Set(utc("2026-01-04 12:00"))
	release <- struct{}{}
	// The other policy's 02:30 run, then one catch-up each.
	for i := 0; i < 3; i++ {
		assert.Equal(t, utc("2026-01-04 12:00"), recv(t, started, "next run"))
		release <- struct{}{}
	}
	assert.Equal(t, utc("2026-01-05 02:30"), recv(t, clock.added, "wait after catch-up"))
	assert.Equal(t, utc("2026-01-05 02:30"), recv(t, clock.added, "wait after catch-up"))
	assert.Empty(t, started, "exactly one catch-up per policy")
	assert.Equal(t, int32(1), maxActive.Load(), "runs never overlap")
	cancel()
	require.NoError(t, recv(t, done, "Serve to return"))
}

func TestDaemonStopsDuringRun(t *testing.T) {
	clock := newFakeClock(utc("2026-01-04 10:00"))
	d := &Daemon{
		Policies: []*policies.Policy{daemonPolicy(t, "shop", "daily", "0")},
		LastRun:  func(*policies.Policy) (time.Time, error) { return utc("2026-01-01 00:00"), nil },
		Run: func(ctx context.Context, p *policies.Policy) error {
			<-ctx.Done() // a long run, interrupted by SIGTERM
			return ctx.Err()
		},
		Clock: clock,
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Serve(ctx) }()
	cancel()
	require.NoError(t, recv(t, done, "Serve to return"))

	err := (&Daemon{Policies: []*policies.Policy{{Name: "x"}}, Run: d.Run}).Serve(context.Background())
	assert.ErrorIs(t, err, ErrNoCalendar)
}
