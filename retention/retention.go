package retention

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Snapshot is what retention needs to know about a snapshot.
type Snapshot struct {
	ID     string
	Time   time.Time
	Host   string
	Target string
	Tags   []string
}

// Pick chooses which snapshot of a period a period rule keeps.
type Pick int

const (
	// PickLast keeps the newest snapshot of each period (the default, as
	// restic and kopia do).
	PickLast Pick = iota
	// PickFirst keeps the oldest snapshot of each period: the weekly backup
	// is Monday's (Tuesday's when Monday's failed), the monthly one the 1st's.
	PickFirst
)

// String returns the policy spelling: "last" or "first".
func (p Pick) String() string {
	switch p {
	case PickLast:
		return "last"
	case PickFirst:
		return "first"
	}
	return fmt.Sprintf("Pick(%d)", int(p))
}

// ParsePick parses the policy key period_pick: "last" (or "") or "first".
func ParsePick(s string) (Pick, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "last":
		return PickLast, nil
	case "first":
		return PickFirst, nil
	}
	return 0, fmt.Errorf("period_pick %q: want first or last", s)
}

// ParseWeekday parses the policy key week_starts: a weekday name in English,
// full or three letters, any case ("monday", "Mon"). "" is Monday.
func ParseWeekday(s string) (time.Weekday, error) {
	v := strings.ToLower(strings.TrimSpace(s))
	if v == "" {
		return time.Monday, nil
	}
	for d := time.Sunday; d <= time.Saturday; d++ {
		name := strings.ToLower(d.String())
		if v == name || v == name[:3] {
			return d, nil
		}
	}
	return 0, fmt.Errorf("week_starts %q: want a weekday (monday, tuesday, ..., sunday)", s)
}

// Group-by keys accepted in Rules.GroupBy.
const (
	GroupHost   = "host"
	GroupTarget = "target"
	GroupTags   = "tags"
)

// Unlimited as a count keeps every period (policy value -1, "all").
const Unlimited = -1

// Rules is a retention policy. The zero value has no rule: Apply keeps
// everything. Counts are >= 0, or Unlimited (-1). Each field names its
// policy key.
type Rules struct {
	KeepLast    int // keep_last: the N newest snapshots
	KeepHourly  int // keep_hourly: one snapshot for each of the N newest hours that have snapshots
	KeepDaily   int // keep_daily
	KeepWeekly  int // keep_weekly
	KeepMonthly int // keep_monthly
	KeepYearly  int // keep_yearly

	// KeepWithin (keep_within) keeps every snapshot taken less than this
	// duration before the newest snapshot of its group (not before now).
	KeepWithin time.Duration

	// KeepWithinHourly ... KeepWithinYearly (keep_within_hourly, ...) keep
	// one snapshot per hour/day/week/month/year for the periods of the
	// snapshots taken less than this duration before the newest of the group
	// (restic's --keep-within-daily etc.).
	KeepWithinHourly  time.Duration
	KeepWithinDaily   time.Duration
	KeepWithinWeekly  time.Duration
	KeepWithinMonthly time.Duration
	KeepWithinYearly  time.Duration

	// KeepTags (keep_tags) keeps snapshots that carry any of these tags.
	// An entry "a,b" matches snapshots carrying both a and b (as restic).
	KeepTags []string

	// Location is the time zone of hours, days, weeks, months and years
	// (policy timezone). nil means UTC.
	Location *time.Location
	// WeekStart is the first day of a week (week_starts). The zero value is
	// Sunday: set time.Monday for ISO weeks, the policy default.
	WeekStart time.Weekday
	// PeriodPick chooses the snapshot a period rule keeps (period_pick).
	PeriodPick Pick
	// GroupBy lists what separates groups: "host", "target", "tags".
	// Empty means host and target.
	GroupBy []string
}

// Empty reports whether r has no keep rule at all. Apply keeps every
// snapshot then: nothing is deleted when nothing was asked.
func (r Rules) Empty() bool {
	return r.KeepLast == 0 && r.KeepHourly == 0 && r.KeepDaily == 0 && r.KeepWeekly == 0 &&
		r.KeepMonthly == 0 && r.KeepYearly == 0 && r.KeepWithin == 0 &&
		r.KeepWithinHourly == 0 && r.KeepWithinDaily == 0 && r.KeepWithinWeekly == 0 &&
		r.KeepWithinMonthly == 0 && r.KeepWithinYearly == 0 && len(r.KeepTags) == 0
}

// Validate reports every invalid field at once (errors.Join), naming the
// policy key.
func (r Rules) Validate() error {
	var errs []error
	counts := []struct {
		key string
		n   int
	}{
		{"keep_last", r.KeepLast}, {"keep_hourly", r.KeepHourly}, {"keep_daily", r.KeepDaily},
		{"keep_weekly", r.KeepWeekly}, {"keep_monthly", r.KeepMonthly}, {"keep_yearly", r.KeepYearly},
	}
	for _, c := range counts {
		if c.n < Unlimited {
			errs = append(errs, fmt.Errorf("%s: %d: want a count >= 0, or -1 for unlimited", c.key, c.n))
		}
	}
	durs := []struct {
		key string
		d   time.Duration
	}{
		{"keep_within", r.KeepWithin}, {"keep_within_hourly", r.KeepWithinHourly},
		{"keep_within_daily", r.KeepWithinDaily}, {"keep_within_weekly", r.KeepWithinWeekly},
		{"keep_within_monthly", r.KeepWithinMonthly}, {"keep_within_yearly", r.KeepWithinYearly},
	}
	for _, d := range durs {
		if d.d < 0 {
			errs = append(errs, fmt.Errorf("%s: %v: want a duration >= 0", d.key, d.d))
		}
	}
	for i, t := range r.KeepTags {
		for part := range strings.SplitSeq(t, ",") {
			if strings.TrimSpace(part) == "" {
				errs = append(errs, fmt.Errorf("keep_tags[%d]: %q: empty tag", i, t))
				break
			}
		}
	}
	if r.WeekStart < time.Sunday || r.WeekStart > time.Saturday {
		errs = append(errs, fmt.Errorf("week_starts: %d: want a weekday (0 Sunday ... 6 Saturday)", int(r.WeekStart)))
	}
	if r.PeriodPick != PickLast && r.PeriodPick != PickFirst {
		errs = append(errs, fmt.Errorf("period_pick: %v: want first or last", r.PeriodPick))
	}
	seen := map[string]bool{}
	for _, g := range r.GroupBy {
		switch g {
		case GroupHost, GroupTarget, GroupTags:
			if seen[g] {
				errs = append(errs, fmt.Errorf("group_by: %q twice", g))
			}
			seen[g] = true
		default:
			errs = append(errs, fmt.Errorf("group_by: %q: want host, target or tags", g))
		}
	}
	return errors.Join(errs...)
}

// Decision is the verdict on one snapshot. Reasons is empty exactly when
// Keep is false; a snapshot kept by several rules lists every reason, in
// rule order: "last 3", "hourly 2026-11-24 02:00 CET", "daily 2026-11-24",
// "weekly 2026-W48", "monthly 2026-11", "yearly 2026", "within 7d",
// "daily 2026-11-24 (within 30d)", "tag nightly", "newest of group".
type Decision struct {
	Snapshot Snapshot
	Keep     bool
	Reasons  []string
	// Group names the snapshot's group, e.g. "host=shop-db-1 target=shopdb".
	Group string
}

// Apply decides for every snapshot whether r keeps it. The result has one
// Decision per input snapshot, ordered by group (groups sorted by name),
// newest first within a group (equal times by ID): it does not depend on the
// input order.
//
// Each group is decided on its own. The newest snapshot of a group is always
// kept. When r is Empty, or invalid (see Validate), every snapshot is kept:
// Apply never deletes on a misconfiguration.
func Apply(snaps []Snapshot, r Rules) []Decision {
	groupBy := r.GroupBy
	if len(groupBy) == 0 {
		groupBy = []string{GroupHost, GroupTarget}
	}
	groups := map[string][]Snapshot{}
	for _, sn := range snaps {
		k := groupName(sn, groupBy)
		groups[k] = append(groups[k], sn)
	}
	names := make([]string, 0, len(groups))
	for k := range groups {
		names = append(names, k)
	}
	slices.Sort(names)

	invalid := r.Validate() != nil
	out := make([]Decision, 0, len(snaps))
	for _, name := range names {
		list := groups[name]
		slices.SortStableFunc(list, func(a, b Snapshot) int {
			if c := b.Time.Compare(a.Time); c != 0 {
				return c
			}
			return cmp.Compare(a.ID, b.ID)
		})
		var reasons [][]string
		switch {
		case invalid:
			reasons = all(len(list), "invalid rules: keep all")
		case r.Empty():
			reasons = all(len(list), "no rules: keep all")
		default:
			reasons = decide(list, r)
		}
		for i, sn := range list {
			out = append(out, Decision{Snapshot: sn, Keep: len(reasons[i]) > 0, Reasons: reasons[i], Group: name})
		}
	}
	return out
}

func all(n int, reason string) [][]string {
	rs := make([][]string, n)
	for i := range rs {
		rs[i] = []string{reason}
	}
	return rs
}

func groupName(sn Snapshot, by []string) string {
	parts := make([]string, 0, len(by))
	for _, g := range by {
		switch g {
		case GroupHost:
			parts = append(parts, "host="+sn.Host)
		case GroupTarget:
			parts = append(parts, "target="+sn.Target)
		case GroupTags:
			tags := slices.Clone(sn.Tags)
			slices.Sort(tags)
			tags = slices.Compact(tags)
			parts = append(parts, "tags="+strings.Join(tags, ","))
		}
	}
	return strings.Join(parts, " ")
}

// decide applies valid, non-empty rules to one group sorted newest first.
func decide(list []Snapshot, r Rules) [][]string {
	loc := r.Location
	if loc == nil {
		loc = time.UTC
	}
	reasons := make([][]string, len(list))
	add := func(i int, reason string) { reasons[i] = append(reasons[i], reason) }
	newest := list[0].Time

	for i := range list {
		if r.KeepLast == Unlimited || i < r.KeepLast {
			add(i, fmt.Sprintf("last %d", i+1))
		}
	}
	periods := []struct {
		n int
		p period
	}{
		{r.KeepHourly, hourly}, {r.KeepDaily, daily}, {r.KeepWeekly, weekly},
		{r.KeepMonthly, monthly}, {r.KeepYearly, yearly},
	}
	for _, pr := range periods {
		if pr.n != 0 {
			keepPeriods(list, len(list), pr.n, pr.p, r, loc, "", add)
		}
	}
	if r.KeepWithin > 0 {
		reason := "within " + FormatDuration(r.KeepWithin)
		for i := range list {
			if !within(list[i].Time, newest, r.KeepWithin) {
				break
			}
			add(i, reason)
		}
	}
	withins := []struct {
		d time.Duration
		p period
	}{
		{r.KeepWithinHourly, hourly}, {r.KeepWithinDaily, daily}, {r.KeepWithinWeekly, weekly},
		{r.KeepWithinMonthly, monthly}, {r.KeepWithinYearly, yearly},
	}
	for _, w := range withins {
		if w.d <= 0 {
			continue
		}
		n := 0
		for n < len(list) && within(list[n].Time, newest, w.d) {
			n++
		}
		keepPeriods(list, n, Unlimited, w.p, r, loc, " (within "+FormatDuration(w.d)+")", add)
	}
	for _, want := range r.KeepTags {
		for i, sn := range list {
			if hasTags(sn.Tags, want) {
				add(i, "tag "+want)
			}
		}
	}
	add(0, "newest of group")
	return reasons
}

// within reports whether t is less than d before newest (restic: strictly).
func within(t, newest time.Time, d time.Duration) bool {
	return t.After(newest.Add(-d))
}

// keepPeriods keeps one snapshot in each of the n newest periods that have
// snapshots among list[:upto] (all of them for Unlimited).
func keepPeriods(list []Snapshot, upto, n int, p period, r Rules, loc *time.Location, suffix string, add func(int, string)) {
	type span struct {
		first, last int // indices of the newest and oldest snapshot of the period
		label       string
	}
	var order []periodKey
	spans := map[periodKey]*span{}
	for i := range upto {
		k, label := p.key(list[i].Time.In(loc), r.WeekStart)
		if s, ok := spans[k]; ok {
			s.last = i
			continue
		}
		spans[k] = &span{first: i, last: i, label: label}
		order = append(order, k)
	}
	if n != Unlimited && len(order) > n {
		order = order[:n]
	}
	for _, k := range order {
		s := spans[k]
		i := s.first
		if r.PeriodPick == PickFirst {
			i = s.last
		}
		add(i, p.name+" "+s.label+suffix)
	}
}

func hasTags(tags []string, want string) bool {
	for part := range strings.SplitSeq(want, ",") {
		if !slices.Contains(tags, strings.TrimSpace(part)) {
			return false
		}
	}
	return true
}

// FormatDuration formats d in days, hours, minutes and seconds, leaving out
// zero units: 168h is "7d", 36h "1d12h", 90m "1h30m".
func FormatDuration(d time.Duration) string {
	if d == 0 {
		return "0s"
	}
	var b strings.Builder
	if d < 0 {
		b.WriteByte('-')
		d = -d
	}
	units := []struct {
		u    time.Duration
		name string
	}{{24 * time.Hour, "d"}, {time.Hour, "h"}, {time.Minute, "m"}, {time.Second, "s"}}
	for _, u := range units {
		if n := d / u.u; n > 0 {
			fmt.Fprintf(&b, "%d%s", n, u.name)
			d -= n * u.u
		}
	}
	if d > 0 {
		b.WriteString(d.String())
	}
	return b.String()
}

// ParseDuration is time.ParseDuration plus day ("7d") and week ("4w")
// units, as retention and policy files write them; "1w2d12h" mixes them.
func ParseDuration(s string) (time.Duration, error) {
	orig := s
	var total time.Duration
	for s != "" {
		i := 0
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		if i == 0 || i == len(s) || (s[i] != 'd' && s[i] != 'w') {
			break // the rest is Go syntax
		}
		n, err := strconv.Atoi(s[:i])
		if err != nil {
			return 0, fmt.Errorf("duration %q: %w", orig, err)
		}
		unit := 24 * time.Hour
		if s[i] == 'w' {
			unit *= 7
		}
		total += time.Duration(n) * unit
		s = s[i+1:]
	}
	if s != "" {
		d, err := time.ParseDuration(s)
		if err != nil {
			return 0, fmt.Errorf("duration %q: want e.g. 26h, 7d, 4w or 1d12h", orig)
		}
		total += d
	}
	return total, nil
}
