package restore_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/lifeboat-backup/lifeboat/engine"
	"github.com/lifeboat-backup/lifeboat/engine/repo"
	"github.com/lifeboat-backup/lifeboat/policies"
	"github.com/lifeboat-backup/lifeboat/restore"
	"github.com/lifeboat-backup/lifeboat/targets/mysql"
	"github.com/lifeboat-backup/lifeboat/targets/mysql/mysqltest"
	"github.com/lifeboat-backup/lifeboat/testdata/shop"
)

func f64(v float64) *float64 { return &v }

// mediaTree makes DIR/media with catalog/product/* (n files) and a cache.
func mediaTree(t *testing.T, n int) string {
	t.Helper()
	root := filepath.Join(t.TempDir(), "media")
	for i := range n {
		p := filepath.Join(root, "catalog", "product", fmt.Sprintf("%02d", i%4), fmt.Sprintf("img%03d.jpg", i))
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.WriteFile(p, bytes.Repeat([]byte{byte(i)}, 1000+i), 0o644))
	}
	require.NoError(t, os.MkdirAll(filepath.Join(root, "wysiwyg"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(root, "wysiwyg", "logo.png"), []byte("logo"), 0o644))
	return root
}

func backupFiles(t *testing.T, r *repo.Repository, target string, roots ...string) {
	t.Helper()
	_, err := engine.Backup(context.Background(), r, &engine.FilesSource{Roots: roots},
		engine.BackupOptions{Target: target, Host: "drillhost", Workers: 2})
	require.NoError(t, err)
}

// gone asserts the scratch server and directory of a drill are gone.
func gone(t *testing.T, dir string, pid int) {
	t.Helper()
	require.NotEmpty(t, dir)
	_, err := os.Stat(dir)
	require.True(t, errors.Is(err, os.ErrNotExist), "scratch dir %s still there: %v", dir, err)
	if pid > 0 {
		require.Error(t, syscall.Kill(pid, 0), "scratch server pid %d still alive", pid)
	}
}

func TestDrillShopAndFiles(t *testing.T) {
	srv := mysqltest.Shared(t)
	db := srv.DB(t, "")
	_, err := shop.Generate(context.Background(), db, shop.Options{Database: "drill_shop", Rows: 200, Replace: true})
	require.NoError(t, err)
	media := mediaTree(t, 40)

	_, r := newRepo(t)
	src, err := mysql.New(mysql.Options{DSN: srv.DSN(), Password: srv.Password, Databases: []string{"drill_shop"}, Jobs: 2})
	require.NoError(t, err)
	_, err = engine.Backup(context.Background(), r, src, engine.BackupOptions{Target: "shopdb", Host: "drillhost", Workers: 2})
	require.NoError(t, err)
	backupFiles(t, r, "media", media)

	pol := func() *policies.Policy {
		return &policies.Policy{Version: 1, Name: "drilltest", Host: "drillhost",
			Targets: []policies.Target{
				{Name: "shopdb", Kind: policies.KindMySQL, DSN: srv.DSN(), Databases: []string{"drill_shop"}},
				{Name: "media", Kind: policies.KindFiles, Paths: []string{media}},
				{Name: "redis", Kind: policies.KindExec, Command: []string{"true"}},
			},
			Objectives: policies.Objectives{RPO: policies.Duration(time.Hour), RTO: policies.Duration(10 * time.Minute)},
			Drill: policies.Drill{MySQL: policies.DrillServer{ServerBinary: "mariadbd"}, Checks: []policies.DrillCheck{
				{Name: "orders present", Target: "shopdb", SQL: "SELECT COUNT(*) FROM drill_shop.sales_order", Min: f64(100), Timeout: policies.Duration(time.Minute)},
				{Name: "customers", Target: "shopdb", SQL: "SELECT COUNT(*) > 0 FROM drill_shop.customer_entity", Expect: "1", Timeout: policies.Duration(time.Minute)},
				{Name: "product images", Target: "media", Path: "catalog/product", MinFiles: 40, MinSize: 40000, Timeout: policies.Duration(time.Minute)},
				{Name: "env", Command: []string{"sh", "-c", `test -d "$LIFEBOAT_DRILL_FILES_MEDIA/media/catalog" && test -n "$LIFEBOAT_DRILL_MYSQL_DSN"`}, Timeout: policies.Duration(time.Minute)},
			}}}
	}
	tmp := t.TempDir()
	drill := func(p *policies.Policy) (*restore.DrillReport, string, int) {
		t.Helper()
		var dir string
		var pid int
		rep, err := restore.Drill(context.Background(), r, restore.DrillOptions{Policy: p, TempDir: tmp,
			Scratch: func(d string, p int) { dir = d; pid = max(pid, p) }})
		require.NoError(t, err)
		gone(t, dir, pid)
		return rep, dir, pid
	}

	// Passes.
	rep, _, pid := drill(pol())
	require.Equal(t, restore.DrillPassed, rep.Status, "%+v", rep)
	require.NoError(t, rep.Err())
	require.NotZero(t, pid, "a scratch server was started")
	require.Len(t, rep.Checks, 4)
	for _, c := range rep.Checks {
		require.True(t, c.OK, "%+v", c)
	}
	require.True(t, rep.RTO.Met)
	require.True(t, rep.RPO.Met)
	require.Greater(t, rep.RTO.Seconds, 0.0)
	require.Greater(t, rep.RPO.Seconds, 0.0)
	require.Equal(t, "redis", rep.Targets[2].Name)
	require.NotEmpty(t, rep.Targets[2].Skipped)
	require.Equal(t, int64(41), rep.Targets[1].Files)
	names := []string{}
	for _, p := range rep.Phases {
		names = append(names, p.Name)
	}
	require.Equal(t, []string{"scratch server", "restore shopdb", "restore media", "checks", "teardown"}, names)

	// An impossible check fails with a clear message; still torn down.
	p := pol()
	p.Drill.Checks[0].Min = f64(1e9)
	p.Drill.Checks = append(p.Drill.Checks, policies.DrillCheck{Name: "missing table", Target: "shopdb",
		SQL: "SELECT COUNT(*) FROM drill_shop.no_such_table", Timeout: policies.Duration(time.Minute)})
	bad, _, _ := drill(p)
	require.Equal(t, restore.DrillCheckFailed, bad.Status)
	err = bad.Err()
	require.ErrorIs(t, err, restore.ErrCheckFailed)
	require.NotErrorIs(t, err, restore.ErrObjectiveViolated)
	require.Contains(t, err.Error(), `"orders present"`)
	require.Contains(t, err.Error(), "below the minimum 1000000000")
	require.Contains(t, err.Error(), "no_such_table")
	require.False(t, bad.RTO.Met)

	// A tiny RTO objective is violated.
	p = pol()
	p.Objectives.RTO = policies.Duration(time.Millisecond)
	p.Drill.Checks = p.Drill.Checks[2:3] // files only: no server
	p.Targets = p.Targets[1:2]
	slow, dir, pid := drill(p)
	require.Zero(t, pid)
	require.NotEmpty(t, dir)
	require.Equal(t, restore.DrillObjectiveViolated, slow.Status)
	require.ErrorIs(t, slow.Err(), restore.ErrObjectiveViolated)
	require.Contains(t, slow.Err().Error(), "RTO")

	// Journal and reports.
	j := restore.DrillJournal{Dir: t.TempDir()}
	for _, x := range []*restore.DrillReport{rep, bad, slow} {
		require.NoError(t, j.Append(x))
	}
	hist, err := j.Reports("drilltest")
	require.NoError(t, err)
	require.Len(t, hist, 3)
	var js bytes.Buffer
	require.NoError(t, restore.WriteDrillJSON(&js, &hist[0]))
	var m map[string]any
	require.NoError(t, json.Unmarshal(js.Bytes(), &m))
	for _, k := range []string{"schema", "kind", "policy", "host", "from", "start", "end", "status", "rto", "rpo", "phases", "targets", "checks"} {
		require.Contains(t, m, k)
	}
	require.EqualValues(t, 1, m["schema"])
	require.Equal(t, "passed", m["status"])
	require.Contains(t, m["rto"], "objective_seconds")
	var html bytes.Buffer
	require.NoError(t, restore.WriteDrillHTML(&html, &hist[2], hist))
	h := html.String()
	require.Contains(t, h, "<svg")
	require.Equal(t, 2, strings.Count(h, "<polyline"))
	require.NotContains(t, h, "src=")
	require.NotContains(t, h, "href=")
	require.NotContains(t, h, "<script")
	var md bytes.Buffer
	require.NoError(t, restore.WriteDrillMarkdown(&md, &hist[1], hist))
	require.Contains(t, md.String(), "below the minimum")
	prom := filepath.Join(t.TempDir(), "lifeboat-drill.prom")
	require.NoError(t, restore.WriteDrillMetrics(prom, rep))
	b, err := os.ReadFile(prom)
	require.NoError(t, err)
	require.Contains(t, string(b), `lifeboat_drill_success{policy="drilltest"} 1`)
	require.Contains(t, string(b), "lifeboat_drill_rto_seconds")
}

func TestDrillCancelTearsDown(t *testing.T) {
	srv := mysqltest.Shared(t)
	db := srv.DB(t, "")
	_, err := shop.Generate(context.Background(), db, shop.Options{Database: "drill_cancel", Rows: 50, Replace: true})
	require.NoError(t, err)
	_, r := newRepo(t)
	src, err := mysql.New(mysql.Options{DSN: srv.DSN(), Password: srv.Password, Databases: []string{"drill_cancel"}, Jobs: 2})
	require.NoError(t, err)
	_, err = engine.Backup(context.Background(), r, src, engine.BackupOptions{Target: "shopdb", Host: "drillhost"})
	require.NoError(t, err)
	p := &policies.Policy{Version: 1, Name: "cancel", Host: "drillhost",
		Targets: []policies.Target{{Name: "shopdb", Kind: policies.KindMySQL, DSN: srv.DSN()}},
		Drill: policies.Drill{Checks: []policies.DrillCheck{
			{Name: "hang", Command: []string{"sleep", "30"}, Timeout: policies.Duration(time.Minute)}}}}
	ctx, cancel := context.WithCancel(context.Background())
	var dir string
	var pid int
	var started atomic.Bool
	go func() {
		// Cancel (as Ctrl-C does) once the check is running.
		for ctx.Err() == nil {
			time.Sleep(50 * time.Millisecond)
			if started.Load() {
				time.Sleep(2 * time.Second)
				cancel()
			}
		}
	}()
	start := time.Now()
	rep, err := restore.Drill(ctx, r, restore.DrillOptions{Policy: p, TempDir: t.TempDir(),
		Scratch: func(d string, p int) {
			dir = d
			pid = max(pid, p)
			if p != 0 {
				started.Store(true)
			}
		}})
	cancel()
	require.ErrorIs(t, err, context.Canceled)
	require.Equal(t, restore.DrillError, rep.Status)
	require.Less(t, time.Since(start), 25*time.Second)
	gone(t, dir, pid)
}

func TestSpotCheckEmptiedDirectory(t *testing.T) {
	media := mediaTree(t, 40)
	_, r := newRepo(t)
	backupFiles(t, r, "media", media)
	p := &policies.Policy{Version: 1, Name: "spot", Host: "drillhost",
		Targets: []policies.Target{{Name: "media", Kind: policies.KindFiles, Paths: []string{media}}}}
	rep, err := restore.SpotCheck(context.Background(), r, restore.SpotCheckOptions{Policy: p})
	require.NoError(t, err)
	require.Equal(t, restore.DrillPassed, rep.Status, "%+v", rep.SpotChecks)
	sc := rep.SpotChecks[0]
	require.Equal(t, int64(41), sc.LiveFiles)
	require.Equal(t, int64(41), sc.SnapshotFiles)
	require.Equal(t, 32, sc.Sampled)
	require.Equal(t, 32, sc.Matched)

	// Silently emptied directory: 10 of 41 files gone.
	dir := filepath.Join(media, "catalog", "product", "01")
	require.NoError(t, os.RemoveAll(dir))
	require.NoError(t, os.Mkdir(dir, 0o755))
	rep, err = restore.SpotCheck(context.Background(), r, restore.SpotCheckOptions{Policy: p})
	require.NoError(t, err)
	require.Equal(t, restore.DrillCheckFailed, rep.Status)
	require.ErrorIs(t, rep.Err(), restore.ErrCheckFailed)
	require.Contains(t, rep.Err().Error(), "directory media/catalog/product/01: 0 files live, 10 in the snapshot")

	// Same size and mtime, different content: the sample catches it.
	media2 := mediaTree(t, 12)
	_, r2 := newRepo(t)
	backupFiles(t, r2, "media", media2)
	f := filepath.Join(media2, "catalog", "product", "00", "img000.jpg")
	fi, err := os.Stat(f)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(f, bytes.Repeat([]byte{9}, int(fi.Size())), 0o644))
	require.NoError(t, os.Chtimes(f, fi.ModTime(), fi.ModTime()))
	p.Targets[0].Paths = []string{media2}
	rep, err = restore.SpotCheck(context.Background(), r2, restore.SpotCheckOptions{Policy: p})
	require.NoError(t, err)
	require.Equal(t, restore.DrillCheckFailed, rep.Status)
	require.Contains(t, rep.Err().Error(), "img000.jpg: live content differs")
}
