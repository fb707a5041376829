// Package physical takes physical base backups of a MariaDB server
// (mariabackup --backup --stream=xbstream, streamed into the repository as
// one entry, backup.xbstream, with the binlog coordinates of its
// consistent point as the recovery point) and restores them into an empty
// data directory (the stream unpacked safely, mariabackup --prepare). See
// docs/mysql-target.md and docs/pitr.md.
package physical
