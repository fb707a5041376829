package schedule

import (
	"fmt"
	"path/filepath"
	"time"

	"github.com/lifeboat-backup/lifeboat/engine"
	"github.com/lifeboat-backup/lifeboat/internal/jsonl"
)

// Journal is the local record of policy runs: one JSON line per run in
// DIR/POLICY.jsonl, appended, never rewritten. It holds no secret: results
// carry snapshot IDs, sizes, durations and error texts (DSNs redacted).
type Journal struct{ Dir string }

func (j Journal) path(policy string) string { return filepath.Join(j.Dir, policy+".jsonl") }

// Append records a run.
func (j Journal) Append(res *engine.RunResult) error {
	if err := jsonl.Append(j.path(res.Policy), res); err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	return nil
}

// Runs returns the recorded runs of a policy, oldest first. A damaged line
// (a crash mid-write) is skipped, not fatal.
func (j Journal) Runs(policy string) ([]engine.RunResult, error) {
	runs, err := jsonl.Read[engine.RunResult](j.path(policy), nil)
	if err != nil {
		return nil, fmt.Errorf("journal: %w", err)
	}
	return runs, nil
}

// LastPrune returns when the policy last pruned (zero: never).
func (j Journal) LastPrune(policy string) (time.Time, error) {
	runs, err := j.Runs(policy)
	if err != nil {
		return time.Time{}, err
	}
	for i := len(runs) - 1; i >= 0; i-- {
		if runs[i].Pruned {
			return runs[i].End, nil
		}
	}
	return time.Time{}, nil
}
