package policies

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Calendar is a systemd OnCalendar expression (systemd.time(7)), of which
// lifeboat accepts this subset (systemd itself gets the expression as
// written):
//
//   - shorthands: minutely, hourly, daily, weekly, monthly, quarterly,
//     semiannually, yearly, annually;
//   - [WEEKDAYS] [DATE] [TIME] [TIMEZONE], where WEEKDAYS is a comma list
//     of day names or ranges (Mon, monday, Mon..Fri, Sat,Sun); DATE is
//     [YEAR-]MONTH-DAY; TIME is HOUR:MINUTE[:SECOND]; each date or time
//     component is *, a number, a range a..b, a repetition a/step or
//     */step, or a comma list of these; TIMEZONE is an IANA name or UTC.
//     A missing DATE means *-*-*, a missing TIME 00:00:00.
//
// Not accepted: the last-day-of-month "~" syntax, fractional seconds,
// and weekday names inside the date.
type Calendar struct {
	expr string
	spec *calSpec
}

// ParseCalendar parses an OnCalendar expression (see Calendar).
func ParseCalendar(s string) (Calendar, error) {
	spec, err := parseCalSpec(s)
	if err != nil {
		return Calendar{}, err
	}
	return Calendar{expr: s, spec: spec}, nil
}

// String returns the expression as written in the policy.
func (c Calendar) String() string { return c.expr }

// IsZero reports whether no calendar is set.
func (c Calendar) IsZero() bool { return c.spec == nil }

// MarshalText writes the expression.
func (c Calendar) MarshalText() ([]byte, error) { return []byte(c.expr), nil }

func (c *Calendar) parseScalar(s string) error {
	v, err := ParseCalendar(s)
	if err != nil {
		return err
	}
	*c = v
	return nil
}

// Next returns the first time strictly after t that the calendar matches,
// in the calendar's time zone (t's location when it names none); the zero
// time if none within five years.
func (c Calendar) Next(t time.Time) time.Time {
	if c.spec == nil {
		return time.Time{}
	}
	s := c.spec
	loc := t.Location()
	if s.loc != nil {
		loc = s.loc
	}
	t = t.In(loc).Truncate(time.Second).Add(time.Second)
	day := time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, loc)
	for i := 0; i < 5*366; i++ {
		d := day.AddDate(0, 0, i)
		if !s.matchDate(d) {
			continue
		}
		for h := 0; h < 24; h++ {
			if !s.hour.match(h) {
				continue
			}
			for m := 0; m < 60; m++ {
				if !s.minute.match(m) {
					continue
				}
				for sec := 0; sec < 60; sec++ {
					if !s.second.match(sec) {
						continue
					}
					if c := time.Date(d.Year(), d.Month(), d.Day(), h, m, sec, 0, loc); !c.Before(t) {
						return c
					}
				}
			}
		}
	}
	return time.Time{}
}

type calRange struct{ from, to, step int }

// calField is a list of ranges; nil matches everything.
type calField []calRange

func (f calField) match(v int) bool {
	if f == nil {
		return true
	}
	for _, r := range f {
		if v >= r.from && v <= r.to && (v-r.from)%r.step == 0 {
			return true
		}
	}
	return false
}

type calSpec struct {
	weekdays             uint8 // bit per time.Weekday; 0 = any
	year, month, day     calField
	hour, minute, second calField
	loc                  *time.Location
}

func (s *calSpec) matchDate(d time.Time) bool {
	return (s.weekdays == 0 || s.weekdays&(1<<d.Weekday()) != 0) &&
		s.year.match(d.Year()) && s.month.match(int(d.Month())) && s.day.match(d.Day())
}

var calShorthands = map[string]string{
	"minutely":     "*-*-* *:*:00",
	"hourly":       "*-*-* *:00:00",
	"daily":        "*-*-* 00:00:00",
	"weekly":       "Mon *-*-* 00:00:00",
	"monthly":      "*-*-01 00:00:00",
	"quarterly":    "*-01,04,07,10-01 00:00:00",
	"semiannually": "*-01,07-01 00:00:00",
	"yearly":       "*-01-01 00:00:00",
	"annually":     "*-01-01 00:00:00",
}

var weekdayNames = map[string]time.Weekday{
	"sun": time.Sunday, "sunday": time.Sunday, "mon": time.Monday, "monday": time.Monday,
	"tue": time.Tuesday, "tuesday": time.Tuesday, "wed": time.Wednesday, "wednesday": time.Wednesday,
	"thu": time.Thursday, "thursday": time.Thursday, "fri": time.Friday, "friday": time.Friday,
	"sat": time.Saturday, "saturday": time.Saturday,
}

func parseCalSpec(expr string) (*calSpec, error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%q is not a supported calendar expression: %s (e.g. daily, \"*-*-* 02:30:00\", \"Mon..Fri 02:00\")",
			expr, fmt.Sprintf(format, args...))
	}
	fields := strings.Fields(expr)
	if len(fields) == 0 {
		return nil, bad("empty")
	}
	s := &calSpec{}
	if len(fields) >= 1 {
		if full, ok := calShorthands[strings.ToLower(fields[0])]; ok {
			rest := fields[1:]
			fields = append(strings.Fields(full), rest...)
		}
	}
	// A trailing time zone.
	if last := fields[len(fields)-1]; len(fields) > 1 && !strings.ContainsAny(last, ":-*") && !isWeekdayList(last) {
		loc, err := time.LoadLocation(last)
		if err != nil || last == "Local" || last == "" {
			return nil, bad("unknown time zone %q", last)
		}
		s.loc = loc
		fields = fields[:len(fields)-1]
	}
	i := 0
	if i < len(fields) && isWeekdayList(fields[i]) {
		w, err := parseWeekdays(fields[i])
		if err != nil {
			return nil, bad("%v", err)
		}
		s.weekdays = w
		i++
	}
	dateSeen, timeSeen := false, false
	for ; i < len(fields); i++ {
		f := fields[i]
		switch {
		case strings.Contains(f, ":") && !timeSeen:
			parts := strings.Split(f, ":")
			if len(parts) < 2 || len(parts) > 3 {
				return nil, bad("time %q is not HOUR:MINUTE[:SECOND]", f)
			}
			var err error
			if s.hour, err = parseCalField(parts[0], 0, 23); err != nil {
				return nil, bad("hour: %v", err)
			}
			if s.minute, err = parseCalField(parts[1], 0, 59); err != nil {
				return nil, bad("minute: %v", err)
			}
			s.second = calField{{0, 0, 1}}
			if len(parts) == 3 {
				if s.second, err = parseCalField(parts[2], 0, 59); err != nil {
					return nil, bad("second: %v", err)
				}
			}
			timeSeen = true
		case strings.Contains(f, "-") && !dateSeen && !timeSeen:
			parts := strings.Split(f, "-")
			if len(parts) < 2 || len(parts) > 3 {
				return nil, bad("date %q is not [YEAR-]MONTH-DAY", f)
			}
			var err error
			if len(parts) == 3 {
				if s.year, err = parseCalField(parts[0], 1970, 2199); err != nil {
					return nil, bad("year: %v", err)
				}
				parts = parts[1:]
			}
			if s.month, err = parseCalField(parts[0], 1, 12); err != nil {
				return nil, bad("month: %v", err)
			}
			if s.day, err = parseCalField(parts[1], 1, 31); err != nil {
				return nil, bad("day: %v", err)
			}
			dateSeen = true
		default:
			return nil, bad("unexpected %q", f)
		}
	}
	if !timeSeen {
		s.hour, s.minute, s.second = calField{{0, 0, 1}}, calField{{0, 0, 1}}, calField{{0, 0, 1}}
	}
	return s, nil
}

func isWeekdayList(f string) bool {
	for _, part := range strings.Split(f, ",") {
		for _, name := range strings.Split(part, "..") {
			if _, ok := weekdayNames[strings.ToLower(name)]; !ok {
				return false
			}
		}
	}
	return true
}

func parseWeekdays(f string) (uint8, error) {
	var bits uint8
	for _, part := range strings.Split(f, ",") {
		names := strings.Split(part, "..")
		if len(names) > 2 {
			return 0, fmt.Errorf("weekday range %q", part)
		}
		from := weekdayNames[strings.ToLower(names[0])]
		if len(names) == 1 {
			bits |= 1 << from
			continue
		}
		to := weekdayNames[strings.ToLower(names[1])]
		// Ranges run forward through the week, Monday first: Mon..Sun,
		// Sat..Sun; Sunday counts as 7.
		f, t := int(from), int(to)
		if t == 0 {
			t = 7
		}
		if f > t {
			return 0, fmt.Errorf("weekday range %q runs backwards", part)
		}
		for d := f; d <= t; d++ {
			bits |= 1 << (d % 7)
		}
	}
	return bits, nil
}

// parseCalField parses one date/time component: *, N, a..b, N/step, */step
// or a comma list of these, each within [min, max].
func parseCalField(f string, min, max int) (calField, error) {
	if f == "*" {
		return nil, nil
	}
	var out calField
	for _, part := range strings.Split(f, ",") {
		r := calRange{step: 1}
		body, step, hasStep := strings.Cut(part, "/")
		if hasStep {
			n, err := strconv.Atoi(step)
			if err != nil || n < 1 {
				return nil, fmt.Errorf("bad step in %q", part)
			}
			r.step = n
		}
		switch lo, hi, isRange := strings.Cut(body, ".."); {
		case body == "*":
			r.from, r.to = min, max
		case isRange:
			a, err1 := strconv.Atoi(lo)
			b, err2 := strconv.Atoi(hi)
			if err1 != nil || err2 != nil || a > b {
				return nil, fmt.Errorf("bad range %q", part)
			}
			r.from, r.to = a, b
		default:
			a, err := strconv.Atoi(body)
			if err != nil {
				return nil, fmt.Errorf("%q is not a number", body)
			}
			r.from, r.to = a, a
			if hasStep {
				r.to = max
			}
		}
		if r.from < min || r.to > max {
			return nil, fmt.Errorf("%q is out of range %d..%d", part, min, max)
		}
		out = append(out, r)
	}
	return out, nil
}
