package restore

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/lifeboat-backup/lifeboat/engine/repo"
	"github.com/lifeboat-backup/lifeboat/engine/snapshot"
)

type sequentialSnapshot struct {
	snapshot.Reader
	seq bool
}

func (s sequentialSnapshot) Sequential() bool { return s.seq }

func TestJobs(t *testing.T) {
	for _, tc := range []struct {
		name string
		s    snapshot.Reader
		want int
		got  int
	}{
		{"native keeps the request", (&repo.Repository{}).SnapshotReader(nil), 4, 4},
		{"sequential reads one at a time", sequentialSnapshot{seq: true}, 4, 1},
		{"not sequential after all", sequentialSnapshot{seq: false}, 3, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.got, jobs(tc.s, tc.want))
		})
	}
}
