package main

import (
	"context"
	"fmt"
	"maps"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/lifeboat-backup/lifeboat/engine/schedule"
	"github.com/lifeboat-backup/lifeboat/engine/snapshot"
	"github.com/lifeboat-backup/lifeboat/internal/humanize"
	"github.com/lifeboat-backup/lifeboat/internal/report"
	"github.com/lifeboat-backup/lifeboat/policies"
	"github.com/lifeboat-backup/lifeboat/restore"
	"github.com/lifeboat-backup/lifeboat/targets/mysql"
)

// databasePassword reads a database password from file, else from the
// first of the environment variables that is set ("" if none: the DSN's
// or the client's own defaults).
func databasePassword(file string, envs ...string) (string, error) {
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return "", fmt.Errorf("password file: %w", err)
		}
		return strings.TrimRight(string(b), "\r\n"), nil
	}
	for _, e := range envs {
		if p := os.Getenv(e); p != "" {
			return p, nil
		}
	}
	return "", nil
}

func (a *app) backupMySQLCmd() *cobra.Command {
	var (
		o            backupOptions
		t            = policies.Target{Kind: policies.KindMySQL, Name: "mysql"}
		passwordFile string
	)
	cmd := &cobra.Command{
		Use:   "mysql --dsn DSN [--databases a,b] [--exclude-tables PAT] [--jobs N] [--lock-mode M] [--users]",
		Short: "Back up MySQL/MariaDB databases at one consistent point in time",
		Long: `Back up databases of a MySQL or MariaDB server: per table its schema and its rows (LOAD DATA
text format), plus views, triggers, routines and events, all at one consistent point in time
(FLUSH TABLES WITH READ LOCK, or MariaDB's BACKUP STAGE, held for milliseconds; or with
--lock-mode single one transaction without a lock). The binlog file/position and GTID set at
that point are the snapshot's recovery point. Rows stream into the repository; nothing is
written to disk. A table that cannot be read fails the backup: no snapshot is saved.
--users adds the user accounts and roles (not root and the system ones) with their grants
and password hashes as .users.sql; restore --users re-creates them.

The DSN is mysql://user@host:port/ or user@tcp(host:port)/. The password comes from
--password-file, $LIFEBOAT_MYSQL_PASSWORD or $MYSQL_PWD; it is never printed or stored.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if t.DSN == "" {
				return usagef("--dsn is required")
			}
			pw, err := databasePassword(passwordFile, "LIFEBOAT_MYSQL_PASSWORD", "MYSQL_PWD")
			if err != nil {
				return err
			}
			src, err := schedule.SourceFor(t, pw)
			if err != nil {
				return usageError{err}
			}
			o.workers = schedule.Workers(t)
			o.consistent = func(rp snapshot.RecoveryPoint) string {
				pos := "binlog off or unknown"
				if f := rp.Details["binlog_file"]; f != "" {
					pos = f + ":" + rp.Details["binlog_position"]
				}
				if g := rp.Details["gtid_binlog_pos"] + rp.Details["gtid_executed"]; g != "" {
					pos += ", GTID " + g
				}
				return pos
			}
			return a.backupSource(cmd.Context(), o, src)
		},
	}
	f := cmd.Flags()
	f.StringVar(&t.DSN, "dsn", "", "server: mysql://user@host:port/ or user@tcp(host:port)/")
	f.StringVar(&passwordFile, "password-file", "", "file holding the password (else $LIFEBOAT_MYSQL_PASSWORD or $MYSQL_PWD)")
	f.StringSliceVar(&t.Databases, "databases", nil, "databases to back up, comma-separated (default: all but the system schemas)")
	f.StringArrayVar(&t.ExcludeTables, "exclude-tables", nil, "skip tables matching PAT (glob on db.table or table), repeatable")
	f.IntVar(&t.Jobs, "jobs", 0, "worker connections (default: CPUs, at most 16)")
	f.StringVar(&t.LockMode, "lock-mode", "ftwrl", "ftwrl, backup_lock (MariaDB) or single (no lock, one connection)")
	f.BoolVar(&t.Users, "users", false, "also back up user accounts, roles and grants (needs SELECT on the mysql database)")
	f.Int64Var((*int64)(&t.SplitBytes), "split-bytes", 0, "read InnoDB tables bigger than this in primary-key ranges on several connections (default 64 MiB, -1: never)")
	commonBackupFlags(f, &o, "mysql", false)
	return cmd
}

// mysqlRestoreFlags are restore's flags for mysql:// destinations.
type mysqlRestoreFlags struct {
	databases    []string
	tables       []string
	renames      []string
	jobs         int
	passwordFile string
	noBinlog     bool
	users        bool
}

func addMySQLRestoreFlags(f *pflag.FlagSet) *mysqlRestoreFlags {
	m := &mysqlRestoreFlags{}
	f.StringSliceVar(&m.databases, "databases", nil, "with --to mysql://: restore only these databases (names as stored)")
	f.StringSliceVar(&m.tables, "tables", nil, "with --to mysql://: restore only the tables matching these db.table patterns (* and ?), with their triggers")
	f.StringArrayVar(&m.renames, "rename", nil, "with --to mysql://: restore database OLD as NEW (OLD=NEW), repeatable")
	f.IntVar(&m.jobs, "jobs", 0, "with --to mysql://: tables loaded in parallel (default: CPUs)")
	f.StringVar(&m.passwordFile, "password-file", "", "with --to mysql://: file holding the password (else in the URL, $LIFEBOAT_MYSQL_PASSWORD or $MYSQL_PWD)")
	f.BoolVar(&m.users, "users", false, "with --to mysql://: after the databases, create the snapshot's user accounts and grants (backup --users); existing accounts are kept")
	f.BoolVar(&m.noBinlog, "no-binlog", false, "with --to mysql://: do not write the restored rows to the binary log (replicas do not get them; needs SUPER or BINLOG ADMIN)")
	return m
}

// parseRenames parses --rename OLD=NEW flags (restore and export).
func parseRenames(ss []string) (map[string]string, error) {
	m := map[string]string{}
	for _, s := range ss {
		from, into, ok := strings.Cut(s, "=")
		if !ok || from == "" || into == "" {
			return nil, usagef("--rename %q: want OLD=NEW", s)
		}
		m[from] = into
	}
	return m, nil
}

// restoreProgress reports a restore of p's counts: with percent and time
// left when a total is known (> 0: a whole files snapshot's size and entry
// count are in its stats); the returned func stops it.
func (a *app) restoreProgress(p *snapshot.Progress, unit string, totalFiles, totalBytes int64) func() {
	return a.progressOf(func() report.Counter {
		return report.Counter{Phase: "restore", Unit: unit, Files: p.Files.Load(), TotalFiles: totalFiles,
			Bytes: p.Bytes.Load(), TotalBytes: totalBytes}
	})
}

func isMySQLDestination(to string) bool { return strings.HasPrefix(to, "mysql://") }

// restoreMySQL restores snapshot s (of any engine) into the server named
// by to.
func (a *app) restoreMySQL(ctx context.Context, s snapshot.Reader, to string, m *mysqlRestoreFlags) error {
	return a.restoreDatabase(s, mysql.Redact(to), m, []string{"LIFEBOAT_MYSQL_PASSWORD", "MYSQL_PWD"}, "tables",
		func(pw string, rename map[string]string, p *snapshot.Progress) (*dbRestored, error) {
			st, err := restore.MySQL(ctx, s, restore.MySQLOptions{DSN: to, Password: pw, Databases: m.databases, Tables: m.tables,
				Rename: rename, Jobs: m.jobs, NoBinlog: m.noBinlog, Users: m.users, Progress: p})
			if err != nil {
				return nil, err
			}
			res := &dbRestored{
				summary:  map[string]any{"databases": st.Databases, "tables": st.Tables, "objects": st.Objects, "bytes": st.Bytes},
				warnings: st.Warnings,
				details: fmt.Sprintf("%d databases, %d tables, %d views/triggers/routines/events, %s of rows",
					st.Databases, st.Tables, st.Objects, humanize.Bytes(st.Bytes)),
			}
			if m.users {
				res.summary["users"] = st.Users
				res.details += fmt.Sprintf(", %d user accounts and roles", st.Users)
			}
			return res, nil
		})
}

// dbRestored is what one database restore reports.
type dbRestored struct {
	summary  map[string]any // the kind's fields of the JSON summary
	warnings []string
	point    string // after the recovery point's time in the text summary
	details  string // the text summary's second line
}

// restoreDatabase runs a database restore: the password (--password-file,
// else the first of envs set), --rename, progress, and the summary, with
// run doing the kind's own part.
func (a *app) restoreDatabase(s snapshot.Reader, dest string, m *mysqlRestoreFlags, envs []string, items string,
	run func(pw string, rename map[string]string, p *snapshot.Progress) (*dbRestored, error)) error {
	sn := s.Info()
	pw, err := databasePassword(m.passwordFile, envs...)
	if err != nil {
		return err
	}
	rename, err := parseRenames(m.renames)
	if err != nil {
		return err
	}
	p := &snapshot.Progress{}
	start := time.Now()
	stop := a.restoreProgress(p, items, 0, 0)
	res, err := run(pw, rename, p)
	stop()
	if err != nil {
		return err
	}
	el := time.Since(start).Seconds()
	if a.json {
		out := map[string]any{"message_type": "summary", "snapshot_id": sn.ID.String(), "target": sn.Target,
			"to": dest, "warnings": nonNil(res.warnings), "duration_seconds": el, "recovery_point": sn.RecoveryPoint.Time,
			"recovery_point_details": sn.RecoveryPoint.Details}
		maps.Copy(out, res.summary)
		return a.emit(out)
	}
	for _, w := range res.warnings {
		fmt.Fprintf(a.stderr, "warning: %s\n", termSafe(w))
	}
	fmt.Fprintf(a.stdout, "restored snapshot %s (%s, consistent at %s%s) to %s\n", sn.ID.Short(), termSafe(sn.Target),
		sn.RecoveryPoint.Time.Local().Format(time.RFC3339), res.point, dest)
	fmt.Fprintf(a.stdout, "  %s in %.1fs\n", res.details, el)
	return nil
}
