//go:build tools

// Package tools pins the restic binary used by engine/restic and the
// benchmarks (scripts/deps builds it with
// `go build github.com/restic/restic/cmd/restic`).
package tools

import _ "github.com/restic/restic/cmd/restic"
