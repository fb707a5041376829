// Package pitr joins the binlog follower and replay (targets/mysql/binlog)
// to the repository: binlog segments stored in its log archive
// (engine/logarchive), the choice of the base snapshot for a
// point-in-time restore, and the archive's status (lag, gaps, the window
// a restore can reach). See docs/pitr.md.
package pitr
