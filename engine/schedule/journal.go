package schedule

import (
	"time"

	"github.com/lifeboat-backup/lifeboat/engine"
	"github.com/lifeboat-backup/lifeboat/internal/jsonl"
)

// Journal is the local record of policy runs in dir: one JSON line per run
// in DIR/POLICY.jsonl. Results carry snapshot IDs, sizes, durations and
// error texts (DSNs redacted), no secret.
func Journal(dir string) jsonl.Journal[engine.RunResult] {
	return jsonl.Journal[engine.RunResult]{Dir: dir, Suffix: ".jsonl"}
}

// LastPrune returns when the policy last pruned according to runs (zero:
// never).
func LastPrune(runs []engine.RunResult) time.Time {
	for i := len(runs) - 1; i >= 0; i-- {
		if runs[i].Pruned {
			return runs[i].End
		}
	}
	return time.Time{}
}
