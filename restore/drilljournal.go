package restore

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/lifeboat-backup/lifeboat/internal/atomicfile"
	"github.com/lifeboat-backup/lifeboat/internal/jsonl"
)

// DrillJournal records drills next to engine.Journal's runs: one JSON
// line (a DrillReport) per drill in DIR/POLICY.drills.jsonl, appended,
// never rewritten. Reports hold no secret.
type DrillJournal struct{ Dir string }

func (j DrillJournal) path(policy string) string {
	return filepath.Join(j.Dir, policy+".drills.jsonl")
}

// Append records a drill.
func (j DrillJournal) Append(rep *DrillReport) error {
	if err := jsonl.Append(j.path(rep.Policy), rep); err != nil {
		return fmt.Errorf("drill journal: %w", err)
	}
	return nil
}

// Reports returns the recorded drills of a policy, oldest first; damaged
// lines are skipped.
func (j DrillJournal) Reports(policy string) ([]DrillReport, error) {
	out, err := jsonl.Read(j.path(policy), func(r *DrillReport) bool { return r.Schema > 0 })
	if err != nil {
		return nil, fmt.Errorf("drill journal: %w", err)
	}
	return out, nil
}

// DrillMetricsFile is where drill metrics go for a policy's metrics
// textfile: a sibling NAME-drill.prom, so that the run's own file is not
// rewritten (node-exporter reads every *.prom of the directory).
func DrillMetricsFile(textfile string) string {
	return strings.TrimSuffix(textfile, ".prom") + "-drill.prom"
}

// WriteDrillMetrics writes lifeboat_drill_* gauges of rep to path,
// atomically (temporary file and rename).
func WriteDrillMetrics(path string, rep *DrillReport) error {
	var b strings.Builder
	pol := promLabel(rep.Policy)
	g := func(name, help string, v float64, labels string) {
		fmt.Fprintf(&b, "# HELP %s %s\n# TYPE %s gauge\n%s{policy=%s%s} %g\n", name, help, name, name, pol, labels, v)
	}
	b01 := func(ok bool) float64 {
		if ok {
			return 1
		}
		return 0
	}
	g("lifeboat_drill_last_timestamp_seconds", "Start of the last drill (unix seconds).", float64(rep.Start.Unix()), "")
	g("lifeboat_drill_success", "1 when the last drill passed (checks ok, objectives met).", b01(rep.Status == DrillPassed), "")
	g("lifeboat_drill_checks_ok", "1 when all checks of the last drill passed.", b01(rep.Status == DrillPassed || rep.Status == DrillObjectiveViolated), "")
	g("lifeboat_drill_rto_seconds", "Measured RTO of the last drill.", rep.RTO.Seconds, "")
	g("lifeboat_drill_rpo_seconds", "Measured RPO of the last drill.", rep.RPO.Seconds, "")
	g("lifeboat_drill_rto_objective_seconds", "RTO objective (0: none).", rep.RTO.Objective, "")
	g("lifeboat_drill_rpo_objective_seconds", "RPO objective (0: none).", rep.RPO.Objective, "")
	g("lifeboat_drill_duration_seconds", "Wall time of the last drill, teardown included.", rep.End.Sub(rep.Start).Seconds(), "")
	return atomicfile.WriteFile(path, []byte(b.String()), 0o644)
}

func promLabel(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`).Replace(s) + `"`
}
