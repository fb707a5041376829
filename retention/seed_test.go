package retention

import (
	"bytes"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestSeedPolicyEveryDay simulates 400 days of nightly backups (02:30
// Europe/Berlin, from 2027-09-15: three DST changes, month ends, the leap
// day 2028-02-29) and checks after every night that the seed policy keeps
// exactly what an independent calendar reading of it says: the last 7
// days, the first backup of each of the last 4 weeks (Monday's, or the
// first day of the history), the first of each of the last 3 months.
func TestSeedPolicyEveryDay(t *testing.T) {
	r := seedRules(t)
	const days = 400
	all := dailyAt("shop-db-1", "shopdb", 2027, time.September, 15, days, 2, 30, r.Location)
	first := civil(all[0].Time, r.Location)
	sawLeap := false
	for n := 1; n <= days; n++ {
		history := slices.Clone(all[:n])
		last := civil(history[n-1].Time, r.Location)
		if last.Format(day) == "2028-02-29" {
			sawLeap = true
		}

		want := map[string]bool{}
		for i := range 7 {
			if d := last.AddDate(0, 0, -i); !d.Before(first) {
				want[d.Format(day)] = true
			}
		}
		monday := last.AddDate(0, 0, -((int(last.Weekday()) + 6) % 7))
		for i := range 4 {
			if d := monday.AddDate(0, 0, -7*i); !d.Before(first) {
				want[d.Format(day)] = true
			} else if d.AddDate(0, 0, 7).After(first) {
				want[first.Format(day)] = true // the history starts mid-week
			}
		}
		firstOfMonth := time.Date(last.Year(), last.Month(), 1, 0, 0, 0, 0, time.UTC)
		for i := range 3 {
			if d := firstOfMonth.AddDate(0, -i, 0); !d.Before(first) {
				want[d.Format(day)] = true
			} else if d.AddDate(0, 1, 0).After(first) {
				want[first.Format(day)] = true
			}
		}

		got := map[string]bool{}
		for _, d := range Apply(history, r) {
			if d.Keep {
				got[d.Snapshot.Time.In(r.Location).Format(day)] = true
			}
		}
		require.Equal(t, want, got, "after the backup of %s", last.Format(day))
	}
	require.True(t, sawLeap)
}

// civil returns the local calendar date of t as midnight UTC.
func civil(t time.Time, loc *time.Location) time.Time {
	l := t.In(loc)
	return time.Date(l.Year(), l.Month(), l.Day(), 0, 0, 0, 0, time.UTC)
}

// TestTable renders the seed schedule (and a second, stopped host) as the
// dry-run table: testdata/seed_table.golden, also shown in docs/retention.md.
func TestTable(t *testing.T) {
	r := seedRules(t)
	snaps := slices.Concat(seedSchedule(t)[80:],
		dailyAt("shop-db-2", "shopdb", 2026, time.October, 20, 10, 2, 30, r.Location))
	var buf bytes.Buffer
	require.NoError(t, Table(&buf, Apply(snaps, r), r.Location))
	golden(t, "seed_table.golden", buf.String())

	// Groups print in the order they come; decisions newest first within.
	ds := Apply(snaps, r)
	slices.Reverse(ds)
	var again bytes.Buffer
	require.NoError(t, Table(&again, ds, r.Location))
	require.NotEqual(t, buf.String(), again.String())
	require.Equal(t, len(buf.String()), len(again.String()))

	buf.Reset()
	require.NoError(t, Table(&buf, nil, nil))
	require.Empty(t, buf.String())
}
