package retention

import (
	"cmp"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
)

// Table writes ds as a calendar-like dry-run table: for each group (in the
// order the groups first appear in ds) a header with the counts, then one
// line per snapshot, newest first, under a heading for each month:
//
//	host=shop-db-1 target=shopdb: 120 snapshots, keep 13, forget 107
//	  November 2026
//	    2026-11-24 Tue 02:30 CET  3f2a1b9c  keep    daily 2026-11-24, ..., newest of group
//	    2026-11-17 Tue 02:30 CET  77a0c9e1  forget
//
// Times are shown in loc (nil: UTC); IDs are shortened to 8 characters.
func Table(w io.Writer, ds []Decision, loc *time.Location) error {
	if loc == nil {
		loc = time.UTC
	}
	var order []string
	groups := map[string][]Decision{}
	for _, d := range ds {
		g := d.Group
		if g == "" {
			g = groupName(d.Snapshot, []string{GroupHost, GroupTarget})
		}
		if _, ok := groups[g]; !ok {
			order = append(order, g)
		}
		groups[g] = append(groups[g], d)
	}
	// Column widths over all rows, so groups line up with each other.
	timeW, idW := 0, 0
	for _, d := range ds {
		timeW = max(timeW, len(d.Snapshot.Time.In(loc).Format(tableTime)))
		idW = max(idW, len(shortID(d.Snapshot.ID)))
	}
	var b strings.Builder
	for gi, g := range order {
		list := slices.Clone(groups[g])
		slices.SortStableFunc(list, func(a, b Decision) int {
			if c := b.Snapshot.Time.Compare(a.Snapshot.Time); c != 0 {
				return c
			}
			return cmp.Compare(a.Snapshot.ID, b.Snapshot.ID)
		})
		keep := 0
		for _, d := range list {
			if d.Keep {
				keep++
			}
		}
		if gi > 0 {
			b.WriteByte('\n')
		}
		fmt.Fprintf(&b, "%s: %d snapshots, keep %d, forget %d\n", g, len(list), keep, len(list)-keep)
		month := ""
		for _, d := range list {
			t := d.Snapshot.Time.In(loc)
			if m := t.Format("January 2006"); m != month {
				month = m
				fmt.Fprintf(&b, "  %s\n", m)
			}
			action := "forget"
			if d.Keep {
				action = "keep"
			}
			line := fmt.Sprintf("    %-*s  %-*s  %-6s  %s", timeW, t.Format(tableTime), idW, shortID(d.Snapshot.ID),
				action, strings.Join(d.Reasons, ", "))
			b.WriteString(strings.TrimRight(line, " "))
			b.WriteByte('\n')
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

const tableTime = "2006-01-02 Mon 15:04 MST"

func shortID(id string) string {
	if len(id) > 8 {
		return id[:8]
	}
	return id
}
