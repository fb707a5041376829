package restore_test

import (
	"bytes"
	"context"
	"database/sql"
	"os"
	osexec "os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"
	"github.com/stretchr/testify/require"

	"github.com/lifeboat-backup/lifeboat/engine/repo/repotest"
	"github.com/lifeboat-backup/lifeboat/restore"
	"github.com/lifeboat-backup/lifeboat/targets/mysql"
	"github.com/lifeboat-backup/lifeboat/targets/mysql/mysqltest"
)

// loadSQL runs SQL files (zstd-compressed if named .zst) through the
// mariadb client, which understands DELIMITER blocks.
func loadSQL(t *testing.T, srv *mysqltest.Server, files ...string) {
	t.Helper()
	client, err := osexec.LookPath("mariadb")
	if err != nil {
		if client, err = osexec.LookPath("mysql"); err != nil {
			if mysqltest.Required() {
				t.Fatal("no mariadb client on PATH")
			}
			t.Skip("no mariadb client on PATH")
		}
	}
	var script bytes.Buffer
	for _, f := range files {
		raw, err := os.ReadFile(f)
		require.NoError(t, err)
		if strings.HasSuffix(f, ".zst") {
			dec, err := zstd.NewReader(nil)
			require.NoError(t, err)
			raw, err = dec.DecodeAll(raw, nil)
			dec.Close()
			require.NoError(t, err, f)
		}
		script.Write(raw)
		script.WriteString("\n")
	}
	cmd := osexec.Command(client, "--no-defaults", "--protocol=tcp", "-h", "127.0.0.1", "-P", strconv.Itoa(srv.Port), "-u", srv.User)
	cmd.Env = append(os.Environ(), "MYSQL_PWD="+srv.Password)
	cmd.Stdin = &script
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
}

// dbObjects lists a database's tables, views, triggers, routines and
// events as "KIND name" with the column of SHOW CREATE holding the
// statement.
func dbObjects(t *testing.T, db *sql.DB, database string) map[string]int {
	t.Helper()
	out := map[string]int{}
	for _, q := range []struct {
		kind, query string
		col         int
	}{
		{"TABLE", "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_TYPE = 'BASE TABLE'", 1},
		{"VIEW", "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_TYPE = 'VIEW'", 1},
		{"TRIGGER", "SELECT TRIGGER_NAME FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = ?", 2},
		{"PROCEDURE", "SELECT ROUTINE_NAME FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = ? AND ROUTINE_TYPE = 'PROCEDURE'", 2},
		{"FUNCTION", "SELECT ROUTINE_NAME FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = ? AND ROUTINE_TYPE = 'FUNCTION'", 2},
		{"EVENT", "SELECT EVENT_NAME FROM information_schema.EVENTS WHERE EVENT_SCHEMA = ?", 3},
	} {
		rows, err := db.Query(q.query, database)
		require.NoError(t, err)
		for rows.Next() {
			var n string
			require.NoError(t, rows.Scan(&n))
			out[q.kind+" "+n] = q.col
		}
		require.NoError(t, rows.Err())
		rows.Close()
	}
	return out
}

// dbState is what must survive a round trip: per table its row count,
// row hash and CHECKSUM TABLE, per object its SHOW CREATE (with the
// database's own name replaced by a placeholder, so that a copy under
// another name compares equal).
func dbState(t *testing.T, db *sql.DB, database string) map[string]string {
	t.Helper()
	st := map[string]string{}
	for obj, col := range dbObjects(t, db, database) {
		kind, name, _ := strings.Cut(obj, " ")
		create := showCreate(t, db, kind, database, name, col)
		st[obj] = strings.ReplaceAll(create, mysql.QuoteName(database)+".", "`DB`.")
		if kind == "TABLE" {
			n, h, sum := tableDigest(t, db, database, name)
			st[obj+" rows"] = strconv.FormatInt(n, 10) + " " + h + " checksum " + strconv.FormatInt(sum, 10)
		}
	}
	return st
}

// requireSameState compares two states key by key (readable failures).
func requireSameState(t *testing.T, want, got map[string]string) {
	t.Helper()
	for k, v := range want {
		require.Contains(t, got, k)
		require.Equal(t, v, got[k], k)
	}
	require.Len(t, got, len(want))
}

// TestMySQLSakilaFidelity: the public sakila database (spatial column and
// index, FULLTEXT, FKs, views, triggers, routines) restores under another
// name and under its own name with every table's rows, CHECKSUM TABLE and
// SHOW CREATE of every object identical.
func TestMySQLSakilaFidelity(t *testing.T) {
	srv := mysqltest.Shared(t)
	db := srv.DB(t, "")
	loadSQL(t, srv, filepath.Join("..", "testdata", "sakila", "sakila-mv-schema.sql.zst"), filepath.Join("..", "testdata", "sakila", "sakila-mv-data.sql.zst"))
	want := dbState(t, db, "sakila")
	require.Len(t, dbObjects(t, db, "sakila"), 16+7+6+3+3, "tables+views+triggers+procedures+functions of sakila")
	require.Equal(t, "16049", strings.Fields(want["TABLE payment rows"])[0])

	_, r := repotest.Mem(t)
	res, err := backupMySQL(t, r, mysql.Options{DSN: srv.DSN(), Password: srv.Password, Databases: []string{"sakila"}, Jobs: 3})
	require.NoError(t, err)
	require.Empty(t, res.Warnings)
	snap := r.SnapshotReader(res.Snapshot)

	exec(t, db, "DROP DATABASE IF EXISTS sakila_copy")
	// Every table's indexes and FKs after its rows: SHOW CREATE TABLE must
	// come out the same (spatial, FULLTEXT and unique keys, FKs).
	st, err := restore.MySQL(context.Background(), snap, restore.MySQLOptions{DSN: srv.DSN(), Password: srv.Password,
		Rename: map[string]string{"sakila": "sakila_copy"}, Jobs: 3, DeferIndexesFrom: 1})
	require.NoError(t, err)
	require.Empty(t, st.Warnings)
	requireSameState(t, want, dbState(t, db, "sakila_copy"))

	// Under its own name, after the original is gone; indexes with the rows.
	exec(t, db, "DROP DATABASE sakila")
	_, err = restore.MySQL(context.Background(), snap, restore.MySQLOptions{DSN: srv.DSN(), Password: srv.Password, Jobs: 2, DeferIndexesFrom: -1})
	require.NoError(t, err)
	requireSameState(t, want, dbState(t, db, "sakila"))
}

// hardCorpus builds, in database name, the cases the shop generator's odd
// table does not cover: odd table, column and database names (dot, %,
// backtick, leading dot, unicode, newline), FKs between them, a table
// without a primary key, an empty table, MyISAM, latin1 bytes, every
// escape of the text format, BIT widths, integer, float and YEAR
// extremes (the driver parses them; YEAR 0000 must not load as 2000), an AUTO_INCREMENT above the
// largest id (in SHOW CREATE TABLE), and views on functions, triggers (one
// that would change the rows if it ran during the load), routines and
// events on the odd names.
func hardCorpus(t *testing.T, srv *mysqltest.Server, name string) {
	q := mysql.QuoteName(name)
	exec(t, srv.DB(t, ""), "DROP DATABASE IF EXISTS "+q, "CREATE DATABASE "+q+" CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
	exec(t, srv.DB(t, name),
		"CREATE TABLE `a.b` (id INT PRIMARY KEY, `100%` VARCHAR(20) CHARACTER SET latin1, `new\nline` TEXT, bits BIT(7), big BIT(64)) ENGINE=InnoDB",
		"CREATE TABLE `ünïcödé 表` (id BIGINT UNSIGNED PRIMARY KEY AUTO_INCREMENT, parent INT, amount DECIMAL(65,30), "+
			"doubled DECIMAL(65,30) AS (amount * 2) PERSISTENT, note VARCHAR(100) AS (CONCAT('n:', parent)) VIRTUAL, "+
			"CONSTRAINT `fk ``odd``` FOREIGN KEY (parent) REFERENCES `a.b` (id)) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4",
		"CREATE TABLE `.leading dot` (v VARCHAR(10)) ENGINE=InnoDB",
		"CREATE TABLE `empty%` (id INT PRIMARY KEY) ENGINE=InnoDB",
		"CREATE TABLE `my isam` (id INT PRIMARY KEY, t TEXT CHARACTER SET latin1) ENGINE=MyISAM DEFAULT CHARSET=latin1",
		"CREATE TABLE numbers (id TINYINT PRIMARY KEY, y YEAR, z INT(6) UNSIGNED ZEROFILL, f FLOAT, d DOUBLE, u BIGINT UNSIGNED, s SMALLINT, m MEDIUMINT) ENGINE=InnoDB",
		"INSERT INTO numbers VALUES (-128, 0, 0, -0, -0, 18446744073709551615, -32768, -8388608), (1, 1901, 42, 3.4e38, 1.7976931348623157e308, 0, 32767, 8388607), "+
			"(2, 2155, 999999, 1.17549e-38, 4.9e-324, 9223372036854775808, 0, 0), (3, NULL, NULL, 0.1, 0.1, NULL, NULL, NULL), (127, 2000, 1, 1e-10, -2.5, 1, 1, 1)",
		"INSERT INTO `a.b` VALUES (1, _latin1 X'E9E8FFA4', 'tab\there\nnew line \\\\ back\\\\slash \\r cr \\b bs \\Z ctrlz \\0 nul', b'1010101', b'1111111111111111111111111111111111111111111111111111111111111111'), "+
			"(2, NULL, 'NULL', b'0', 0), (3, '', '\\\\N', NULL, NULL), (4, 'N', '\\\\', b'1', 1)",
		"INSERT INTO `ünïcödé 表` (id, parent, amount) VALUES (1, 1, 12345678901234567890123456789012345.123456789012345678901234567890), "+
			"(2, NULL, -0.000000000000000000000000000001), (18446744073709551610, 4, 0)",
		"ALTER TABLE `ünïcödé 表` AUTO_INCREMENT = 18446744073709551612",
		"INSERT INTO `.leading dot` VALUES ('dup'), ('dup'), (NULL), ('😀')",
		"INSERT INTO `my isam` VALUES (1, _latin1 X'C4D6DC'), (2, '')",
		"CREATE FUNCTION `f.n%` (x DECIMAL(65,30)) RETURNS DECIMAL(65,30) DETERMINISTIC RETURN x + 1",
		"CREATE VIEW `v.on function` AS SELECT id, `f.n%`(amount) AS plus_one FROM `ünïcödé 表`",
		"CREATE VIEW `view`` tick` AS SELECT * FROM `v.on function` WHERE id > 1",
		"CREATE TRIGGER `t.rg` BEFORE INSERT ON `a.b` FOR EACH ROW SET NEW.`100%` = UPPER(NEW.`100%`)",
		"CREATE PROCEDURE `p%` (OUT n INT) BEGIN SELECT COUNT(*) INTO n FROM `a.b`; END",
		"CREATE EVENT `e.v` ON SCHEDULE EVERY 1 HOUR STARTS '2031-01-01 00:00:00' DISABLE DO DELETE FROM `empty%`")
}

// TestMySQLHardCorpus round-trips the hard cases under another database
// name (itself an odd one).
func TestMySQLHardCorpus(t *testing.T) {
	srv := mysqltest.Shared(t)
	db := srv.DB(t, "")
	const src, dst = "hard.db%", "hard `copy` ü"
	hardCorpus(t, srv, src)
	want := dbState(t, db, src)
	require.Len(t, dbObjects(t, db, src), 6+2+1+1+1+1)

	_, r := repotest.Mem(t)
	res, err := backupMySQL(t, r, mysql.Options{DSN: srv.DSN(), Password: srv.Password, Databases: []string{src}, Jobs: 2})
	require.NoError(t, err)
	exec(t, db, "DROP DATABASE IF EXISTS "+mysql.QuoteName(dst))
	_, err = restore.MySQL(context.Background(), r.SnapshotReader(res.Snapshot), restore.MySQLOptions{DSN: srv.DSN(), Password: srv.Password,
		Rename: map[string]string{src: dst}, Jobs: 2, DeferIndexesFrom: 1})
	require.NoError(t, err)
	requireSameState(t, want, dbState(t, db, dst))

}
