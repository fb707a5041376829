// Package physical takes physical base backups of a PostgreSQL cluster
// (pg_basebackup in tar format, streamed into the repository as one
// entry, base.tar, with the WAL it needs) and restores them into a data
// directory with the recovery settings of a point-in-time recovery from
// the WAL archive (targets/postgres/wal). See docs/pitr.md.
package physical
