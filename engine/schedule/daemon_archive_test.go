package schedule

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lifeboat-backup/lifeboat/policies"
)

// The daemon keeps each archived mysql target's binlog archiver running:
// started at once, started again archiveRestart after it returns, stopped
// with the daemon; targets without an archive block get none.
func TestDaemonRunsArchivers(t *testing.T) {
	p := daemonPolicy(t, "shop", "daily", "0")
	p.Targets = []policies.Target{
		{Name: "db", Kind: policies.KindMySQL, Archive: &policies.Archive{}},
		{Name: "plain", Kind: policies.KindMySQL},
		{Name: "media", Kind: policies.KindFiles},
	}
	clock := newFakeClock(utc("2026-12-07 10:00"))
	var mu sync.Mutex
	calls := map[string]int{}
	started := make(chan string, 10)
	ctx, cancel := context.WithCancel(context.Background())
	d := &Daemon{Policies: []*policies.Policy{p}, Clock: clock,
		Run: func(context.Context, *policies.Policy) error { return nil },
		Archive: func(ctx context.Context, p *policies.Policy, target string) error {
			mu.Lock()
			calls[target]++
			n := calls[target]
			mu.Unlock()
			started <- target
			if n == 1 {
				return errors.New("binlog gap: the server purged binlog.000003")
			}
			<-ctx.Done()
			return nil
		}}
	done := make(chan error, 1)
	go func() { done <- d.Serve(ctx) }()
	require.Equal(t, "db", <-started)
	// The schedule's wait and the archiver's restart wait are both pending;
	// the restart is due 5 s later.
	deadline := time.After(10 * time.Second)
	for restarted := false; !restarted; {
		select {
		case at := <-clock.added:
			if at.Equal(utc("2026-12-07 10:00").Add(archiveRestart)) {
				clock.Set(at)
				restarted = true
			}
		case <-deadline:
			t.Fatal("the archiver was not started again")
		}
	}
	require.Equal(t, "db", <-started)
	cancel()
	require.NoError(t, <-done)
	mu.Lock()
	defer mu.Unlock()
	assert.Equal(t, map[string]int{"db": 2}, calls)
}

// A postgres target with an archive block gets its WAL receiver from the
// same hook; one without gets none.
func TestDaemonRunsWALReceivers(t *testing.T) {
	p := daemonPolicy(t, "shop", "daily", "0")
	p.Targets = []policies.Target{
		{Name: "pg", Kind: policies.KindPostgres, Archive: &policies.Archive{}},
		{Name: "pgdump", Kind: policies.KindPostgres},
	}
	started := make(chan string, 10)
	ctx, cancel := context.WithCancel(context.Background())
	d := &Daemon{Policies: []*policies.Policy{p}, Clock: newFakeClock(utc("2026-12-07 10:00")),
		Run: func(context.Context, *policies.Policy) error { return nil },
		Archive: func(ctx context.Context, p *policies.Policy, target string) error {
			started <- target
			<-ctx.Done()
			return nil
		}}
	done := make(chan error, 1)
	go func() { done <- d.Serve(ctx) }()
	require.Equal(t, "pg", <-started)
	cancel()
	require.NoError(t, <-done)
	assert.Empty(t, started)
}
