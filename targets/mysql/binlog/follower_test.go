package binlog

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/lifeboat-backup/lifeboat/targets/mysql/mysqltest"
)

func masterPos(t *testing.T, db *sql.DB) Pos {
	t.Helper()
	rows, err := db.Query("SHOW MASTER STATUS")
	require.NoError(t, err)
	defer rows.Close()
	cols, _ := rows.Columns()
	require.True(t, rows.Next())
	vals := make([]sql.RawBytes, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	require.NoError(t, rows.Scan(ptrs...))
	p, err := ParsePos(string(vals[0]) + ":" + string(vals[1]))
	require.NoError(t, err)
	return p
}

func startFollower(t *testing.T, srv *mysqltest.Server, store Store, startAt Pos) (*Follower, func() error) {
	t.Helper()
	f, err := NewFollower(Config{DSN: srv.DSN(), Password: srv.Password, Store: store, Spool: t.TempDir(),
		MaxDelay: 500 * time.Millisecond, StartAt: startAt, Poll: 50 * time.Millisecond,
		Log: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx) }()
	stop := func() error { cancel(); return <-done }
	t.Cleanup(func() { cancel() })
	return f, stop
}

// waitArchived waits until the archive ends at the server's position.
func waitArchived(t *testing.T, store *memStore, db *sql.DB) {
	t.Helper()
	want := masterPos(t, db)
	require.Eventually(t, func() bool {
		segs, _ := store.List(context.Background())
		return len(segs) > 0 && segs[len(segs)-1].End.Compare(want) >= 0
	}, 20*time.Second, 50*time.Millisecond, "archive never reached %s", want)
}

func TestFollowRotateRestartReplay(t *testing.T) {
	if testing.Short() {
		t.Skip("needs MariaDB")
	}
	ctx := context.Background()
	srv := mysqltest.Start(t)
	db := srv.DB(t, "")
	db.SetMaxIdleConns(0)
	_, err := db.Exec("CREATE DATABASE shop")
	require.NoError(t, err)
	_, err = db.Exec("CREATE TABLE shop.orders (id INT PRIMARY KEY, v VARCHAR(40), b BLOB)")
	require.NoError(t, err)
	base := masterPos(t, db)

	store := &memStore{}
	_, stop := startFollower(t, srv, store, base)
	insert := func(from, to int) {
		for i := from; i < to; i++ {
			_, err := db.Exec("INSERT INTO shop.orders VALUES (?, ?, ?)", i, fmt.Sprintf("order %d", i), []byte{0, byte(i), '\n', 0xff})
			require.NoError(t, err)
		}
	}
	insert(0, 50)
	_, err = db.Exec("FLUSH BINARY LOGS")
	require.NoError(t, err)
	insert(50, 100)
	_, err = db.Exec("UPDATE shop.orders SET v = 'changed' WHERE id < 10")
	require.NoError(t, err)
	waitArchived(t, store, db)
	require.NoError(t, srv.Restart())
	insert(100, 150)
	_, err = db.Exec("DELETE FROM shop.orders WHERE id >= 140")
	require.NoError(t, err)
	waitArchived(t, store, db)
	require.NoError(t, stop())

	segs, _ := store.List(ctx)
	require.Empty(t, Breaks(segs), "the archive is contiguous across rotation and restart")
	for i := 1; i < len(segs); i++ {
		require.Equal(t, segs[i-1].End, segs[i].Start, "segments chain by position alone")
	}
	require.Equal(t, base, segs[0].Start)
	closed := 0
	for _, s := range segs {
		if s.Closed != "" {
			closed++
		}
	}
	require.GreaterOrEqual(t, closed, 2, "a rotate and a stop closed files: %+v", segs)

	// Replay everything into a second server that holds the base.
	dst := mysqltest.Start(t)
	ddb := dst.DB(t, "")
	_, err = ddb.Exec("CREATE DATABASE shop")
	require.NoError(t, err)
	_, err = ddb.Exec("CREATE TABLE shop.orders (id INT PRIMARY KEY, v VARCHAR(40), b BLOB)")
	require.NoError(t, err)
	chain, err := Chain(segs, base, Point{Latest: true})
	require.NoError(t, err)
	r, err := Apply(ctx, ApplyOptions{DSN: dst.DSN(), Password: dst.Password}, func(w io.Writer) (Replay, error) {
		return Stream(ctx, w, store, chain, base, Point{Latest: true})
	})
	require.NoError(t, err)
	require.Equal(t, 152, r.Transactions)
	require.Equal(t, checksum(t, db), checksum(t, ddb))
}

func checksum(t *testing.T, db *sql.DB) string {
	t.Helper()
	var n int
	var s sql.NullString
	require.NoError(t, db.QueryRow("SELECT COUNT(*), SUM(CRC32(CONCAT_WS('|', id, v, HEX(b)))) FROM shop.orders").Scan(&n, &s))
	return fmt.Sprintf("%d/%s", n, s.String)
}
