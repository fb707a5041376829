package retention

import (
	"encoding/binary"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// FuzzApply: whatever the snapshots and rules, Apply does not panic, decides
// every snapshot once, keeps exactly the snapshots it gives reasons for, and
// keeps the newest snapshot of every group.
func FuzzApply(f *testing.F) {
	f.Add([]byte("\x00\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f"), int8(7), int8(4), int8(3), int8(0), uint8(1), uint8(0x10), uint16(48))
	f.Add([]byte{}, int8(-1), int8(-1), int8(-2), int8(5), uint8(3), uint8(0xff), uint16(0))
	f.Add([]byte("\xff\xff\xff\xff\xff\xff\xff\xff\x00\x00\x00\x00\x00\x00\x00\x00\x80"), int8(0), int8(0), int8(0), int8(0), uint8(0), uint8(0), uint16(1))
	zones := []*time.Location{time.UTC, mustLoad(f, "Europe/Berlin"), mustLoad(f, "Asia/Kolkata"), mustLoad(f, "America/St_Johns"), mustLoad(f, "Australia/Lord_Howe")}
	f.Fuzz(func(t *testing.T, data []byte, daily, weekly, monthly, last int8, flags uint8, misc uint8, withinH uint16) {
		var snaps []Snapshot
		for i := 0; len(data) >= 5; i++ {
			// 4 bytes of seconds around 2026 (spread over ~136 years), one byte
			// for host/target/tags.
			sec := int64(int32(binary.LittleEndian.Uint32(data))) * 3
			b := data[4]
			data = data[5:]
			var tags []string
			if b&4 != 0 {
				tags = append(tags, "nightly")
			}
			if b&8 != 0 {
				tags = append(tags, "manual")
			}
			snaps = append(snaps, Snapshot{
				ID:     fmt.Sprintf("%02x%04d", b, i%3),
				Time:   time.Unix(1780000000+sec, 0),
				Host:   fmt.Sprint("h", b&1),
				Target: fmt.Sprint("t", b>>1&1),
				Tags:   tags,
			})
		}
		r := Rules{
			KeepDaily: int(daily), KeepWeekly: int(weekly), KeepMonthly: int(monthly), KeepLast: int(last),
			Location:   zones[int(misc)%len(zones)],
			WeekStart:  time.Weekday(int(misc>>3) % 8), // 7 is invalid
			PeriodPick: Pick(flags & 1),
		}
		if flags&2 != 0 {
			r.KeepHourly = int(daily)
		}
		if flags&4 != 0 {
			r.KeepYearly = int(weekly)
		}
		if flags&8 != 0 {
			r.KeepWithin = time.Duration(withinH) * time.Hour
		}
		if flags&16 != 0 {
			r.KeepWithinDaily = time.Duration(withinH) * time.Minute
			r.KeepWithinWeekly = time.Duration(int16(withinH)) * time.Hour
		}
		if flags&32 != 0 {
			r.KeepTags = []string{"nightly,manual"}
		}
		switch flags >> 6 {
		case 1:
			r.GroupBy = []string{GroupHost}
		case 2:
			r.GroupBy = []string{GroupTarget, GroupTags}
		case 3:
			r.GroupBy = []string{"bogus"}
		}

		ds := Apply(snaps, r)
		require.Len(t, ds, len(snaps))
		newest := map[string]time.Time{}
		count := map[string]int{}
		for _, d := range ds {
			require.Equal(t, d.Keep, len(d.Reasons) > 0)
			if n, ok := newest[d.Group]; !ok || d.Snapshot.Time.After(n) {
				newest[d.Group] = d.Snapshot.Time
			}
			count[d.Snapshot.ID+d.Snapshot.Time.String()]++
		}
		for _, sn := range snaps {
			count[sn.ID+sn.Time.String()]--
		}
		for k, c := range count {
			require.Zero(t, c, k)
		}
		seen := map[string]bool{}
		for _, d := range ds {
			if !seen[d.Group] {
				seen[d.Group] = true
				require.True(t, d.Keep, "first of group %s", d.Group)
				require.True(t, d.Snapshot.Time.Equal(newest[d.Group]), "first decision of a group is its newest")
			}
		}
		require.NoError(t, Table(discard{}, ds, r.Location))
	})
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
