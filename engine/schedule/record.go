package schedule

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/lifeboat-backup/lifeboat/engine"
	"github.com/lifeboat-backup/lifeboat/engine/notify"
	"github.com/lifeboat-backup/lifeboat/policies"
)

// Opener opens a policy's repository on its engine (with the lock the
// caller's command takes) and runs fn on it.
type Opener func(ctx context.Context, fn func(context.Context, engine.Engine) error) error

// PolicyRun configures RunPolicy.
type PolicyRun struct {
	// Journal is the directory of the run journal.
	Journal string
	// Targets restricts the run to these targets (default: all).
	Targets []string
	// Progress receives per-target progress (may be nil).
	Progress func(target string) *engine.Progress
	// Warn receives what goes wrong around the run without changing its
	// result: the journal, notifications, the metrics textfile.
	Warn func(error)
}

// RunPolicy runs p once on the repository open gives and records it: the
// code path of `lifeboat run` and of the daemon. Around Run it pings the
// policy's start URL, appends the result to the journal, sends the
// notifications and rewrites the metrics textfile. res is nil when
// nothing ran: interrupted, the journal unreadable, or the repository
// could not be opened or locked (that failure is journaled and notified
// as a failed run all the same).
func RunPolicy(ctx context.Context, p *policies.Policy, open Opener, o PolicyRun) (res *engine.RunResult, err error) {
	warn := o.Warn
	if warn == nil {
		warn = func(error) {}
	}
	j := Journal(o.Journal)
	runs, err := j.Read(p.Name)
	if err != nil {
		return nil, err
	}
	n := notify.Notifier{}
	if err := n.Start(ctx, p.Notify); err != nil {
		warn(fmt.Errorf("notify: %w", err))
	}
	start := time.Now().UTC()
	err = open(ctx, func(ctx context.Context, e engine.Engine) error {
		var runErr error
		res, runErr = Run(ctx, p, e, RunOptions{Targets: o.Targets, LastPrune: LastPrune(runs), Progress: o.Progress})
		return runErr
	})
	rec := res
	if rec == nil {
		if err == nil || ctx.Err() != nil {
			return nil, err
		}
		rec = &engine.RunResult{Policy: p.Name, Host: p.Host, Start: start, End: time.Now().UTC(), Errors: []string{err.Error()}}
	}
	if jerr := j.Append(p.Name, rec); jerr != nil {
		warn(jerr)
	}
	// A cancelled run (SIGTERM) still reports, within the notifier's
	// timeouts.
	ctx = context.WithoutCancel(ctx)
	for _, nerr := range n.Notify(ctx, p.Notify, notify.RunEvent(rec)) {
		warn(fmt.Errorf("notify: %w", nerr))
	}
	if p.Metrics.Textfile != "" {
		if merr := notify.WriteRunMetrics(p.Metrics.Textfile, append(runs, *rec)); merr != nil {
			warn(merr)
		}
	}
	return res, err
}

// MetricsHandler serves the Prometheus metrics of the last run of every
// policy in ps from the journal in dir at /metrics (the daemon's
// --metrics-listen).
func MetricsHandler(dir string, ps []*policies.Policy) http.Handler {
	j := Journal(dir)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, r *http.Request) {
		var hs [][]engine.RunResult
		for _, p := range ps {
			runs, err := j.Read(p.Name)
			if err != nil {
				http.Error(w, "journal unreadable", http.StatusInternalServerError)
				return
			}
			hs = append(hs, runs)
		}
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		_, _ = w.Write(notify.PoliciesMetrics(hs...))
	})
	return mux
}

// LastStart is when policy's last recorded run started (zero: never), for
// the daemon's catch-up.
func LastStart(dir, policy string) (time.Time, error) {
	runs, err := Journal(dir).Read(policy)
	if err != nil || len(runs) == 0 {
		return time.Time{}, err
	}
	return runs[len(runs)-1].Start, nil
}
