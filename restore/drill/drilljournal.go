package drill

import (
	"strings"

	"github.com/lifeboat-backup/lifeboat/engine/notify"
	"github.com/lifeboat-backup/lifeboat/internal/atomicfile"
	"github.com/lifeboat-backup/lifeboat/internal/jsonl"
)

// Journal records drills next to the runs (schedule.Journal): one JSON
// line (a Report) per drill in DIR/POLICY.drills.jsonl.
func Journal(dir string) jsonl.Journal[Report] {
	return jsonl.Journal[Report]{Dir: dir, Suffix: ".drills.jsonl", Keep: func(r *Report) bool { return r.Schema > 0 }}
}

// MetricsFile is where drill metrics go for a policy's metrics
// textfile: a sibling NAME-drill.prom, so that the run's own file is not
// rewritten (node-exporter reads every *.prom of the directory).
func MetricsFile(textfile string) string {
	return strings.TrimSuffix(textfile, ".prom") + "-drill.prom"
}

// WriteMetrics writes lifeboat_drill_* gauges of rep to path,
// atomically (temporary file and rename).
func WriteMetrics(path string, rep *Report) error {
	m := &notify.Metrics{}
	AddMetrics(m, rep)
	return atomicfile.WriteFile(path, m.Bytes(), 0o644)
}

// AddMetrics adds the lifeboat_drill_* gauges of rep to m (the textfile
// and lifeboat serve's /metrics).
func AddMetrics(m *notify.Metrics, rep *Report) {
	pol := [][2]string{{"policy", rep.Policy}}
	g := func(name, help string, v float64) {
		m.Gauge(name, help)
		m.Sample(pol, v)
	}
	g("lifeboat_drill_last_timestamp_seconds", "Start of the last drill (unix seconds).", notify.Unix(rep.Start))
	g("lifeboat_drill_success", "1 when the last drill passed (checks ok, objectives met).", notify.Bool(rep.Status == Passed))
	g("lifeboat_drill_checks_ok", "1 when all checks of the last drill passed.", notify.Bool(rep.Status == Passed || rep.Status == ObjectiveViolated))
	g("lifeboat_drill_rto_seconds", "Measured RTO of the last drill.", rep.RTO.Seconds)
	g("lifeboat_drill_rpo_seconds", "Measured RPO of the last drill.", rep.RPO.Seconds)
	g("lifeboat_drill_rto_objective_seconds", "RTO objective (0: none).", rep.RTO.Objective)
	g("lifeboat_drill_rpo_objective_seconds", "RPO objective (0: none).", rep.RPO.Objective)
	g("lifeboat_drill_duration_seconds", "Wall time of the last drill, teardown included.", rep.End.Sub(rep.Start).Seconds())
}
