package notify

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/lifeboat-backup/lifeboat/engine"
	"github.com/lifeboat-backup/lifeboat/internal/atomicfile"
)

// RunMetrics renders the Prometheus text exposition of a policy's runs
// (oldest first, the last one is the run just finished; at least one):
// the gauges node-exporter's textfile collector picks up. Values that
// need history (last success, last snapshot of a target that failed this
// time) come from the earlier runs.
func RunMetrics(runs []engine.RunResult) []byte { return PoliciesMetrics(runs) }

// PoliciesMetrics renders the metrics of several policies (each the runs
// of one policy, as for RunMetrics) as one exposition: each metric family
// once, with a sample per policy.
func PoliciesMetrics(histories ...[]engine.RunResult) []byte {
	m := &Metrics{}
	for _, runs := range histories {
		if len(runs) > 0 {
			runMetrics(m, runs)
		}
	}
	return m.Bytes()
}

func runMetrics(m *Metrics, runs []engine.RunResult) {
	last := runs[len(runs)-1]
	pol := [][2]string{{"policy", last.Policy}}

	var lastSuccess time.Time
	for i := len(runs) - 1; i >= 0; i-- {
		if runs[i].Policy == last.Policy && runs[i].OK() {
			lastSuccess = runs[i].End
			break
		}
	}
	m.Gauge("lifeboat_run_last_timestamp_seconds", "End of the last run (unix seconds).")
	m.Sample(pol, Unix(last.End))
	m.Gauge("lifeboat_run_last_success_timestamp_seconds", "End of the last run without errors (unix seconds; 0: none recorded).")
	m.Sample(pol, Unix(lastSuccess))
	m.Gauge("lifeboat_run_success", "1 when the last run had no errors.")
	m.Sample(pol, Bool(last.OK()))
	m.Gauge("lifeboat_run_partial", "1 when the last run could not read some source entries.")
	m.Sample(pol, Bool(last.Partial))
	m.Gauge("lifeboat_run_errors", "Failed steps in the last run.")
	m.Sample(pol, float64(len(last.Errors)))
	m.Gauge("lifeboat_run_duration_seconds", "Wall time of the last run.")
	m.Sample(pol, last.End.Sub(last.Start).Seconds())
	m.Gauge("lifeboat_snapshots_forgotten", "Snapshots removed by retention in the last run.")
	m.Sample(pol, float64(len(last.Forgotten)))
	m.Gauge("lifeboat_snapshots", "Snapshots of the policy (its host) in the repository after the last run.")
	m.Sample(pol, float64(last.Snapshots))
	m.Gauge("lifeboat_repository_bytes", "Stored bytes of all packs of the repository after the last run.")
	m.Sample(pol, float64(last.RepositoryBytes))

	// Per target: this run's numbers, the last snapshot from history.
	lastSnap := map[string]time.Time{}
	for _, r := range runs {
		for _, t := range r.Targets {
			if t.Error == "" && t.Snapshot != "" {
				lastSnap[t.Name] = r.Start
			}
		}
	}
	tl := func(t engine.TargetResult) [][2]string {
		return [][2]string{{"policy", last.Policy}, {"target", t.Name}}
	}
	perTarget := []struct {
		name, help string
		v          func(engine.TargetResult) float64
	}{
		{"lifeboat_backup_success", "1 when the target's backup in the last run succeeded.", func(t engine.TargetResult) float64 { return Bool(t.Error == "") }},
		{"lifeboat_backup_bytes_in", "Bytes read from the target in the last run.", func(t engine.TargetResult) float64 { return float64(t.BytesIn) }},
		{"lifeboat_backup_bytes_added", "Bytes added to the repository (after dedup and compression) in the last run.", func(t engine.TargetResult) float64 { return float64(t.BytesAdded) }},
		{"lifeboat_backup_duration_seconds", "Wall time of the target's backup in the last run.", func(t engine.TargetResult) float64 { return t.Seconds }},
		{"lifeboat_backup_unreadable_entries", "Source entries that could not be read in the last run.", func(t engine.TargetResult) float64 { return float64(len(t.Warnings)) }},
		{"lifeboat_backup_last_snapshot_timestamp_seconds", "Start of the last run that saved a snapshot of the target (unix seconds; 0: none recorded).",
			func(t engine.TargetResult) float64 { return Unix(lastSnap[t.Name]) }},
	}
	if len(last.Targets) > 0 {
		for _, g := range perTarget {
			m.Gauge(g.name, g.help)
			for _, t := range last.Targets {
				m.Sample(tl(t), g.v(t))
			}
		}
	}
	if len(last.Replicas) > 0 {
		sl := func(r engine.ReplicaResult) [][2]string {
			return [][2]string{{"policy", last.Policy}, {"secondary", r.Name}}
		}
		m.Gauge("lifeboat_replication_success", "1 when the last replication to the secondary succeeded.")
		for _, r := range last.Replicas {
			m.Sample(sl(r), Bool(r.Error == ""))
		}
		m.Gauge("lifeboat_replication_lag_seconds", "Age of the newest snapshot missing in the secondary, measured before the last run's copy (0 after a successful copy means in sync).")
		for _, r := range last.Replicas {
			m.Sample(sl(r), r.Lag)
		}
		m.Gauge("lifeboat_replication_lag_exceeded", "1 when the lag exceeded the secondary's max_lag.")
		for _, r := range last.Replicas {
			m.Sample(sl(r), Bool(r.LagExceeded))
		}
		m.Gauge("lifeboat_replication_bytes", "Bytes copied to the secondary in the last run.")
		for _, r := range last.Replicas {
			m.Sample(sl(r), float64(r.Bytes))
		}
	}
}

// WriteRunMetrics writes RunMetrics(runs) to path atomically: a reader
// (node-exporter) sees the old file or the new one, never a part.
func WriteRunMetrics(path string, runs []engine.RunResult) error {
	if err := atomicfile.WriteFile(path, RunMetrics(runs), 0o644); err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	return nil
}

// Metrics builds a Prometheus text exposition of gauges (the textfile
// node-exporter reads, and /metrics): families in first-seen order; a
// family started again (another policy) gets its samples appended. It is
// the one writer of lifeboat's run and drill metrics.
type Metrics struct {
	families []*promFamily
	cur      *promFamily
}

type promFamily struct {
	name, help string
	b          strings.Builder
}

// Gauge starts (or continues) a metric family.
func (w *Metrics) Gauge(name, help string) {
	for _, f := range w.families {
		if f.name == name {
			w.cur = f
			return
		}
	}
	w.cur = &promFamily{name: name, help: help}
	w.families = append(w.families, w.cur)
}

// Bytes is the exposition; nil when no family was started.
func (w *Metrics) Bytes() []byte {
	var b strings.Builder
	for _, f := range w.families {
		fmt.Fprintf(&b, "# HELP %s %s\n# TYPE %s gauge\n", f.name, f.help, f.name)
		b.WriteString(f.b.String())
	}
	if b.Len() == 0 {
		return nil
	}
	return []byte(b.String())
}

// Sample adds a sample with labels (name, value pairs) to the current
// family.
func (w *Metrics) Sample(labels [][2]string, v float64) {
	w.cur.b.WriteString(w.cur.name)
	if len(labels) > 0 {
		w.cur.b.WriteByte('{')
		for i, l := range labels {
			if i > 0 {
				w.cur.b.WriteByte(',')
			}
			w.cur.b.WriteString(l[0])
			w.cur.b.WriteString(`="`)
			w.cur.b.WriteString(promEscape.Replace(l[1]))
			w.cur.b.WriteByte('"')
		}
		w.cur.b.WriteByte('}')
	}
	w.cur.b.WriteByte(' ')
	if v == math.Trunc(v) && math.Abs(v) < 1e15 {
		w.cur.b.WriteString(strconv.FormatInt(int64(v), 10))
	} else {
		w.cur.b.WriteString(strconv.FormatFloat(v, 'f', -1, 64))
	}
	w.cur.b.WriteByte('\n')
}

var promEscape = strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)

// Unix is t in unix seconds, 0 for the zero time.
func Unix(t time.Time) float64 {
	if t.IsZero() {
		return 0
	}
	return float64(t.UnixNano()) / 1e9
}

// Bool is 1 for true, 0 for false.
func Bool(ok bool) float64 {
	if ok {
		return 1
	}
	return 0
}
