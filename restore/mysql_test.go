package restore_test

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/lifeboat-backup/lifeboat/engine"
	"github.com/lifeboat-backup/lifeboat/engine/repo"
	"github.com/lifeboat-backup/lifeboat/engine/repo/repotest"
	"github.com/lifeboat-backup/lifeboat/internal/testutil/shop"
	"github.com/lifeboat-backup/lifeboat/restore"
	"github.com/lifeboat-backup/lifeboat/targets/mysql"
	"github.com/lifeboat-backup/lifeboat/targets/mysql/mysqltest"
)

func TestMain(m *testing.M) { os.Exit(mysqltest.Main(m)) }

var (
	_ engine.Source          = (*mysql.Source)(nil)
	_ engine.RecoveryPointer = (*mysql.Source)(nil)
	_ engine.AllOrNothing    = (*mysql.Source)(nil)
)

func backupMySQL(t *testing.T, r *repo.Repository, o mysql.Options) (*engine.BackupResult, error) {
	t.Helper()
	src, err := mysql.New(o)
	require.NoError(t, err)
	return engine.Backup(context.Background(), r, src, engine.BackupOptions{Workers: 4})
}

func exec(t *testing.T, db *sql.DB, qs ...string) {
	t.Helper()
	for _, q := range qs {
		_, err := db.Exec(q)
		require.NoError(t, err, q)
	}
}

// tableDigest returns the row count and a hash of all rows (raw bytes,
// NULL distinct from any string) in primary-key order, plus CHECKSUM TABLE.
func tableDigest(t *testing.T, db *sql.DB, database, table string) (int64, string, int64) {
	t.Helper()
	ctx := context.Background()
	c, err := db.Conn(ctx)
	require.NoError(t, err)
	defer c.Close()
	_, err = c.ExecContext(ctx, "SET NAMES binary")
	require.NoError(t, err)
	_, err = c.ExecContext(ctx, "SET time_zone = '+00:00'")
	require.NoError(t, err)
	name := mysql.QuoteName(database) + "." + mysql.QuoteName(table)
	rows, err := c.QueryContext(ctx, "SELECT * FROM "+name+" ORDER BY 1")
	require.NoError(t, err)
	defer rows.Close()
	cols, _ := rows.Columns()
	vals := make([]sql.RawBytes, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	h := sha256.New()
	var n int64
	for rows.Next() {
		require.NoError(t, rows.Scan(ptrs...))
		for _, v := range vals {
			if v == nil {
				h.Write([]byte{0})
			} else {
				fmt.Fprintf(h, "\x01%d:", len(v))
				h.Write(v)
			}
		}
		n++
	}
	require.NoError(t, rows.Err())
	var sum sql.NullInt64
	require.NoError(t, c.QueryRowContext(ctx, "CHECKSUM TABLE "+name).Scan(new(string), &sum))
	return n, hex.EncodeToString(h.Sum(nil)), sum.Int64
}

func showCreate(t *testing.T, db *sql.DB, kind, database, name string, col int) string {
	t.Helper()
	rows, err := db.Query("SHOW CREATE " + kind + " " + mysql.QuoteName(database) + "." + mysql.QuoteName(name))
	require.NoError(t, err)
	defer rows.Close()
	cols, _ := rows.Columns()
	vals := make([]sql.NullString, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	require.True(t, rows.Next(), "SHOW CREATE %s %s.%s", kind, database, name)
	require.NoError(t, rows.Scan(ptrs...))
	return vals[col].String
}

func TestMySQLShopRoundTrip(t *testing.T) {
	srv := mysqltest.Shared(t)
	db := srv.DB(t, "")
	rowsN := 3000
	if testing.Short() {
		rowsN = 300
	}
	_, err := shop.Generate(context.Background(), db, shop.Options{Database: "shop_rt", Rows: rowsN, Replace: true})
	require.NoError(t, err)
	exec(t, db, "DROP DATABASE IF EXISTS shop_rt_copy")

	_, r := repotest.Mem(t)
	res, err := backupMySQL(t, r, mysql.Options{DSN: srv.DSN(), Password: srv.Password, Databases: []string{"shop_rt"}, Jobs: 3})
	require.NoError(t, err)
	require.Empty(t, res.Warnings)
	sn := res.Snapshot
	require.Equal(t, "mysql", sn.Kind)
	require.Equal(t, []string{"mysql://lifeboat@" + srv.Addr + "/shop_rt"}, sn.Paths)
	rp := sn.RecoveryPoint.Details
	require.NotEmpty(t, rp["binlog_file"], "%v", rp)
	require.NotEmpty(t, rp["binlog_position"])
	require.NotEmpty(t, rp["gtid_binlog_pos"])
	require.Equal(t, "ftwrl", rp["lock_mode"])
	for k, v := range rp {
		require.NotContains(t, v, srv.Password, k)
	}
	for _, p := range sn.Paths {
		require.NotContains(t, p, srv.Password)
	}

	// Big tables in pieces of 16 KiB on 4 connections, indexes after the
	// rows; the shop's big AUTO_INCREMENT tables (several) in lanes, their
	// pieces as LOAD DATA one at a time per table (lock mode 1).
	loads := func() (n int64) {
		require.NoError(t, db.QueryRow("SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME = 'COM_LOAD'").Scan(&n))
		return n
	}
	loadsBefore := loads()
	st, err := restore.MySQL(context.Background(), r.SnapshotReader(sn), restore.MySQLOptions{DSN: srv.DSN(), Password: srv.Password,
		Rename: map[string]string{"shop_rt": "shop_rt_copy"}, Jobs: 4, PieceBytes: 16 << 10, DeferIndexesFrom: 1})
	require.NoError(t, err)
	require.Equal(t, 1, st.Databases)
	require.Equal(t, len(shop.Tables()), st.Tables)
	require.Equal(t, 6, st.Objects)
	require.Greater(t, loads()-loadsBefore, int64(3*len(shop.Tables())), "big tables must be loaded in pieces")

	counts := shop.RowCounts(rowsN)
	for _, tbl := range shop.Tables() {
		n1, h1, c1 := tableDigest(t, db, "shop_rt", tbl)
		n2, h2, c2 := tableDigest(t, db, "shop_rt_copy", tbl)
		require.Equal(t, counts[tbl], n1, tbl)
		require.Equal(t, n1, n2, tbl)
		require.Equal(t, h1, h2, "rows of %s", tbl)
		require.Equal(t, c1, c2, "CHECKSUM TABLE %s", tbl)
		require.Equal(t, showCreate(t, db, "TABLE", "shop_rt", tbl, 1), showCreate(t, db, "TABLE", "shop_rt_copy", tbl, 1))
	}
	rename := func(s string) string { return strings.ReplaceAll(s, "`shop_rt`.", "`shop_rt_copy`.") }
	for _, o := range []struct {
		kind, name string
		col        int
	}{{"VIEW", "customer_orders", 1}, {"VIEW", "view on view", 1}, {"FUNCTION", "order_total_with_tax", 2},
		{"PROCEDURE", "customer_count", 2}, {"TRIGGER", "quote_touch", 2}, {"EVENT", "purge_report_event", 3}} {
		require.Equal(t, rename(showCreate(t, db, o.kind, "shop_rt", o.name, o.col)), showCreate(t, db, o.kind, "shop_rt_copy", o.name, o.col), o.kind+" "+o.name)
	}

	// Tricky values, checked one by one.
	var all []byte
	require.NoError(t, db.QueryRow("SELECT b FROM shop_rt_copy.`odd table ``name` WHERE id = 1").Scan(&all))
	require.Len(t, all, 256)
	for i, c := range all {
		require.Equal(t, byte(i), c)
	}
	var nullStr, nullVal, empty sql.NullString
	require.NoError(t, db.QueryRow("SELECT (SELECT b FROM shop_rt_copy.`odd table ``name` WHERE id = 4), "+
		"(SELECT b FROM shop_rt_copy.`odd table ``name` WHERE id = 2), (SELECT b FROM shop_rt_copy.`odd table ``name` WHERE id = 3)").Scan(&nullStr, &nullVal, &empty))
	require.Equal(t, sql.NullString{String: "NULL", Valid: true}, nullStr)
	require.False(t, nullVal.Valid)
	require.Equal(t, sql.NullString{String: "", Valid: true}, empty)
	var zero string
	require.NoError(t, db.QueryRow("SELECT CAST(d AS CHAR) FROM shop_rt_copy.`odd table ``name` WHERE id = 1").Scan(&zero))
	require.Equal(t, "0000-00-00", zero)

	// A second restore into the same names refuses to start.
	_, err = restore.MySQL(context.Background(), r.SnapshotReader(sn), restore.MySQLOptions{DSN: srv.DSN(), Password: srv.Password,
		Rename: map[string]string{"shop_rt": "shop_rt_copy"}})
	require.ErrorContains(t, err, "already has")
}

// TestMySQLConsistency moves money between accounts and inserts pairs of
// rows in transactions while backups run: every snapshot must hold the
// invariant total and an even number of pair rows, and (with a lock) it
// must match its recorded GTID position exactly: it holds every writer
// transaction whose GTID is at or below it and none above.
func TestMySQLConsistency(t *testing.T) {
	srv := mysqltest.Shared(t)
	db := srv.DB(t, "")
	exec(t, db, "DROP DATABASE IF EXISTS bank", "CREATE DATABASE bank",
		"CREATE TABLE bank.accounts (id INT PRIMARY KEY, balance BIGINT NOT NULL) ENGINE=InnoDB",
		"CREATE TABLE bank.pairs (id BIGINT AUTO_INCREMENT PRIMARY KEY, tx BIGINT NOT NULL, pad VARCHAR(200)) ENGINE=InnoDB")
	var b strings.Builder
	b.WriteString("INSERT INTO bank.accounts VALUES ")
	for i := range 100 {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "(%d, 1000)", i)
	}
	exec(t, db, b.String())
	_, r := repotest.Mem(t)

	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var moves atomic.Int64
	var gtidMu sync.Mutex
	gtidSeq := map[int64]int64{} // writer transaction -> its GTID's sequence number
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := db.Conn(ctx)
			if err != nil {
				return
			}
			defer c.Close()
			for i := 0; ctx.Err() == nil; i++ {
				from, to, txID := (i*7+w)%100, (i*13+w*3+1)%100, int64(w)*1_000_000_000+int64(i)
				tx, err := c.BeginTx(ctx, nil)
				if err != nil {
					return
				}
				_, e1 := tx.Exec("UPDATE bank.accounts SET balance = balance - 3 WHERE id = ?", from)
				_, e2 := tx.Exec("INSERT INTO bank.pairs (tx, pad) VALUES (?, REPEAT('x', 150)), (?, REPEAT('y', 150))", txID, txID)
				_, e3 := tx.Exec("UPDATE bank.accounts SET balance = balance + 3 WHERE id = ?", to)
				if e1 != nil || e2 != nil || e3 != nil {
					_ = tx.Rollback()
					continue
				}
				if tx.Commit() != nil {
					continue
				}
				moves.Add(1)
				var gtid string
				if c.QueryRowContext(context.Background(), "SELECT @@last_gtid").Scan(&gtid) != nil {
					continue
				}
				if seq, err := gtidSequence(gtid); err == nil {
					gtidMu.Lock()
					gtidSeq[txID] = seq
					gtidMu.Unlock()
				}
			}
		}()
	}
	defer func() { cancel(); wg.Wait() }()
	time.Sleep(200 * time.Millisecond)

	for i, mode := range []mysql.LockMode{mysql.LockFTWRL, mysql.LockBackup, mysql.LockSingle} {
		res, err := backupMySQL(t, r, mysql.Options{DSN: srv.DSN(), Password: srv.Password, Databases: []string{"bank"}, LockMode: mode, Jobs: 2})
		require.NoError(t, err, mode)
		target := fmt.Sprintf("bank_copy%d", i)
		exec(t, db, "DROP DATABASE IF EXISTS "+target)
		_, err = restore.MySQL(context.Background(), r.SnapshotReader(res.Snapshot), restore.MySQLOptions{DSN: srv.DSN(), Password: srv.Password,
			Rename: map[string]string{"bank": target}, Jobs: 2})
		require.NoError(t, err, mode)
		var total, pairs int64
		require.NoError(t, db.QueryRow("SELECT SUM(balance) FROM "+target+".accounts").Scan(&total))
		require.NoError(t, db.QueryRow("SELECT COUNT(*) FROM "+target+".pairs").Scan(&pairs))
		require.Equal(t, int64(100*1000), total, mode)
		require.Zero(t, pairs%2, "%s: %d pair rows", mode, pairs)
		rp := res.Snapshot.RecoveryPoint.Details
		require.NotEmpty(t, rp["binlog_position"], mode)
		t.Logf("%s: %d pair rows in the snapshot, lock held %ss, %d moves so far", mode, pairs, rp["lock_seconds"], moves.Load())
		if mode == mysql.LockSingle {
			continue // MariaDB gives a binlog position for it, but no GTID
		}
		at, err := gtidSequence(rp["gtid_binlog_pos"])
		require.NoError(t, err, mode)
		inSnapshot := map[int64]bool{}
		rows, err := db.Query("SELECT DISTINCT tx FROM " + target + ".pairs")
		require.NoError(t, err)
		for rows.Next() {
			var tx int64
			require.NoError(t, rows.Scan(&tx))
			inSnapshot[tx] = true
		}
		require.NoError(t, rows.Err())
		rows.Close()
		gtidMu.Lock()
		committed := maps.Clone(gtidSeq)
		gtidMu.Unlock()
		require.NotEmpty(t, committed, mode)
		for tx, seq := range committed {
			require.Equal(t, seq <= at, inSnapshot[tx], "%s: transaction %d has GTID sequence %d, snapshot at %d", mode, tx, seq, at)
		}
	}
	require.Positive(t, moves.Load())
}

// gtidSequence returns the sequence number of a one-domain MariaDB GTID
// position such as 0-1-42.
func gtidSequence(pos string) (int64, error) {
	parts := strings.Split(pos, "-")
	if len(parts) != 3 {
		return 0, fmt.Errorf("GTID position %q: not domain-server-sequence", pos)
	}
	return strconv.ParseInt(parts[2], 10, 64)
}

func TestMySQLBackupFaults(t *testing.T) {
	srv := mysqltest.Shared(t)
	_, r := repotest.Mem(t)

	_, err := backupMySQL(t, r, mysql.Options{DSN: srv.DSN(), Password: "wrong-password"})
	require.ErrorContains(t, err, "access denied")
	require.NotContains(t, err.Error(), "wrong-password")

	// A DSN holding the password: never in errors.
	_, err = backupMySQL(t, r, mysql.Options{DSN: "mysql://lifeboat:hunter2-secret@127.0.0.1:1/"})
	require.ErrorContains(t, err, "cannot connect")
	require.NotContains(t, err.Error(), "hunter2")

	_, err = backupMySQL(t, r, mysql.Options{DSN: srv.DSN(), Password: srv.Password, Databases: []string{"no_such_db"}})
	require.ErrorContains(t, err, "no_such_db")

	// A user without RELOAD cannot lock: the error says what to do.
	db := srv.DB(t, "")
	exec(t, db, "DROP DATABASE IF EXISTS weakdb", "CREATE DATABASE weakdb", "CREATE TABLE weakdb.t (id INT PRIMARY KEY)",
		"INSERT INTO weakdb.t VALUES (1)", "DROP USER IF EXISTS 'weak'@'127.0.0.1'",
		"CREATE USER 'weak'@'127.0.0.1' IDENTIFIED BY 'weak-secret'", "GRANT SELECT, SHOW VIEW ON weakdb.* TO 'weak'@'127.0.0.1'")
	weak := "weak@tcp(" + srv.Addr + ")/"
	for _, mode := range []mysql.LockMode{mysql.LockFTWRL, mysql.LockBackup} {
		_, err = backupMySQL(t, r, mysql.Options{DSN: weak, Password: "weak-secret", Databases: []string{"weakdb"}, LockMode: mode})
		require.ErrorContains(t, err, "needs the RELOAD privilege", mode)
		require.NotContains(t, err.Error(), "weak-secret")
	}
	_, err = r.FindSnapshot(context.Background(), "latest", nil)
	require.True(t, errors.Is(err, repo.ErrNotFound), "no snapshot may be saved: %v", err)
	// Single mode needs no lock.
	res, err := backupMySQL(t, r, mysql.Options{DSN: weak, Password: "weak-secret", Databases: []string{"weakdb"}, LockMode: mysql.LockSingle})
	require.NoError(t, err)
	require.Equal(t, "single", res.Snapshot.RecoveryPoint.Details["lock_mode"])
}

// TestMySQLRestoreNoBinlog: with NoBinlog nothing of the restore reaches
// the binary log; without it, everything does.
func TestMySQLRestoreNoBinlog(t *testing.T) {
	srv := mysqltest.Shared(t)
	db := srv.DB(t, "")
	exec(t, db, "DROP DATABASE IF EXISTS nolog", "CREATE DATABASE nolog",
		"CREATE TABLE nolog.t (id INT PRIMARY KEY, v VARCHAR(20))", "INSERT INTO nolog.t VALUES (1, 'a'), (2, 'b')")
	_, r := repotest.Mem(t)
	res, err := backupMySQL(t, r, mysql.Options{DSN: srv.DSN(), Password: srv.Password, Databases: []string{"nolog"}})
	require.NoError(t, err)
	position := func() string {
		var file, pos string
		rows, err := db.Query("SHOW MASTER STATUS")
		require.NoError(t, err)
		defer rows.Close()
		require.True(t, rows.Next())
		cols, _ := rows.Columns()
		vals := make([]any, len(cols))
		vals[0], vals[1] = &file, &pos
		for i := 2; i < len(vals); i++ {
			vals[i] = new(sql.RawBytes)
		}
		require.NoError(t, rows.Scan(vals...))
		return file + ":" + pos
	}
	for _, noBinlog := range []bool{true, false} {
		target := fmt.Sprintf("nolog_%t", noBinlog)
		exec(t, db, "DROP DATABASE IF EXISTS "+target)
		before := position()
		_, err = restore.MySQL(context.Background(), r.SnapshotReader(res.Snapshot), restore.MySQLOptions{DSN: srv.DSN(), Password: srv.Password,
			Rename: map[string]string{"nolog": target}, NoBinlog: noBinlog})
		require.NoError(t, err)
		var n int
		require.NoError(t, db.QueryRow("SELECT COUNT(*) FROM "+target+".t").Scan(&n))
		require.Equal(t, 2, n)
		if noBinlog {
			require.Equal(t, before, position(), "nothing may reach the binlog")
		} else {
			require.NotEqual(t, before, position())
		}
	}
}
