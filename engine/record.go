package engine

import (
	"time"

	"github.com/lifeboat-backup/lifeboat/engine/repo"
	"github.com/lifeboat-backup/lifeboat/retention"
)

// TargetResult is one target's backup in a run.
type TargetResult struct {
	Name       string   `json:"name"`
	Kind       string   `json:"kind"`
	Snapshot   string   `json:"snapshot,omitempty"`
	BytesIn    int64    `json:"bytes_in"`
	BytesAdded int64    `json:"bytes_added"`
	Seconds    float64  `json:"duration_seconds"`
	Warnings   []string `json:"warnings,omitempty"`
	Error      string   `json:"error,omitempty"`
}

// ReplicaResult is one secondary's replication in a run.
type ReplicaResult struct {
	Name   string  `json:"name"`
	Copied int     `json:"copied"`
	Bytes  int64   `json:"bytes"`
	Lag    float64 `json:"lag_seconds"` // before the copy
	// LagExceeded: the secondary was further behind than its max_lag
	// before this copy (earlier replications failed or did not run).
	LagExceeded bool   `json:"lag_exceeded,omitempty"`
	Error       string `json:"error,omitempty"`
}

// HookResult is one hook command of a run (policies.Hooks).
type HookResult struct {
	Hook     string  `json:"hook"`             // before, after, on_error
	Target   string  `json:"target,omitempty"` // "": the policy's hooks
	Command  string  `json:"command"`          // redacted
	ExitCode int     `json:"exit_code"`        // -1: did not exit (killed, not started)
	Seconds  float64 `json:"duration_seconds"`
	Output   string  `json:"output,omitempty"` // stdout and stderr, the last 4 KiB, redacted
	Error    string  `json:"error,omitempty"`
}

// RunResult is the record of one `lifeboat run`: what the journal keeps.
type RunResult struct {
	Policy    string         `json:"policy"`
	Host      string         `json:"host"`
	Start     time.Time      `json:"start"`
	End       time.Time      `json:"end"`
	Targets   []TargetResult `json:"targets"`
	Forgotten []string       `json:"forgotten"`
	Pruned    bool           `json:"pruned"`
	// SegmentsRemoved counts log archive segments retention removed.
	SegmentsRemoved int               `json:"segments_removed,omitempty"`
	Prune           *repo.PruneResult `json:"prune,omitempty"`
	Replicas        []ReplicaResult   `json:"replicas,omitempty"`
	Hooks           []HookResult      `json:"hooks,omitempty"`
	Errors          []string          `json:"errors,omitempty"`
	Partial         bool              `json:"partial"` // some source entries were unreadable
	// Snapshots of this policy and host, and the repository's stored
	// bytes (all packs), after the run.
	Snapshots       int                  `json:"snapshots"`
	RepositoryBytes int64                `json:"repository_bytes"`
	LastPruned      *time.Time           `json:"-"`
	Retention       []retention.Decision `json:"-"`
}

// OK reports whether every step succeeded.
func (r *RunResult) OK() bool { return len(r.Errors) == 0 }
