package notify

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

	"github.com/lifeboat-backup/lifeboat/engine"
)

func TestRunMetricsGolden(t *testing.T) {
	prev := *sampleRun(true, false, false)
	prev.Start = prev.Start.AddDate(0, 0, -1)
	prev.End = prev.End.AddDate(0, 0, -1)
	prev.Targets = append(prev.Targets, engine.TargetResult{Name: "shopdb", Kind: "mysql", Snapshot: "feedbeef", BytesIn: 5})
	cur := *sampleRun(false, false, true)
	cur.Targets[1].Seconds = 0.25

	tests := []struct {
		name   string
		runs   []engine.RunResult
		golden string // under testdata/; "" for no output
	}{
		{"failed run after a good one", []engine.RunResult{prev, cur}, "metrics-failed-run.prom"},
		{"first run, no replicas, odd name", []engine.RunResult{{Policy: `a"b\c`, Start: time.Unix(100, 0), End: time.Unix(101, 500e6)}}, "metrics-first-run.prom"},
		{"no runs", nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := ""
			if tt.golden != "" {
				b, err := os.ReadFile(filepath.Join("testdata", tt.golden))
				require.NoError(t, err)
				want = string(b)
			}
			assert.Equal(t, want, string(RunMetrics(tt.runs)))
		})
	}
}

func TestWriteRunMetricsAtomic(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "sub", "lifeboat.prom")
	small := []engine.RunResult{*sampleRun(true, false, false)}
	big := []engine.RunResult{*sampleRun(false, true, true)}
	for i := 0; i < 200; i++ {
		big[0].Targets = append(big[0].Targets, engine.TargetResult{Name: strings.Repeat("t", 50) + string(rune('a'+i%26)) + time.Duration(i).String()})
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
	a := engine.RunResult{Policy: "a", Start: time.Unix(100, 0), End: time.Unix(110, 0)}
	b := engine.RunResult{Policy: "b", Start: time.Unix(200, 0), End: time.Unix(230, 0), Errors: []string{"x"}}
	out := string(PoliciesMetrics([]engine.RunResult{a}, nil, []engine.RunResult{b}))
	assert.Equal(t, 1, strings.Count(out, "# TYPE lifeboat_run_success gauge\n"))
	assert.Contains(t, out, "# TYPE lifeboat_run_success gauge\nlifeboat_run_success{policy=\"a\"} 1\nlifeboat_run_success{policy=\"b\"} 0\n")
	assert.Contains(t, out, "lifeboat_run_last_success_timestamp_seconds{policy=\"b\"} 0\n")
	assert.Contains(t, out, "lifeboat_run_duration_seconds{policy=\"b\"} 30\n")
}
