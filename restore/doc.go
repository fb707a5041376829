// Package restore turns snapshots back into what was backed up: file trees
// (in parallel, only the byte ranges needed, never outside the destination
// and never through a symlink), MySQL/MariaDB and PostgreSQL databases
// (parallel loads, renames, table subsets), command streams, buckets and
// volumes. It reads snapshots through snapshot.Reader, so one restore
// serves both engines. Drills are restore/drill; looking inside snapshots
// without restoring them is restore/browse.
package restore
