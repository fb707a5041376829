// Package logarchive keeps a database's log segments (PostgreSQL WAL files,
// MySQL binlog segments) in a lifeboat repository, beside the packs: one
// write-once object per segment under archive/<target>/<stream>/<name>,
// its content sealed like pack data (owner key only) and a small header
// sealed like metadata (owner and host key), so that status, lag and gap
// checks need no owner key. See docs/pitr.md.
package logarchive
