// Package binlog archives a MariaDB/MySQL server's binary log and replays
// it: the event-header parser, the follower that drives mariadb-binlog in
// raw remote mode and cuts its output into segments (each a standalone
// binlog file: magic, format description, events), and the replay stream
// that feeds the archived transactions up to a point into mariadb-binlog |
// mariadb. It knows nothing about repositories: segments go through the
// Store interface. See docs/pitr.md.
package binlog
