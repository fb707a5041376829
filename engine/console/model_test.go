package console

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lifeboat-backup/lifeboat/engine"
	"github.com/lifeboat-backup/lifeboat/policies"
	"github.com/lifeboat-backup/lifeboat/restore/drill"
)

// TestEvaluate checks the overview's verdicts: each check's colour and
// its reason in words.
func TestEvaluate(t *testing.T) {
	p, err := policies.Parse("shop.yaml", []byte(`version: 1
name: shop
host: web-1
repositories:
  primary:
    url: file:///tmp/none
    key_file: /etc/lifeboat/host.key
  secondaries:
    - name: dr
      url: file:///tmp/none-dr
      max_lag: 2h
schedule:
  calendar: "*-*-* 02:30:00"
targets:
  - name: site
    kind: files
    paths: [/srv/site]
objectives:
  rpo: 10h
  rto: 30m
`))
	require.NoError(t, err)
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	ok := engine.RunResult{Policy: "shop", Start: now.Add(-2 * time.Hour), End: now.Add(-2*time.Hour + time.Minute)}
	failed := ok
	failed.Errors = []string{"target site: backup root: no such file or directory"}
	lag := func(d time.Duration) *time.Duration { return &d }
	status := func(newest time.Duration, drLag *time.Duration) *Status {
		return &Status{Repositories: []Repository{
			{Name: "primary", Reachable: true, Newest: map[string]time.Time{"site": now.Add(-newest)}},
			{Name: "dr", Reachable: true, Lag: drLag, SnapshotsMissing: 1, MaxLag: 2 * time.Hour},
		}}
	}
	passed := drill.Report{Schema: 1, Status: drill.Passed, Policy: "shop", Start: now.Add(-time.Hour), End: now.Add(-time.Hour + time.Minute),
		RTO: drill.Measure{Seconds: 60, Objective: 1800, Met: true}, RPO: drill.Measure{Seconds: 3600, Objective: 36000, Met: true}}
	violated := passed
	violated.Status, violated.RTO = drill.ObjectiveViolated, drill.Measure{Seconds: 3600, Objective: 1800}

	check := func(v PolicyView, what string) Check {
		for _, c := range v.Checks {
			if c.What == what {
				return c
			}
		}
		t.Fatalf("no check %q in %+v", what, v.Checks)
		return Check{}
	}
	for _, tt := range []struct {
		name   string
		runs   []engine.RunResult
		drills []drill.Report
		st     *Status
		what   string
		level  Level
		reason string
	}{
		{"run ok", []engine.RunResult{ok}, nil, status(time.Hour, lag(0)), "last run", Green, "every step succeeded"},
		{"run failed", []engine.RunResult{ok, failed}, nil, status(time.Hour, lag(0)), "last run", Red, "no such file"},
		{"no run", nil, nil, status(time.Hour, lag(0)), "last run", Amber, "no run"},
		{"within RPO", nil, nil, status(time.Hour, lag(0)), "target site: newest snapshot", Green, "within the RPO"},
		{"near RPO", nil, nil, status(9*time.Hour, lag(0)), "target site: newest snapshot", Amber, "close to the RPO"},
		{"RPO violated", nil, nil, status(11*time.Hour, lag(0)), "target site: newest snapshot", Red, "RPO violated"},
		{"primary down", nil, nil, &Status{Repositories: []Repository{{Name: "primary", Error: "dial"}}}, "target site: newest snapshot", Red, "not reachable"},
		{"in sync", nil, nil, status(time.Hour, lag(0)), "replication to dr", Green, "in sync"},
		{"behind", nil, nil, status(time.Hour, lag(time.Hour)), "replication to dr", Amber, "lacks the newest"},
		{"lag over max_lag", nil, nil, status(time.Hour, lag(3*time.Hour)), "replication to dr", Red, "exceeds max_lag"},
		{"never drilled", nil, nil, status(time.Hour, lag(0)), "last drill", Amber, "never drilled"},
		{"drill passed", nil, []drill.Report{passed}, status(time.Hour, lag(0)), "last drill", Green, "objectives met"},
		{"drill violated", nil, []drill.Report{passed, violated}, status(time.Hour, lag(0)), "last drill", Red, "RTO 1h0m0s > objective 30m"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			v := evaluate(p, tt.runs, tt.drills, tt.st, now)
			c := check(v, tt.what)
			assert.Equal(t, tt.level, c.Level, "%+v", c)
			assert.Contains(t, c.Reason, tt.reason)
			assert.GreaterOrEqual(t, v.Level, c.Level, "the policy takes its worst check")
		})
	}
	next := check(evaluate(p, nil, nil, status(time.Hour, lag(0)), now), "next run")
	assert.Regexp(t, `^in \d+h\d+m0s \(2026-12-0[78] \d\d:\d0 UTC\)$`, next.Value, "the calendar's next time (in the policy's zone)")
}
