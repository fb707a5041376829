package retention

import (
	"fmt"
	"time"
)

// periodKey identifies an hour, day, week, month or year.
type periodKey struct{ y, m, d, h, off int }

// period maps a time, already in the rules' Location, to its period.
type period struct {
	name string
	key  func(t time.Time, weekStart time.Weekday) (periodKey, string)
}

var (
	// hourly: the local hour; the UTC offset separates the two 02:00 hours
	// of a fall-back DST change (label "2026-10-25 02:00 CEST" and "... CET").
	hourly = period{"hourly", func(t time.Time, _ time.Weekday) (periodKey, string) {
		_, off := t.Zone()
		return periodKey{t.Year(), int(t.Month()), t.Day(), t.Hour(), off}, t.Format("2006-01-02 15:00 MST")
	}}
	// daily: the local calendar day, however long (23h and 25h at DST changes).
	daily = period{"daily", func(t time.Time, _ time.Weekday) (periodKey, string) {
		return periodKey{y: t.Year(), m: int(t.Month()), d: t.Day()}, t.Format("2006-01-02")
	}}
	// weekly: the week starting on weekStart, identified by its first day.
	// Label: ISO week "2026-W48" when weeks start on Monday, otherwise the
	// first day, "Sun 2026-11-22".
	weekly = period{"weekly", func(t time.Time, weekStart time.Weekday) (periodKey, string) {
		back := (int(t.Weekday()) - int(weekStart) + 7) % 7
		// Calendar arithmetic in UTC: no DST in the way.
		start := time.Date(t.Year(), t.Month(), t.Day()-back, 0, 0, 0, 0, time.UTC)
		k := periodKey{y: start.Year(), m: int(start.Month()), d: start.Day()}
		if weekStart == time.Monday {
			y, w := start.ISOWeek()
			return k, fmt.Sprintf("%04d-W%02d", y, w)
		}
		return k, start.Format("Mon 2006-01-02")
	}}
	monthly = period{"monthly", func(t time.Time, _ time.Weekday) (periodKey, string) {
		return periodKey{y: t.Year(), m: int(t.Month())}, t.Format("2006-01")
	}}
	yearly = period{"yearly", func(t time.Time, _ time.Weekday) (periodKey, string) {
		return periodKey{y: t.Year()}, t.Format("2006")
	}}
)
