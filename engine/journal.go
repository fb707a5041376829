package engine

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// Journal is the local record of policy runs: one JSON line per run in
// DIR/POLICY.jsonl, appended, never rewritten. It holds no secret: results
// carry snapshot IDs, sizes, durations and error texts (DSNs redacted).
type Journal struct{ Dir string }

func (j Journal) path(policy string) string { return filepath.Join(j.Dir, policy+".jsonl") }

// Append records a run.
func (j Journal) Append(res *RunResult) error {
	if err := os.MkdirAll(j.Dir, 0o700); err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	line, err := json.Marshal(res)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(j.path(res.Policy), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	if _, err := f.Write(append(line, '\n')); err != nil {
		f.Close()
		return fmt.Errorf("journal: %w", err)
	}
	return f.Close()
}

// Runs returns the recorded runs of a policy, oldest first. A damaged line
// (a crash mid-write) is skipped, not fatal.
func (j Journal) Runs(policy string) ([]RunResult, error) {
	f, err := os.Open(j.path(policy))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("journal: %w", err)
	}
	defer f.Close()
	var runs []RunResult
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), 16<<20)
	for sc.Scan() {
		var r RunResult
		if json.Unmarshal(sc.Bytes(), &r) == nil {
			runs = append(runs, r)
		}
	}
	return runs, sc.Err()
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
