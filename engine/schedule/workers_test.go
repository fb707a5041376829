package schedule

import (
	"runtime"
	"testing"

	"github.com/lifeboat-backup/lifeboat/policies"
	"github.com/lifeboat-backup/lifeboat/targets/postgres/physical"
)

func TestWorkers(t *testing.T) {
	cpus := runtime.GOMAXPROCS(0)
	for _, c := range []struct {
		t    policies.Target
		want int
	}{
		{policies.Target{Kind: policies.KindMySQL, Jobs: 16}, max(cpus, 16)},
		{policies.Target{Kind: policies.KindPostgres, Jobs: 1}, cpus},
		// A split postgres dump: its pre-data and post-data archives are
		// read beside the 16 data ones.
		{policies.Target{Kind: policies.KindPostgres, Jobs: 16}, max(cpus, 18)},
		{policies.Target{Kind: policies.KindPostgres, Method: physical.Method, Jobs: 16}, max(cpus, 16)},
	} {
		if got := Workers(c.t); got != c.want {
			t.Errorf("Workers(%s jobs %d method %q) = %d, want %d", c.t.Kind, c.t.Jobs, c.t.Method, got, c.want)
		}
	}
}
