// Package wal archives PostgreSQL WAL files into a lifeboat repository
// (engine/logarchive, stream "wal") and fetches them back: the bodies of
// `lifeboat wal push` (archive_command) and `lifeboat wal fetch`
// (restore_command), plus the WAL-name arithmetic the chain check needs.
package wal
