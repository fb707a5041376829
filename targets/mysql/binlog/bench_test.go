package binlog

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/lifeboat-backup/lifeboat/targets/mysql/mysqltest"
)

// cpuSeconds is the user+system CPU time of this process and its
// waited-for children so far.
func cpuSeconds() float64 {
	var self, kids syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &self)
	_ = syscall.Getrusage(syscall.RUSAGE_CHILDREN, &kids)
	tv := func(t syscall.Timeval) float64 { return float64(t.Sec) + float64(t.Usec)/1e6 }
	return tv(self.Utime) + tv(self.Stime) + tv(kids.Utime) + tv(kids.Stime)
}

func loadAvg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	return strings.Join(strings.Fields(string(b))[:3], " ")
}

// TestBenchBinlog measures (LIFEBOAT_BENCH_BINLOG=MiB, e.g. 256) the
// archive's throughput over an existing binary log (the follower catching
// up: mariadb-binlog, parsing, cutting, a memory store) and the replay of
// it into a second server, against mariadb-binlog FILES | mariadb on the
// same files (docs/benchmarks.md, "Binlog archive and replay").
func TestBenchBinlog(t *testing.T) {
	mib, _ := strconv.Atoi(os.Getenv("LIFEBOAT_BENCH_BINLOG"))
	if mib <= 0 {
		t.Skip("set LIFEBOAT_BENCH_BINLOG=MiB to run")
	}
	ctx := context.Background()
	srv := mysqltest.Start(t)
	db := srv.DB(t, "")
	schema := []string{"CREATE DATABASE bench", "CREATE TABLE bench.orders (id BIGINT PRIMARY KEY, customer VARCHAR(64), amount DECIMAL(12,2), note VARCHAR(2000))"}
	for _, q := range schema {
		_, err := db.Exec(q)
		require.NoError(t, err)
	}
	base := masterPos(t, db)
	// Transactions of 100 rows of ~1 KiB, row events: about 100 KiB each.
	note := strings.Repeat("lorem ipsum dolor sit amet ", 37)
	var id int64
	t0 := time.Now()
	for {
		p := masterPos(t, db)
		if p.File == base.File && p.Offset >= uint64(mib)<<20 || p.File != base.File {
			break
		}
		var q bytes.Buffer
		q.WriteString("INSERT INTO bench.orders VALUES ")
		for i := range 100 {
			if i > 0 {
				q.WriteByte(',')
			}
			id++
			fmt.Fprintf(&q, "(%d,'customer-%d',%d.%02d,'%s %d')", id, id%997, id%10000, id%100, note, id)
		}
		_, err := db.Exec(q.String())
		require.NoError(t, err)
	}
	end := masterPos(t, db)
	var files []string
	rows, err := db.Query("SHOW BINARY LOGS")
	require.NoError(t, err)
	for rows.Next() {
		var name string
		var size any
		require.NoError(t, rows.Scan(&name, &size))
		files = append(files, name)
	}
	rows.Close()
	t.Logf("generated %d rows, binlog %s..%s in %s", id, base, end, time.Since(t0).Round(time.Millisecond))

	// Archive: the follower catches up from base to end.
	store := &memStore{}
	c0, w0 := cpuSeconds(), time.Now()
	f, stop := startFollower(t, srv, store, base)
	require.Eventually(t, func() bool {
		segs, _ := store.List(ctx)
		return len(segs) > 0 && segs[len(segs)-1].End.Compare(end) >= 0
	}, 30*time.Minute, 100*time.Millisecond)
	wall := time.Since(w0)
	require.NoError(t, stop())
	cpu := cpuSeconds() - c0
	st := f.Status()
	mb := float64(st.Bytes) / (1 << 20)
	t.Logf("archive: %.0f MiB in %d segments, %.1fs wall (%.0f MiB/s), %.1fs CPU (lifeboat + mariadb-binlog; server not counted), load %s",
		mb, st.Segments, wall.Seconds(), mb/wall.Seconds(), cpu, loadAvg())

	// Replay: lifeboat's stream through mariadb-binlog | mariadb.
	replay := func(name string, run func(dsn string) error) {
		dst := mysqltest.Start(t)
		ddb := dst.DB(t, "")
		for _, q := range schema {
			_, err := ddb.Exec(q)
			require.NoError(t, err)
		}
		c0, w0 := cpuSeconds(), time.Now()
		require.NoError(t, run(dst.DSNWithPassword()))
		wall, cpu := time.Since(w0), cpuSeconds()-c0
		var n int64
		require.NoError(t, ddb.QueryRow("SELECT COUNT(*) FROM bench.orders").Scan(&n))
		require.Equal(t, id, n, name)
		t.Logf("replay %s: %.1fs wall (%.1f s/GiB of binlog), %.1fs CPU of clients (server not counted), load %s",
			name, wall.Seconds(), wall.Seconds()/(mb/1024), cpu, loadAvg())
	}
	segs, _ := store.List(ctx)
	chain, err := Chain(segs, base, Point{Latest: true})
	require.NoError(t, err)
	replay("lifeboat (Stream | mariadb-binlog | mariadb)", func(dsn string) error {
		_, err := Apply(ctx, ApplyOptions{DSN: dsn}, func(w io.Writer) (Replay, error) {
			return Stream(ctx, w, store, chain, base, Point{Latest: true})
		})
		return err
	})
	replay("mariadb-binlog FILES | mariadb", func(dsn string) error {
		conn, err := parseDest(dsn, "")
		if err != nil {
			return err
		}
		dir := t.TempDir()
		defaults, err := writeDefaults(dir, conn)
		if err != nil {
			return err
		}
		var args []string
		for i, f := range files {
			args = append(args, filepath.Join(srv.DataDir, f))
			if i == 0 {
				args = append([]string{"--start-position=" + strconv.FormatUint(base.Offset, 10)}, args...)
			}
		}
		cmd := exec.Command("sh", "-c", `mariadb-binlog "$@" | mariadb --defaults-extra-file=`+defaults+` --binary-mode`, "sh")
		cmd.Args = append(cmd.Args, args...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			return fmt.Errorf("%v: %s", err, out)
		}
		return nil
	})
}
