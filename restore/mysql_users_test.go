package restore_test

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"
	"testing"

	driver "github.com/go-sql-driver/mysql"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lifeboat-backup/lifeboat/engine/repo/repotest"
	"github.com/lifeboat-backup/lifeboat/restore"
	"github.com/lifeboat-backup/lifeboat/targets/mysql"
	"github.com/lifeboat-backup/lifeboat/targets/mysql/mysqltest"
)

// grantsOf is SHOW GRANTS FOR each account, sorted per account.
func grantsOf(t *testing.T, db *sql.DB, accounts ...string) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for _, a := range accounts {
		rows, err := db.Query("SHOW GRANTS FOR " + a)
		require.NoError(t, err, a)
		for rows.Next() {
			var g string
			require.NoError(t, rows.Scan(&g))
			out[a] = append(out[a], g)
		}
		require.NoError(t, rows.Err())
		rows.Close()
		slices.Sort(out[a])
	}
	return out
}

// login connects as user with password and runs a query.
func login(srv *mysqltest.Server, user, password, query string) error {
	cfg := driver.NewConfig()
	cfg.User, cfg.Passwd, cfg.Net, cfg.Addr = user, password, "tcp", srv.Addr
	c, err := driver.NewConnector(cfg)
	if err != nil {
		return err
	}
	db := sql.OpenDB(c)
	defer db.Close()
	_, err = db.Exec(query)
	return err
}

// TestMySQLUsersRoundTrip: accounts and a role backed up with Users,
// dropped, and restored (twice: idempotent) have the same grants, and
// their passwords work again.
func TestMySQLUsersRoundTrip(t *testing.T) {
	srv := mysqltest.Shared(t)
	db := srv.DB(t, "")
	accounts := []string{"`ru_app`@`%`", "`ru_ro`@`127.0.0.1`", "`ru_reader`"}
	drop := func() {
		exec(t, db, "DROP USER IF EXISTS `ru_app`@`%`", "DROP USER IF EXISTS `ru_ro`@`127.0.0.1`",
			"DROP USER IF EXISTS `ru_weak`@`127.0.0.1`", "DROP ROLE IF EXISTS `ru_reader`")
	}
	drop()
	t.Cleanup(drop)
	exec(t, db, "DROP DATABASE IF EXISTS ru_db", "CREATE DATABASE ru_db", "CREATE TABLE ru_db.t (id INT PRIMARY KEY, v INT)",
		"INSERT INTO ru_db.t VALUES (1, 2)",
		"CREATE ROLE `ru_reader`", "GRANT SELECT ON ru_db.* TO `ru_reader`",
		"CREATE USER `ru_app`@`%` IDENTIFIED BY 'app;pass''s'", "GRANT SELECT, INSERT, UPDATE ON ru_db.* TO `ru_app`@`%`",
		"GRANT SELECT (id), UPDATE (v) ON ru_db.t TO `ru_app`@`%` WITH GRANT OPTION",
		"CREATE USER `ru_ro`@`127.0.0.1` IDENTIFIED BY 'ro-pass'", "GRANT `ru_reader` TO `ru_ro`@`127.0.0.1`",
		"SET DEFAULT ROLE `ru_reader` FOR `ru_ro`@`127.0.0.1`")
	before := grantsOf(t, db, accounts...)
	var hash string
	require.NoError(t, db.QueryRow("SELECT authentication_string FROM mysql.user WHERE User = 'ru_app'").Scan(&hash))

	_, r := repotest.Mem(t)
	res, err := backupMySQL(t, r, mysql.Options{DSN: srv.DSN(), Password: srv.Password, Databases: []string{"ru_db"}, Users: true})
	require.NoError(t, err)
	s := r.SnapshotReader(res.Snapshot)
	for k, v := range res.Snapshot.RecoveryPoint.Details {
		assert.NotContains(t, v, hash, k)
	}
	// Restored with the databases (MySQLOptions.Users): the same grants.
	drop()
	exec(t, db, "DROP DATABASE ru_db")
	t.Cleanup(func() { exec(t, db, "DROP DATABASE IF EXISTS ru_db2", "DROP DATABASE IF EXISTS ru_w") })
	st, err := restore.MySQL(context.Background(), s, restore.MySQLOptions{DSN: srv.DSN(), Password: srv.Password, Users: true})
	require.NoError(t, err)
	assert.GreaterOrEqual(t, st.Users, 4, "the three accounts and the test server's own user")
	require.Equal(t, before, grantsOf(t, db, accounts...))
	require.NoError(t, login(srv, "ru_ro", "ro-pass", "SELECT v FROM ru_db.t"), "default role restored")
	require.NoError(t, login(srv, "ru_app", "app;pass's", "UPDATE ru_db.t SET v = 3"))
	require.ErrorContains(t, login(srv, "ru_app", "app;pass's", "DELETE FROM ru_db.t"), "DELETE command denied")

	// Again under another name, the accounts already there: their grants
	// are kept and the same ones are given on the new name.
	_, err = restore.MySQL(context.Background(), s, restore.MySQLOptions{DSN: srv.DSN(), Password: srv.Password, Users: true,
		Rename: map[string]string{"ru_db": "ru_db2"}})
	require.NoError(t, err)
	want := map[string][]string{}
	for a, gs := range before {
		want[a] = slices.Clone(gs)
		for _, g := range gs {
			if strings.Contains(g, "`ru_db`.") {
				want[a] = append(want[a], strings.ReplaceAll(g, "`ru_db`.", "`ru_db2`."))
			}
		}
		slices.Sort(want[a])
	}
	require.Equal(t, want, grantsOf(t, db, accounts...))
	require.NoError(t, login(srv, "ru_ro", "ro-pass", "SELECT v FROM ru_db2.t"), "grants follow --rename")
	require.ErrorContains(t, login(srv, "ru_app", "app;pass's", "DELETE FROM ru_db2.t"), "DELETE command denied")

	// An account that exists keeps its password: MariaDB's GRANT ...
	// IDENTIFIED BY PASSWORD line would set the snapshot's again.
	exec(t, db, "ALTER USER `ru_app`@`%` IDENTIFIED BY 'changed'")
	t.Cleanup(func() { exec(t, db, "DROP DATABASE IF EXISTS ru_db3") })
	_, err = restore.MySQL(context.Background(), s, restore.MySQLOptions{DSN: srv.DSN(), Password: srv.Password, Users: true,
		Rename: map[string]string{"ru_db": "ru_db3"}})
	require.NoError(t, err)
	require.NoError(t, login(srv, "ru_app", "changed", "SELECT v FROM ru_db.t"))
	require.ErrorContains(t, login(srv, "ru_app", "app;pass's", "SELECT 1"), "Access denied")

	// A destination user that may not create accounts: the databases are
	// restored, the accounts not, and the error names the account, not
	// its hash.
	exec(t, db, "CREATE USER `ru_weak`@`127.0.0.1` IDENTIFIED BY 'weak-pass'", "GRANT ALL ON ru_w.* TO `ru_weak`@`127.0.0.1`")
	_, err = restore.MySQL(context.Background(), s, restore.MySQLOptions{DSN: "ru_weak@tcp(" + srv.Addr + ")/", Password: "weak-pass", Users: true,
		Rename: map[string]string{"ru_db": "ru_w"}})
	require.Regexp(t, "^databases restored, user accounts not: restore .users.sql statement 1 of [0-9]+: CREATE USER `[^`]+`@`[^`]+`: error 1227: Access denied; you need .*CREATE USER", err.Error())
	assert.NotContains(t, err.Error(), hash)
}

// TestMySQLUsersMissing: a snapshot taken without Users has no
// UsersFile: a restore with Users says so before connecting.
func TestMySQLUsersMissing(t *testing.T) {
	srv := mysqltest.Shared(t)
	db := srv.DB(t, "")
	exec(t, db, "DROP DATABASE IF EXISTS ru_none", "CREATE DATABASE ru_none", "CREATE TABLE ru_none.t (id INT PRIMARY KEY)")
	_, r := repotest.Mem(t)
	res, err := backupMySQL(t, r, mysql.Options{DSN: srv.DSN(), Password: srv.Password, Databases: []string{"ru_none"}})
	require.NoError(t, err)
	s := r.SnapshotReader(res.Snapshot)
	want := fmt.Sprintf("snapshot %s has no user accounts (back up with --users", res.Snapshot.ID.Short())
	_, err = restore.MySQL(context.Background(), s, restore.MySQLOptions{DSN: "nobody@tcp(127.0.0.1:1)/", Users: true})
	require.ErrorIs(t, err, restore.ErrNoUsers)
	require.ErrorContains(t, err, want)
	require.False(t, strings.Contains(err.Error(), "connect"), err.Error())
}
