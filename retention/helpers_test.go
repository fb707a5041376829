package retention

import (
	"crypto/sha256"
	"encoding/hex"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func mustLoad(t testing.TB, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	require.NoError(t, err)
	return loc
}

// snap makes a snapshot with an ID derived from host, target and time.
func snap(host, target string, tm time.Time, tags ...string) Snapshot {
	sum := sha256.Sum256([]byte(host + "/" + target + "/" + tm.UTC().Format(time.RFC3339Nano)))
	return Snapshot{ID: hex.EncodeToString(sum[:]), Time: tm, Host: host, Target: target, Tags: tags}
}

// dailyAt makes one snapshot a day at hh:mm in loc, for n days from the
// date y-m-d on.
func dailyAt(host, target string, y int, m time.Month, d, n, hh, mm int, loc *time.Location) []Snapshot {
	out := make([]Snapshot, 0, n)
	for i := range n {
		out = append(out, snap(host, target, time.Date(y, m, d+i, hh, mm, 0, 0, loc)))
	}
	return out
}

// kept returns the local times (in loc, layout) of the kept snapshots, newest first.
func kept(ds []Decision, loc *time.Location, layout string) []string {
	var out []string
	for _, d := range ds {
		if d.Keep {
			out = append(out, d.Snapshot.Time.In(loc).Format(layout))
		}
	}
	return out
}

// reasonsAt returns the reasons of the decision for the snapshot at local time s.
func reasonsAt(t *testing.T, ds []Decision, loc *time.Location, layout, s string) []string {
	t.Helper()
	for _, d := range ds {
		if d.Snapshot.Time.In(loc).Format(layout) == s {
			return d.Reasons
		}
	}
	t.Fatalf("no snapshot at %s", s)
	return nil
}

// seedRules is the Magento seed policy: daily 7 days, weekly (Monday)
// 4 weeks, monthly (1st) 3 months, Europe/Berlin.
func seedRules(t testing.TB) Rules {
	return Rules{
		KeepDaily: 7, KeepWeekly: 4, KeepMonthly: 3,
		Location: mustLoad(t, "Europe/Berlin"), WeekStart: time.Monday, PeriodPick: PickFirst,
	}
}

const day = "2006-01-02"
