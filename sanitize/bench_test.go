package sanitize_test

import (
	"context"
	"io"
	"os"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/lifeboat-backup/lifeboat/engine"
	"github.com/lifeboat-backup/lifeboat/engine/repo/repotest"
	"github.com/lifeboat-backup/lifeboat/engine/repo/storage"
	"github.com/lifeboat-backup/lifeboat/policies"
	"github.com/lifeboat-backup/lifeboat/restore"
	"github.com/lifeboat-backup/lifeboat/sanitize"
	"github.com/lifeboat-backup/lifeboat/targets/mysql"
	"github.com/lifeboat-backup/lifeboat/targets/mysql/mysqltest"
	"github.com/lifeboat-backup/lifeboat/testdata/shop"
)

// BenchmarkExport exports the generated shop (LIFEBOAT_BENCH_ROWS rows,
// default 20000) with the magento2 preset to io.Discard; MB/s is SQL
// produced. The shop is generated and backed up once, outside the timer.
func BenchmarkExport(b *testing.B) {
	rows := 20000
	if s := os.Getenv("LIFEBOAT_BENCH_ROWS"); s != "" {
		n, err := strconv.Atoi(s)
		require.NoError(b, err, "LIFEBOAT_BENCH_ROWS")
		rows = n
	}
	ctx := context.Background()
	srv := mysqltest.Shared(b)
	db := srv.DB(b, "")
	_, err := shop.Generate(ctx, db, shop.Options{Database: "san_bench", Rows: rows, Replace: true})
	require.NoError(b, err)
	st, err := storage.OpenWith(ctx, "mem://", storage.OpenOptions{Create: true})
	require.NoError(b, err)
	b.Cleanup(func() { st.Close() })
	tr := repotest.Init(b, st, repotest.SmallChunks, 0)
	r := tr.Open(b, tr.Owner)
	src, err := mysql.New(mysql.Options{DSN: srv.DSN(), Password: srv.Password, Databases: []string{"san_bench"}, Jobs: 2})
	require.NoError(b, err)
	res, err := engine.Backup(ctx, r, src, engine.BackupOptions{Workers: 2})
	require.NoError(b, err)
	sn := restore.FromRepository(r, res.Snapshot)
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
	cpu0 := cpuTime(b)
	b.ResetTimer()
	var out int64
	for range b.N {
		es, err := sanitize.Export(ctx, sn, c, o, io.Discard)
		require.NoError(b, err)
		out = es.Bytes
	}
	b.StopTimer()
	b.SetBytes(out)
	cpu := (cpuTime(b) - cpu0).Seconds() / float64(b.N)
	b.ReportMetric(cpu, "cpu-s/op")
	b.ReportMetric(float64(out)/1e6/cpu, "MB/cpu-s")
}

func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	require.NoError(b, syscall.Getrusage(syscall.RUSAGE_SELF, &ru))
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
