package main

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lifeboat-backup/lifeboat/internal/testutil/oroshop"
	"github.com/lifeboat-backup/lifeboat/internal/testutil/shop"
	"github.com/lifeboat-backup/lifeboat/targets/mysql/mysqltest"
	"github.com/lifeboat-backup/lifeboat/targets/postgres/postgrestest"
)

// engineRepos makes a native and a restic repository for one policy
// body: it returns the two policies (the same targets and sanitize block,
// the native one with the owner key) and the cli that ran init.
func engineRepos(t *testing.T, dir, body string) (c *cli, native, rpolicy string) {
	t.Helper()
	useRestic(t)
	resticPass := filepath.Join(dir, "restic.pass")
	require.NoError(t, os.WriteFile(resticPass, []byte("correct horse battery\n"), 0o600))
	c = &cli{t: t, env: map[string]string{"LIFEBOAT_REPO": "file://" + filepath.Join(dir, "native")}}
	c.ok("init", "--owner-key-out", filepath.Join(dir, "owner.key"), "--host-key-out", filepath.Join(dir, "host.key"))
	c.env["LIFEBOAT_REPO"] = ""
	native = filepath.Join(dir, "native.yaml")
	require.NoError(t, os.WriteFile(native, []byte(`version: 1
name: rx
repositories:
  primary:
    url: file://`+filepath.Join(dir, "native")+`
    key_file: `+filepath.Join(dir, "owner.key")+`
`+body), 0o600))
	rpolicy = filepath.Join(dir, "restic.yaml")
	require.NoError(t, os.WriteFile(rpolicy, []byte(`version: 1
name: rx
repositories:
  primary:
    url: file://`+filepath.Join(dir, "restic")+`
    engine: restic
    password_file: `+resticPass+`
`+body), 0o600))
	c.ok("init", "--policy", rpolicy)
	return c, native, rpolicy
}

// exportBody is an export without its first line, which names the
// snapshot and its recovery point (two backups differ there), and with
// the \restrict key of a PostgreSQL export (derived from the snapshot ID).
func exportBody(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	head, body, ok := strings.Cut(string(b), "\n")
	require.True(t, ok, path)
	require.True(t, strings.HasPrefix(head, "-- lifeboat sanitized export of snapshot "), head)
	return reRestrictKey.ReplaceAllString(body, `\${1}restrict KEY`)
}

var reRestrictKey = regexp.MustCompile(`\\(un)?restrict [0-9a-f]+`)

// TestResticExportMySQL: the same MySQL data backed up to a native and
// to a restic repository exports to the same sanitized SQL (given the
// same sanitize key), lint reads restic snapshots alike (also when it
// stops in the middle of a table bigger than what restic keeps in
// memory), --to mysql:// loads from restic, and a wrong restic password
// exits 12 with a clear message and no file.
func TestResticExportMySQL(t *testing.T) {
	if testing.Short() {
		t.Skip("MariaDB and restic")
	}
	ctx := context.Background()
	srv := mysqltest.Shared(t)
	conn := srv.DB(t, "")
	_, err := shop.Generate(ctx, conn, shop.Options{Database: "rx_shop", Rows: 300, Replace: true})
	require.NoError(t, err)
	// A table of 2.4 MB: read from restic by a dump pass, not from memory.
	for _, q := range []string{
		"CREATE TABLE rx_shop.crm_note (id INT NOT NULL PRIMARY KEY, contact VARCHAR(64) NOT NULL, body MEDIUMTEXT NOT NULL)",
		"INSERT INTO rx_shop.crm_note SELECT seq, CONCAT('crm', seq, '@corp.example.net'), REPEAT(CONCAT('note ', seq, ' '), 3000) FROM rx_shop.seq_1_to_200",
	} {
		_, err := conn.Exec(q)
		require.NoError(t, err, q)
	}
	dir := t.TempDir()
	file := func(name, text string) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, []byte(text), 0o600))
		return p
	}
	pass := file("mysql.pass", srv.Password+"\n")
	key := file("sanitize.key", "0123456789abcdef0123456789abcdef\n")
	rules := file("rules.yaml", "crm_note:\n  contact: fake:email\n")
	c, native, rpolicy := engineRepos(t, dir, `targets:
  - name: shopdb
    kind: mysql
    dsn: `+srv.DSN()+`
    password_file: `+pass+`
    databases: [rx_shop]
sanitize:
  preset: magento2
  key_file: `+key+`
  rules_file: `+rules+`
  rules:
    quote:
      customer_email: fake:email
`)
	journal := filepath.Join(dir, "journal")
	c.ok("run", native, "--journal", journal)
	c.ok("run", rpolicy, "--journal", journal)
	c.env["MYSQL_PWD"], c.env["LIFEBOAT_MYSQL_PASSWORD"] = "", ""

	// lint: no findings with the rules file, the crm table without it
	for _, p := range []string{native, rpolicy} {
		assert.Contains(t, c.ok("sanitize", "lint", p), "no findings", p)
		out, errs, code := c.run("sanitize", "lint", p, "--rules", file("none.yaml", "{}\n"), "--sample", "50")
		assert.Equal(t, 1, code, errs)
		assert.Equal(t, "rx_shop.crm_note.contact: looks like email (content: 50 of 50 sampled values); add a rule, e.g. crm_note: {contact: fake:email}\n", out, p)
		assert.Contains(t, errs, "1 columns look personal", p)
	}

	// the same export from both engines
	files := map[string]string{}
	for name, p := range map[string]string{"native": native, "restic": rpolicy} {
		files[name] = filepath.Join(dir, name+".sql")
		out := c.ok("export", p, "--sanitized", "-o", files[name], "--journal", journal)
		assert.Contains(t, out, "exported snapshot", name)
	}
	want, got := exportBody(t, files["native"]), exportBody(t, files["restic"])
	require.Equal(t, len(want), len(got), "export sizes")
	require.True(t, want == got, "the restic export differs from the native one")
	assert.Contains(t, got, "INSERT INTO `crm_note`")
	assert.NotContains(t, got, "crm7@corp.example.net")
	assert.Contains(t, got, "note 7 note 7")

	// --to mysql:// from restic: loads, sanitized, all rows
	_, err = conn.Exec("DROP DATABASE IF EXISTS rx_dev")
	require.NoError(t, err)
	out := c.ok("export", rpolicy, "--sanitized", "--to", "mysql://"+srv.User+"@"+srv.Addr+"/", "--password-file", pass,
		"--rename", "rx_shop=rx_dev", "--journal", journal)
	assert.Contains(t, out, "loaded snapshot")
	count := func(q string) (n int64) {
		require.NoError(t, conn.QueryRow(q).Scan(&n), q)
		return n
	}
	for _, tb := range []string{"customer_entity", "sales_order", "crm_note"} {
		assert.Equal(t, count("SELECT COUNT(*) FROM rx_shop."+tb), count("SELECT COUNT(*) FROM rx_dev."+tb), tb)
	}
	assert.Zero(t, count("SELECT COUNT(*) FROM rx_dev.customer_entity c JOIN rx_shop.customer_entity s ON s.email = c.email"))
	assert.Zero(t, count("SELECT COUNT(*) FROM rx_dev.crm_note d JOIN rx_shop.crm_note s ON s.contact = d.contact"))
	assert.Equal(t, count("SELECT SUM(CRC32(body)) FROM rx_shop.crm_note"), count("SELECT SUM(CRC32(body)) FROM rx_dev.crm_note"))

	// bad keys: exit 12, a clear message, no file, no secret
	wrong := file("wrong.pass", "wrong horse\n")
	bad := filepath.Join(dir, "bad.sql")
	export := func(p string) []string { return []string{"export", p, "--sanitized", "-o", bad, "--journal", journal} }
	for _, tc := range []struct {
		name string
		env  map[string]string
		args []string
		want string
	}{
		{"wrong restic password", map[string]string{"LIFEBOAT_PASSPHRASE_FILE": wrong}, export(rpolicy), "wrong password for the restic repository"},
		{"wrong restic password, lint", map[string]string{"LIFEBOAT_PASSPHRASE_FILE": wrong}, []string{"sanitize", "lint", rpolicy}, "wrong password for the restic repository"},
		{"native host key", map[string]string{"LIFEBOAT_KEY_FILE": filepath.Join(dir, "host.key")}, export(native), "export reads the table data: give the owner key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cc := &cli{t: t, env: map[string]string{}}
			for k, v := range c.env {
				cc.env[k] = v
			}
			for k, v := range tc.env {
				cc.env[k] = v
			}
			_, errs, code := cc.run(tc.args...)
			assert.Equal(t, exitWrongKey, code, errs)
			assert.Contains(t, errs, tc.want)
			assert.NotContains(t, errs, "horse")
			assert.NoFileExists(t, bad)
		})
	}

	// a files snapshot is no export source
	media := filepath.Join(dir, "media")
	require.NoError(t, os.MkdirAll(media, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(media, "a.txt"), []byte("a"), 0o600))
	fpolicy := file("files.yaml", strings.Replace(mustRead(t, rpolicy), "targets:\n", "targets:\n  - name: media\n    kind: files\n    paths: ["+media+"]\n", 1))
	c.ok("run", fpolicy, "--target", "media", "--journal", journal)
	_, errs, code := c.run("export", fpolicy, "--sanitized", "-o", filepath.Join(dir, "f.sql"), "--target", "media", "--journal", journal)
	assert.Equal(t, exitUsage, code, errs)
	assert.Contains(t, errs, "is a files snapshot: export reads mysql and postgres snapshots")
}

func mustRead(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	return string(b)
}

// TestResticExportPostgres: a PostgreSQL snapshot exports from restic as
// from the native repository (the same SQL but for the snapshot's own
// header and \restrict key), and the file loads with psql.
func TestResticExportPostgres(t *testing.T) {
	if testing.Short() {
		t.Skip("PostgreSQL and restic")
	}
	s := postgrestest.Start(t)
	s.CreateDatabase(t, "oro")
	s.MustPSQL(t, "oro", oroshop.SQL(100))
	dir := t.TempDir()
	pass := filepath.Join(dir, "pg.pass")
	require.NoError(t, os.WriteFile(pass, []byte(s.Password+"\n"), 0o600))
	key := filepath.Join(dir, "sanitize.key")
	require.NoError(t, os.WriteFile(key, []byte("0123456789abcdef0123456789abcdef\n"), 0o600))
	c, native, rpolicy := engineRepos(t, dir, `targets:
  - name: orodb
    kind: postgres
    dsn: `+s.URL()+`
    password_file: `+pass+`
    databases: [oro]
sanitize:
  preset: orocommerce
  key_file: `+key+`
`)
	c.env["PGPASSWORD"] = ""
	journal := filepath.Join(dir, "journal")
	c.ok("run", native, "--journal", journal)
	c.ok("run", rpolicy, "--journal", journal)

	assert.Contains(t, c.ok("sanitize", "lint", rpolicy), "no findings")
	files := map[string]string{}
	for name, p := range map[string]string{"native": native, "restic": rpolicy} {
		files[name] = filepath.Join(dir, name+".sql")
		c.ok("export", p, "--sanitized", "-o", files[name], "--journal", journal)
	}
	want, got := exportBody(t, files["native"]), exportBody(t, files["restic"])
	require.Equal(t, len(want), len(got), "export sizes")
	require.True(t, want == got, "the restic export differs from the native one")
	for _, e := range strings.Split(s.MustPSQL(t, "oro", "SELECT email FROM oro_customer_user"), "\n") {
		assert.NotContains(t, got, e)
	}
	s.CreateDatabase(t, "oro_dev")
	s.MustPSQL(t, "oro_dev", `\i `+files["restic"])
	for _, tb := range []string{"oro_customer_user", "oro_order"} {
		assert.Equal(t, s.MustPSQL(t, "oro", "SELECT count(*) FROM "+tb), s.MustPSQL(t, "oro_dev", "SELECT count(*) FROM "+tb), tb)
	}
}
