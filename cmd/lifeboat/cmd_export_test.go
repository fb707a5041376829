package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lifeboat-backup/lifeboat/engine"
	"github.com/lifeboat-backup/lifeboat/engine/repo/repotest"
	"github.com/lifeboat-backup/lifeboat/engine/snapshot"
	"github.com/lifeboat-backup/lifeboat/engine/storage"
	"github.com/lifeboat-backup/lifeboat/internal/testutil/oroshop"
	"github.com/lifeboat-backup/lifeboat/internal/testutil/shop"
	"github.com/lifeboat-backup/lifeboat/policies"
	"github.com/lifeboat-backup/lifeboat/sanitize"
	"github.com/lifeboat-backup/lifeboat/targets/mysql"
	"github.com/lifeboat-backup/lifeboat/targets/mysql/mysqltest"
	"github.com/lifeboat-backup/lifeboat/targets/postgres/postgrestest"
)

// TestCLIExport: a sanitized export loaded straight into a server
// (--to), rules from a separate file, and bad input: exit 2 with a clear
// message and no output file left behind.
func TestCLIExport(t *testing.T) {
	ctx := context.Background()
	srv := mysqltest.Shared(t)
	conn := srv.DB(t, "")
	_, err := shop.Generate(ctx, conn, shop.Options{Database: "ex_shop", Rows: 200, Replace: true})
	require.NoError(t, err)
	dir := t.TempDir()
	file := func(name, text string) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, []byte(text), 0o600))
		return p
	}
	pass := file("mysql.pass", srv.Password+"\n")
	key := file("sanitize.key", "0123456789abcdef0123456789abcdef\n")
	c := &cli{t: t, env: map[string]string{"LIFEBOAT_REPO": "file://" + filepath.Join(dir, "repo")}}
	c.ok("init", "--owner-key-out", filepath.Join(dir, "owner.key"), "--host-key-out", filepath.Join(dir, "host.key"))
	policyText := func(keyFile string) string {
		return `version: 1
name: exshop
repositories:
  primary:
    url: file://` + filepath.Join(dir, "repo") + `
    key_file: ` + filepath.Join(dir, "owner.key") + `
targets:
  - name: shopdb
    kind: mysql
    dsn: ` + srv.DSN() + `
    password_file: ` + pass + `
    databases: [ex_shop]
sanitize:
  preset: magento2
  key_file: ` + keyFile + `
  rules:
    quote:
      customer_email: fake:email
`
	}
	policy := file("policy.yaml", policyText(key))
	c.env["LIFEBOAT_REPO"] = ""
	journal := filepath.Join(dir, "journal")
	c.ok("run", policy, "--journal", journal)
	url := "mysql://" + srv.User + "@" + srv.Addr + "/" // the password comes from --password-file
	c.env["LIFEBOAT_KEY_FILE"] = filepath.Join(dir, "owner.key")
	c.env["MYSQL_PWD"] = ""
	c.env["LIFEBOAT_MYSQL_PASSWORD"] = ""

	// Rules in a separate file, mask written as the issue does.
	rules := file("rules.yaml", "sales_order_payment:\n  last_trans_id: {mask: keep_last=2}\ncustomer_entity:\n  note: keep\n")
	exec1 := func(q string) {
		_, err := conn.Exec(q)
		require.NoError(t, err, q)
	}
	exec1("DROP DATABASE IF EXISTS ex_dev")
	// Twice: a reload into the same database replaces everything.
	for range 2 {
		out, errs, code := c.run("export", policy, "--sanitized", "--to", url, "--password-file", pass,
			"--rules", rules, "--rename", "ex_shop=ex_dev", "--journal", journal)
		require.Equal(t, 0, code, errs)
		assert.Contains(t, out, "loaded snapshot")
		assert.NotContains(t, out+errs, srv.Password)
	}
	count := func(q string) (n int64) {
		require.NoError(t, conn.QueryRow(q).Scan(&n), q)
		return n
	}
	for _, tb := range []string{"customer_entity", "sales_order", "sales_order_address", "quote"} {
		assert.Equal(t, count("SELECT COUNT(*) FROM ex_shop."+tb), count("SELECT COUNT(*) FROM ex_dev."+tb), tb)
	}
	assert.Zero(t, count("SELECT COUNT(*) FROM ex_dev.customer_entity c JOIN ex_shop.customer_entity s ON s.email = c.email"))
	assert.Zero(t, count("SELECT COUNT(*) FROM ex_dev.sales_order_payment WHERE last_trans_id IS NOT NULL AND last_trans_id NOT REGEXP '^x*.{0,2}$'"))
	assert.Positive(t, count("SELECT COUNT(*) FROM ex_dev.sales_order_payment WHERE last_trans_id LIKE 'x%'"))
	journalText, err := os.ReadFile(filepath.Join(journal, "exshop.exports.jsonl"))
	require.NoError(t, err)
	assert.Contains(t, string(journalText), `"output":"mysql://`+srv.User+"@"+srv.Addr+`/"`)
	assert.NotContains(t, string(journalText), srv.Password)

	// A failing load names the table (an existing view of that name).
	exec1("DROP TABLE ex_dev.quote")
	exec1("CREATE VIEW ex_dev.quote AS SELECT 1 AS x")
	_, errs, code := c.run("export", policy, "--sanitized", "--to", url, "--password-file", pass, "--rename", "ex_shop=ex_dev", "--journal", journal)
	assert.Equal(t, 1, code)
	assert.Contains(t, errs, "table `ex_dev`.`quote`: ERROR")
	assert.NotContains(t, errs, srv.Password)
	// Without the password: the server says no, the message has no secret.
	_, errs, code = c.run("export", policy, "--sanitized", "--to", url, "--journal", journal)
	assert.Equal(t, 1, code)
	assert.Contains(t, errs, "Access denied")

	// Bad input: exit 2, a clear message, no file left behind.
	out := filepath.Join(dir, "out")
	require.NoError(t, os.MkdirAll(out, 0o755))
	for _, tc := range []struct {
		name   string
		policy string
		args   []string
		want   string
	}{
		{"unknown table", policy, []string{"--rules", file("r1.yaml", "no_such_table:\n  x: null\n")}, `table "no_such_table" is not in the snapshot`},
		{"unknown column", policy, []string{"--rules", file("r2.yaml", "customer_entity:\n  no_col: fake:email\n")}, `no column "no_col"`},
		{"rule does not fit the type", policy, []string{"--rules", file("r3.yaml", "customer_entity:\n  entity_id: fake:email\n")}, "fake:email on a int column"},
		{"bad rule in the file", policy, []string{"--rules", file("r4.yaml", "customer_entity:\n  email: {mask: keep_last=x}\n")}, "r4.yaml:2:11: customer_entity.email"},
		{"table in both", policy, []string{"--rules", file("r5.yaml", "quote: truncate\n")}, `table "quote" has rules in the policy too`},
		{"missing rules file", policy, []string{"--rules", filepath.Join(dir, "nope.yaml")}, "nope.yaml"},
		{"missing key file", file("nokey.yaml", policyText(filepath.Join(dir, "missing.key"))), nil, "missing.key"},
		{"bad rules_file of the policy", file("rulesfile.yaml", strings.Replace(policyText(key), "  rules:\n", "  rules_file: "+file("r6.yaml", "customer_entity:\n  no_col: null\n")+"\n  rules:\n", 1)), nil, `no column "no_col"`},
		{"--rules replaces rules_file", file("rulesfile2.yaml", strings.Replace(policyText(key), "  rules:\n", "  rules_file: "+filepath.Join(dir, "nope2.yaml")+"\n  rules:\n", 1)), []string{"--rules", file("r7.yaml", "customer_entity:\n  no_col2: null\n")}, `no column "no_col2"`},
		{"both -o and --to", policy, []string{"--to", url, "-o", filepath.Join(out, "x.sql")}, "give -o FILE"},
		{"--to not mysql", policy, []string{"--to", "postgres://u@h/"}, "give a mysql://"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(out, strings.ReplaceAll(tc.name, " ", "_")+".sql.zst")
			args := append([]string{"export", tc.policy, "--sanitized", "--journal", journal}, tc.args...)
			if !strings.Contains(tc.name, "--to") {
				args = append(args, "-o", path)
			}
			_, errs, code := c.run(args...)
			assert.Equal(t, 2, code, errs)
			assert.Contains(t, errs, tc.want)
			left, err := os.ReadDir(out)
			require.NoError(t, err)
			assert.Empty(t, left, fmt.Sprint(left))
		})
	}
}

// TestCLIExportPostgres: `lifeboat export` of a postgres target's
// snapshot with the orocommerce preset writes a file that psql loads.
func TestCLIExportPostgres(t *testing.T) {
	s := postgrestest.Start(t)
	s.CreateDatabase(t, "oro")
	s.MustPSQL(t, "oro", oroshop.SQL(100))
	dir := t.TempDir()
	file := func(name, text string) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, []byte(text), 0o600))
		return p
	}
	pass := file("pg.pass", s.Password+"\n")
	key := file("sanitize.key", "0123456789abcdef0123456789abcdef\n")
	c := &cli{t: t, env: map[string]string{"LIFEBOAT_REPO": "file://" + filepath.Join(dir, "repo"), "PGPASSWORD": ""}}
	c.ok("init", "--owner-key-out", filepath.Join(dir, "owner.key"), "--host-key-out", filepath.Join(dir, "host.key"))
	policy := file("oro.yaml", `version: 1
name: oro
repositories:
  primary:
    url: file://`+filepath.Join(dir, "repo")+`
    key_file: `+filepath.Join(dir, "owner.key")+`
targets:
  - name: orodb
    kind: postgres
    dsn: `+s.URL()+`
    password_file: `+pass+`
    databases: [oro]
sanitize:
  preset: orocommerce
  key_file: `+key+`
`)
	c.env["LIFEBOAT_REPO"] = ""
	journal := filepath.Join(dir, "journal")
	c.ok("run", policy, "--journal", journal)
	c.env["LIFEBOAT_KEY_FILE"] = filepath.Join(dir, "owner.key")

	out := filepath.Join(dir, "oro.sql")
	// The preset covers every generated table: lint finds nothing.
	out2, errs, code := c.run("sanitize", "lint", policy)
	require.Equal(t, 0, code, errs)
	assert.Contains(t, out2, "no findings")
	_, errs, code = c.run("export", policy, "--sanitized", "-o", out, "--journal", journal)
	require.Equal(t, 0, code, errs)
	dump, err := os.ReadFile(out)
	require.NoError(t, err)
	for _, e := range strings.Split(s.MustPSQL(t, "oro", "SELECT email FROM oro_customer_user UNION SELECT email FROM oro_user"), "\n") {
		assert.NotContains(t, string(dump), e)
	}
	s.CreateDatabase(t, "oro_dev")
	s.MustPSQL(t, "oro_dev", `\i `+out)
	for _, tb := range []string{"oro_customer_user", "oro_order", "oro_order_address"} {
		assert.Equal(t, s.MustPSQL(t, "oro", "SELECT count(*) FROM "+tb), s.MustPSQL(t, "oro_dev", "SELECT count(*) FROM "+tb), tb)
	}
	assert.Equal(t, "0", s.MustPSQL(t, "oro_dev", "SELECT count(*) FROM oro_audit"))

	// --to mysql:// does not take a postgres snapshot; --rename has no sense.
	_, errs, code = c.run("export", policy, "--sanitized", "--to", "mysql://u@127.0.0.1:1/", "--journal", journal)
	assert.Equal(t, 2, code)
	assert.Contains(t, errs, "loads a mysql snapshot")
	_, errs, code = c.run("export", policy, "--sanitized", "-o", filepath.Join(dir, "x.sql"), "--rename", "oro=x", "--journal", journal)
	assert.Equal(t, 2, code)
	assert.Contains(t, errs, "--rename does not apply")
	assert.NoFileExists(t, filepath.Join(dir, "x.sql"))
}

// TestCLIExportToServerCancelled: an export into a server that is
// cancelled (Ctrl-C) or fails to read the repository in the middle of the
// load returns that error, not the killed client's "signal: killed" or
// its error on a cut statement, and the client runs nothing more (the
// tables after the cut are not created). A broken pipe still reports the
// client's own error (TestCLIExport, "a failing load names the table").
func TestCLIExportToServerCancelled(t *testing.T) {
	ctx := context.Background()
	srv := mysqltest.Shared(t)
	conn := srv.DB(t, "")
	_, err := shop.Generate(ctx, conn, shop.Options{Database: "ex_cut", Rows: 3000, Replace: true})
	require.NoError(t, err)
	b, err := storage.OpenWith(ctx, "mem://", storage.OpenOptions{Create: true})
	require.NoError(t, err)
	t.Cleanup(func() { b.Close() })
	tr := repotest.Init(t, b, repotest.SmallChunks, 64<<10) // small packs: one can go missing alone
	r := tr.Open(t, tr.Owner)
	src, err := mysql.New(mysql.Options{DSN: srv.DSN(), Password: srv.Password, Databases: []string{"ex_cut"}})
	require.NoError(t, err)
	res, err := engine.Backup(ctx, r, src, engine.BackupOptions{Workers: 2})
	require.NoError(t, err)
	c, err := sanitize.Compile(policies.Sanitize{Preset: "magento2"}, sanitize.Options{Key: []byte("0123456789abcdef0123456789abcdef")})
	require.NoError(t, err)
	server, err := mysql.ParseDSN("mysql://"+srv.User+"@"+srv.Addr+"/", srv.Password)
	require.NoError(t, err)
	tables := func(db string) (n int) {
		require.NoError(t, conn.QueryRow("SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = ?", db).Scan(&n))
		return n
	}
	_, err = conn.Exec("DROP DATABASE IF EXISTS ex_cut_dev")
	require.NoError(t, err)

	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() { // Ctrl-C once the client has created the first table
		for cctx.Err() == nil {
			var n int
			if conn.QueryRow("SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = 'ex_cut_dev'").Scan(&n) == nil && n > 0 {
				cancel()
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	}()
	_, _, err = sanitize.Run(cctx, r.SnapshotReader(res.Snapshot), c, sanitize.RunOptions{Server: server, AllowUnruledPII: true,
		Export: sanitize.ExportOptions{Rename: map[string]string{"ex_cut": "ex_cut_dev"}, Jobs: 1}})
	require.ErrorIs(t, err, context.Canceled)
	assert.NotContains(t, err.Error(), "signal")
	assert.NotContains(t, err.Error(), "ERROR")
	assert.NotContains(t, err.Error(), srv.Password)
	time.Sleep(200 * time.Millisecond) // a client still running would go on loading
	assert.Less(t, tables("ex_cut_dev"), tables("ex_cut"), "the load stopped at the cut")

	// A repository read that fails in the middle (a pack holding only
	// later rows of the biggest table is gone): that error, not the
	// client's syntax error on the cut statement.
	var big *snapshot.Node
	early := map[snapshot.ID]bool{} // packs read before the biggest table's rows
	packOf := func(id snapshot.ID) snapshot.ID {
		loc, ok := r.Index().Lookup(id)
		require.True(t, ok)
		return loc.Pack
	}
	tw := r.NewTreeReader(ctx, res.Snapshot)
	for {
		n, err := tw.Next()
		if err == io.EOF {
			break
		}
		require.NoError(t, err)
		if !strings.HasSuffix(n.Path, ".data") {
			for _, id := range n.Content {
				early[packOf(id)] = true
			}
		}
		if big == nil || len(n.Content) > len(big.Content) {
			big = n
		}
	}
	early[packOf(big.Content[0])] = true
	var gone snapshot.ID
	for i := len(big.Content) - 1; i > 0 && gone.IsNull(); i-- {
		if p := packOf(big.Content[i]); !early[p] {
			gone = p
		}
	}
	require.False(t, gone.IsNull(), "no pack holds only later rows of %s", big.Path)
	pack := gone.String()
	require.NoError(t, b.Delete(ctx, "data/"+pack[:2]+"/"+pack))
	_, err = conn.Exec("DROP DATABASE IF EXISTS ex_cut_dev")
	require.NoError(t, err)
	// A new handle: the cancelled export may have read that pack before
	// the cancel reached it, and r keeps the readers of recent packs.
	r = tr.Open(t, tr.Owner)
	_, _, err = sanitize.Run(ctx, r.SnapshotReader(res.Snapshot), c, sanitize.RunOptions{Server: server, AllowUnruledPII: true,
		Export: sanitize.ExportOptions{Rename: map[string]string{"ex_cut": "ex_cut_dev"}, Jobs: 1}})
	require.Error(t, err)
	assert.Contains(t, err.Error(), pack[:8])
	assert.NotContains(t, err.Error(), "ERROR")
	assert.NotContains(t, err.Error(), "signal")
	assert.Less(t, tables("ex_cut_dev"), tables("ex_cut"), "the load stopped at the failed read")
}
