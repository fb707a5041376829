// Package retention decides which snapshots a retention policy keeps: a pure,
// deterministic grandfather-father-son selection (no I/O, no clock).
package retention
