package policies

import (
	"fmt"
	"testing"
	"time"
)

func FuzzParseCalendar(f *testing.F) {
	for _, s := range []string{"*-*-* 02:30:00", "Sun *-*-* 05:00:00", "daily", "weekly", "Mon..Fri 02:00", "Sat,Sun 03:00",
		"*-*-01 04:00", "2027-01-01", "*:0/15", "*-*-* 00,12:30", "*-*-* 02:30:00 Europe/Berlin", "quarterly",
		"*-02-30", "2020-01-01 00:00", "*-*-* 1..3/2:5,7:0/59", "*-*-* 02:30:00.5", "Mon..Fry", "*:*/0"} {
		f.Add(s)
	}
	from := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, s string) {
		hang := time.AfterFunc(5*time.Second, func() { panic(fmt.Sprintf("calendar %q: no answer in 5s", s)) })
		defer hang.Stop()
		c, err := ParseCalendar(s)
		if err != nil {
			return
		}
		if c.String() != s {
			t.Fatalf("String() = %q, want %q", c.String(), s)
		}
		n := c.Next(from)
		if !n.IsZero() && !n.After(from) {
			t.Fatalf("%q: Next(%v) = %v, not after", s, from, n)
		}
		if !n.IsZero() {
			if n2 := c.Next(n.Add(-time.Second)); !n2.Equal(n) {
				t.Fatalf("%q: Next is not stable: %v then %v", s, n, n2)
			}
		}
	})
}

func FuzzParseDuration(f *testing.F) {
	for _, s := range []string{"0", "15m", "26h", "7d", "2w", "1w2d", "1h30m", "1.5h", "90s", "250ms", "1µs", "3ns",
		"9223372036854775807ns", "9223372036854775808ns", "106751d23h47m16.854775807s", "15251w", "1.", ".5h", "-1h", "1h "} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseDuration(s)
		if err != nil {
			return
		}
		if d < 0 {
			t.Fatalf("%q parsed as negative %v", s, d)
		}
		// What parses prints in a form that parses back to the same value.
		back, err := ParseDuration(Duration(d).String())
		if err != nil || back != d {
			t.Fatalf("%q = %v prints as %q, which parses as %v, %v", s, int64(d), Duration(d).String(), int64(back), err)
		}
	})
}
