package mysql_test

import (
	"context"
	"io"
	"strings"
	"testing"

	driver "github.com/go-sql-driver/mysql"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lifeboat-backup/lifeboat/engine/snapshot"
	"github.com/lifeboat-backup/lifeboat/targets/mysql"
	"github.com/lifeboat-backup/lifeboat/targets/mysql/mysqltest"
)

func TestParseUsersGrantRewrites(t *testing.T) {
	rename := map[string]string{"shop": "shop_copy", "ru_db": "ru%new", "gone": ""}
	for _, tc := range []struct {
		name, in, want string
		rename         map[string]string
	}{
		{"identified by password", "GRANT USAGE ON *.* TO `u`@`%` IDENTIFIED BY PASSWORD '*2470C0C06DEE42FD1618BB99005ADCA2EC9D1E19'", "GRANT USAGE ON *.* TO `u`@`%`", nil},
		{"identified, with grant option", "GRANT ALL PRIVILEGES ON *.* TO `u`@`h` IDENTIFIED BY PASSWORD '*AB' WITH GRANT OPTION", "GRANT ALL PRIVILEGES ON *.* TO `u`@`h` WITH GRANT OPTION", nil},
		{"identified via, require, limits", "GRANT USAGE ON *.* TO `u`@`h` IDENTIFIED VIA ed25519 USING 'a WITH b' OR unix_socket REQUIRE SSL WITH MAX_QUERIES_PER_HOUR 5",
			"GRANT USAGE ON *.* TO `u`@`h` REQUIRE SSL WITH MAX_QUERIES_PER_HOUR 5", nil},
		{"account named identified", "GRANT USAGE ON *.* TO `identified`@`%`", "GRANT USAGE ON *.* TO `identified`@`%`", nil},
		{"role grant", "GRANT `r` TO `u`@`h`", "GRANT `r` TO `u`@`h`", rename},
		{"grant to a role", "GRANT SELECT ON `db`.* TO `role`", "GRANT SELECT ON `db`.* TO `role`", rename},
		{"spaces around", "\n  GRANT USAGE ON *.* TO 'u'@'h' IDENTIFIED BY PASSWORD '*AB'  ", "GRANT USAGE ON *.* TO 'u'@'h'", nil},
		{"renamed database", "GRANT SELECT, INSERT ON `shop`.* TO `u`@`%`", "GRANT SELECT, INSERT ON `shop_copy`.* TO `u`@`%`", rename},
		{"renamed, table and columns", "GRANT SELECT (`id`), UPDATE (`v`) ON `shop`.`t` TO `u`@`%` WITH GRANT OPTION",
			"GRANT SELECT (`id`), UPDATE (`v`) ON `shop_copy`.`t` TO `u`@`%` WITH GRANT OPTION", rename},
		{"renamed, escaped pattern", "GRANT ALL PRIVILEGES ON `ru\\_db`.* TO `u`@`%`", "GRANT ALL PRIVILEGES ON `ru\\%new`.* TO `u`@`%`", rename},
		{"renamed, revoke", "REVOKE SELECT ON `shop`.* FROM `u`@`%`", "REVOKE SELECT ON `shop_copy`.* FROM `u`@`%`", rename},
		{"renamed and identified", "GRANT ALL PRIVILEGES ON `shop`.* TO `u`@`%` IDENTIFIED BY PASSWORD '*AB'", "GRANT ALL PRIVILEGES ON `shop_copy`.* TO `u`@`%`", rename},
		{"other database", "GRANT SELECT ON `shop2`.* TO `u`@`%`", "GRANT SELECT ON `shop2`.* TO `u`@`%`", rename},
		{"empty new name", "GRANT SELECT ON `gone`.* TO `u`@`%`", "GRANT SELECT ON `gone`.* TO `u`@`%`", rename},
		{"no rename", "GRANT SELECT ON `shop`.* TO `u`@`%`", "GRANT SELECT ON `shop`.* TO `u`@`%`", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stmts, err := mysql.ParseUsers([]byte(tc.in+";\n"), tc.rename)
			require.NoError(t, err)
			require.Len(t, stmts, 1)
			assert.Equal(t, tc.want, stmts[0].SQL)
		})
	}
}

func TestParseUsers(t *testing.T) {
	const hash = "*2470C0C06DEE42FD1618BB99005ADCA2EC9D1E19"
	text := "CREATE ROLE IF NOT EXISTS `r;1`;\n" +
		"CREATE USER IF NOT EXISTS `a``b`@`%` IDENTIFIED BY PASSWORD '" + hash + "';\n" +
		"CREATE USER IF NOT EXISTS 'my'@'h' IDENTIFIED WITH 'caching_sha2_password' AS 0x24412430 REQUIRE NONE;\n" +
		"CREATE USER IF NOT EXISTS `e`@`localhost` IDENTIFIED VIA ed25519 USING 'x;y\\'z' OR unix_socket;\n" +
		"GRANT USAGE ON *.* TO `a``b`@`%` IDENTIFIED BY PASSWORD '" + hash + "';\n" +
		"GRANT SELECT (`to`), INSERT ON `db`.`t` TO `a``b`@`%` WITH GRANT OPTION;\n" +
		"GRANT `r;1` TO `e`@`localhost`;\n" +
		"SET DEFAULT ROLE `r;1` FOR `e`@`localhost`;\n"
	stmts, err := mysql.ParseUsers([]byte(text), nil)
	require.NoError(t, err)
	var summaries []string
	creates := 0
	for _, s := range stmts {
		summaries = append(summaries, s.Summary)
		if s.Create {
			creates++
		}
	}
	assert.Equal(t, []string{
		"CREATE ROLE `r;1`",
		"CREATE USER `a``b`@`%`",
		"CREATE USER `my`@`h`",
		"CREATE USER `e`@`localhost`",
		"GRANT to `a``b`@`%`",
		"GRANT to `a``b`@`%`",
		"GRANT to `e`@`localhost`",
		"SET DEFAULT ROLE for `e`@`localhost`",
	}, summaries)
	assert.Equal(t, 4, creates)
	assert.Equal(t, "CREATE USER IF NOT EXISTS `e`@`localhost` IDENTIFIED VIA ed25519 USING 'x;y\\'z' OR unix_socket", stmts[3].SQL)
	// GRANTs lose MariaDB's IDENTIFIED clause (CREATE USER has it).
	assert.Equal(t, "GRANT USAGE ON *.* TO `a``b`@`%`", stmts[4].SQL)
	assert.Equal(t, "GRANT SELECT (`to`), INSERT ON `db`.`t` TO `a``b`@`%` WITH GRANT OPTION", stmts[5].SQL)

	// Server errors quoting the statement lose every secret literal.
	for i, secret := range map[int]string{1: hash, 2: "0x24412430", 3: `x;y\'z`, 4: hash} {
		err := stmts[i].Error(&driver.MySQLError{Number: 1064, Message: "syntax error near '" + secret + "' at line 1"})
		assert.NotContains(t, err.Error(), secret)
		assert.Contains(t, err.Error(), "<redacted>")
		assert.Contains(t, err.Error(), stmts[i].Summary)
	}
	assert.NotContains(t, stmts[1].Error(io.ErrUnexpectedEOF).Error(), hash)

	for _, tc := range []struct{ name, text, want string }{
		{"unterminated quote", "GRANT USAGE ON *.* TO `a`@`%` IDENTIFIED BY PASSWORD '*AB;\n", "statement 1: unterminated ' quote"},
		{"other statement", "CREATE USER IF NOT EXISTS `a`@`h`;\nDROP DATABASE shop;\n", `statement 2: unexpected statement "DROP"`},
		{"grant without to", "GRANT SELECT ON *.*;\n", "statement 1: GRANT without TO or FROM"},
		{"default role without for", "SET DEFAULT ROLE r;\n", "statement 1: SET DEFAULT ROLE without FOR"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := mysql.ParseUsers([]byte(tc.text), nil)
			require.ErrorContains(t, err, mysql.UsersFile+": "+tc.want)
			assert.NotContains(t, err.Error(), "*AB")
		})
	}
	stmts, err = mysql.ParseUsers([]byte("\n  \n"), nil)
	require.NoError(t, err)
	assert.Empty(t, stmts)
}

// walkFiles runs src's walk and returns every file's content by path.
func walkFiles(t *testing.T, src *mysql.Source) (map[string]string, []string, error) {
	t.Helper()
	files := map[string]string{}
	var paths []string
	err := src.Walk(context.Background(), nil, func(e snapshot.Entry, open func() (io.ReadCloser, error)) error {
		paths = append(paths, e.Path)
		if open == nil {
			return nil
		}
		rc, err := open()
		if err != nil {
			return err
		}
		defer rc.Close()
		b, err := io.ReadAll(rc)
		files[e.Path] = string(b)
		return err
	})
	return files, paths, err
}

// TestDumpUsers: with Users every lock mode writes UsersFile first (it
// sorts before the databases): roles and accounts but the system ones,
// created idempotently before any grant; without Users there is none; a
// dump user without SELECT on mysql.user gets an error naming it.
func TestDumpUsers(t *testing.T) {
	srv := mysqltest.Shared(t)
	db := srv.DB(t, "")
	drop := func() {
		run(t, db, "DROP USER IF EXISTS `dump_app`@`%`", "DROP USER IF EXISTS `dump_nopriv`@`127.0.0.1`", "DROP ROLE IF EXISTS `dump_role`")
	}
	drop()
	t.Cleanup(drop)
	run(t, db, "DROP DATABASE IF EXISTS dump_users", "CREATE DATABASE dump_users", "CREATE TABLE dump_users.t (id INT PRIMARY KEY)",
		"CREATE ROLE `dump_role`", "GRANT SELECT ON dump_users.* TO `dump_role`",
		"CREATE USER `dump_app`@`%` IDENTIFIED BY 'app-secret'", "GRANT INSERT ON dump_users.t TO `dump_app`@`%`",
		"GRANT `dump_role` TO `dump_app`@`%`",
		"CREATE USER `dump_nopriv`@`127.0.0.1` IDENTIFIED BY 'nopriv-secret'", "GRANT SELECT ON dump_users.* TO `dump_nopriv`@`127.0.0.1`")
	var hash string
	require.NoError(t, db.QueryRow("SELECT authentication_string FROM mysql.user WHERE User = 'dump_app'").Scan(&hash))
	require.NotEmpty(t, hash)

	for _, mode := range lockModes {
		t.Run(string(mode), func(t *testing.T) {
			src, err := mysql.New(mysql.Options{DSN: srv.DSN(), Password: srv.Password, Databases: []string{"dump_users"}, LockMode: mode, Users: true})
			require.NoError(t, err)
			files, paths, err := walkFiles(t, src)
			require.NoError(t, err)
			require.Equal(t, []string{mysql.UsersFile, "dump_users", "dump_users/.database.sql", "dump_users/t.data", "dump_users/t.schema.sql"}, paths)
			users := files[mysql.UsersFile]
			for _, want := range []string{
				"CREATE ROLE IF NOT EXISTS `dump_role`;\n",
				"CREATE USER IF NOT EXISTS `dump_app`@`%` IDENTIFIED BY PASSWORD '" + hash + "';\n",
				"GRANT SELECT ON `dump_users`.* TO `dump_role`;\n",
				"GRANT INSERT ON `dump_users`.`t` TO `dump_app`@`%`;\n",
				"GRANT `dump_role` TO `dump_app`@`%`;\n",
				"CREATE USER IF NOT EXISTS `" + mysqltest.User + "`@`127.0.0.1`",
			} {
				assert.Contains(t, users, want)
			}
			for _, sys := range []string{"`root`", "`mariadb.sys`", "`PUBLIC`", "``@"} {
				assert.NotContains(t, users, sys)
			}
			stmts, err := mysql.ParseUsers([]byte(users), nil)
			require.NoError(t, err)
			grants := false
			for _, s := range stmts {
				if s.Create {
					require.False(t, grants, "CREATE after a GRANT: %s", s.Summary)
					require.Contains(t, s.SQL, " IF NOT EXISTS ")
				} else {
					grants = true
				}
			}
			require.True(t, strings.HasSuffix(users, ";\n"))
			// The hash is in the file only, never in the recovery point.
			_, details := src.RecoveryPoint()
			for k, v := range details {
				assert.NotContains(t, v, hash, k)
			}
			assert.NotContains(t, strings.Join(src.Paths(), " "), hash)
		})
	}

	src, err := mysql.New(mysql.Options{DSN: srv.DSN(), Password: srv.Password, Databases: []string{"dump_users"}})
	require.NoError(t, err)
	_, paths, err := walkFiles(t, src)
	require.NoError(t, err)
	assert.NotContains(t, paths, mysql.UsersFile)

	nopriv, err := mysql.New(mysql.Options{DSN: "dump_nopriv@tcp(" + srv.Addr + ")/", Password: "nopriv-secret",
		Databases: []string{"dump_users"}, LockMode: mysql.LockSingle, Users: true})
	require.NoError(t, err)
	_, _, err = walkFiles(t, nopriv)
	require.ErrorContains(t, err, "--users needs the SELECT privilege on mysql.user")
	assert.NotContains(t, err.Error(), "nopriv-secret")

	// SELECT on mysql.user alone lists the accounts but may not show them.
	run(t, db, "GRANT SELECT ON mysql.user TO `dump_nopriv`@`127.0.0.1`")
	_, _, err = walkFiles(t, nopriv)
	require.ErrorContains(t, err, "mysql: --users: SHOW CREATE USER `dump_app`@`%` needs the SELECT privilege on the mysql database")
	assert.NotContains(t, err.Error(), hash)
}
