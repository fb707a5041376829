package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lifeboat-backup/lifeboat/targets/mysql/mysqltest"
)

// TestCLIMySQLUsers: a policy target with users: true backs up the
// accounts; restore --users re-creates them (summary "users"); the
// sanitized export of that snapshot has no account in it; restore --users
// of a snapshot taken without them fails before loading anything.
func TestCLIMySQLUsers(t *testing.T) {
	srv := mysqltest.Shared(t)
	conn := srv.DB(t, "")
	exec1 := func(qs ...string) {
		for _, q := range qs {
			_, err := conn.Exec(q)
			require.NoError(t, err, q)
		}
	}
	drop := func() { exec1("DROP USER IF EXISTS `cu_app`@`%`") }
	drop()
	t.Cleanup(drop)
	exec1("DROP DATABASE IF EXISTS cu_db", "DROP DATABASE IF EXISTS cu_none", "CREATE DATABASE cu_db",
		"CREATE TABLE cu_db.t (id INT PRIMARY KEY, qty INT)", "INSERT INTO cu_db.t VALUES (1, 5)",
		"CREATE USER `cu_app`@`%` IDENTIFIED BY 'cu-secret'", "GRANT SELECT, INSERT ON cu_db.* TO `cu_app`@`%`")
	var hash string
	require.NoError(t, conn.QueryRow("SELECT authentication_string FROM mysql.user WHERE User = 'cu_app'").Scan(&hash))

	dir := t.TempDir()
	file := func(name, text string) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, []byte(text), 0o600))
		return p
	}
	pass := file("mysql.pass", srv.Password+"\n")
	key := file("sanitize.key", "0123456789abcdef0123456789abcdef\n")
	repoURL := "file://" + filepath.Join(dir, "repo")
	c := &cli{t: t, env: map[string]string{"LIFEBOAT_REPO": repoURL, "MYSQL_PWD": "", "LIFEBOAT_MYSQL_PASSWORD": ""}}
	c.ok("init", "--owner-key-out", filepath.Join(dir, "owner.key"), "--host-key-out", filepath.Join(dir, "host.key"))
	policy := file("policy.yaml", `version: 1
name: cusers
repositories:
  primary:
    url: `+repoURL+`
    key_file: `+filepath.Join(dir, "owner.key")+`
targets:
  - name: cudb
    kind: mysql
    dsn: `+srv.DSN()+`
    password_file: `+pass+`
    databases: [cu_db]
    users: true
sanitize:
  key_file: `+key+`
  rules:
    t:
      qty: keep
`)
	journal := filepath.Join(dir, "journal")
	c.env["LIFEBOAT_REPO"] = ""
	c.ok("run", policy, "--journal", journal)
	c.env["LIFEBOAT_REPO"] = repoURL
	c.env["LIFEBOAT_KEY_FILE"] = filepath.Join(dir, "owner.key")

	// The sanitized export has the table, never the accounts.
	out := filepath.Join(dir, "dev.sql")
	c.env["LIFEBOAT_REPO"] = ""
	c.ok("export", policy, "--sanitized", "-o", out, "--journal", journal)
	c.env["LIFEBOAT_REPO"] = repoURL
	dump, err := os.ReadFile(out)
	require.NoError(t, err)
	assert.Contains(t, string(dump), "CREATE TABLE `t`")
	for _, leak := range []string{"cu_app", "CREATE USER", "GRANT", hash} {
		assert.NotContains(t, string(dump), leak)
	}

	url := "mysql://" + srv.User + "@" + srv.Addr + "/"
	drop()
	exec1("DROP DATABASE cu_db")
	stdout := c.ok("--json", "restore", "latest", "--target", "cudb", "--to", url, "--password-file", pass, "--users")
	sum := lastJSON(t, stdout)
	assert.GreaterOrEqual(t, sum["users"], float64(2), "cu_app and the server's own user")
	assert.NotContains(t, stdout, hash)
	var grants int
	require.NoError(t, conn.QueryRow("SELECT COUNT(*) FROM mysql.db WHERE User = 'cu_app' AND Db = 'cu_db' AND Select_priv = 'Y' AND Insert_priv = 'Y'").Scan(&grants))
	assert.Equal(t, 1, grants)
	// Again, into the same server, as text: the accounts exist already.
	exec1("DROP DATABASE cu_db")
	stdout = c.ok("restore", "latest", "--target", "cudb", "--to", url, "--password-file", pass, "--users")
	assert.Contains(t, stdout, "user accounts and roles")

	// A snapshot without the accounts: --users fails before any database
	// is created.
	exec1("CREATE DATABASE cu_none", "CREATE TABLE cu_none.t (id INT PRIMARY KEY)")
	c.env["LIFEBOAT_MYSQL_PASSWORD"] = srv.Password
	c.ok("backup", "mysql", "--dsn", srv.DSN(), "--databases", "cu_none", "--target", "nousers")
	c.env["LIFEBOAT_MYSQL_PASSWORD"] = ""
	exec1("DROP DATABASE cu_none")
	_, errs, code := c.run("restore", "latest", "--target", "nousers", "--to", url, "--password-file", pass, "--users")
	assert.Equal(t, 1, code, errs)
	assert.Contains(t, errs, "has no user accounts (back up with --users")
	var n int
	require.NoError(t, conn.QueryRow("SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = 'cu_none'").Scan(&n))
	assert.Zero(t, n, "nothing restored")
}
