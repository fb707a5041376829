// Package physicalbase holds what the physical base backups of MariaDB
// (targets/mysql/physical) and PostgreSQL (targets/postgres/physical)
// share: the owner of a restored data directory and its preparation, and
// a backup tool's output streamed as a snapshot's one entry, with the
// recovery point the tool reports at its end.
package physicalbase
