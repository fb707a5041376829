package restore

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/lifeboat-backup/lifeboat/targets/mysql/mysqltest"
)

// TestLoadPieceRetriesLockWait: a piece rolled back by the server after a
// lock wait timeout (as after a deadlock) is loaded again; other errors
// are not retried; loaded with LOAD DATA and as INSERT.
func TestLoadPieceRetriesLockWait(t *testing.T) {
	for _, insert := range []bool{false, true} {
		t.Run(fmt.Sprintf("insert=%t", insert), func(t *testing.T) { testLoadPieceRetries(t, insert) })
	}
}

func testLoadPieceRetries(t *testing.T, insert bool) {
	srv := mysqltest.Shared(t)
	db := srv.DB(t, "")
	ctx := context.Background()
	load := &pieceLoad{cols: []string{"id", "v"}, insert: insert}
	for _, q := range []string{"DROP DATABASE IF EXISTS lp", "CREATE DATABASE lp", "CREATE TABLE lp.t (id INT PRIMARY KEY, v TEXT) ENGINE=InnoDB"} {
		_, err := db.ExecContext(ctx, q)
		require.NoError(t, err, q)
	}
	// Another transaction holds the key the piece inserts for longer than
	// the restore session's lock wait.
	blocker, err := db.Conn(ctx)
	require.NoError(t, err)
	defer blocker.Close()
	for _, q := range []string{"BEGIN", "INSERT INTO lp.t VALUES (2, 'blocker')"} {
		_, err := blocker.ExecContext(ctx, q)
		require.NoError(t, err, q)
	}
	c, err := session(ctx, db, sessionSetup, "SET NAMES binary")
	require.NoError(t, err)
	defer c.Close()
	_, err = c.ExecContext(ctx, "SET SESSION innodb_lock_wait_timeout = 1")
	require.NoError(t, err)
	released := make(chan struct{})
	go func() {
		defer close(released)
		time.Sleep(1500 * time.Millisecond)
		_, _ = blocker.ExecContext(ctx, "ROLLBACK")
	}()
	start := time.Now()
	_, err = loadPiece(ctx, c, insertStmts{}, "`lp`.`t`", load, []byte("1\ta\n2\tb\n3\tc\n"), 64<<20)
	<-released
	require.NoError(t, err)
	require.Greater(t, time.Since(start), time.Second, "the first attempt waited for the lock and timed out")
	var n int
	var v string
	require.NoError(t, db.QueryRowContext(ctx, "SELECT COUNT(*), (SELECT v FROM lp.t WHERE id = 2) FROM lp.t").Scan(&n, &v))
	require.Equal(t, 3, n)
	require.Equal(t, "b", v)

	// Other errors are not retried.
	_, err = loadPiece(ctx, c, insertStmts{}, "`lp`.`gone`", load, []byte("1\tx\n"), 64<<20)
	require.ErrorContains(t, err, "Error 1146")
}
