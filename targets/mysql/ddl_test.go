package mysql_test

import (
	"context"
	"database/sql"
	"errors"
	"io"
	"os"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/lifeboat-backup/lifeboat/engine"
	"github.com/lifeboat-backup/lifeboat/engine/repo"
	"github.com/lifeboat-backup/lifeboat/engine/repo/repotest"
	"github.com/lifeboat-backup/lifeboat/engine/snapshot"
	"github.com/lifeboat-backup/lifeboat/engine/storage"
	"github.com/lifeboat-backup/lifeboat/targets/mysql"
	"github.com/lifeboat-backup/lifeboat/targets/mysql/mysqltest"
)

func TestMain(m *testing.M) { os.Exit(mysqltest.Main(m)) }

func run(t *testing.T, db *sql.DB, qs ...string) {
	t.Helper()
	for _, q := range qs {
		_, err := db.Exec(q)
		require.NoError(t, err, q)
	}
}

// ddlSource runs DDL when the engine receives the first entry: after the
// snapshot point and the unlock, before any table is read.
type ddlSource struct {
	*mysql.Source
	ddl func()
}

func (s *ddlSource) Walk(ctx context.Context, warn func(string, error), fn func(snapshot.Entry, func() (io.ReadCloser, error)) error) error {
	first := true
	return s.Source.Walk(ctx, warn, func(e snapshot.Entry, open func() (io.ReadCloser, error)) error {
		if first {
			first = false
			s.ddl()
		}
		return fn(e, open)
	})
}

var lockModes = []mysql.LockMode{mysql.LockFTWRL, mysql.LockBackup, mysql.LockSingle}

// TestDDLAfterSnapshot: a table created right after the snapshot point is
// not in the dump (reading it would fail with error 1412), and the tables
// that existed are all there, schema and rows as at the snapshot point.
func TestDDLAfterSnapshot(t *testing.T) {
	srv := mysqltest.Shared(t)
	db := srv.DB(t, "")
	for _, mode := range lockModes {
		t.Run(string(mode), func(t *testing.T) {
			run(t, db, "DROP DATABASE IF EXISTS ddl_late", "CREATE DATABASE ddl_late",
				"CREATE TABLE ddl_late.kept (id INT PRIMARY KEY) ENGINE=InnoDB", "INSERT INTO ddl_late.kept VALUES (1), (2)")
			src, err := mysql.New(mysql.Options{DSN: srv.DSN(), Password: srv.Password, Databases: []string{"ddl_late"}, LockMode: mode, Jobs: 2})
			require.NoError(t, err)
			var paths []string
			data := map[string]string{}
			first := true
			err = src.Walk(context.Background(), nil, func(e snapshot.Entry, open func() (io.ReadCloser, error)) error {
				if first {
					first = false
					run(t, db, "CREATE TABLE ddl_late.created_late (id INT PRIMARY KEY) ENGINE=InnoDB",
						"INSERT INTO ddl_late.created_late VALUES (1)", "INSERT INTO ddl_late.kept VALUES (3)",
						"ALTER TABLE ddl_late.kept ADD COLUMN extra INT DEFAULT 7, ALGORITHM=INSTANT")
				}
				paths = append(paths, e.Path)
				if open == nil {
					return nil
				}
				rc, err := open()
				require.NoError(t, err, e.Path)
				b, err := io.ReadAll(rc)
				require.NoError(t, err, e.Path)
				require.NoError(t, rc.Close())
				data[e.Path] = string(b)
				return nil
			})
			require.NoError(t, err)
			require.Equal(t, []string{"ddl_late", "ddl_late/.database.sql", "ddl_late/kept.data", "ddl_late/kept.schema.sql"}, paths)
			require.Equal(t, "id\n1\n2\n", data["ddl_late/kept.data"], "rows committed after the snapshot point must not be dumped")
			// The schema is the one at the snapshot point, matching the data
			// (an instant ADD COLUMN after it does not fail the dump).
			require.NotContains(t, data["ddl_late/kept.schema.sql"], "extra")
		})
	}
}

// TestDDLDuringDump: a table dropped, truncated or altered after the
// snapshot point but before it is read fails the backup with an error
// naming it, and no snapshot is saved.
func TestDDLDuringDump(t *testing.T) {
	srv := mysqltest.Shared(t)
	db := srv.DB(t, "")
	b, err := storage.OpenWith(context.Background(), "mem://", storage.OpenOptions{Create: true})
	require.NoError(t, err)
	t.Cleanup(func() { b.Close() })
	tr := repotest.Init(t, b, repotest.SmallChunks, 0)
	r := tr.Open(t, tr.Owner)

	for _, c := range []struct {
		ddl, want string
	}{
		{"DROP TABLE ddl_mid.victim", "dump `ddl_mid`.`victim`: the table was dropped during the dump"},
		{"TRUNCATE TABLE ddl_mid.victim", "dump `ddl_mid`.`victim`: the table was altered, truncated or re-created"},
		{"ALTER TABLE ddl_mid.victim ADD COLUMN extra INT, ALGORITHM=COPY", "dump `ddl_mid`.`victim`: the table was altered, truncated or re-created"},
	} {
		for _, mode := range lockModes {
			t.Run(string(mode)+" "+strings.Fields(c.ddl)[0], func(t *testing.T) {
				run(t, db, "DROP DATABASE IF EXISTS ddl_mid", "CREATE DATABASE ddl_mid",
					"CREATE TABLE ddl_mid.a (id INT PRIMARY KEY) ENGINE=InnoDB", "INSERT INTO ddl_mid.a VALUES (1)",
					"CREATE TABLE ddl_mid.victim (id INT PRIMARY KEY, v VARCHAR(10)) ENGINE=InnoDB", "INSERT INTO ddl_mid.victim VALUES (1, 'x')")
				src, err := mysql.New(mysql.Options{DSN: srv.DSN(), Password: srv.Password, Databases: []string{"ddl_mid"}, LockMode: mode, Jobs: 2})
				require.NoError(t, err)
				_, err = engine.Backup(context.Background(), r, &ddlSource{Source: src, ddl: func() { run(t, db, c.ddl) }}, engine.BackupOptions{Workers: 2})
				require.ErrorContains(t, err, c.want)
				require.ErrorContains(t, err, "run the backup again")
				_, err = r.FindSnapshot(context.Background(), "latest", nil)
				require.True(t, errors.Is(err, repo.ErrNotFound), "no snapshot may be saved: %v", err)
			})
		}
	}
}

// TestDDLListsEveryTable: every lock mode lists exactly the tables, in
// the order of their entry names (single mode compares the list taken
// before and after its transaction starts).
func TestDDLListsEveryTable(t *testing.T) {
	srv := mysqltest.Shared(t)
	db := srv.DB(t, "")
	run(t, db, "DROP DATABASE IF EXISTS ddl_many", "CREATE DATABASE ddl_many")
	var want []string
	for _, n := range []string{"b", "a", "c d", "e%f"} {
		run(t, db, "CREATE TABLE ddl_many."+mysql.QuoteName(n)+" (id INT PRIMARY KEY)")
		want = append(want, "ddl_many/"+mysql.EncodeName(n)+".data", "ddl_many/"+mysql.EncodeName(n)+".schema.sql")
	}
	want = append(want, "ddl_many/.database.sql")
	sort.Strings(want)
	for _, mode := range lockModes {
		src, err := mysql.New(mysql.Options{DSN: srv.DSN(), Password: srv.Password, Databases: []string{"ddl_many"}, LockMode: mode})
		require.NoError(t, err)
		var got []string
		require.NoError(t, src.Walk(context.Background(), nil, func(e snapshot.Entry, open func() (io.ReadCloser, error)) error {
			if open != nil {
				got = append(got, e.Path)
				rc, err := open()
				require.NoError(t, err)
				_, err = io.Copy(io.Discard, rc)
				require.NoError(t, err)
				require.NoError(t, rc.Close())
			}
			return nil
		}), mode)
		require.Equal(t, want, got, mode)
	}
}
