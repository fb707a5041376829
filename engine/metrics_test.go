package engine

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const goldenFailedRun = `# HELP lifeboat_run_last_timestamp_seconds End of the last run (unix seconds).
# TYPE lifeboat_run_last_timestamp_seconds gauge
lifeboat_run_last_timestamp_seconds{policy="shop"} 1795573890
# HELP lifeboat_run_last_success_timestamp_seconds End of the last run without errors (unix seconds; 0: none recorded).
# TYPE lifeboat_run_last_success_timestamp_seconds gauge
lifeboat_run_last_success_timestamp_seconds{policy="shop"} 1795487490
# HELP lifeboat_run_success 1 when the last run had no errors.
# TYPE lifeboat_run_success gauge
lifeboat_run_success{policy="shop"} 0
# HELP lifeboat_run_partial 1 when the last run could not read some source entries.
# TYPE lifeboat_run_partial gauge
lifeboat_run_partial{policy="shop"} 0
# HELP lifeboat_run_errors Failed steps in the last run.
# TYPE lifeboat_run_errors gauge
lifeboat_run_errors{policy="shop"} 1
# HELP lifeboat_run_duration_seconds Wall time of the last run.
# TYPE lifeboat_run_duration_seconds gauge
lifeboat_run_duration_seconds{policy="shop"} 90
# HELP lifeboat_snapshots_forgotten Snapshots removed by retention in the last run.
# TYPE lifeboat_snapshots_forgotten gauge
lifeboat_snapshots_forgotten{policy="shop"} 0
# HELP lifeboat_snapshots Snapshots of the policy (its host) in the repository after the last run.
# TYPE lifeboat_snapshots gauge
lifeboat_snapshots{policy="shop"} 0
# HELP lifeboat_repository_bytes Stored bytes of all packs of the repository after the last run.
# TYPE lifeboat_repository_bytes gauge
lifeboat_repository_bytes{policy="shop"} 0
# HELP lifeboat_backup_success 1 when the target's backup in the last run succeeded.
# TYPE lifeboat_backup_success gauge
lifeboat_backup_success{policy="shop",target="media"} 1
lifeboat_backup_success{policy="shop",target="shopdb"} 0
# HELP lifeboat_backup_bytes_in Bytes read from the target in the last run.
# TYPE lifeboat_backup_bytes_in gauge
lifeboat_backup_bytes_in{policy="shop",target="media"} 1000
lifeboat_backup_bytes_in{policy="shop",target="shopdb"} 0
# HELP lifeboat_backup_bytes_added Bytes added to the repository (after dedup and compression) in the last run.
# TYPE lifeboat_backup_bytes_added gauge
lifeboat_backup_bytes_added{policy="shop",target="media"} 100
lifeboat_backup_bytes_added{policy="shop",target="shopdb"} 0
# HELP lifeboat_backup_duration_seconds Wall time of the target's backup in the last run.
# TYPE lifeboat_backup_duration_seconds gauge
lifeboat_backup_duration_seconds{policy="shop",target="media"} 12
lifeboat_backup_duration_seconds{policy="shop",target="shopdb"} 0.25
# HELP lifeboat_backup_unreadable_entries Source entries that could not be read in the last run.
# TYPE lifeboat_backup_unreadable_entries gauge
lifeboat_backup_unreadable_entries{policy="shop",target="media"} 0
lifeboat_backup_unreadable_entries{policy="shop",target="shopdb"} 0
# HELP lifeboat_backup_last_snapshot_timestamp_seconds Start of the last run that saved a snapshot of the target (unix seconds; 0: none recorded).
# TYPE lifeboat_backup_last_snapshot_timestamp_seconds gauge
lifeboat_backup_last_snapshot_timestamp_seconds{policy="shop",target="media"} 1795573800
lifeboat_backup_last_snapshot_timestamp_seconds{policy="shop",target="shopdb"} 1795487400
# HELP lifeboat_replication_success 1 when the last replication to the secondary succeeded.
# TYPE lifeboat_replication_success gauge
lifeboat_replication_success{policy="shop",secondary="dr"} 1
# HELP lifeboat_replication_lag_seconds Age of the newest snapshot missing in the secondary, measured before the last run's copy (0 after a successful copy means in sync).
# TYPE lifeboat_replication_lag_seconds gauge
lifeboat_replication_lag_seconds{policy="shop",secondary="dr"} 7200
# HELP lifeboat_replication_lag_exceeded 1 when the lag exceeded the secondary's max_lag.
# TYPE lifeboat_replication_lag_exceeded gauge
lifeboat_replication_lag_exceeded{policy="shop",secondary="dr"} 1
# HELP lifeboat_replication_bytes Bytes copied to the secondary in the last run.
# TYPE lifeboat_replication_bytes gauge
lifeboat_replication_bytes{policy="shop",secondary="dr"} 0
`

func TestRunMetricsGolden(t *testing.T) {
	prev := *sampleRun(true, false, false)
	prev.Start = prev.Start.AddDate(0, 0, -1)
	prev.End = prev.End.AddDate(0, 0, -1)
	prev.Targets = append(prev.Targets, TargetResult{Name: "shopdb", Kind: "mysql", Snapshot: "feedbeef", BytesIn: 5})
	cur := *sampleRun(false, false, true)
	cur.Targets[1].Seconds = 0.25

	tests := []struct {
		name string
		runs []RunResult
		want string
	}{
		{"failed run after a good one", []RunResult{prev, cur}, goldenFailedRun},
		{"first run, no replicas, odd name", []RunResult{{Policy: `a"b\c`, Start: time.Unix(100, 0), End: time.Unix(101, 500e6)}},
			`# HELP lifeboat_run_last_timestamp_seconds End of the last run (unix seconds).
# TYPE lifeboat_run_last_timestamp_seconds gauge
lifeboat_run_last_timestamp_seconds{policy="a\"b\\c"} 101.5
# HELP lifeboat_run_last_success_timestamp_seconds End of the last run without errors (unix seconds; 0: none recorded).
# TYPE lifeboat_run_last_success_timestamp_seconds gauge
lifeboat_run_last_success_timestamp_seconds{policy="a\"b\\c"} 101.5
# HELP lifeboat_run_success 1 when the last run had no errors.
# TYPE lifeboat_run_success gauge
lifeboat_run_success{policy="a\"b\\c"} 1
# HELP lifeboat_run_partial 1 when the last run could not read some source entries.
# TYPE lifeboat_run_partial gauge
lifeboat_run_partial{policy="a\"b\\c"} 0
# HELP lifeboat_run_errors Failed steps in the last run.
# TYPE lifeboat_run_errors gauge
lifeboat_run_errors{policy="a\"b\\c"} 0
# HELP lifeboat_run_duration_seconds Wall time of the last run.
# TYPE lifeboat_run_duration_seconds gauge
lifeboat_run_duration_seconds{policy="a\"b\\c"} 1.5
# HELP lifeboat_snapshots_forgotten Snapshots removed by retention in the last run.
# TYPE lifeboat_snapshots_forgotten gauge
lifeboat_snapshots_forgotten{policy="a\"b\\c"} 0
# HELP lifeboat_snapshots Snapshots of the policy (its host) in the repository after the last run.
# TYPE lifeboat_snapshots gauge
lifeboat_snapshots{policy="a\"b\\c"} 0
# HELP lifeboat_repository_bytes Stored bytes of all packs of the repository after the last run.
# TYPE lifeboat_repository_bytes gauge
lifeboat_repository_bytes{policy="a\"b\\c"} 0
`},
		{"no runs", nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, string(RunMetrics(tt.runs)))
		})
	}
}

func TestWriteRunMetricsAtomic(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "sub", "lifeboat.prom")
	small := []RunResult{*sampleRun(true, false, false)}
	big := []RunResult{*sampleRun(false, true, true)}
	for i := 0; i < 200; i++ {
		big[0].Targets = append(big[0].Targets, TargetResult{Name: strings.Repeat("t", 50) + string(rune('a'+i%26)) + time.Duration(i).String()})
	}
	want := map[string]bool{string(RunMetrics(small)): true, string(RunMetrics(big)): true}
	require.NoError(t, WriteRunMetrics(path, small))
	st, err := os.Stat(path)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o644), st.Mode().Perm())

	stop := make(chan struct{})
	var wg sync.WaitGroup
	var bad []string
	var reads int
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			data, err := os.ReadFile(path)
			if errors.Is(err, fs.ErrNotExist) {
				bad = append(bad, "file missing")
				continue
			}
			reads++
			if !want[string(data)] {
				bad = append(bad, "partial content")
			}
		}
	}()
	for i := 0; i < 100; i++ {
		runs := small
		if i%2 == 0 {
			runs = big
		}
		require.NoError(t, WriteRunMetrics(path, runs))
	}
	close(stop)
	wg.Wait()
	assert.Empty(t, bad)
	assert.Positive(t, reads)
	left, err := filepath.Glob(filepath.Join(dir, "sub", "*"))
	require.NoError(t, err)
	assert.Equal(t, []string{path}, left, "no temporary files left behind")
}

func TestPoliciesMetricsMergesFamilies(t *testing.T) {
	a := RunResult{Policy: "a", Start: time.Unix(100, 0), End: time.Unix(110, 0)}
	b := RunResult{Policy: "b", Start: time.Unix(200, 0), End: time.Unix(230, 0), Errors: []string{"x"}}
	out := string(PoliciesMetrics([]RunResult{a}, nil, []RunResult{b}))
	assert.Equal(t, 1, strings.Count(out, "# TYPE lifeboat_run_success gauge\n"))
	assert.Contains(t, out, "# TYPE lifeboat_run_success gauge\nlifeboat_run_success{policy=\"a\"} 1\nlifeboat_run_success{policy=\"b\"} 0\n")
	assert.Contains(t, out, "lifeboat_run_last_success_timestamp_seconds{policy=\"b\"} 0\n")
	assert.Contains(t, out, "lifeboat_run_duration_seconds{policy=\"b\"} 30\n")
}
