package drill

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/lifeboat-backup/lifeboat/policies"
)

// drill.pitr picks a point between the base and the archive's end; without
// it, or without archived WAL after the base, the end of the archive.
func TestPickPoint(t *testing.T) {
	base := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	d := &drill{p: &policies.Policy{Drill: policies.Drill{PITR: true}}, o: Options{Rand: func() float64 { return 0.25 }}}
	u := d.pickPoint(base, base.Add(4*time.Minute), true)
	require.False(t, u.Latest)
	require.Equal(t, base.Add(time.Minute), u.Time)
	require.Equal(t, "2026-12-07T10:01:00Z", u.Raw)
	require.True(t, d.pickPoint(base, base.Add(-time.Second), true).Latest, "archive ends before the base")
	require.True(t, d.pickPoint(base, time.Time{}, false).Latest, "no archive")
	d.p.Drill.PITR = false
	require.True(t, d.pickPoint(base, base.Add(4*time.Minute), true).Latest)
}
