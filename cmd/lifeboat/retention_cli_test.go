package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestCLISeedRetentionOverDays drives seed 003's retention (daily backups
// kept 7 days, weekly on Monday 4 weeks, monthly on the 1st 3 months;
// Europe/Berlin, period_pick: first) through the CLI: 400 nights of
// `backup files --time` back-dated to 02:30 Berlin, `forget --policy` after
// every day, one failed Monday and one failed 1st (no backup that day).
// After every day the surviving snapshots are compared with an
// independent reading of the schedule over the whole history of backup
// days (the CLI only ever sees what earlier forgets left). -short: 120 days.
func TestCLISeedRetentionOverDays(t *testing.T) {
	berlin, err := time.LoadLocation("Europe/Berlin")
	require.NoError(t, err)
	// the repository on tmpfs where there is one: 1,200 commands, each
	// fsyncing its lock and objects
	dir := t.TempDir()
	if d, err := os.MkdirTemp("/dev/shm", "lifeboat-retention-"); err == nil {
		t.Cleanup(func() { _ = os.RemoveAll(d) })
		dir = d
	}
	c := &cli{t: t, env: map[string]string{"LIFEBOAT_REPO": "file://" + filepath.Join(dir, "repo")}}
	c.ok("init", "--owner-key-out", filepath.Join(dir, "owner.key"), "--host-key-out", filepath.Join(dir, "host.key"))
	src := filepath.Join(dir, "www")
	require.NoError(t, os.MkdirAll(src, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(src, "index.php"), []byte("<?php echo 1;\n"), 0o644))
	policy := filepath.Join(dir, "policy.yaml")
	require.NoError(t, os.WriteFile(policy, []byte(`version: 1
name: shop
host: shop-web-1
repositories:
  primary:
    url: `+c.env["LIFEBOAT_REPO"]+`
    key_file: `+filepath.Join(dir, "host.key")+`
targets:
  - name: www
    kind: files
    paths: [`+src+`]
retention:
  timezone: Europe/Berlin
  week_starts: monday
  period_pick: first
  keep_daily: 7
  keep_weekly: 4
  keep_monthly: 3
`), 0o600))
	c.env["LIFEBOAT_REPO"] = ""

	days := 400
	start := time.Date(2025, time.September, 15, 0, 0, 0, 0, time.UTC) // ends 2026-10-19: in the past, two DST changes
	if testing.Short() || raceEnabled {
		// 120 days, one DST change. Under the race detector each of the
		// 1,200 commands of the year costs up to a second: make test runs
		// this test's year without -race too.
		days, start = 120, time.Date(2026, time.February, 10, 0, 0, 0, 0, time.UTC)
	}
	failedMonday := time.Date(2026, time.March, 16, 0, 0, 0, 0, time.UTC)
	failedFirst := time.Date(2026, time.May, 1, 0, 0, 0, 0, time.UTC)
	require.Equal(t, time.Monday, failedMonday.Weekday())
	require.NotEqual(t, time.Monday, failedFirst.Weekday())

	var backedUp []time.Time // civil dates (midnight UTC) with a backup
	sawTuesdayForMonday, sawSecondForFirst := false, false
	for n := range days {
		d := start.AddDate(0, 0, n)
		if !d.Equal(failedMonday) && !d.Equal(failedFirst) {
			at := time.Date(d.Year(), d.Month(), d.Day(), 2, 30, 0, 0, berlin)
			c.ok("backup", "files", src, "--policy", policy, "--target", "www", "--host", "shop-web-1",
				"--tag", "policy:shop", "--time", at.Format(time.RFC3339), "-q")
			backedUp = append(backedUp, d)
		}
		c.ok("forget", "--policy", policy, "-q")

		var sns []struct {
			Time time.Time `json:"time"`
		}
		require.NoError(t, json.Unmarshal([]byte(c.ok("snapshots", "--policy", policy, "--json")), &sns))
		var got []string
		for _, s := range sns {
			got = append(got, s.Time.In(berlin).Format(time.DateOnly))
		}
		sort.Strings(got)
		want := seedKeeps(backedUp)
		require.Equal(t, want, got, "survivors after %s", d.Format(time.DateOnly))
		sawTuesdayForMonday = sawTuesdayForMonday || slices.Contains(got, "2026-03-17") && len(backedUp) > 0 && d.After(failedMonday.AddDate(0, 0, 8))
		sawSecondForFirst = sawSecondForFirst || slices.Contains(got, "2026-05-02") && d.After(failedFirst.AddDate(0, 0, 8))
	}
	assert.True(t, sawTuesdayForMonday, "the Tuesday after the failed Monday stood for its week")
	assert.True(t, sawSecondForFirst, "the 2nd after the failed 1st stood for its month")
}

// seedKeeps reads seed 003's schedule over the days that had a backup
// (sorted, civil dates): the 7 newest such days, the first such day of
// each of the 4 newest weeks (Monday to Sunday) that have one, the first
// such day of each of the 3 newest months that have one. Sorted
// YYYY-MM-DD.
func seedKeeps(days []time.Time) []string {
	keep := map[string]bool{}
	for i := len(days) - 1; i >= 0 && i >= len(days)-7; i-- {
		keep[days[i].Format(time.DateOnly)] = true
	}
	firstOf := func(period func(time.Time) string, n int) {
		first := map[string]time.Time{}
		var order []string // newest period first
		for i := len(days) - 1; i >= 0; i-- {
			p := period(days[i])
			if _, ok := first[p]; !ok {
				order = append(order, p)
			}
			first[p] = days[i] // walking back: ends on the period's first day
		}
		for _, p := range order[:min(n, len(order))] {
			keep[first[p].Format(time.DateOnly)] = true
		}
	}
	firstOf(func(d time.Time) string { // the week's Monday
		return d.AddDate(0, 0, -((int(d.Weekday()) + 6) % 7)).Format(time.DateOnly)
	}, 4)
	firstOf(func(d time.Time) string { return d.Format("2006-01") }, 3)
	var out []string
	for k := range keep {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
