package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lifeboat-backup/lifeboat/internal/testutil/shop"
	"github.com/lifeboat-backup/lifeboat/restore/drill"
	"github.com/lifeboat-backup/lifeboat/targets/mysql/mysqltest"
	"github.com/lifeboat-backup/lifeboat/targets/postgres/postgrestest"
)

// A drill of a restic policy (files + MySQL) from the primary and from a
// secondary that restic copy filled and that has its own password: the
// checks run on what restic restored, RPO and RTO are measured, and the
// report is journaled but not written into the restic repository.
func TestDrillResticEngine(t *testing.T) {
	if testing.Short() {
		t.Skip("MariaDB and restic")
	}
	bin := useRestic(t)
	db := mysqltest.Shared(t)
	conn := db.DB(t, "")
	ctx := context.Background()
	_, err := shop.Generate(ctx, conn, shop.Options{Database: "rd_shop", Rows: 250, Replace: true})
	require.NoError(t, err)
	var orders int
	require.NoError(t, conn.QueryRow("SELECT COUNT(*) FROM rd_shop.sales_order").Scan(&orders))
	require.NotZero(t, orders)

	dir := t.TempDir()
	media := filepath.Join(dir, "media")
	for i := range 30 {
		p := filepath.Join(media, "catalog", fmt.Sprintf("%02d", i%3), fmt.Sprintf("img%02d.jpg", i))
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.WriteFile(p, []byte(strings.Repeat("x", 1000+i)), 0o644))
	}
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, []byte(content), 0o600))
		return p
	}
	mysqlPass := write("mysql.pass", db.Password+"\n")
	primaryPass := write("primary.pass", "primary horse battery\n")
	drPass := write("dr.pass", "dr staple battery\n")
	wrongPass := write("wrong.pass", "not the password\n")
	repoDir, drDir := filepath.Join(dir, "restic"), filepath.Join(dir, "restic-dr")
	policy := func(name, drPassword, extraTarget string) string {
		return write(name+".yaml", `version: 1
name: shop
host: shop-1
repositories:
  primary:
    url: file://`+repoDir+`
    engine: restic
    password_file: `+primaryPass+`
  secondaries:
    - name: dr
      url: file://`+drDir+`
      password_file: `+drPassword+`
targets:
  - name: media
    kind: files
    paths: [`+media+`]
  - name: shopdb
    kind: mysql
    dsn: `+db.DSN()+`
    password_file: `+mysqlPass+`
    databases: [rd_shop]
`+extraTarget+`objectives:
  rpo: 1h
  rto: 30m
drill:
  checks:
    - name: orders restored
      target: shopdb
      sql: SELECT COUNT(*) FROM rd_shop.sales_order
      expect: "`+fmt.Sprint(orders)+`"
    - name: product images
      target: media
      path: catalog
      min_files: 30
`)
	}
	good := policy("good", drPass, "")
	journal := filepath.Join(dir, "journal")
	c := &cli{t: t, env: map[string]string{"LIFEBOAT_RESTIC": bin, "LIFEBOAT_REPO": "", "LIFEBOAT_ENGINE": "",
		"LIFEBOAT_PASSPHRASE_FILE": "", "LIFEBOAT_KEY_FILE": ""}}
	c.ok("init", "--policy", good)
	out := c.ok("run", good, "--journal", journal)
	require.Contains(t, out, "replicate dr: 2 objects")

	drilled := map[string]string{} // from -> the media snapshot drilled
	for _, from := range []string{"primary", "dr"} {
		t.Run("from "+from, func(t *testing.T) {
			start := time.Now()
			out := c.ok("drill", good, "--from", from, "--journal", journal, "--json")
			var sum struct {
				Drill drill.Report `json:"drill"`
			}
			lines := strings.Split(strings.TrimSpace(out), "\n")
			require.NoError(t, json.Unmarshal([]byte(lines[len(lines)-1]), &sum), out)
			rep := sum.Drill
			assert.Equal(t, drill.Passed, rep.Status, "%+v", rep)
			assert.Equal(t, from, rep.From)
			require.Len(t, rep.Checks, 2)
			for _, ch := range rep.Checks {
				assert.True(t, ch.OK, "%+v", ch)
			}
			assert.Equal(t, fmt.Sprint(orders), rep.Checks[0].Value)
			assert.Equal(t, "30 files, 30435 bytes", rep.Checks[1].Value)
			require.Len(t, rep.Targets, 2)
			for _, tg := range rep.Targets {
				assert.Empty(t, tg.Error, tg.Name)
				assert.Len(t, tg.Snapshot, 64, tg.Name)
				assert.False(t, tg.RecoveryPoint.IsZero(), tg.Name)
				assert.False(t, tg.RecoveryPoint.After(start), tg.Name)
				assert.Greater(t, tg.RPOSeconds, 0.0, tg.Name)
			}
			// restic's files_restored counts the 4 directories too
			assert.EqualValues(t, 34, rep.Targets[0].Files)
			assert.Equal(t, 1, rep.Targets[1].Databases)
			assert.Greater(t, rep.RTO.Seconds, 0.0)
			assert.Less(t, rep.RTO.Seconds, time.Since(start).Seconds())
			assert.True(t, rep.RTO.Met)
			assert.Greater(t, rep.RPO.Seconds, 0.0)
			assert.True(t, rep.RPO.Met)
			assert.EqualValues(t, 1800, rep.RTO.Objective)
			drilled[from] = rep.Targets[0].Snapshot
		})
	}
	// restic copy gives the secondary's copies IDs of their own
	assert.NotEqual(t, drilled["primary"], drilled["dr"], "the drill from dr read the secondary")
	hist, err := drill.Journal(journal).Read("shop")
	require.NoError(t, err)
	assert.Len(t, hist, 2, "both drills journaled")
	for _, d := range []string{repoDir, drDir} {
		assert.NoDirExists(t, filepath.Join(d, "records"), "no lifeboat record in a restic repository")
	}

	wrongDR := policy("wrong-dr", wrongPass, "")
	neverRun := policy("never-run", drPass, `  - name: uploads
    kind: files
    paths: [`+media+`]
`)
	tests := []struct {
		name string
		env  map[string]string
		args []string
		code int
		msg  string
	}{
		{"wrong primary password", map[string]string{"LIFEBOAT_PASSPHRASE_FILE": wrongPass}, []string{"drill", good},
			exitWrongKey, "drill from primary: target media: restic snapshots on file://" + repoDir + ": wrong password for the restic repository"},
		{"wrong secondary password", nil, []string{"drill", wrongDR, "--from", "dr"},
			exitWrongKey, "drill from dr: target media: restic snapshots on file://" + drDir + ": wrong password for the restic repository"},
		{"target never backed up", nil, []string{"drill", neverRun, "--target", "uploads"},
			exitFailure, "drill from primary: target uploads: no snapshot of host shop-1 to drill"},
		{"secondary not in the policy", nil, []string{"drill", good, "--from", "elsewhere"},
			exitUsage, `"elsewhere"`},
		{"spot check", nil, []string{"drill", good, "--spot-check"},
			exitUsage, "this policy's repository engine is restic"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, errs, code := c.with(t, tt.env).run(append(tt.args, "--journal", journal)...)
			assert.Equal(t, tt.code, code, "%s%s", out, errs)
			assert.Contains(t, errs, tt.msg)
			for _, secret := range []string{"primary horse", "dr staple", "not the password"} {
				assert.NotContains(t, out+errs, secret)
			}
		})
	}
}

// A postgres target drilled from a restic repository: restored from
// `restic dump` into a scratch PostgreSQL, checked with psql.
func TestDrillResticPostgres(t *testing.T) {
	if testing.Short() {
		t.Skip("PostgreSQL and restic")
	}
	bin := useRestic(t)
	s := postgrestest.Start(t)
	s.CreateDatabase(t, "oro")
	s.MustPSQL(t, "oro", `CREATE TABLE oro_order (id serial PRIMARY KEY, total numeric(12,2), note text);
		INSERT INTO oro_order (total, note) SELECT g * 1.5, 'Bestellung ' || g FROM generate_series(1, 700) g`)
	digest := `SELECT md5(string_agg(t::text, '|' ORDER BY t::text)) FROM oro_order t`
	want := s.MustPSQL(t, "oro", digest)

	dir := t.TempDir()
	pgPass := filepath.Join(dir, "pg.pass")
	require.NoError(t, os.WriteFile(pgPass, []byte(s.Password+"\n"), 0o600))
	resticPass := filepath.Join(dir, "restic.pass")
	require.NoError(t, os.WriteFile(resticPass, []byte("oro restic password\n"), 0o600))
	policy := filepath.Join(dir, "oro.yaml")
	require.NoError(t, os.WriteFile(policy, []byte(`version: 1
name: oro
host: oro-1
repositories:
  primary:
    url: file://`+filepath.Join(dir, "restic")+`
    engine: restic
    password_file: `+resticPass+`
targets:
  - name: orodb
    kind: postgres
    dsn: `+s.URL()+`
    password_file: `+pgPass+`
    databases: [oro]
objectives:
  rpo: 1h
drill:
  checks:
    - name: orders intact
      target: orodb
      sql: "`+digest+`"
      expect: "`+want+`"
`), 0o600))
	c := &cli{t: t, env: map[string]string{"LIFEBOAT_RESTIC": bin, "LIFEBOAT_REPO": "", "LIFEBOAT_ENGINE": "",
		"LIFEBOAT_PASSPHRASE_FILE": "", "LIFEBOAT_KEY_FILE": "", "PGPASSWORD": ""}}
	journal := filepath.Join(dir, "journal")
	c.ok("init", "--policy", policy)
	c.ok("run", policy, "--journal", journal)
	out := c.ok("drill", policy, "--journal", journal, "--json")
	var sum struct {
		Drill drill.Report `json:"drill"`
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	require.NoError(t, json.Unmarshal([]byte(lines[len(lines)-1]), &sum), out)
	rep := sum.Drill
	require.Equal(t, drill.Passed, rep.Status, "%+v", rep)
	require.Len(t, rep.Checks, 1)
	assert.Equal(t, want, rep.Checks[0].Value)
	require.Len(t, rep.Targets, 1)
	assert.Equal(t, 1, rep.Targets[0].Databases)
	assert.True(t, rep.RPO.Met)
	assert.Greater(t, rep.RPO.Seconds, 0.0)
	assert.Greater(t, rep.RTO.Seconds, 0.0)
}
