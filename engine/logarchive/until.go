package logarchive

import (
	"fmt"
	"strings"
	"time"
)

// Until is the point a restore --until asks for: the end of the archive
// (latest), a time, or a database-specific position (Raw: an LSN, a
// restore point name, a binlog file:pos), which the caller interprets.
type Until struct {
	Latest bool
	Time   time.Time // zero unless a time was given
	Raw    string    // the argument as given
}

// ParseUntil reads restore's --until: "latest"; an RFC 3339 time
// (2026-12-07T10:14:59Z); or "YYYY-MM-DD HH:MM:SS[.frac]" in loc (the
// policy's time zone). A time given to the second means up to and
// including that second: Time is then its last microsecond. Anything
// else is returned as Raw only.
func ParseUntil(s string, loc *time.Location) Until {
	s = strings.TrimSpace(s)
	u := Until{Raw: s}
	if s == "latest" {
		u.Latest = true
		return u
	}
	if loc == nil {
		loc = time.UTC
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02 15:04:05.999999999", "2006-01-02T15:04:05.999999999"} {
		var t time.Time
		var err error
		if layout == time.RFC3339Nano {
			t, err = time.Parse(layout, s)
		} else {
			t, err = time.ParseInLocation(layout, s, loc)
		}
		if err != nil {
			continue
		}
		if !strings.Contains(s, ".") {
			t = t.Add(time.Second - time.Microsecond)
		}
		u.Time = t
		return u
	}
	return u
}

// String describes the point.
func (u Until) String() string {
	switch {
	case u.Latest:
		return "the end of the archive (latest)"
	case !u.Time.IsZero():
		return u.Time.UTC().Format("2006-01-02 15:04:05.000000 UTC")
	}
	return fmt.Sprintf("%q", u.Raw)
}
