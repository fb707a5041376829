package sanitize_test

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/lifeboat-backup/lifeboat/engine"
	"github.com/lifeboat-backup/lifeboat/engine/repo/repotest"
	"github.com/lifeboat-backup/lifeboat/engine/restic"
	"github.com/lifeboat-backup/lifeboat/engine/restic/restictest"
	"github.com/lifeboat-backup/lifeboat/engine/snapshot"
	"github.com/lifeboat-backup/lifeboat/engine/storage"
	"github.com/lifeboat-backup/lifeboat/internal/testutil/shop"
	"github.com/lifeboat-backup/lifeboat/policies"
	"github.com/lifeboat-backup/lifeboat/sanitize"
	"github.com/lifeboat-backup/lifeboat/targets/mysql"
	"github.com/lifeboat-backup/lifeboat/targets/mysql/mysqltest"
)

// BenchmarkExport exports the generated shop (LIFEBOAT_BENCH_ROWS rows,
// default 20000) with the magento2 preset to io.Discard; MB/s is SQL
// produced. The shop is generated and backed up once, outside the timer.
func BenchmarkExport(b *testing.B) {
	ctx := context.Background()
	src := benchShop(b)
	st, err := storage.OpenWith(ctx, "mem://", storage.OpenOptions{Create: true})
	require.NoError(b, err)
	b.Cleanup(func() { st.Close() })
	tr := repotest.Init(b, st, repotest.SmallChunks, 0)
	r := tr.Open(b, tr.Owner)
	res, err := engine.Backup(ctx, r, src, engine.BackupOptions{Workers: 2})
	require.NoError(b, err)
	benchExport(b, func() snapshot.Reader { return r.SnapshotReader(res.Snapshot) })
}

// BenchmarkExportRestic is BenchmarkExport from a restic repository (on
// local disk): each export opens the snapshot, so the `restic dump`
// passes (the tree, then the tables over 1 MiB) are timed; their CPU is
// child-cpu-s/op, not in cpu-s/op.
func BenchmarkExportRestic(b *testing.B) {
	bin := restictest.BinaryOrSkip(b)
	b.Setenv("RESTIC_CACHE_DIR", b.TempDir())
	ctx := context.Background()
	src := benchShop(b)
	rr, err := restic.New(ctx, restic.Options{Binary: bin, URL: filepath.Join(b.TempDir(), "restic"), Password: []byte("bench")})
	require.NoError(b, err)
	e := &restic.Engine{R: rr}
	require.NoError(b, e.Init(ctx))
	res, err := e.Backup(ctx, src, engine.BackupOptions{Target: "shop", Workers: 2})
	require.NoError(b, err)
	benchExport(b, func() snapshot.Reader {
		s, err := e.Open(ctx, res.Snapshot)
		require.NoError(b, err)
		return s
	})
}

// benchShop generates the shop and returns a source dumping it.
func benchShop(b *testing.B) engine.Source {
	rows := 20000
	if s := os.Getenv("LIFEBOAT_BENCH_ROWS"); s != "" {
		n, err := strconv.Atoi(s)
		require.NoError(b, err, "LIFEBOAT_BENCH_ROWS")
		rows = n
	}
	srv := mysqltest.Shared(b)
	db := srv.DB(b, "")
	_, err := shop.Generate(context.Background(), db, shop.Options{Database: "san_bench", Rows: rows, Replace: true})
	require.NoError(b, err)
	src, err := mysql.New(mysql.Options{DSN: srv.DSN(), Password: srv.Password, Databases: []string{"san_bench"}, Jobs: 2})
	require.NoError(b, err)
	return src
}

// benchExport times exports of the snapshot open gives, closed after
// each.
func benchExport(b *testing.B, open func() snapshot.Reader) {
	ctx := context.Background()
	c, err := sanitize.Compile(policies.Sanitize{Preset: "magento2", Rules: map[string]policies.TableRules{
		"quote": {Where: quoteWhere},
	}}, sanitize.Options{Key: testKey})
	require.NoError(b, err)
	o := sanitize.ExportOptions{}
	if s := os.Getenv("LIFEBOAT_BENCH_JOBS"); s != "" {
		o.Jobs, err = strconv.Atoi(s)
		require.NoError(b, err, "LIFEBOAT_BENCH_JOBS")
	}
	// The machine is shared: CPU seconds per op tell the cost apart from
	// the load of other processes.
	cpu0, child0 := cpuTime(b, syscall.RUSAGE_SELF), cpuTime(b, syscall.RUSAGE_CHILDREN)
	b.ResetTimer()
	var out int64
	for range b.N {
		s := open()
		es, err := sanitize.Export(ctx, s, c, o, io.Discard)
		require.NoError(b, err)
		require.NoError(b, s.Close())
		out = es.Bytes
	}
	b.StopTimer()
	b.SetBytes(out)
	cpu := (cpuTime(b, syscall.RUSAGE_SELF) - cpu0).Seconds() / float64(b.N)
	b.ReportMetric(cpu, "cpu-s/op")
	b.ReportMetric(float64(out)/1e6/cpu, "MB/cpu-s")
	if child := (cpuTime(b, syscall.RUSAGE_CHILDREN) - child0).Seconds() / float64(b.N); child > 0 {
		b.ReportMetric(child, "child-cpu-s/op")
	}
}

// cpuTime is the CPU time of this process (RUSAGE_SELF) or of its
// children that ended (RUSAGE_CHILDREN).
func cpuTime(b *testing.B, who int) time.Duration {
	var ru syscall.Rusage
	require.NoError(b, syscall.Getrusage(who, &ru))
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
