package retention

import (
	"flag"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// seedSchedule: daily backups for 120 days at 02:30 Europe/Berlin, the newest
// on Tuesday 2026-11-24 (ISO week 48).
func seedSchedule(t testing.TB) []Snapshot {
	return dailyAt("shop-db-1", "shopdb", 2026, time.July, 28, 120, 2, 30, mustLoad(t, "Europe/Berlin"))
}

func TestSeedPolicy(t *testing.T) {
	r := seedRules(t)
	snaps := seedSchedule(t)
	require.Equal(t, "2026-11-24", snaps[len(snaps)-1].Time.Format(day))
	ds := Apply(snaps, r)
	require.Len(t, ds, 120)

	assert.Equal(t, []string{
		// 7 daily
		"2026-11-24", "2026-11-23", "2026-11-22", "2026-11-21", "2026-11-20", "2026-11-19", "2026-11-18",
		// Mondays of weeks 47, 46, 45 (week 48's Monday is daily already)
		"2026-11-16", "2026-11-09", "2026-11-02",
		// the 1sts of November, October, September
		"2026-11-01", "2026-10-01", "2026-09-01",
	}, kept(ds, r.Location, day))

	at := func(s string) []string { return reasonsAt(t, ds, r.Location, day, s) }
	assert.Equal(t, []string{"daily 2026-11-24", "newest of group"}, at("2026-11-24"))
	assert.Equal(t, []string{"daily 2026-11-23", "weekly 2026-W48"}, at("2026-11-23"))
	assert.Equal(t, []string{"weekly 2026-W47"}, at("2026-11-16"))
	assert.Equal(t, []string{"weekly 2026-W45"}, at("2026-11-02"))
	assert.Equal(t, []string{"monthly 2026-11"}, at("2026-11-01"))
	assert.Equal(t, []string{"monthly 2026-09"}, at("2026-09-01"))
	assert.Empty(t, at("2026-11-17"))
	assert.Empty(t, at("2026-08-01"))

	// Decisions come back newest first; Keep iff reasons.
	for i, d := range ds {
		assert.Equal(t, d.Keep, len(d.Reasons) > 0)
		assert.Equal(t, "host=shop-db-1 target=shopdb", d.Group)
		if i > 0 {
			assert.True(t, d.Snapshot.Time.Before(ds[i-1].Snapshot.Time))
		}
	}
}

func TestPickLastVsFirst(t *testing.T) {
	snaps := seedSchedule(t)
	r := seedRules(t)
	r.PeriodPick = PickLast
	ds := Apply(snaps, r)
	assert.Equal(t, []string{
		"2026-11-24", "2026-11-23", "2026-11-22", "2026-11-21", "2026-11-20", "2026-11-19", "2026-11-18",
		// the Sundays ending weeks 46 and 45 (week 47's Sunday is daily already)
		"2026-11-15", "2026-11-08",
		// the last days of October and September (November's is the newest)
		"2026-10-31", "2026-09-30",
	}, kept(ds, r.Location, day))
	assert.Equal(t, []string{"daily 2026-11-24", "weekly 2026-W48", "monthly 2026-11", "newest of group"},
		reasonsAt(t, ds, r.Location, day, "2026-11-24"))
	assert.Equal(t, []string{"daily 2026-11-22", "weekly 2026-W47"},
		reasonsAt(t, ds, r.Location, day, "2026-11-22"))
}

func TestBackupsStopped(t *testing.T) {
	// The schedule broke 30 days ago: the newest snapshot is from 2026-10-25.
	// Nothing expires because time passes: the rules count periods that
	// have snapshots, so the last 7 good dailies stay.
	r := seedRules(t)
	snaps := seedSchedule(t)[:90]
	ds := Apply(snaps, r)
	assert.Equal(t, []string{
		"2026-10-25", "2026-10-24", "2026-10-23", "2026-10-22", "2026-10-21", "2026-10-20", "2026-10-19",
		"2026-10-12", "2026-10-05", "2026-10-01", "2026-09-28", // Mondays and 1sts
		"2026-09-01", "2026-08-01",
	}, kept(ds, r.Location, day))

	// Gaps inside the history: a 10-day outage still leaves 7 daily.
	gappy := slices.Concat(seedSchedule(t)[:100], seedSchedule(t)[110:113])
	ds = Apply(gappy, Rules{KeepDaily: 7, Location: r.Location})
	assert.Equal(t, []string{
		"2026-11-17", "2026-11-16", "2026-11-15",
		"2026-11-04", "2026-11-03", "2026-11-02", "2026-11-01",
	}, kept(ds, r.Location, day))
}

func TestMissingMonday(t *testing.T) {
	r := seedRules(t)
	var snaps []Snapshot
	for _, sn := range seedSchedule(t) {
		d := sn.Time.In(r.Location).Format(day)
		if d == "2026-11-16" || d == "2026-11-09" || d == "2026-11-10" || d == "2026-11-01" {
			continue // Monday's backup failed; in week 46 Tuesday's too; and the 1st's
		}
		snaps = append(snaps, sn)
	}
	ds := Apply(snaps, r)
	assert.Equal(t, []string{
		"2026-11-24", "2026-11-23", "2026-11-22", "2026-11-21", "2026-11-20", "2026-11-19", "2026-11-18",
		"2026-11-17", "2026-11-11", "2026-11-02", // Tuesday stands for week 47, Wednesday for week 46
		"2026-10-01", "2026-09-01",
	}, kept(ds, r.Location, day))
	assert.Equal(t, []string{"weekly 2026-W47"}, reasonsAt(t, ds, r.Location, day, "2026-11-17"))
	assert.Equal(t, []string{"weekly 2026-W45", "monthly 2026-11"}, reasonsAt(t, ds, r.Location, day, "2026-11-02"))
}

func TestKeepLast(t *testing.T) {
	utc := time.UTC
	snaps := dailyAt("h", "t", 2026, time.January, 1, 10, 12, 0, utc)
	ds := Apply(snaps, Rules{KeepLast: 3})
	assert.Equal(t, []string{"2026-01-10", "2026-01-09", "2026-01-08"}, kept(ds, utc, day))
	assert.Equal(t, []string{"last 1", "newest of group"}, ds[0].Reasons)
	assert.Equal(t, []string{"last 3"}, ds[2].Reasons)

	ds = Apply(snaps, Rules{KeepLast: Unlimited})
	assert.Len(t, kept(ds, utc, day), 10)
	assert.Equal(t, []string{"last 10"}, ds[9].Reasons)
}

func TestUnlimited(t *testing.T) {
	// Hourly snapshots for 10 days: keep_daily -1 keeps one per day, all days.
	var snaps []Snapshot
	start := time.Date(2026, time.March, 1, 0, 15, 0, 0, time.UTC)
	for i := range 240 {
		snaps = append(snaps, snap("h", "t", start.Add(time.Duration(i)*time.Hour)))
	}
	ds := Apply(snaps, Rules{KeepDaily: Unlimited, PeriodPick: PickFirst})
	got := kept(ds, time.UTC, "2006-01-02 15:04")
	assert.Len(t, got, 11) // 10 midnights plus the newest
	assert.Equal(t, "2026-03-10 23:15", got[0])
	assert.Equal(t, "2026-03-10 00:15", got[1])
	assert.Equal(t, "2026-03-01 00:15", got[10])

	ds = Apply(snaps, Rules{KeepHourly: Unlimited, KeepYearly: Unlimited})
	assert.Len(t, kept(ds, time.UTC, day), 240)
	assert.Equal(t, []string{"hourly 2026-03-10 23:00 UTC", "yearly 2026", "newest of group"}, ds[0].Reasons)
}

func TestKeepWithin(t *testing.T) {
	// Every 6 hours for 5 days.
	var snaps []Snapshot
	start := time.Date(2026, time.May, 1, 0, 0, 0, 0, time.UTC)
	for i := range 20 {
		snaps = append(snaps, snap("h", "t", start.Add(time.Duration(i)*6*time.Hour)))
	}
	// The newest is 2026-05-05 18:00; within counts back from it, not from
	// now, and strictly (as restic): 05-04 18:00 is exactly 24h older and goes.
	ds := Apply(snaps, Rules{KeepWithin: 24 * time.Hour})
	assert.Equal(t, []string{"05-05 18", "05-05 12", "05-05 06", "05-05 00"}, kept(ds, time.UTC, "01-02 15"))
	assert.Equal(t, []string{"within 1d", "newest of group"}, ds[0].Reasons)

	ds = Apply(snaps, Rules{KeepWithin: 30 * time.Hour})
	assert.Equal(t, []string{"within 1d6h"}, ds[4].Reasons)
	assert.Len(t, kept(ds, time.UTC, day), 5)

	// keep_within_daily: one a day for the days of the snapshots within 3d:
	// 05-02 18:00 is exactly 3d old and out.
	ds = Apply(snaps, Rules{KeepWithinDaily: 72 * time.Hour})
	assert.Equal(t, []string{"05-05 18", "05-04 18", "05-03 18"}, kept(ds, time.UTC, "01-02 15"))
	assert.Equal(t, []string{"daily 2026-05-04 (within 3d)"}, ds[4].Reasons)
	ds = Apply(snaps, Rules{KeepWithinDaily: 72 * time.Hour, PeriodPick: PickFirst})
	assert.Equal(t, []string{"05-05 18", "05-05 00", "05-04 00", "05-03 00"}, kept(ds, time.UTC, "01-02 15"))
	assert.Equal(t, []string{"daily 2026-05-03 (within 3d)"}, ds[11].Reasons)
}

func TestKeepTags(t *testing.T) {
	utc := time.UTC
	base := time.Date(2026, time.June, 1, 0, 0, 0, 0, utc)
	snaps := []Snapshot{
		snap("h", "t", base.Add(1*time.Hour), "nightly"),
		snap("h", "t", base.Add(2*time.Hour), "manual", "pre-upgrade"),
		snap("h", "t", base.Add(3*time.Hour), "manual"),
		snap("h", "t", base.Add(4*time.Hour), "nightly", "manual"),
		snap("h", "t", base.Add(5*time.Hour)),
	}
	ds := Apply(snaps, Rules{KeepTags: []string{"nightly", "manual,pre-upgrade"}})
	assert.Equal(t, []string{"05", "04", "02", "01"}, kept(ds, utc, "15"))
	assert.Equal(t, []string{"newest of group"}, ds[0].Reasons)
	assert.Equal(t, []string{"tag nightly"}, ds[1].Reasons)
	assert.Equal(t, []string{"tag manual,pre-upgrade"}, ds[3].Reasons)
}

func TestGroupsAreIndependent(t *testing.T) {
	berlin := mustLoad(t, "Europe/Berlin")
	a := dailyAt("shop-db-1", "shopdb", 2026, time.October, 1, 60, 2, 30, berlin)
	b := dailyAt("shop-db-2", "shopdb", 2026, time.January, 1, 20, 2, 30, berlin) // stopped long ago
	c := dailyAt("shop-db-1", "media", 2026, time.November, 1, 3, 4, 0, berlin)
	ds := Apply(slices.Concat(a, b, c), Rules{KeepDaily: 7, Location: berlin})
	require.Len(t, ds, 83)

	byGroup := map[string][]string{}
	var groups []string
	for _, d := range ds {
		if len(groups) == 0 || groups[len(groups)-1] != d.Group {
			groups = append(groups, d.Group)
		}
		if d.Keep {
			byGroup[d.Group] = append(byGroup[d.Group], d.Snapshot.Time.In(berlin).Format(day))
		}
	}
	assert.Equal(t, []string{
		"host=shop-db-1 target=media", "host=shop-db-1 target=shopdb", "host=shop-db-2 target=shopdb",
	}, groups, "groups sorted by name")
	assert.Equal(t, []string{"2026-11-29", "2026-11-28", "2026-11-27", "2026-11-26", "2026-11-25", "2026-11-24", "2026-11-23"},
		byGroup["host=shop-db-1 target=shopdb"])
	assert.Equal(t, []string{"2026-01-20", "2026-01-19", "2026-01-18", "2026-01-17", "2026-01-16", "2026-01-15", "2026-01-14"},
		byGroup["host=shop-db-2 target=shopdb"])
	assert.Equal(t, []string{"2026-11-03", "2026-11-02", "2026-11-01"}, byGroup["host=shop-db-1 target=media"])

	// Grouping by host only merges the targets of a host.
	ds = Apply(slices.Concat(a, c), Rules{KeepLast: 1, GroupBy: []string{"host"}})
	assert.Len(t, kept(ds, berlin, day), 1)
	// Grouping by tags.
	tagged := []Snapshot{
		snap("h", "t", time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), "x"),
		snap("h", "t", time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC), "y"),
		snap("h", "t", time.Date(2026, 1, 3, 0, 0, 0, 0, time.UTC), "y"),
	}
	ds = Apply(tagged, Rules{KeepLast: 1, GroupBy: []string{"host", "tags"}})
	assert.Equal(t, []string{"host=h tags=x", "host=h tags=y", "host=h tags=y"}, []string{ds[0].Group, ds[1].Group, ds[2].Group})
	assert.Equal(t, []bool{true, true, false}, []bool{ds[0].Keep, ds[1].Keep, ds[2].Keep})
}

func TestEmptyRulesKeepAll(t *testing.T) {
	snaps := seedSchedule(t)
	for _, r := range []Rules{{}, {Location: mustLoad(t, "Europe/Berlin"), WeekStart: time.Monday, PeriodPick: PickFirst}} {
		require.True(t, r.Empty())
		ds := Apply(snaps, r)
		require.Len(t, ds, len(snaps))
		for _, d := range ds {
			assert.True(t, d.Keep)
			assert.Equal(t, []string{"no rules: keep all"}, d.Reasons)
		}
	}
	assert.Empty(t, Apply(nil, seedRules(t)))
	assert.False(t, Rules{KeepTags: []string{"x"}}.Empty())
	assert.False(t, Rules{KeepWithinWeekly: time.Hour}.Empty())
	assert.False(t, Rules{KeepYearly: -1}.Empty())
}

func TestValidate(t *testing.T) {
	require.NoError(t, seedRules(t).Validate())
	require.NoError(t, Rules{}.Validate())
	require.NoError(t, Rules{KeepLast: -1, KeepDaily: -1, GroupBy: []string{"host", "target", "tags"}}.Validate())

	for _, tc := range []struct {
		name string
		r    Rules
		want []string
	}{
		{"negative count", Rules{KeepDaily: -2}, []string{"keep_daily: -2: want a count >= 0, or -1 for unlimited"}},
		{"every negative count", Rules{KeepLast: -3, KeepHourly: -2, KeepWeekly: -5, KeepMonthly: -7, KeepYearly: -100},
			[]string{"keep_last: -3", "keep_hourly: -2", "keep_weekly: -5", "keep_monthly: -7", "keep_yearly: -100"}},
		{"negative within", Rules{KeepWithin: -time.Hour, KeepWithinDaily: -1}, []string{"keep_within: -1h0m0s", "keep_within_daily: -1ns"}},
		{"bad week start", Rules{KeepDaily: 1, WeekStart: 7}, []string{"week_starts: 7"}},
		{"bad pick", Rules{KeepDaily: 1, PeriodPick: 2}, []string{"period_pick: Pick(2): want first or last"}},
		{"bad group", Rules{KeepDaily: 1, GroupBy: []string{"paths", "host", "host"}}, []string{`group_by: "paths"`, `group_by: "host" twice`}},
		{"empty tag", Rules{KeepTags: []string{"a", "", "b,"}}, []string{`keep_tags[1]: ""`, `keep_tags[2]: "b,"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.r.Validate()
			require.Error(t, err)
			for _, w := range tc.want {
				assert.Contains(t, err.Error(), w)
			}
			assert.Len(t, strings.Split(err.Error(), "\n"), len(tc.want), "one line per problem: %v", err)
			// Invalid rules never delete anything.
			ds := Apply(seedSchedule(t), tc.r)
			for _, d := range ds {
				require.True(t, d.Keep)
				require.Equal(t, []string{"invalid rules: keep all"}, d.Reasons)
			}
		})
	}
}

func TestTimeZoneBoundaries(t *testing.T) {
	berlin := mustLoad(t, "Europe/Berlin")
	snaps := []Snapshot{
		snap("h", "t", time.Date(2026, time.November, 23, 22, 30, 0, 0, time.UTC)), // 23:30 Mon in Berlin
		snap("h", "t", time.Date(2026, time.November, 23, 23, 30, 0, 0, time.UTC)), // 00:30 Tue in Berlin
		snap("h", "t", time.Date(2026, time.November, 24, 1, 0, 0, 0, time.UTC)),
	}
	ds := Apply(snaps, Rules{KeepDaily: 3, Location: berlin, PeriodPick: PickFirst})
	assert.Equal(t, []string{"11-24 02:00", "11-24 00:30", "11-23 23:30"}, kept(ds, berlin, "01-02 15:04"))
	assert.Equal(t, []string{"daily 2026-11-24"}, ds[1].Reasons)

	// In UTC the first two are on the 23rd.
	ds = Apply(snaps, Rules{KeepDaily: 3, PeriodPick: PickFirst})
	assert.Equal(t, []string{"11-24 01:00", "11-23 22:30"}, kept(ds, time.UTC, "01-02 15:04"))
	assert.Equal(t, []string{"daily 2026-11-23"}, ds[2].Reasons)

	// Month and year boundaries follow the zone too: 23:30 UTC on Dec 31 is
	// New Year in Berlin.
	ny := []Snapshot{
		snap("h", "t", time.Date(2026, time.December, 31, 22, 0, 0, 0, time.UTC)),
		snap("h", "t", time.Date(2026, time.December, 31, 23, 30, 0, 0, time.UTC)),
	}
	ds = Apply(ny, Rules{KeepYearly: 2, KeepMonthly: 2, Location: berlin})
	assert.Equal(t, []string{"monthly 2027-01", "yearly 2027", "newest of group"}, ds[0].Reasons)
	assert.Equal(t, []string{"monthly 2026-12", "yearly 2026"}, ds[1].Reasons)
	ds = Apply(ny, Rules{KeepYearly: 2, KeepMonthly: 2})
	assert.Equal(t, []string{"monthly 2026-12", "yearly 2026", "newest of group"}, ds[0].Reasons)
	assert.Empty(t, ds[1].Reasons)
}

func TestDST(t *testing.T) {
	berlin := mustLoad(t, "Europe/Berlin")
	hourlyBetween := func(from, to time.Time) []Snapshot {
		var out []Snapshot
		for tm := from; tm.Before(to); tm = tm.Add(time.Hour) {
			out = append(out, snap("h", "t", tm))
		}
		return out
	}
	for _, tc := range []struct {
		name     string
		from, to time.Time
		perDay   map[string]int
	}{
		// End of October: 2026-10-25 has 25 hours (03:00 CEST -> 02:00 CET).
		{"fall back", time.Date(2026, 10, 24, 0, 0, 0, 0, berlin), time.Date(2026, 10, 27, 0, 0, 0, 0, berlin),
			map[string]int{"2026-10-24": 24, "2026-10-25": 25, "2026-10-26": 24}},
		// End of March: 2026-03-29 has 23 hours.
		{"spring forward", time.Date(2026, 3, 28, 0, 0, 0, 0, berlin), time.Date(2026, 3, 31, 0, 0, 0, 0, berlin),
			map[string]int{"2026-03-28": 24, "2026-03-29": 23, "2026-03-30": 24}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			snaps := hourlyBetween(tc.from, tc.to)
			n := 0
			for _, c := range tc.perDay {
				n += c
			}
			require.Len(t, snaps, n)

			// One day each, first snapshot at local midnight.
			ds := Apply(snaps, Rules{KeepDaily: Unlimited, Location: berlin, PeriodPick: PickFirst})
			got := kept(ds, berlin, "2006-01-02 15:04")
			assert.Equal(t, []string{"2026-" + tc.to.Add(-time.Hour).Format("01-02") + " 23:00",
				tc.to.AddDate(0, 0, -1).Format(day) + " 00:00",
				tc.from.AddDate(0, 0, 1).Format(day) + " 00:00",
				tc.from.Format(day) + " 00:00"}, got)

			// keep_daily -1, PickLast: each day's last snapshot (23:00), so
			// each day's snapshots are all in one period.
			ds = Apply(snaps, Rules{KeepDaily: Unlimited, Location: berlin})
			days := map[string]int{}
			for _, d := range ds {
				days[d.Snapshot.Time.In(berlin).Format(day)]++
				if d.Keep {
					assert.Equal(t, "23:00", d.Snapshot.Time.In(berlin).Format("15:04"))
				}
			}
			assert.Equal(t, tc.perDay, days)

			// Every hour is its own period, the repeated 02:00 too.
			ds = Apply(snaps, Rules{KeepHourly: Unlimited, Location: berlin})
			assert.Len(t, kept(ds, berlin, day), n)
		})
	}

	// The two 02:00 hours of the fall-back day carry the zone in the label.
	snaps := []Snapshot{
		snap("h", "t", time.Date(2026, 10, 25, 0, 30, 0, 0, time.UTC)), // 02:30 CEST
		snap("h", "t", time.Date(2026, 10, 25, 1, 30, 0, 0, time.UTC)), // 02:30 CET
	}
	ds := Apply(snaps, Rules{KeepHourly: 2, Location: berlin})
	assert.Equal(t, []string{"hourly 2026-10-25 02:00 CET", "newest of group"}, ds[0].Reasons)
	assert.Equal(t, []string{"hourly 2026-10-25 02:00 CEST"}, ds[1].Reasons)
}

func TestWeekLabels(t *testing.T) {
	berlin := mustLoad(t, "Europe/Berlin")
	// Sat 2026-11-21 ... Tue 2026-11-24; and the ISO year boundary.
	snaps := dailyAt("h", "t", 2026, time.November, 21, 4, 12, 0, berlin)
	label := func(ws time.Weekday, pick Pick) [][]string {
		ds := Apply(snaps, Rules{KeepWeekly: Unlimited, WeekStart: ws, PeriodPick: pick, Location: berlin})
		var out [][]string
		for _, d := range ds {
			out = append(out, d.Reasons)
		}
		return out
	}
	// Newest first: Tue 24, Mon 23, Sun 22, Sat 21.
	assert.Equal(t, [][]string{{"weekly 2026-W48", "newest of group"}, nil, {"weekly 2026-W47"}, nil}, label(time.Monday, PickLast))
	assert.Equal(t, [][]string{{"newest of group"}, {"weekly 2026-W48"}, nil, {"weekly 2026-W47"}}, label(time.Monday, PickFirst))
	assert.Equal(t, [][]string{{"newest of group"}, nil, {"weekly Sun 2026-11-22"}, {"weekly Sun 2026-11-15"}}, label(time.Sunday, PickFirst))
	assert.Equal(t, [][]string{{"weekly Sat 2026-11-21", "newest of group"}, nil, nil, nil}, label(time.Saturday, PickLast))

	// ISO weeks across the new year: Thu 2026-12-31 and Fri 2027-01-01 are
	// both in 2026-W53; Mon 2027-01-04 starts 2027-W01.
	snaps = dailyAt("h", "t", 2026, time.December, 30, 6, 12, 0, berlin)
	ds := Apply(snaps, Rules{KeepWeekly: 3, WeekStart: time.Monday, PeriodPick: PickFirst, Location: berlin})
	assert.Equal(t, []string{"2027-01-04", "2026-12-30"}, kept(ds, berlin, day))
	assert.Equal(t, []string{"weekly 2027-W01", "newest of group"}, ds[0].Reasons)
	assert.Equal(t, []string{"weekly 2026-W53"}, ds[5].Reasons)
}

func TestDeterministic(t *testing.T) {
	berlin := mustLoad(t, "Europe/Berlin")
	snaps := slices.Concat(seedSchedule(t),
		dailyAt("shop-db-2", "shopdb", 2026, time.August, 1, 90, 3, 0, berlin),
		dailyAt("shop-db-1", "media", 2026, time.August, 1, 90, 3, 0, berlin))
	// Same time, different IDs: ties break by ID.
	dup := snaps[5]
	dup.ID = "0000" + dup.ID[4:]
	snaps = append(snaps, dup)
	r := seedRules(t)
	r.KeepLast = 2
	r.KeepWithinDaily = 20 * 24 * time.Hour
	want := Apply(snaps, r)
	rng := rand.New(rand.NewPCG(1, 2))
	for range 20 {
		shuffled := slices.Clone(snaps)
		rng.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
		require.Equal(t, want, Apply(shuffled, r))
	}
	// Apply does not reorder the caller's slice.
	in := slices.Clone(snaps)
	Apply(in, r)
	require.Equal(t, snaps, in)
}

func TestParse(t *testing.T) {
	for s, want := range map[string]Pick{"": PickLast, "last": PickLast, "First": PickFirst} {
		got, err := ParsePick(s)
		require.NoError(t, err)
		assert.Equal(t, want, got)
	}
	_, err := ParsePick("middle")
	assert.EqualError(t, err, `period_pick "middle": want first or last`)
	for s, want := range map[string]time.Weekday{"": time.Monday, "monday": time.Monday, "Sun": time.Sunday, "SATURDAY": time.Saturday} {
		got, err := ParseWeekday(s)
		require.NoError(t, err)
		assert.Equal(t, want, got)
	}
	_, err = ParseWeekday("moonday")
	assert.Error(t, err)
	assert.Equal(t, "first", PickFirst.String())
}

func TestFormatDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0: "0s", 7 * 24 * time.Hour: "7d", 36 * time.Hour: "1d12h", 90 * time.Minute: "1h30m",
		time.Second + 5*time.Millisecond: "1s5ms", -time.Hour: "-1h",
	} {
		assert.Equal(t, want, FormatDuration(d))
	}
}

// golden compares got with testdata/name, rewriting it with -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		require.NoError(t, os.WriteFile(path, []byte(got), 0o644))
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err, "run go test -update to create it")
	assert.Equal(t, string(want), got)
}

func TestParseDuration(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
		err  bool
	}{
		{"26h", 26 * time.Hour, false},
		{"7d", 7 * 24 * time.Hour, false},
		{"4w", 28 * 24 * time.Hour, false},
		{"1d12h", 36 * time.Hour, false},
		{"1w2d30m", 9*24*time.Hour + 30*time.Minute, false},
		{"", 0, false},
		{"7x", 0, true},
		{"d", 0, true},
		{"1d-", 0, true},
	}
	for _, tc := range tests {
		got, err := ParseDuration(tc.in)
		if tc.err {
			assert.Error(t, err, tc.in)
			continue
		}
		assert.NoError(t, err, tc.in)
		assert.Equal(t, tc.want, got, tc.in)
	}
}
