package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/lifeboat-backup/lifeboat/engine/schedule"
	"github.com/lifeboat-backup/lifeboat/engine/snapshot"
	"github.com/lifeboat-backup/lifeboat/internal/humanize"
	"github.com/lifeboat-backup/lifeboat/policies"
	"github.com/lifeboat-backup/lifeboat/restore"
	"github.com/lifeboat-backup/lifeboat/targets/postgres"
)

func (a *app) backupPostgresCmd() *cobra.Command {
	var (
		o            backupOptions
		t            = policies.Target{Kind: policies.KindPostgres, Name: "postgres"}
		passwordFile string
	)
	cmd := &cobra.Command{
		Use:   "postgres --dsn postgres://user@host:5432/ [--databases a,b] [--jobs N] [--globals]",
		Short: "Back up PostgreSQL databases with pg_dump",
		Long: `Back up databases of a PostgreSQL server with pg_dump (custom format), streamed from pg_dump
into the repository; nothing is written to disk. With --jobs 1, one archive per database
(DB.dump); with --jobs N > 1, per database a pre-data archive, up to N data archives (the tables
spread over them by size) and a post-data archive, N pg_dumps at once, which restore --jobs N
also loads in parallel without a local copy (docs/postgres-target.md). Each database
is dumped from a snapshot exported by a transaction lifeboat holds for the whole backup; the WAL
LSN at it is the snapshot's recovery point. --globals adds pg_dumpall --globals-only (roles,
without passwords) as globals.sql. A failing pg_dump fails the backup: no snapshot is saved.

pg_dump, pg_dumpall and psql come from PATH (postgresql-client, at least the server's version).
The password comes from --password-file, $LIFEBOAT_POSTGRES_PASSWORD, the DSN, $PGPASSWORD or
~/.pgpass; it reaches pg_dump in its environment only and is never printed or stored.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if t.DSN == "" {
				return usagef("--dsn is required")
			}
			pw, err := databasePassword(passwordFile, "LIFEBOAT_POSTGRES_PASSWORD")
			if err != nil {
				return err
			}
			src, err := schedule.SourceFor(t, pw)
			if err != nil {
				return usageError{err}
			}
			o.workers = schedule.Workers(t)
			o.consistent = func(rp snapshot.RecoveryPoint) string {
				return fmt.Sprintf("WAL LSN %s; databases %s", rp.Details["lsn"], rp.Details["databases"])
			}
			return a.backupSource(cmd.Context(), o, src)
		},
	}
	f := cmd.Flags()
	f.StringVar(&t.DSN, "dsn", "", "server: postgres://user@host:5432/ (a database in it is only where lifeboat connects)")
	f.StringVar(&passwordFile, "password-file", "", "file holding the password (else $LIFEBOAT_POSTGRES_PASSWORD, $PGPASSWORD or ~/.pgpass)")
	f.StringSliceVar(&t.Databases, "databases", nil, "databases to back up, comma-separated (default: all but postgres and the templates)")
	f.StringArrayVar(&t.ExcludeTables, "exclude-tables", nil, "pg_dump --exclude-table pattern (table or schema.table), repeatable")
	f.IntVar(&t.Jobs, "jobs", 1, "pg_dumps at once; > 1 splits each database's data over that many archives")
	f.BoolVar(&t.Globals, "globals", false, "also back up roles and tablespaces (pg_dumpall --globals-only; needs a superuser)")
	commonBackupFlags(f, &o, "postgres", false)
	return cmd
}

// postgresRestoreFlags are restore's flags for postgres:// destinations
// beyond those shared with mysql:// (--databases, --rename, --jobs,
// --password-file).
type postgresRestoreFlags struct {
	globals      bool
	noOwner      bool
	noPrivileges bool
	noDBProps    bool
	tempDir      string
}

func addPostgresRestoreFlags(f *pflag.FlagSet) *postgresRestoreFlags {
	p := &postgresRestoreFlags{}
	f.BoolVar(&p.globals, "globals", false, "with --to postgres://: first run the snapshot's globals.sql (roles) with psql")
	f.BoolVar(&p.noOwner, "no-owner", false, "with --to postgres://: objects belong to the restoring user (pg_restore --no-owner)")
	f.BoolVar(&p.noPrivileges, "no-privileges", false, "with --to postgres://: leave out grants (pg_restore --no-privileges, and those on the databases)")
	f.BoolVar(&p.noDBProps, "no-db-properties", false, "with --to postgres://: create databases with the server's default encoding and locale, without their recorded owner, comment, settings and grants")
	f.StringVar(&p.tempDir, "temp-dir", "", "with --to postgres:// and --jobs > 1: where a whole archive (or a post-data one) is staged for pg_restore --jobs")
	return p
}

func isPostgresDestination(to string) bool {
	return strings.HasPrefix(to, "postgres://") || strings.HasPrefix(to, "postgresql://")
}

// restorePostgres restores snapshot sn into the server named by to.
// --jobs N restores split archives N at once, streamed, and stages a
// whole archive in a temporary file for pg_restore --jobs N.
func (a *app) restorePostgres(ctx context.Context, s snapshot.Reader, to string, m *mysqlRestoreFlags, pg *postgresRestoreFlags) error {
	if pg == nil {
		pg = &postgresRestoreFlags{}
	}
	return a.restoreDatabase(s, postgres.Redact(to), m, []string{"LIFEBOAT_POSTGRES_PASSWORD"}, "databases",
		func(pw string, rename map[string]string, p *snapshot.Progress) (*dbRestored, error) {
			st, err := restore.Postgres(ctx, s, restore.PostgresOptions{DSN: to, Password: pw, Databases: m.databases,
				Rename: rename, Jobs: m.jobs, TempDir: pg.tempDir, Globals: pg.globals, NoOwner: pg.noOwner,
				NoPrivileges: pg.noPrivileges, NoDatabaseProperties: pg.noDBProps, Progress: p})
			if err != nil {
				return nil, err
			}
			return &dbRestored{
				summary:  map[string]any{"databases": st.Databases, "bytes": st.Bytes, "globals": st.Globals},
				warnings: st.Warnings,
				point:    ", WAL LSN " + s.Info().RecoveryPoint.Details["lsn"],
				details:  fmt.Sprintf("databases %s, %s of archives", strings.Join(st.Databases, ", "), humanize.Bytes(st.Bytes)),
			}, nil
		})
}
