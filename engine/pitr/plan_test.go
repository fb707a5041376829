package pitr

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lifeboat-backup/lifeboat/engine/snapshot"
	"github.com/lifeboat-backup/lifeboat/targets/mysql/binlog"
)

var t0 = time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)

func pos(t *testing.T, s string) binlog.Pos {
	p, err := binlog.ParsePos(s)
	require.NoError(t, err)
	return p
}

func snap(id byte, at int, file string, offset string) *snapshot.Snapshot {
	return &snapshot.Snapshot{ID: snapshot.ID{id}, Target: "db", Kind: "mysql", Time: t0.Add(time.Duration(at) * time.Second),
		RecoveryPoint: snapshot.RecoveryPoint{Time: t0.Add(time.Duration(at) * time.Second),
			Details: map[string]string{"binlog_file": file, "binlog_position": offset}}}
}

func TestChooseAndDescribe(t *testing.T) {
	seg := func(start, end string, first, last int) binlog.Segment {
		s, e := pos(t, start), pos(t, end)
		return binlog.Segment{Name: binlog.SegmentName(s), Start: s, End: e,
			FirstTime: t0.Add(time.Duration(first) * time.Second), LastTime: t0.Add(time.Duration(last) * time.Second)}
	}
	segs := []binlog.Segment{
		seg("b.000001:4", "b.000001:1000", 0, 10),
		seg("b.000001:1000", "b.000002:4", 10, 20),
		seg("b.000002:4", "b.000002:900", 20, 30),
		seg("b.000004:4", "b.000004:700", 60, 70), // b.000003 lost
	}
	segs[3].Gap = "the server purged b.000003 before it was archived"
	s1, s2 := snap(1, 5, "b.000001", "500"), snap(2, 25, "b.000002", "300")
	snaps := []*snapshot.Snapshot{s1, s2}

	pl, err := Choose(snaps, "db", segs, binlog.Point{Time: t0.Add(15 * time.Second)})
	require.NoError(t, err)
	assert.Equal(t, s1, pl.Base, "the newest snapshot before the point")
	assert.Len(t, pl.Chain, 2)

	pl, err = Choose(snaps, "db", segs, binlog.Point{Time: t0.Add(28 * time.Second)})
	require.NoError(t, err)
	assert.Equal(t, s2, pl.Base)

	_, err = Choose(snaps, "db", segs, binlog.Point{Time: t0.Add(50 * time.Second)})
	require.Error(t, err, "inside the gap")
	assert.Contains(t, err.Error(), "purged b.000003")
	assert.Contains(t, err.Error(), "again after the next snapshot")

	_, err = Choose(snaps, "db", segs, binlog.Point{Time: t0.Add(2 * time.Second)})
	assert.ErrorContains(t, err, "no snapshot of target \"db\" with a binlog position lies before")

	st := Describe("db", snaps, segs, t0.Add(80*time.Second))
	assert.True(t, st.GapOpen)
	assert.Nil(t, st.FromSnapshot)
	assert.Equal(t, 10*time.Second, st.Lag)
	assert.Contains(t, st.Window(), "possible again after the next snapshot")

	s3 := snap(3, 62, "b.000004", "100")
	snaps = append(snaps, s3)
	st = Describe("db", snaps, segs, t0.Add(80*time.Second))
	assert.False(t, st.GapOpen)
	assert.Equal(t, s3, st.FromSnapshot)
	assert.Contains(t, st.Window(), "restorable to any second from 2026-12-07T10:01:02Z")
	_, err = Choose(snaps, "db", segs, binlog.Point{Time: t0.Add(50 * time.Second)})
	assert.ErrorContains(t, err, "work again from snapshot 03000000")
	pl, err = Choose(snaps, "db", segs, binlog.Point{Latest: true})
	require.NoError(t, err)
	assert.Equal(t, s3, pl.Base)
}

func TestParsePoint(t *testing.T) {
	berlin, err := time.LoadLocation("Europe/Berlin")
	require.NoError(t, err)
	p, err := ParsePoint("2026-12-07T10:14:59Z", "", "", nil)
	require.NoError(t, err)
	assert.Equal(t, time.Date(2026, 12, 7, 10, 14, 59, 0, time.UTC), p.Time)
	p, err = ParsePoint("2026-12-07 11:14:59", "", "", berlin)
	require.NoError(t, err)
	assert.Equal(t, time.Date(2026, 12, 7, 10, 14, 59, 0, time.UTC), p.Time, "in the policy's time zone")
	p, err = ParsePoint("latest", "", "", nil)
	require.NoError(t, err)
	assert.True(t, p.Latest)
	p, err = ParsePoint("", "0-1-42", "", nil)
	require.NoError(t, err)
	assert.Equal(t, "0-1-42", p.GTID.String())
	p, err = ParsePoint("", "", "binlog.000003:1234", nil)
	require.NoError(t, err)
	assert.Equal(t, "binlog.000003:1234", p.Pos.String())
	for _, bad := range [][3]string{{"", "", ""}, {"latest", "0-1-2", ""}, {"2026-12-07T10:14:59.5Z", "", ""},
		{"yesterday", "", ""}, {"", "0-1", ""}, {"", "", "binlog.000003"}, {"", "", "../x:4"}} {
		_, err := ParsePoint(bad[0], bad[1], bad[2], nil)
		assert.Error(t, err, "%q", bad)
	}
}
