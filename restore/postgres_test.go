package restore_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	osexec "os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/lifeboat-backup/lifeboat/engine"
	"github.com/lifeboat-backup/lifeboat/engine/repo"
	"github.com/lifeboat-backup/lifeboat/engine/repo/repotest"
	"github.com/lifeboat-backup/lifeboat/engine/snapshot"
	"github.com/lifeboat-backup/lifeboat/restore"
	"github.com/lifeboat-backup/lifeboat/targets/postgres"
	"github.com/lifeboat-backup/lifeboat/targets/postgres/postgrestest"
)

var (
	_ engine.Source          = (*postgres.Source)(nil)
	_ engine.RecoveryPointer = (*postgres.Source)(nil)
	_ engine.AllOrNothing    = (*postgres.Source)(nil)
)

// pgDigests returns per table of database db: "count md5" of its
// ordered contents, plus the sequence value and the view's definition.
func pgDigests(t *testing.T, s *postgrestest.Server, db string) map[string]string {
	t.Helper()
	tables := strings.Fields(s.MustPSQL(t, db, `SELECT quote_ident(tablename) FROM pg_tables WHERE schemaname = 'public' ORDER BY 1`))
	require.NotEmpty(t, tables)
	out := map[string]string{}
	for _, tb := range tables {
		out[tb] = s.MustPSQL(t, db, `SELECT count(*) || ' ' || coalesce(md5(string_agg(t::text, '|' ORDER BY t::text)), '') FROM `+tb+` t`)
	}
	out["seq"] = s.MustPSQL(t, db, `SELECT last_value FROM oro_invoice_seq`)
	out["view"] = s.MustPSQL(t, db, `SELECT count(*) || ' ' || sum(total) FROM oro_order_totals`)
	out["comment"] = s.MustPSQL(t, db, `SELECT obj_description('oro_order'::regclass)`)
	return out
}

func backupPostgres(t *testing.T, r *repo.Repository, o postgres.Options) (*engine.BackupResult, error) {
	t.Helper()
	src, err := postgres.New(o)
	require.NoError(t, err)
	return engine.Backup(context.Background(), r, src, engine.BackupOptions{Workers: 4})
}

func TestPostgresOroRoundTrip(t *testing.T) {
	s := postgrestest.Start(t)
	s.CreateDatabase(t, "oro")
	s.CreateDatabase(t, "audit db")
	s.MustPSQL(t, "oro", postgrestest.OroSchema)
	s.MustPSQL(t, "audit db", `CREATE TABLE log (id serial PRIMARY KEY, line text); INSERT INTO log (line) SELECT 'l' || g FROM generate_series(1, 100) g;`)
	s.MustPSQL(t, "postgres", `CREATE ROLE oro_reader LOGIN; GRANT CONNECT ON DATABASE oro TO oro_reader`)
	s.MustPSQL(t, "oro", `GRANT SELECT ON oro_order TO oro_reader`)
	// Names that are pg_dump pattern characters, a schema, a large object.
	s.MustPSQL(t, "oro", `CREATE SCHEMA "My Schema"; CREATE TABLE "My Schema"."Odd*Name.x?" (id int, "Qu""ote" text);
		INSERT INTO "My Schema"."Odd*Name.x?" SELECT g, 'q' || g FROM generate_series(1, 50) g;
		CREATE TABLE "public"."Odd*Name" (id int); INSERT INTO "Odd*Name" VALUES (1);
		SELECT lo_from_bytea(4242, 'large object ü')`)
	// Items of a table archive restored after the post-data archive: a
	// trigger, a comment on a foreign key.
	s.MustPSQL(t, "oro", `CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN RETURN NEW; END$$;
		CREATE TRIGGER oro_order_touch BEFORE UPDATE ON oro_order FOR EACH ROW EXECUTE FUNCTION touch();
		COMMENT ON CONSTRAINT oro_order_customer_user_id_fkey ON oro_order IS 'fk comment'`)
	extra := `SELECT (SELECT count(*) || md5(string_agg(t::text, '|' ORDER BY t::text)) FROM "My Schema"."Odd*Name.x?" t) || ' ' ||
		(SELECT count(*) FROM "Odd*Name") || ' ' || encode(lo_get(4242), 'escape')`
	wantExtra := s.MustPSQL(t, "oro", extra)
	want := pgDigests(t, s, "oro")
	require.Equal(t, "5000", strings.Fields(want["oro_order"])[0])

	_, r := repotest.Mem(t)
	res, err := backupPostgres(t, r, postgres.Options{DSN: s.URL(), Password: s.Password, Globals: true, Jobs: 2})
	require.NoError(t, err)
	sn := res.Snapshot
	require.Equal(t, "postgres", sn.Kind)
	rp := sn.RecoveryPoint
	require.Regexp(t, `^[0-9A-F]+/[0-9A-F]+$`, rp.Details["lsn"])
	require.Equal(t, "audit db,oro", rp.Details["databases"])
	require.Equal(t, "custom-tables", rp.Details["format"])
	// Jobs 2: each database in a pre-data, a data-only, up to 8 table
	// archives (the largest tables) and a post-data archive.
	var paths []string
	tr := r.NewTreeReader(context.Background(), sn)
	for {
		n, err := tr.Next()
		if err == io.EOF {
			break
		}
		require.NoError(t, err)
		paths = append(paths, n.Path)
	}
	require.Equal(t, []string{"audit%20db+0-properties.json", "audit%20db+1-pre.dump", "audit%20db+2-data-00.dump", "audit%20db+2-table-00.dump",
		"audit%20db+3-post.dump", "globals.sql", "oro+0-properties.json", "oro+1-pre.dump", "oro+2-data-00.dump",
		"oro+2-table-00.dump", "oro+2-table-01.dump", "oro+2-table-02.dump", "oro+2-table-03.dump",
		"oro+2-table-04.dump", "oro+2-table-05.dump", "oro+2-table-06.dump", "oro+2-table-07.dump", "oro+3-post.dump"}, paths)
	require.NotContains(t, strings.Join(sn.Paths, " "), s.Password)
	require.False(t, rp.Time.IsZero())
	// pg_dump does not compress (-Z0): the repository does, and can
	// deduplicate the rows. The COPY text of audit db's log is readable.
	require.Contains(t, readEntry(t, r, sn, "audit%20db+2-table-00.dump"), "100\tl100\n")
	schema := pgSchema(t, s, "oro")
	require.Contains(t, schema, "fk comment")
	require.Contains(t, schema, "oro_order_touch")

	ctx := context.Background()
	// Streamed (jobs 1), renamed, with globals.
	st, err := restore.Postgres(ctx, r.SnapshotReader(sn), restore.PostgresOptions{DSN: s.URL(), Password: s.Password, Globals: true,
		Rename: map[string]string{"oro": "oro_restored", "audit db": "audit2"}})
	require.NoError(t, err)
	require.ElementsMatch(t, []string{"oro_restored", "audit2"}, st.Databases)
	require.Equal(t, want, pgDigests(t, s, "oro_restored"))
	require.Equal(t, wantExtra, s.MustPSQL(t, "oro_restored", extra))
	require.Equal(t, "100", s.MustPSQL(t, "audit2", `SELECT count(*) FROM log`))
	require.Equal(t, "t", s.MustPSQL(t, "oro_restored", `SELECT has_table_privilege('oro_reader', 'oro_order', 'SELECT')`))
	require.Equal(t, schema, pgSchema(t, s, "oro_restored"), "indexes, constraints, triggers, comments")
	// A table archive's rows load with COPY FREEZE: all pages frozen.
	s.MustPSQL(t, "oro_restored", `CREATE EXTENSION pg_visibility`)
	require.Equal(t, "t", s.MustPSQL(t, "oro_restored", `SELECT all_frozen > 0 AND all_frozen = pg_relation_size('oro_order') / 8192 FROM pg_visibility_map_summary('oro_order')`))

	// Parallel from a temp file, into the database named in the URL.
	st, err = restore.Postgres(ctx, r.SnapshotReader(sn), restore.PostgresOptions{DSN: s.URL() + "oro_parallel", Password: s.Password,
		Databases: []string{"oro"}, Jobs: 4, TempDir: t.TempDir(), NoOwner: true})
	require.NoError(t, err)
	require.Equal(t, []string{"oro_parallel"}, st.Databases)
	require.Equal(t, want, pgDigests(t, s, "oro_parallel"))
	require.Equal(t, wantExtra, s.MustPSQL(t, "oro_parallel", extra))
	require.Equal(t, schema, pgSchema(t, s, "oro_parallel"), "post-data: indexes, constraints, triggers, comments")

	// The split layout of earlier snapshots (data archives only, the
	// post-data of every table in one archive): streamed and parallel.
	old, err := engine.Backup(ctx, r, oldSplit{s, "oro"}, engine.BackupOptions{Workers: 2})
	require.NoError(t, err)
	for jobs, name := range map[int]string{1: "oro_old1", 2: "oro_old2"} {
		_, err = restore.Postgres(ctx, r.SnapshotReader(old.Snapshot), restore.PostgresOptions{DSN: s.URL(), Password: s.Password,
			Rename: map[string]string{"oro": name}, Jobs: jobs, TempDir: t.TempDir()})
		require.NoError(t, err)
		require.Equal(t, want, pgDigests(t, s, name))
		require.Equal(t, wantExtra, s.MustPSQL(t, name, extra))
		require.Equal(t, schema, pgSchema(t, s, name))
	}

	// Jobs 1: one whole archive per database (the format of older
	// snapshots), restored streamed and staged.
	res, err = backupPostgres(t, r, postgres.Options{DSN: s.URL(), Password: s.Password, Databases: []string{"oro"}})
	require.NoError(t, err)
	require.Equal(t, "custom", res.Snapshot.RecoveryPoint.Details["format"])
	for jobs, name := range map[int]string{1: "oro_whole1", 3: "oro_whole3"} {
		_, err = restore.Postgres(ctx, r.SnapshotReader(res.Snapshot), restore.PostgresOptions{DSN: s.URL(), Password: s.Password,
			Rename: map[string]string{"oro": name}, Jobs: jobs, TempDir: t.TempDir()})
		require.NoError(t, err)
		require.Equal(t, want, pgDigests(t, s, name))
		require.Equal(t, wantExtra, s.MustPSQL(t, name, extra))
		require.Equal(t, schema, pgSchema(t, s, name))
	}

	// A split snapshot missing an archive is refused, naming what lacks.
	src, err := postgres.New(postgres.Options{DSN: s.URL(), Password: s.Password, Databases: []string{"oro"}, Jobs: 3})
	require.NoError(t, err)
	for suffix, msg := range map[string]string{
		postgres.SuffixPost:     `database "oro" is incomplete: pre-data, data and post-data archives expected`,
		postgres.DataSuffix(0):  `database "oro" is incomplete: pre-data, data and post-data archives expected`,
		postgres.TableSuffix(0): `database "oro": table archive 0 of 9 is missing`,
	} {
		bad, err := engine.Backup(ctx, r, dropEntries{src, suffix}, engine.BackupOptions{Workers: 2})
		require.NoError(t, err)
		_, err = restore.Postgres(ctx, r.SnapshotReader(bad.Snapshot), restore.PostgresOptions{DSN: s.URL(), Password: s.Password,
			Rename: map[string]string{"oro": "oro_bad"}})
		require.ErrorContains(t, err, msg)
	}
	require.Equal(t, "0", s.MustPSQL(t, "postgres", `SELECT count(*) FROM pg_database WHERE datname = 'oro_bad'`))

	// The destination exists: refused before anything is touched.
	_, err = restore.Postgres(ctx, r.SnapshotReader(sn), restore.PostgresOptions{DSN: s.URL(), Password: s.Password, Databases: []string{"oro"}})
	require.ErrorContains(t, err, `database "oro" already exists`)
	// Several databases into one name: refused.
	_, err = restore.Postgres(ctx, r.SnapshotReader(sn), restore.PostgresOptions{DSN: s.URL() + "x", Password: s.Password})
	require.ErrorContains(t, err, "holds 2 databases")
	_, err = restore.Postgres(ctx, r.SnapshotReader(sn), restore.PostgresOptions{DSN: s.URL(), Password: "wrong", Databases: []string{"oro"}})
	require.ErrorContains(t, err, "password authentication failed")
}

func TestPostgresBackupFaults(t *testing.T) {
	s := postgrestest.Start(t)
	s.CreateDatabase(t, "shop")
	s.MustPSQL(t, "shop", `CREATE TABLE t (id int); INSERT INTO t VALUES (1)`)
	_, r := repotest.Mem(t)

	_, err := backupPostgres(t, r, postgres.Options{DSN: s.URL(), Password: "wrong-password-x"})
	require.ErrorContains(t, err, "password authentication failed")
	require.NotContains(t, err.Error(), "wrong-password-x")

	_, err = backupPostgres(t, r, postgres.Options{DSN: "postgres://lifeboat:hunter2-secret@127.0.0.1:1/"})
	require.ErrorContains(t, err, "127.0.0.1")
	require.NotContains(t, err.Error(), "hunter2")

	_, err = backupPostgres(t, r, postgres.Options{DSN: s.URL(), Password: s.Password, Databases: []string{"no_such_db"}})
	require.ErrorContains(t, err, `database "no_such_db" does not exist`)

	// No pg_dump on PATH.
	psql, err := postgres.Binary("", "psql")
	require.NoError(t, err)
	bin := t.TempDir()
	require.NoError(t, os.Symlink(psql, filepath.Join(bin, "psql")))
	t.Run("path", func(t *testing.T) {
		t.Setenv("PATH", bin)
		_, err = backupPostgres(t, r, postgres.Options{DSN: s.URL(), Password: s.Password})
		require.ErrorContains(t, err, "pg_dump not found on PATH")
	})

	// A pg_dump that fails after writing part of an archive.
	fake := filepath.Join(bin, "pg_dump")
	require.NoError(t, os.WriteFile(fake, []byte("#!/bin/sh\nprintf 'PGDMP partial'\necho 'pg_dump: error: query failed: ERROR: permission denied for table t' >&2\nexit 1\n"), 0o755))
	_, err = backupPostgres(t, r, postgres.Options{DSN: s.URL(), Password: s.Password, BinDir: bin})
	require.ErrorContains(t, err, "permission denied for table t")

	_, err = r.FindSnapshot(context.Background(), "latest", nil)
	require.True(t, errors.Is(err, repo.ErrNotFound), "no snapshot may be saved: %v", err)

	// And a good backup afterwards works.
	_, err = backupPostgres(t, r, postgres.Options{DSN: s.URL(), Password: s.Password})
	require.NoError(t, err)
}

// dbProps reads database db's recorded properties as backup does, with
// the ACL sorted.
func dbProps(t *testing.T, s *postgrestest.Server, db string) postgres.DatabaseProps {
	t.Helper()
	var p postgres.DatabaseProps
	require.NoError(t, json.Unmarshal([]byte(s.MustPSQL(t, db, postgres.PropsQuery(150000))), &p))
	slices.Sort(p.ACL)
	return p
}

// pgSchema lists database db's indexes, constraints, triggers and the
// comments on constraints, each by its definition.
func pgSchema(t *testing.T, s *postgrestest.Server, db string) string {
	t.Helper()
	return s.MustPSQL(t, db, `SELECT (SELECT string_agg(indexdef, E'\n' ORDER BY indexname) FROM pg_indexes WHERE schemaname NOT IN ('pg_catalog', 'information_schema'))
		|| E'\n' || (SELECT string_agg(conrelid::regclass || ' ' || conname || ' ' || pg_get_constraintdef(oid) || ' ' || coalesce(obj_description(oid, 'pg_constraint'), ''), E'\n' ORDER BY conrelid::regclass::text, conname)
			FROM pg_constraint WHERE connamespace <> 'pg_catalog'::regnamespace)
		|| E'\n' || (SELECT string_agg(pg_get_triggerdef(oid), E'\n' ORDER BY tgname) FROM pg_trigger WHERE NOT tgisinternal)`)
}

// oldSplit is a source making db's snapshot in the split layout of
// earlier snapshots: pre-data, data archive 0 (all but oro_order and
// oro_email), data archive 1 (those two), post-data of every table.
type oldSplit struct {
	s  *postgrestest.Server
	db string
}

func (o oldSplit) Kind() string    { return "postgres" }
func (o oldSplit) Paths() []string { return []string{o.s.URL()} }

func (o oldSplit) Walk(ctx context.Context, warn func(string, error), fn func(snapshot.Entry, func() (io.ReadCloser, error)) error) error {
	pgDump, err := postgres.Binary(o.s.BinDir(), "pg_dump")
	if err != nil {
		return err
	}
	conn, err := postgres.ParseDSN(o.s.URL(), o.s.Password)
	if err != nil {
		return err
	}
	for _, e := range []struct {
		suffix string
		args   []string
	}{
		{postgres.SuffixPre, []string{"--section=pre-data"}},
		{postgres.DataSuffix(0), []string{"--section=data", "--exclude-table=oro_order", "--exclude-table=oro_email"}},
		{postgres.DataSuffix(1), []string{"--section=data", "--table=oro_order", "--table=oro_email"}},
		{postgres.SuffixPost, []string{"--section=post-data"}},
	} {
		cmd := osexec.CommandContext(ctx, pgDump, append([]string{"-w", "-Fc", "-Z0", "-d", conn.URL(o.db)}, e.args...)...)
		cmd.Env = conn.Env()
		out, err := cmd.Output()
		if err != nil {
			return fmt.Errorf("pg_dump %v: %w", e.args, err)
		}
		ent := snapshot.Entry{Path: postgres.EncodeName(o.db) + e.suffix, Type: snapshot.TypeFile, Mode: 0o600, Size: int64(len(out))}
		if err := fn(ent, func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(out)), nil }); err != nil {
			return err
		}
	}
	return nil
}

// dropEntries is a postgres source whose snapshots lack the entries
// ending in suffix (properties: as made before they were recorded).
type dropEntries struct {
	*postgres.Source
	suffix string
}

func (n dropEntries) Walk(ctx context.Context, warn func(string, error), fn func(snapshot.Entry, func() (io.ReadCloser, error)) error) error {
	return n.Source.Walk(ctx, warn, func(e snapshot.Entry, open func() (io.ReadCloser, error)) error {
		if strings.HasSuffix(e.Path, n.suffix) {
			// Read and dropped: the source waits for its dumps to end.
			rc, err := open()
			if err != nil {
				return err
			}
			defer rc.Close()
			_, err = io.Copy(io.Discard, rc)
			return err
		}
		return fn(e, open)
	})
}

func TestPostgresDatabaseProperties(t *testing.T) {
	s := postgrestest.Start(t)
	s.MustPSQL(t, "postgres", `CREATE ROLE oro_app LOGIN; CREATE ROLE "Read Only";
		CREATE DATABASE "Oro db" TEMPLATE template0 ENCODING 'LATIN1' LC_COLLATE 'C' LC_CTYPE 'C' OWNER oro_app CONNECTION LIMIT 50;
		CREATE DATABASE icu TEMPLATE template0 ENCODING 'UTF8' LOCALE_PROVIDER icu ICU_LOCALE 'de-DE' LC_COLLATE 'C.UTF-8' LC_CTYPE 'C.UTF-8';
		COMMENT ON DATABASE "Oro db" IS 'shop''s db — ü';
		ALTER DATABASE "Oro db" SET search_path = "$user", public, "My Schema";
		ALTER DATABASE "Oro db" SET work_mem = '64MB';
		ALTER DATABASE "Oro db" SET app.tenant = 'a''b';
		ALTER ROLE oro_app IN DATABASE "Oro db" SET work_mem = '32MB';
		REVOKE CONNECT ON DATABASE "Oro db" FROM PUBLIC;
		GRANT CONNECT, TEMP ON DATABASE "Oro db" TO "Read Only";
		GRANT CREATE ON DATABASE "Oro db" TO "Read Only" WITH GRANT OPTION;`)
	s.MustPSQL(t, "Oro db", `CREATE TABLE t (name text); INSERT INTO t VALUES ('Zoë'), ('zoe'), ('Ärger'), ('b')`)
	s.MustPSQL(t, "icu", `CREATE TABLE t (name text); INSERT INTO t VALUES ('Zoë'), ('zoe'), ('Ärger'), ('b')`)
	want := dbProps(t, s, "Oro db")
	require.Equal(t, "LATIN1", want.Encoding)
	require.Len(t, want.ACL, 3)
	wantICU := dbProps(t, s, "icu")
	require.Equal(t, "icu", wantICU.LocaleProvider)
	order := `SELECT string_agg(name, ',' ORDER BY name) FROM t`
	require.Equal(t, "Zoë,b,zoe,Ärger", s.MustPSQL(t, "Oro db", order), "C collation")
	require.Equal(t, "Ärger,b,zoe,Zoë", s.MustPSQL(t, "icu", order), "de-DE collation")

	_, r := repotest.Mem(t)
	res, err := backupPostgres(t, r, postgres.Options{DSN: s.URL(), Password: s.Password, Databases: []string{"Oro db", "icu"}, Globals: true})
	require.NoError(t, err)
	sn := res.Snapshot
	ctx := context.Background()

	// Under new names: encoding, locale, owner, comment, connection
	// limit, settings (also a role's in the database) and grants as the
	// original's.
	st, err := restore.Postgres(ctx, r.SnapshotReader(sn), restore.PostgresOptions{DSN: s.URL(), Password: s.Password,
		Rename: map[string]string{"Oro db": "oro copy", "icu": "icu copy"}})
	require.NoError(t, err)
	require.Empty(t, st.Warnings)
	require.Equal(t, want, dbProps(t, s, "oro copy"))
	require.Equal(t, wantICU, dbProps(t, s, "icu copy"))
	require.Equal(t, "Zoë,b,zoe,Ärger", s.MustPSQL(t, "oro copy", order))
	require.Equal(t, "Ärger,b,zoe,Zoë", s.MustPSQL(t, "icu copy", order))
	require.Equal(t, "32MB", s.MustPSQL(t, "postgres", `SELECT split_part(setconfig[1], '=', 2) FROM pg_db_role_setting
		WHERE setdatabase = (SELECT oid FROM pg_database WHERE datname = 'oro copy') AND setrole = 'oro_app'::regrole`))

	// --no-owner --no-privileges: the restoring user owns it, default
	// grants; the rest is kept.
	_, err = restore.Postgres(ctx, r.SnapshotReader(sn), restore.PostgresOptions{DSN: s.URL(), Password: s.Password,
		Databases: []string{"Oro db"}, Rename: map[string]string{"Oro db": "oro_noowner"}, NoOwner: true, NoPrivileges: true})
	require.NoError(t, err)
	got := dbProps(t, s, "oro_noowner")
	require.Equal(t, "lifeboat", got.Owner)
	require.Nil(t, got.ACL)
	require.Equal(t, want.Settings, got.Settings)
	require.Equal(t, want.Comment, got.Comment)
	require.Equal(t, "LATIN1", got.Encoding)

	// --no-db-properties: the server's defaults.
	_, err = restore.Postgres(ctx, r.SnapshotReader(sn), restore.PostgresOptions{DSN: s.URL(), Password: s.Password,
		Databases: []string{"Oro db"}, Rename: map[string]string{"Oro db": "oro_plain"}, NoDatabaseProperties: true})
	require.NoError(t, err)
	got = dbProps(t, s, "oro_plain")
	require.Equal(t, "UTF8", got.Encoding)
	require.Nil(t, got.Comment)
	require.Empty(t, got.Settings)

	// A server without the roles: restored with warnings naming them.
	other := postgrestest.Start(t)
	st, err = restore.Postgres(ctx, r.SnapshotReader(sn), restore.PostgresOptions{DSN: other.URL(), Password: other.Password,
		Databases: []string{"Oro db"}, NoOwner: true})
	require.NoError(t, err)
	require.ElementsMatch(t, []string{
		`database Oro db: settings of role "oro_app" left out: the role does not exist here`,
		`database Oro db: grant to role "Read Only" left out: the role does not exist here`,
	}, st.Warnings)
	got = dbProps(t, other, "Oro db")
	require.Equal(t, []string{"=T/lifeboat", "lifeboat=CTc/lifeboat"}, got.ACL, "PUBLIC keeps TEMP only, as in the original; the owner's privileges go to the restoring user")
	require.Equal(t, want.Settings, dbProps(t, other, "Oro db").Settings)

	// A snapshot from before properties were recorded restores as before.
	src, err := postgres.New(postgres.Options{DSN: s.URL(), Password: s.Password, Databases: []string{"Oro db"}})
	require.NoError(t, err)
	res, err = engine.Backup(ctx, r, dropEntries{src, postgres.SuffixProps}, engine.BackupOptions{Workers: 2})
	require.NoError(t, err)
	st, err = restore.Postgres(ctx, r.SnapshotReader(res.Snapshot), restore.PostgresOptions{DSN: s.URL(), Password: s.Password,
		Rename: map[string]string{"Oro db": "oro_old"}})
	require.NoError(t, err)
	require.Equal(t, "UTF8", dbProps(t, s, "oro_old").Encoding)
	require.Equal(t, "4", s.MustPSQL(t, "oro_old", `SELECT count(*) FROM t`))
}

func TestPostgresRestoreBadInput(t *testing.T) {
	s := postgrestest.Start(t)
	s.CreateDatabase(t, "shop")
	s.MustPSQL(t, "shop", `CREATE TABLE t (id int); INSERT INTO t VALUES (1)`)
	_, r := repotest.Mem(t)
	res, err := backupPostgres(t, r, postgres.Options{DSN: s.URL(), Password: s.Password})
	require.NoError(t, err)
	sn := r.SnapshotReader(res.Snapshot)
	psql, err := postgres.Binary("", "psql")
	require.NoError(t, err)
	onlyPsql := t.TempDir()
	require.NoError(t, os.Symlink(psql, filepath.Join(onlyPsql, "psql")))
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		o    restore.PostgresOptions
		want string
	}{
		{"wrong password", restore.PostgresOptions{DSN: s.URL(), Password: "not-the-password-x", Rename: map[string]string{"shop": "a"}}, "password authentication failed"},
		{"unreachable", restore.PostgresOptions{DSN: "postgres://lifeboat:pw-in-url-x@127.0.0.1:1/", Rename: map[string]string{"shop": "a"}}, "127.0.0.1"},
		{"not a postgres URL", restore.PostgresOptions{DSN: "mysql://root@127.0.0.1/"}, "DSN must look like postgres://user@host:5432/"},
		{"database not in the snapshot", restore.PostgresOptions{DSN: s.URL(), Password: s.Password, Databases: []string{"nope"}}, `holds no database "nope"`},
		{"rename of an absent database", restore.PostgresOptions{DSN: s.URL(), Password: s.Password, Rename: map[string]string{"nope": "x"}}, `--rename nope: snapshot`},
		{"destination exists", restore.PostgresOptions{DSN: s.URL(), Password: s.Password}, `database "shop" already exists`},
		{"no pg_restore", restore.PostgresOptions{DSN: s.URL(), Password: s.Password, Rename: map[string]string{"shop": "a"}, BinDir: onlyPsql}, "pg_restore not found in " + onlyPsql},
		{"temp dir missing", restore.PostgresOptions{DSN: s.URL(), Password: s.Password, Rename: map[string]string{"shop": "b"}, Jobs: 2, TempDir: "/nonexistent/tmp"}, "temporary archive"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := restore.Postgres(ctx, sn, tc.o)
			require.ErrorContains(t, err, tc.want)
			require.NotContains(t, err.Error(), "not-the-password-x")
			require.NotContains(t, err.Error(), "pw-in-url-x")
		})
	}
	require.Equal(t, "0", s.MustPSQL(t, "postgres", `SELECT count(*) FROM pg_database WHERE datname IN ('a', 'b')`), "nothing left behind")
}

func TestPostgresExcludeTables(t *testing.T) {
	s := postgrestest.Start(t)
	s.CreateDatabase(t, "shop")
	s.MustPSQL(t, "shop", `CREATE SCHEMA log;
		CREATE TABLE keep_a (id int PRIMARY KEY); INSERT INTO keep_a SELECT generate_series(1, 300);
		CREATE TABLE keep_b (id int REFERENCES keep_a); INSERT INTO keep_b SELECT generate_series(1, 200);
		CREATE TABLE cache_x (v text); INSERT INTO cache_x VALUES ('x');
		CREATE TABLE cache_y (v text); INSERT INTO cache_y VALUES ('y');
		CREATE TABLE log.entries (v text); INSERT INTO log.entries VALUES ('l')`)
	_, r := repotest.Mem(t)
	ctx := context.Background()
	tables := `SELECT string_agg(schemaname || '.' || tablename, ',' ORDER BY 1) FROM pg_tables WHERE schemaname IN ('public', 'log')`
	for _, jobs := range []int{1, 3} {
		t.Run(fmt.Sprint("jobs ", jobs), func(t *testing.T) {
			res, err := backupPostgres(t, r, postgres.Options{DSN: s.URL(), Password: s.Password, Databases: []string{"shop"}, Jobs: jobs,
				ExcludeTables: []string{"cache_*", "log.entries"}})
			require.NoError(t, err)
			name := fmt.Sprint("shop_", jobs)
			_, err = restore.Postgres(ctx, r.SnapshotReader(res.Snapshot), restore.PostgresOptions{DSN: s.URL(), Password: s.Password,
				Rename: map[string]string{"shop": name}, Jobs: jobs})
			require.NoError(t, err)
			require.Equal(t, "public.keep_a,public.keep_b", s.MustPSQL(t, name, tables))
			require.Equal(t, "300 200", s.MustPSQL(t, name, `SELECT (SELECT count(*) FROM keep_a) || ' ' || (SELECT count(*) FROM keep_b)`))
		})
	}
	_, err := postgres.New(postgres.Options{DSN: s.URL(), ExcludeTables: []string{"--evil"}})
	require.ErrorContains(t, err, `bad exclude pattern "--evil"`)
}

// badSetting is a postgres source whose properties entries hold the
// setting work_mem=value, which the server rejects.
type badSetting struct {
	*postgres.Source
	value string
}

func (b badSetting) Walk(ctx context.Context, warn func(string, error), fn func(snapshot.Entry, func() (io.ReadCloser, error)) error) error {
	return b.Source.Walk(ctx, warn, func(e snapshot.Entry, open func() (io.ReadCloser, error)) error {
		if !strings.HasSuffix(e.Path, postgres.SuffixProps) {
			return fn(e, open)
		}
		return fn(e, func() (io.ReadCloser, error) {
			rc, err := open()
			if err != nil {
				return nil, err
			}
			defer rc.Close()
			var p postgres.DatabaseProps
			if err := json.NewDecoder(rc).Decode(&p); err != nil {
				return nil, err
			}
			p.Settings = append(p.Settings, "work_mem="+b.value)
			out, err := json.Marshal(p)
			return io.NopCloser(strings.NewReader(string(out))), err
		})
	})
}

func TestPostgresSettingErrorRedacted(t *testing.T) {
	s := postgrestest.Start(t)
	s.CreateDatabase(t, "shop")
	s.MustPSQL(t, "postgres", `ALTER DATABASE shop SET app.jwt_secret = 'jwt-s3cret-value'`)
	_, r := repotest.Mem(t)
	src, err := postgres.New(postgres.Options{DSN: s.URL(), Password: s.Password, Databases: []string{"shop"}})
	require.NoError(t, err)
	res, err := engine.Backup(context.Background(), r, badSetting{src, "work-s3cret-value"}, engine.BackupOptions{Workers: 2})
	require.NoError(t, err)
	_, err = restore.Postgres(context.Background(), r.SnapshotReader(res.Snapshot), restore.PostgresOptions{DSN: s.URL(), Password: s.Password,
		Rename: map[string]string{"shop": "shop_copy"}})
	require.ErrorContains(t, err, `database "shop_copy": the original's properties: ALTER DATABASE "shop_copy" SET work_mem TO ***: `)
	require.ErrorContains(t, err, `invalid value for parameter "work_mem"`)
	require.NotContains(t, err.Error(), "s3cret")
	require.Equal(t, "0", s.MustPSQL(t, "postgres", `SELECT count(*) FROM pg_database WHERE datname = 'shop_copy'`), "dropped")
}

// openLog is a sequential snapshot that records the files opened.
type openLog struct {
	snapshot.Reader
	opened []string
}

func (o *openLog) Sequential() bool { return true }

func (o *openLog) Open(ctx context.Context, n *snapshot.Node) io.ReadCloser {
	o.opened = append(o.opened, n.Path)
	return o.Reader.Open(ctx, n)
}

func TestPostgresRestoreOpensArchivesInTreeOrder(t *testing.T) {
	s := postgrestest.Start(t)
	for _, db := range []string{"shop", "shop-eu", "shop.at"} {
		s.CreateDatabase(t, db)
	}
	_, r := repotest.Mem(t)
	res, err := backupPostgres(t, r, postgres.Options{DSN: s.URL(), Password: s.Password, Databases: []string{"shop", "shop-eu", "shop.at"}})
	require.NoError(t, err)
	sn := &openLog{Reader: r.SnapshotReader(res.Snapshot)}
	var tree []string
	tr := sn.Tree(context.Background())
	for {
		n, err := tr.Next()
		if err == io.EOF {
			break
		}
		require.NoError(t, err)
		tree = append(tree, n.Path)
	}
	require.Equal(t, []string{"shop+0-properties.json", "shop-eu+0-properties.json", "shop-eu.dump",
		"shop.at+0-properties.json", "shop.at.dump", "shop.dump"}, tree, "a whole archive need not follow its properties")

	st, err := restore.Postgres(context.Background(), sn, restore.PostgresOptions{DSN: s.URL(), Password: s.Password,
		Rename: map[string]string{"shop": "a", "shop-eu": "b", "shop.at": "c"}})
	require.NoError(t, err)
	require.Equal(t, []string{"b", "c", "a"}, st.Databases)
	var archives []string
	for _, p := range sn.opened {
		if !strings.HasSuffix(p, postgres.SuffixProps) {
			archives = append(archives, p)
		}
	}
	require.Equal(t, []string{"shop-eu.dump", "shop.at.dump", "shop.dump"}, archives)
}

// readEntry returns the content of a snapshot's file.
func readEntry(t *testing.T, r *repo.Repository, sn *snapshot.Snapshot, path string) string {
	t.Helper()
	ctx := context.Background()
	tr := r.NewTreeReader(ctx, sn)
	for {
		n, err := tr.Next()
		require.NoError(t, err, "no entry %q", path)
		if n.Path == path {
			rc := r.SnapshotReader(sn).Open(ctx, n)
			defer rc.Close()
			b, err := io.ReadAll(rc)
			require.NoError(t, err)
			return string(b)
		}
	}
}

// compressedDumps replaces each whole archive by one of pg_dump's default
// compression: what snapshots made before pg_dump ran with -Z0 hold.
type compressedDumps struct {
	*postgres.Source
	s *postgrestest.Server
}

func (c compressedDumps) Walk(ctx context.Context, warn func(string, error), fn func(snapshot.Entry, func() (io.ReadCloser, error)) error) error {
	pgDump, err := postgres.Binary("", "pg_dump")
	if err != nil {
		return err
	}
	conn, err := postgres.ParseDSN(c.s.URL(), c.s.Password)
	if err != nil {
		return err
	}
	return c.Source.Walk(ctx, warn, func(e snapshot.Entry, open func() (io.ReadCloser, error)) error {
		db, ok := strings.CutSuffix(e.Path, postgres.SuffixDump)
		if !ok {
			return fn(e, open)
		}
		// The source's own archive is read and dropped (it waits for it).
		rc, err := open()
		if err != nil {
			return err
		}
		_, err = io.Copy(io.Discard, rc)
		rc.Close()
		if err != nil {
			return err
		}
		cmd := osexec.CommandContext(ctx, pgDump, "-w", "-Fc", "-d", conn.URL(db))
		cmd.Env = conn.Env()
		b, err := cmd.Output()
		if err != nil {
			return fmt.Errorf("pg_dump: %w", err)
		}
		e.Size = int64(len(b))
		return fn(e, func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil })
	})
}

func TestPostgresRestoresCompressedArchive(t *testing.T) {
	s := postgrestest.Start(t)
	s.CreateDatabase(t, "shop")
	s.MustPSQL(t, "shop", `CREATE TABLE item (id int PRIMARY KEY, name text);
		INSERT INTO item SELECT g, 'item number ' || g FROM generate_series(1, 2000) g`)
	want := s.MustPSQL(t, "shop", `SELECT count(*) || ' ' || md5(string_agg(t::text, '|' ORDER BY id)) FROM item t`)
	src, err := postgres.New(postgres.Options{DSN: s.URL(), Password: s.Password, Databases: []string{"shop"}})
	require.NoError(t, err)
	_, r := repotest.Mem(t)
	ctx := context.Background()
	res, err := engine.Backup(ctx, r, compressedDumps{src, s}, engine.BackupOptions{Workers: 2})
	require.NoError(t, err)
	archive := readEntry(t, r, res.Snapshot, "shop.dump")
	require.NotContains(t, archive, "item number 1999", "the archive is compressed")
	for jobs, name := range map[int]string{1: "shop1", 2: "shop2"} {
		_, err = restore.Postgres(ctx, r.SnapshotReader(res.Snapshot), restore.PostgresOptions{DSN: s.URL(), Password: s.Password,
			Rename: map[string]string{"shop": name}, Jobs: jobs, TempDir: t.TempDir()})
		require.NoError(t, err)
		require.Equal(t, want, s.MustPSQL(t, name, `SELECT count(*) || ' ' || md5(string_agg(t::text, '|' ORDER BY id)) FROM item t`))
	}
}
