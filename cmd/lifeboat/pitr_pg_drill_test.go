package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// countsAt is the set of orders row counts the commit log allows at t:
// every commit that returned by t is in, every one sent after t is
// out, and the one in flight at t (transactions run one at a time, so
// at most one) may fall either way.
func (l *pgLoad) countsAt(t time.Time) []int {
	done := l.countUntil(func(c commitRecord) bool { return !c.At.After(t) })
	sent := l.countUntil(func(c commitRecord) bool { return !c.Sent.After(t) })
	return []int{done, sent}
}

// countUntil is the number of orders rows after the logged commits
// while in is true.
func (l *pgLoad) countUntil(in func(commitRecord) bool) int {
	rows := map[int]bool{}
	for _, c := range l.log {
		if !in(c) {
			break
		}
		if c.Op == "delete" {
			delete(rows, c.ID)
		} else {
			rows[c.ID] = true
		}
	}
	return len(rows)
}

// A drill with drill.pitr of a postgres target with physical bases and
// a WAL archive: the newest base is recovered with the archive into a
// scratch cluster at a random point between the base and the archive's
// end, the checks run there (the row count is the commit log's at that
// point), and the drill record reports the point, what recovery reached,
// and the RPO as now minus the newest archived WAL.
func TestPITRPGDrill(t *testing.T) {
	if testing.Short() {
		t.Skip("starts MinIO and PostgreSQL")
	}
	p := newPITRPG(t)
	pol, err := os.ReadFile(p.policy)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(p.policy, append(pol, []byte(`drill:
  pitr: true
  checks:
    - name: orders
      target: pg
      sql: SELECT count(*) FROM orders
      min: 1
`)...), 0o644))
	l := newPGLoad(p)
	l.run(time.Second)
	_, _, code := p.c.run("run", p.policy, "--target", "pg", "--journal", t.TempDir())
	require.Equal(t, 0, code)
	l.run(2 * time.Second)
	p.switchWAL()
	l.run(2 * time.Second)
	last := p.switchWAL()
	p.waitArchived(last, 60*time.Second)

	report := filepath.Join(p.dir, "drill.json")
	cmd := exec.Command(p.bin, "drill", p.policy, "--journal", t.TempDir(), "-o", report)
	cmd.Env = append(os.Environ(), "LIFEBOAT_KEY_FILE="+p.owner)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	rep, b := readDrillReport(t, report)
	require.Equal(t, "passed", rep.Status, "%s\n%s", out, b)
	require.Len(t, rep.Targets, 1)
	dt := rep.Targets[0]
	pt, err := time.Parse(time.RFC3339Nano, dt.PITRPoint)
	require.NoError(t, err, "a random point, not latest: %s", b)
	require.True(t, pt.Equal(dt.RecoveryPoint))
	require.True(t, pt.Before(dt.ArchivedUntil), "%s", b)
	require.Contains(t, dt.Reached, "recovery stopping before commit")
	require.InDelta(t, time.Since(dt.ArchivedUntil).Seconds(), dt.RPOSeconds, 30, "RPO = drill start - newest archived WAL")
	require.Equal(t, dt.RPOSeconds, rep.RPO.Seconds)
	require.Len(t, rep.Checks, 1)
	got, err := strconv.Atoi(rep.Checks[0].Value)
	require.NoError(t, err)
	want := l.countsAt(pt)
	require.Contains(t, want, got, "orders at %s: %d rows, commit log says one of %v", pt, got, want)
	t.Logf("drill recovered to %s (%d rows): %s; RPO %.1fs; drill output:\n%s", dt.PITRPoint, got, dt.Reached, dt.RPOSeconds,
		strings.TrimSpace(string(out)))
}
