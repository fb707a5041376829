package restore_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/lifeboat-backup/lifeboat/engine/repo/repotest"
	"github.com/lifeboat-backup/lifeboat/restore"
	"github.com/lifeboat-backup/lifeboat/targets/mysql"
	"github.com/lifeboat-backup/lifeboat/targets/mysql/mysqltest"
)

// TestMySQLRestoreAutoIncPiecesAsInsert: on a server with
// innodb_autoinc_lock_mode 1 the pieces of a table with an AUTO_INCREMENT
// column load as multi-row INSERT; every value (all bytes, quotes,
// backslashes before % and _, NULL against 'NULL' and '\N', zero dates,
// BIT, blobs) comes back identical, rows and CHECKSUM TABLE.
func TestMySQLRestoreAutoIncPiecesAsInsert(t *testing.T) {
	srv := mysqltest.Shared(t)
	db := srv.DB(t, "")
	var mode int
	require.NoError(t, db.QueryRow("SELECT @@innodb_autoinc_lock_mode").Scan(&mode))
	exec(t, db, "DROP DATABASE IF EXISTS ai_src", "DROP DATABASE IF EXISTS ai_copy", "CREATE DATABASE ai_src",
		"CREATE TABLE ai_src.t (id INT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY, s VARCHAR(300) CHARACTER SET utf8mb4, "+
			"b BLOB, bits BIT(8), d DATE, amount DECIMAL(12,4), f DOUBLE, e ENUM('a','b'), j JSON, n INT, KEY (n), KEY (s)) ENGINE=InnoDB")
	odd := []string{`it's`, `100\%`, `a\_b`, `\N`, `NULL`, ``, "tab\there", "line\nbreak", `ends\`, `\\`, "nul\x00byte", "ctrl-z\x1a", "crlf\r\n", `"dq"`, "émoji 🚀", `''`, `\'`}
	conn, err := db.Conn(context.Background())
	require.NoError(t, err)
	defer conn.Close()
	_, err = conn.ExecContext(context.Background(), "SET SESSION sql_mode = 'NO_ENGINE_SUBSTITUTION'")
	require.NoError(t, err)
	for i := range 3000 {
		var s, blob any
		if i%7 != 3 {
			s = odd[i%len(odd)] + strings.Repeat("x", i%50)
		}
		if i%5 != 0 {
			b := make([]byte, i%300)
			for k := range b {
				b[k] = byte(i*31 + k)
			}
			blob = b
		}
		_, err := conn.ExecContext(context.Background(), "INSERT INTO ai_src.t (id, s, b, bits, d, amount, f, e, j, n) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
			i*3+1, s, blob, []byte{byte(i)}, []string{"0000-00-00", "2024-02-29", "1999-12-31"}[i%3], fmt.Sprintf("%d.%04d", i, i%10000),
			float64(i)/7, []string{"a", "b", ""}[i%3], fmt.Sprintf(`{"k": %d, "s": "q'\\\\"}`, i), i%13)
		require.NoError(t, err)
	}
	_, r := repotest.Mem(t)
	res, err := backupMySQL(t, r, mysql.Options{DSN: srv.DSN(), Password: srv.Password, Databases: []string{"ai_src"}})
	require.NoError(t, err)

	inserts := func() (n int64) {
		require.NoError(t, db.QueryRow("SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME = 'COM_STMT_EXECUTE'").Scan(&n))
		return n
	}
	before := inserts()
	st, err := restore.MySQL(context.Background(), r.SnapshotReader(res.Snapshot), restore.MySQLOptions{DSN: srv.DSN(), Password: srv.Password,
		Rename: map[string]string{"ai_src": "ai_copy"}, Jobs: 3, PieceBytes: 16 << 10, DeferIndexesFrom: 1})
	require.NoError(t, err)
	require.Equal(t, 1, mode, "the scratch server runs MariaDB's default lock mode")
	require.GreaterOrEqual(t, inserts()-before, int64(4), "pieces of an AUTO_INCREMENT table load as prepared INSERTs in lock mode 1")
	require.NotEmpty(t, st.Warnings, "the ENUM's '' error value warns, as with LOAD DATA")
	n1, h1, c1 := tableDigest(t, db, "ai_src", "t")
	n2, h2, c2 := tableDigest(t, db, "ai_copy", "t")
	require.Equal(t, int64(3000), n1)
	require.Equal(t, n1, n2)
	require.Equal(t, h1, h2, "rows")
	require.Equal(t, c1, c2, "CHECKSUM TABLE")
	require.Equal(t, showCreate(t, db, "TABLE", "ai_src", "t", 1), showCreate(t, db, "TABLE", "ai_copy", "t", 1))
}
