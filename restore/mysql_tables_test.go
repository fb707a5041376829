package restore_test

import (
	"context"
	"sort"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/lifeboat-backup/lifeboat/engine/repo/repotest"
	"github.com/lifeboat-backup/lifeboat/internal/testutil/shop"
	"github.com/lifeboat-backup/lifeboat/restore"
	"github.com/lifeboat-backup/lifeboat/targets/mysql"
	"github.com/lifeboat-backup/lifeboat/targets/mysql/mysqltest"
)

// TestMySQLRestoreTables: --tables restores the matching tables, with the
// triggers defined on them, into a new or an existing database; nothing
// else of the snapshot. Patterns matching nothing, or malformed, fail
// before anything is created.
func TestMySQLRestoreTables(t *testing.T) {
	srv := mysqltest.Shared(t)
	db := srv.DB(t, "")
	ctx := context.Background()
	_, err := shop.Generate(ctx, db, shop.Options{Database: "shop_tt", Rows: 200, Replace: true})
	require.NoError(t, err)
	exec(t, db, "DROP DATABASE IF EXISTS shop_tt_part", "DROP DATABASE IF EXISTS shop_tt_none")
	_, r := repotest.Mem(t)
	res, err := backupMySQL(t, r, mysql.Options{DSN: srv.DSN(), Password: srv.Password, Databases: []string{"shop_tt"}, Jobs: 2})
	require.NoError(t, err)
	s := r.SnapshotReader(res.Snapshot)
	opts := func(tables ...string) restore.MySQLOptions {
		return restore.MySQLOptions{DSN: srv.DSN(), Password: srv.Password, Rename: map[string]string{"shop_tt": "shop_tt_part"}, Tables: tables}
	}
	list := func(database, typ string) []string {
		rows, err := db.Query("SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_TYPE = ?", database, typ)
		require.NoError(t, err)
		defer rows.Close()
		var out []string
		for rows.Next() {
			var n string
			require.NoError(t, rows.Scan(&n))
			out = append(out, n)
		}
		sort.Strings(out)
		return out
	}

	st, err := restore.MySQL(ctx, s, opts("shop_tt.sales_order_*", "shop_tt.quote"))
	require.NoError(t, err)
	require.Equal(t, []string{"quote", "sales_order_address", "sales_order_item", "sales_order_payment"}, list("shop_tt_part", "BASE TABLE"))
	require.Empty(t, list("shop_tt_part", "VIEW"), "views are not restored with --tables")
	require.Equal(t, 4, st.Tables)
	require.Equal(t, 1, st.Objects, "the trigger on quote")
	require.Equal(t, showCreate(t, db, "TRIGGER", "shop_tt", "quote_touch", 2), showCreate(t, db, "TRIGGER", "shop_tt_part", "quote_touch", 2))
	for _, tbl := range []string{"quote", "sales_order_item"} {
		n1, h1, c1 := tableDigest(t, db, "shop_tt", tbl)
		n2, h2, c2 := tableDigest(t, db, "shop_tt_part", tbl)
		require.Equal(t, []any{n1, h1, c1}, []any{n2, h2, c2}, tbl)
	}

	// One more table into the now existing database; the restored ones
	// would clash.
	_, err = restore.MySQL(ctx, s, opts("shop_tt.customer_entity"))
	require.NoError(t, err)
	require.Contains(t, list("shop_tt_part", "BASE TABLE"), "customer_entity")
	_, err = restore.MySQL(ctx, s, opts("shop_tt.quote"))
	require.ErrorContains(t, err, "already has quote")

	for _, tc := range []struct {
		tables []string
		want   string
	}{
		{[]string{"shop_tt.nope*"}, "--tables shop_tt.nope*: no table of the snapshot matches"},
		{[]string{"other.quote"}, "no table of the snapshot matches"},
		{[]string{"shop_tt.[quote"}, `--tables "shop_tt.[quote": syntax error in pattern`},
	} {
		o := opts(tc.tables...)
		o.Rename = map[string]string{"shop_tt": "shop_tt_none"}
		_, err := restore.MySQL(ctx, s, o)
		require.ErrorContains(t, err, tc.want)
		require.Empty(t, list("shop_tt_none", "BASE TABLE"), "nothing created")
	}
}
