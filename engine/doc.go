// Package engine runs backups: it drives a target's entries through the
// chunker into the repository and writes the snapshot. Policies, retention
// runs, replication and scheduling build on it.
package engine
