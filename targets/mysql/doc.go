// Package mysql backs up MySQL and MariaDB servers as logical dumps taken
// at one consistent point in time (FLUSH TABLES WITH READ LOCK or backup
// locks held for milliseconds to start one transaction per worker, or a
// single transaction without a lock): per table its schema and its rows in
// LOAD DATA text format, read in parallel and split in primary-key ranges,
// plus views, triggers, routines, events and optionally user accounts. The
// binlog coordinates and GTID set of that point are the snapshot's
// recovery point (the start of point-in-time recovery, targets/mysql/binlog).
// It also holds the DSN parsing and quoting the restores share. See
// docs/mysql-target.md.
package mysql
