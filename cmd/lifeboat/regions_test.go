package main

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lifeboat-backup/lifeboat/engine/storage/miniotest"
	"github.com/lifeboat-backup/lifeboat/internal/testutil/gentree"
	"github.com/lifeboat-backup/lifeboat/internal/testutil/shop"
	"github.com/lifeboat-backup/lifeboat/internal/testutil/treecmp"
	"github.com/lifeboat-backup/lifeboat/targets/mysql/mysqltest"
)

func TestMain(m *testing.M) {
	code := mysqltest.Main(m)
	os.Exit(code)
}

// checksums returns CHECKSUM TABLE of every base table of a database.
func checksums(t *testing.T, db *sql.DB, database string) map[string]int64 {
	rows, err := db.Query("SELECT table_name FROM information_schema.tables WHERE table_schema = ? AND table_type = 'BASE TABLE'", database)
	require.NoError(t, err)
	var names []string
	for rows.Next() {
		var n string
		require.NoError(t, rows.Scan(&n))
		names = append(names, n)
	}
	require.NoError(t, rows.Close())
	out := map[string]int64{}
	for _, n := range names {
		var tbl string
		var sum sql.NullInt64
		require.NoError(t, db.QueryRow("CHECKSUM TABLE `"+database+"`.`"+escapeTick(n)+"`").Scan(&tbl, &sum))
		out[n] = sum.Int64
	}
	return out
}

func escapeTick(s string) string {
	b := []byte{}
	for i := 0; i < len(s); i++ {
		if s[i] == '`' {
			b = append(b, '`')
		}
		b = append(b, s[i])
	}
	return string(b)
}

// TestFailoverTwoRegions is the replication issue's acceptance run: two
// MinIO servers as two regions, a policy with a files and a MariaDB target,
// `lifeboat run` backs up and replicates, the first region is killed, and
// `lifeboat failover` restores both targets from the second, identical.
func TestFailoverTwoRegions(t *testing.T) {
	if testing.Short() {
		t.Skip("two MinIO servers and MariaDB")
	}
	ctx := context.Background()
	eu, us := miniotest.Start(t), miniotest.Start(t)
	eu.CreateBucket(t, "shop-eu")
	us.CreateBucket(t, "shop-us")
	db := mysqltest.Shared(t)
	conn := db.DB(t, "")
	_, err := shop.Generate(ctx, conn, shop.Options{Database: "fo_shop", Rows: 500, Replace: true})
	require.NoError(t, err)

	dir := t.TempDir()
	src := filepath.Join(dir, "media")
	_, err = gentree.Generate(src, gentree.Options{Size: 4 << 20, Seed: 8, NoSpecial: true})
	require.NoError(t, err)
	pass := filepath.Join(dir, "mysql.pass")
	require.NoError(t, os.WriteFile(pass, []byte(db.Password+"\n"), 0o600))

	c := &cli{t: t, env: map[string]string{"LIFEBOAT_REPO": eu.URL("shop-eu", "repo")}}
	c.ok("init", "--owner-key-out", filepath.Join(dir, "owner.key"), "--host-key-out", filepath.Join(dir, "host.key"))
	policy := filepath.Join(dir, "policy.yaml")
	require.NoError(t, os.WriteFile(policy, []byte(`version: 1
name: shop
host: shop-db-1
repositories:
  primary:
    url: `+eu.URL("shop-eu", "repo")+`
    key_file: `+filepath.Join(dir, "host.key")+`
  secondaries:
    - name: dr-us
      url: `+us.URL("shop-us", "repo")+`
targets:
  - name: media
    kind: files
    paths: [`+src+`]
  - name: shopdb
    kind: mysql
    dsn: `+db.DSN()+`
    password_file: `+pass+`
    databases: [fo_shop]
`), 0o600))
	c.env["LIFEBOAT_REPO"] = ""
	out := c.ok("run", policy, "--journal", filepath.Join(dir, "journal"))
	assert.Contains(t, out, "replicate dr-us")

	eu.Kill()

	c.env["LIFEBOAT_KEY_FILE"] = filepath.Join(dir, "owner.key")
	out = c.ok("failover", policy, "--target", "media", "--to", filepath.Join(dir, "restored"), "--keep-setuid")
	assert.Contains(t, out, "failover from dr-us")
	diffs, err := treecmp.Compare(src, filepath.Join(dir, "restored", "media"), treecmp.Options{})
	require.NoError(t, err)
	require.Empty(t, diffs)

	c.ok("failover", policy, "--target", "shopdb", "--to", db.URL(), "--rename", "fo_shop=fo_shop_dr")
	assert.Equal(t, checksums(t, conn, "fo_shop"), checksums(t, conn, "fo_shop_dr"))
}
