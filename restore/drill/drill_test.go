package drill_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
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
	"github.com/lifeboat-backup/lifeboat/engine/repo/repotest"
	"github.com/lifeboat-backup/lifeboat/engine/snapshot"
	"github.com/lifeboat-backup/lifeboat/internal/testutil/shop"
	"github.com/lifeboat-backup/lifeboat/policies"
	"github.com/lifeboat-backup/lifeboat/restore/drill"
	"github.com/lifeboat-backup/lifeboat/targets/files"
	"github.com/lifeboat-backup/lifeboat/targets/mysql"
	"github.com/lifeboat-backup/lifeboat/targets/mysql/mysqltest"
	"github.com/lifeboat-backup/lifeboat/targets/mysql/physical"
	"github.com/lifeboat-backup/lifeboat/targets/postgres"
	"github.com/lifeboat-backup/lifeboat/targets/postgres/postgrestest"
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
	_, err := engine.Backup(context.Background(), r, &files.Source{Roots: roots},
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

	_, r := repotest.Mem(t)
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
	runDrill := func(p *policies.Policy) (*drill.Report, string, int) {
		t.Helper()
		var dir string
		var pid int
		rep, err := drill.Run(context.Background(), engine.Native{R: r}, drill.Options{Policy: p, TempDir: tmp,
			Scratch: func(d string, p int) { dir = d; pid = max(pid, p) }})
		require.NoError(t, err)
		gone(t, dir, pid)
		return rep, dir, pid
	}

	// Passes.
	rep, _, pid := runDrill(pol())
	require.Equal(t, drill.Passed, rep.Status, "%+v", rep)
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
	bad, _, _ := runDrill(p)
	require.Equal(t, drill.CheckFailed, bad.Status)
	err = bad.Err()
	require.ErrorIs(t, err, drill.ErrCheckFailed)
	require.NotErrorIs(t, err, drill.ErrObjectiveViolated)
	require.Contains(t, err.Error(), `"orders present"`)
	require.Contains(t, err.Error(), "below the minimum 1000000000")
	require.Contains(t, err.Error(), "no_such_table")
	require.False(t, bad.RTO.Met)

	// A tiny RTO objective is violated.
	p = pol()
	p.Objectives.RTO = policies.Duration(time.Millisecond)
	p.Drill.Checks = p.Drill.Checks[2:3] // files only: no server
	p.Targets = p.Targets[1:2]
	slow, dir, pid := runDrill(p)
	require.Zero(t, pid)
	require.NotEmpty(t, dir)
	require.Equal(t, drill.ObjectiveViolated, slow.Status)
	require.ErrorIs(t, slow.Err(), drill.ErrObjectiveViolated)
	require.Contains(t, slow.Err().Error(), "RTO")

	// Journal and reports.
	j := drill.Journal(t.TempDir())
	for _, x := range []*drill.Report{rep, bad, slow} {
		require.NoError(t, j.Append(x.Policy, x))
	}
	hist, err := j.Read("drilltest")
	require.NoError(t, err)
	require.Len(t, hist, 3)
	var js bytes.Buffer
	require.NoError(t, drill.WriteJSON(&js, &hist[0]))
	var m map[string]any
	require.NoError(t, json.Unmarshal(js.Bytes(), &m))
	for _, k := range []string{"schema", "kind", "policy", "host", "from", "start", "end", "status", "rto", "rpo", "phases", "targets", "checks"} {
		require.Contains(t, m, k)
	}
	require.EqualValues(t, 1, m["schema"])
	require.Equal(t, "passed", m["status"])
	require.Contains(t, m["rto"], "objective_seconds")
	var html bytes.Buffer
	require.NoError(t, drill.WriteHTML(&html, &hist[2], hist))
	h := html.String()
	require.Contains(t, h, "<svg")
	require.Equal(t, 2, strings.Count(h, "<polyline"))
	require.NotContains(t, h, "src=")
	require.NotContains(t, h, "href=")
	require.NotContains(t, h, "<script")
	var md bytes.Buffer
	require.NoError(t, drill.WriteMarkdown(&md, &hist[1], hist))
	require.Contains(t, md.String(), "below the minimum")
	prom := filepath.Join(t.TempDir(), "lifeboat-drill.prom")
	require.NoError(t, drill.WriteMetrics(prom, rep))
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
	_, r := repotest.Mem(t)
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
	rep, err := drill.Run(ctx, engine.Native{R: r}, drill.Options{Policy: p, TempDir: t.TempDir(),
		Scratch: func(d string, p int) {
			dir = d
			pid = max(pid, p)
			if p != 0 {
				started.Store(true)
			}
		}})
	cancel()
	require.ErrorIs(t, err, context.Canceled)
	require.Equal(t, drill.Errored, rep.Status)
	require.Less(t, time.Since(start), 25*time.Second)
	gone(t, dir, pid)
}

func TestSpotCheckEmptiedDirectory(t *testing.T) {
	media := mediaTree(t, 40)
	_, r := repotest.Mem(t)
	backupFiles(t, r, "media", media)
	p := &policies.Policy{Version: 1, Name: "spot", Host: "drillhost",
		Targets: []policies.Target{{Name: "media", Kind: policies.KindFiles, Paths: []string{media}}}}
	rep, err := drill.SpotCheck(context.Background(), engine.Native{R: r}, drill.SpotCheckOptions{Policy: p})
	require.NoError(t, err)
	require.Equal(t, drill.Passed, rep.Status, "%+v", rep.SpotChecks)
	sc := rep.SpotChecks[0]
	require.Equal(t, int64(41), sc.LiveFiles)
	require.Equal(t, int64(41), sc.SnapshotFiles)
	require.Equal(t, 32, sc.Sampled)
	require.Equal(t, 32, sc.Matched)

	// Silently emptied directory: 10 of 41 files gone.
	dir := filepath.Join(media, "catalog", "product", "01")
	require.NoError(t, os.RemoveAll(dir))
	require.NoError(t, os.Mkdir(dir, 0o755))
	rep, err = drill.SpotCheck(context.Background(), engine.Native{R: r}, drill.SpotCheckOptions{Policy: p})
	require.NoError(t, err)
	require.Equal(t, drill.CheckFailed, rep.Status)
	require.ErrorIs(t, rep.Err(), drill.ErrCheckFailed)
	require.Contains(t, rep.Err().Error(), "directory media/catalog/product/01: 0 files live, 10 in the snapshot")

	// Same size and mtime, different content: the sample catches it.
	media2 := mediaTree(t, 12)
	_, r2 := repotest.Mem(t)
	backupFiles(t, r2, "media", media2)
	f := filepath.Join(media2, "catalog", "product", "00", "img000.jpg")
	fi, err := os.Stat(f)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(f, bytes.Repeat([]byte{9}, int(fi.Size())), 0o644))
	require.NoError(t, os.Chtimes(f, fi.ModTime(), fi.ModTime()))
	p.Targets[0].Paths = []string{media2}
	rep, err = drill.SpotCheck(context.Background(), engine.Native{R: r2}, drill.SpotCheckOptions{Policy: p})
	require.NoError(t, err)
	require.Equal(t, drill.CheckFailed, rep.Status)
	require.Contains(t, rep.Err().Error(), "img000.jpg: live content differs")
}

// openTempDir is a temp dir a scratch postgres (run as the postgres user
// when root) can reach.
func openTempDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "drill-test-")
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(dir) })
	require.NoError(t, os.Chmod(dir, 0o711))
	return dir
}

func TestDrillPostgres(t *testing.T) {
	src := postgrestest.Start(t)
	src.CreateDatabase(t, "drill_oro")
	src.CreateDatabase(t, "drill_log")
	src.MustPSQL(t, "drill_oro", postgrestest.OroSchema)
	src.MustPSQL(t, "drill_log", `CREATE TABLE log (line text); INSERT INTO log VALUES ('a'), (NULL)`)
	src.MustPSQL(t, "postgres", `CREATE ROLE oro_app LOGIN`)
	src.MustPSQL(t, "drill_oro", `ALTER TABLE oro_email OWNER TO oro_app; GRANT SELECT ON oro_order TO oro_app`)
	ordersMD5 := src.MustPSQL(t, "drill_oro", `SELECT md5(string_agg(t::text, '|' ORDER BY t::text)) FROM oro_order t`)

	_, r := repotest.Mem(t)
	withGlobals := func(globals bool, target string) {
		s, err := postgres.New(postgres.Options{DSN: src.URL(), Password: src.Password, Databases: []string{"drill_oro", "drill_log"}, Globals: globals})
		require.NoError(t, err)
		_, err = engine.Backup(context.Background(), r, s, engine.BackupOptions{Target: target, Host: "drillhost", Workers: 2})
		require.NoError(t, err)
	}
	withGlobals(true, "orodb")
	withGlobals(false, "orodb_plain")

	pol := func(target string) *policies.Policy {
		return &policies.Policy{Version: 1, Name: "pgdrill", Host: "drillhost",
			Targets: []policies.Target{
				{Name: target, Kind: policies.KindPostgres, DSN: src.URL(), Databases: []string{"drill_oro", "drill_log"}, Jobs: 2},
			},
			Objectives: policies.Objectives{RPO: policies.Duration(time.Hour), RTO: policies.Duration(10 * time.Minute)},
			Drill: policies.Drill{Checks: []policies.DrillCheck{
				{Name: "orders", Target: target, SQL: "SELECT count(*) FROM oro_order", Min: f64(5000), Max: f64(5000), Timeout: policies.Duration(time.Minute)},
				{Name: "orders intact", SQL: "SELECT md5(string_agg(t::text, '|' ORDER BY t::text)) FROM oro_order t", Expect: ordersMD5, Timeout: policies.Duration(time.Minute)},
				{Name: "null is null", Target: target, SQL: "SELECT NULL", Timeout: policies.Duration(time.Minute)},
				{Name: "env", Command: []string{"sh", "-c", `test -n "$LIFEBOAT_DRILL_POSTGRES_PASSWORD" && PGPASSWORD="$LIFEBOAT_DRILL_POSTGRES_PASSWORD" "$PSQL" -X -w -At -d "${LIFEBOAT_DRILL_POSTGRES_URL}drill_log" -c 'SELECT count(*) FROM log' | grep -qx 2`}, Timeout: policies.Duration(time.Minute)},
				{Name: "other database", Target: target, Database: "drill_log", SQL: "SELECT count(*) FROM log", Expect: "2", Timeout: policies.Duration(time.Minute)},
			}}}
	}
	bin, err := postgrestest.BinDir()
	require.NoError(t, err)
	t.Setenv("PSQL", filepath.Join(bin, "psql"))
	tmp := openTempDir(t)
	var logw io.Writer
	runDrill := func(ctx context.Context, p *policies.Policy) (*drill.Report, error, string, int) {
		t.Helper()
		var dir string
		var pid int
		rep, err := drill.Run(ctx, engine.Native{R: r}, drill.Options{Policy: p, TempDir: tmp, Log: logw,
			Scratch: func(d string, p int) { dir = d; pid = max(pid, p) }})
		gone(t, dir, pid)
		return rep, err, dir, pid
	}

	for target, owner := range map[string]string{"orodb": "oro_app", "orodb_plain": "lifeboat"} {
		t.Run(target, func(t *testing.T) {
			// With globals the roles exist and own their tables; without,
			// the scratch superuser owns everything.
			p := pol(target)
			p.Drill.Checks = append(p.Drill.Checks, policies.DrillCheck{Name: "owner", Target: target,
				SQL: "SELECT tableowner FROM pg_tables WHERE tablename = 'oro_email'", Expect: owner, Timeout: policies.Duration(time.Minute)})
			rep, err, _, pid := runDrill(context.Background(), p)
			require.NoError(t, err)
			require.Equal(t, drill.Passed, rep.Status, "%+v", rep)
			require.NotZero(t, pid, "a scratch postgres was started")
			require.Len(t, rep.Checks, 6)
			for _, c := range rep.Checks {
				require.True(t, c.OK, "%+v", c)
			}
			require.Equal(t, "5000", rep.Checks[0].Value)
			require.Equal(t, ordersMD5, rep.Checks[1].Value)
			require.Equal(t, "NULL", rep.Checks[2].Value)
			require.Equal(t, 2, rep.Targets[0].Databases)
			require.Greater(t, rep.Targets[0].Bytes, int64(100000))
			names := []string{}
			for _, p := range rep.Phases {
				names = append(names, p.Name)
			}
			require.Equal(t, []string{"scratch postgres", "restore " + target, "checks", "teardown"}, names)
			require.True(t, rep.RTO.Met)
			require.Greater(t, rep.RPO.Seconds, 0.0)
		})
	}

	// Failing checks name the query, the database and the reason.
	p := pol("orodb")
	p.Drill.Checks = []policies.DrillCheck{
		{Name: "too few", Target: "orodb", SQL: "SELECT count(*) FROM oro_order", Min: f64(1e9), Timeout: policies.Duration(time.Minute)},
		{Name: "missing table", Target: "orodb", SQL: "SELECT count(*) FROM no_such_table", Timeout: policies.Duration(time.Minute)},
		{Name: "no rows", Target: "orodb", SQL: "SELECT 1 WHERE false", Timeout: policies.Duration(time.Minute)},
		{Name: "two columns", Target: "orodb", SQL: "SELECT 1, 2", Timeout: policies.Duration(time.Minute)},
		{Name: "null with min", Target: "orodb", SQL: "SELECT NULL::int", Min: f64(1), Timeout: policies.Duration(time.Minute)},
		{Name: "slow", Target: "orodb", SQL: "SELECT pg_sleep(30)", Timeout: policies.Duration(time.Second)},
		{Name: "unknown database", Target: "orodb", Database: "nope", SQL: "SELECT 1", Timeout: policies.Duration(time.Minute)},
	}
	bad, err, _, _ := runDrill(context.Background(), p)
	require.NoError(t, err)
	require.Equal(t, drill.CheckFailed, bad.Status)
	msgs := map[string]string{}
	for _, c := range bad.Checks {
		require.False(t, c.OK, "%+v", c)
		msgs[c.Name] = c.Message
	}
	require.Contains(t, msgs["too few"], "returned 5000, below the minimum 1000000000")
	require.Contains(t, msgs["missing table"], `(database drill_oro)`)
	require.Contains(t, msgs["missing table"], `relation "no_such_table" does not exist`)
	require.Contains(t, msgs["no rows"], "returned no rows")
	require.Contains(t, msgs["two columns"], "returned 2 columns, expected 1")
	require.Contains(t, msgs["null with min"], "returned NULL")
	require.Contains(t, msgs["slow"], "timed out after 1s")
	require.Contains(t, msgs["unknown database"], `database "nope" is not in the restored snapshot of orodb (it has drill_log, drill_oro)`)
	require.ErrorIs(t, bad.Err(), drill.ErrCheckFailed)

	// An existing scratch server (drill.postgres.dsn): the previous
	// drill's copies are dropped, twice in a row works.
	scratch := postgrestest.Start(t)
	pwFile := filepath.Join(t.TempDir(), "pw")
	require.NoError(t, os.WriteFile(pwFile, []byte(scratch.Password+"\n"), 0o600))
	p = pol("orodb")
	p.Drill.Postgres = policies.DrillServer{DSN: scratch.URL(), PasswordFile: policies.SecretRef(pwFile)}
	for range 2 {
		rep, err, _, pid := runDrill(context.Background(), p)
		require.NoError(t, err)
		require.Zero(t, pid)
		require.Equal(t, drill.Passed, rep.Status, "%+v", rep)
	}
	require.Equal(t, "5000", scratch.MustPSQL(t, "drill_oro", "SELECT count(*) FROM oro_order"))

	// Two targets holding the same databases: the second fails naming
	// both and the database, before touching the first's copy, whose
	// checks still see its data (restored with globals: oro_app owns).
	p = pol("orodb")
	p.Targets = append(p.Targets, policies.Target{Name: "orodb_plain", Kind: policies.KindPostgres, DSN: src.URL(),
		Databases: []string{"drill_oro", "drill_log"}})
	p.Drill.Postgres = policies.DrillServer{DSN: scratch.URL(), PasswordFile: policies.SecretRef(pwFile)}
	p.Drill.Checks = append(p.Drill.Checks, policies.DrillCheck{Name: "owner", Target: "orodb",
		SQL: "SELECT tableowner FROM pg_tables WHERE tablename = 'oro_email'", Expect: "oro_app", Timeout: policies.Duration(time.Minute)})
	clash, err, _, _ := runDrill(context.Background(), p)
	require.NoError(t, err)
	require.Equal(t, drill.CheckFailed, clash.Status)
	require.Len(t, clash.Targets, 2)
	require.Empty(t, clash.Targets[0].Error)
	require.Equal(t, `database "drill_log" is in targets orodb and orodb_plain, restored into the same scratch PostgreSQL under their original names: drill the two targets in separate policies`,
		clash.Targets[1].Error)
	for _, c := range clash.Checks {
		require.True(t, c.OK, "%+v", c)
	}

	// A server binary that is not there: a clear error, torn down.
	p = pol("orodb")
	p.Drill.Postgres.ServerBinary = "/nonexistent/postgres"
	rep, err, _, _ := runDrill(context.Background(), p)
	require.NoError(t, err)
	require.Equal(t, drill.CheckFailed, rep.Status)
	require.Contains(t, rep.Targets[0].Error, "scratch postgres (drill.postgres.server_binary)")
	require.Contains(t, rep.Targets[0].Error, "no initdb next to /nonexistent/postgres")

	// Ctrl-C while a check runs: the scratch postgres is stopped and the
	// scratch directory removed.
	p = pol("orodb")
	p.Drill.Checks = []policies.DrillCheck{{Name: "hang", Target: "orodb", SQL: "SELECT pg_sleep(30)", Timeout: policies.Duration(time.Minute)}}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var log triggerWriter
	log.on, log.do = "target orodb: restored", func() { time.AfterFunc(time.Second, cancel) }
	logw = &log
	start := time.Now()
	rep, err, _, pid := runDrill(ctx, p)
	require.ErrorIs(t, err, context.Canceled)
	require.Equal(t, drill.Errored, rep.Status)
	require.NotZero(t, pid)
	require.Less(t, time.Since(start), 25*time.Second)
}

// triggerWriter calls do once when a write contains on.
type triggerWriter struct {
	on   string
	do   func()
	done atomic.Bool
}

func (w *triggerWriter) Write(b []byte) (int, error) {
	if strings.Contains(string(b), w.on) && w.done.CompareAndSwap(false, true) {
		w.do()
	}
	return len(b), nil
}

// fakeRepo is a repository of another engine over a native one: it can
// fail where a restic repository fails, learns recovery points on reading
// as restic's stream snapshots do, and counts the snapshots it closes.
type fakeRepo struct {
	engine.Native
	findErr  error
	openErr  error
	closeErr error
	rp       time.Time // recovery point the snapshot learns on reading
	closed   int
}

func (f *fakeRepo) FindSnapshot(ctx context.Context, ref string, filter func(*snapshot.Snapshot) bool) (*snapshot.Snapshot, error) {
	if f.findErr != nil {
		return nil, f.findErr
	}
	return f.Native.FindSnapshot(ctx, ref, filter)
}

func (f *fakeRepo) Open(ctx context.Context, sn *snapshot.Snapshot) (snapshot.Reader, error) {
	if f.openErr != nil {
		return nil, f.openErr
	}
	s, err := f.Native.Open(ctx, sn)
	if err != nil {
		return nil, err
	}
	return &fakeSnapshot{Reader: s, f: f}, nil
}

func (f *fakeRepo) RestoreFiles(ctx context.Context, sn *snapshot.Snapshot, dest string, opts snapshot.RestoreOptions) (*snapshot.RestoreStats, error) {
	if !f.rp.IsZero() {
		sn.RecoveryPoint.Time = f.rp
	}
	return f.Native.RestoreFiles(ctx, sn, dest, opts)
}

type fakeSnapshot struct {
	snapshot.Reader
	f *fakeRepo
}

func (s *fakeSnapshot) Tree(ctx context.Context) snapshot.TreeReader {
	if !s.f.rp.IsZero() {
		s.Info().RecoveryPoint.Time = s.f.rp
	}
	return s.Reader.Tree(ctx)
}

func (s *fakeSnapshot) Close() error {
	s.f.closed++
	return s.f.closeErr
}

// Drill reads any restore.Repository: errors of the repository are told
// apart from a missing snapshot, database snapshots are closed after the
// restore (a close failure fails the target), the recovery point is the
// one the snapshot knows after reading, and the owner-key check applies
// to native repositories only.
func TestDrillRepository(t *testing.T) {
	srv := mysqltest.Shared(t)
	db := srv.DB(t, "")
	_, err := shop.Generate(context.Background(), db, shop.Options{Database: "drill_repo", Rows: 20, Replace: true})
	require.NoError(t, err)
	media := mediaTree(t, 8)
	tr, r := repotest.Mem(t)
	src, err := mysql.New(mysql.Options{DSN: srv.DSN(), Password: srv.Password, Databases: []string{"drill_repo"}})
	require.NoError(t, err)
	_, err = engine.Backup(context.Background(), r, src, engine.BackupOptions{Target: "shopdb", Host: "drillhost"})
	require.NoError(t, err)
	backupFiles(t, r, "media", media)
	pw := filepath.Join(t.TempDir(), "scratch.pass")
	require.NoError(t, os.WriteFile(pw, []byte(srv.Password+"\n"), 0o600))

	learned := time.Now().Add(-90 * time.Minute).UTC().Truncate(time.Second)
	notFound := fmt.Errorf("latest snapshot: %w (repository has no matching snapshot)", repo.ErrNotFound)
	tests := []struct {
		name      string
		repo      *fakeRepo
		target    string // the one target drilled
		err       string // Drill's error
		targetErr string // the target's error in the report
		status    string
		closed    int
		rpo       time.Time // the target's recovery point, when set
	}{
		{name: "database restored and closed", repo: &fakeRepo{}, target: "shopdb", status: drill.Passed, closed: 1},
		{name: "recovery point learned on reading", repo: &fakeRepo{rp: learned}, target: "shopdb",
			status: drill.ObjectiveViolated, closed: 1, rpo: learned},
		{name: "files recovery point", repo: &fakeRepo{rp: learned}, target: "media",
			status: drill.ObjectiveViolated, rpo: learned},
		{name: "close fails", repo: &fakeRepo{closeErr: errors.New("restic dump: exit 1")}, target: "shopdb",
			status: drill.CheckFailed, closed: 1, targetErr: "restic dump: exit 1"},
		{name: "open fails", repo: &fakeRepo{openErr: errors.New("snapshot abc: not a lifeboat archive")}, target: "shopdb",
			status: drill.CheckFailed, targetErr: "not a lifeboat archive"},
		{name: "repository unreadable", repo: &fakeRepo{findErr: errors.New("restic snapshots: wrong password")}, target: "media",
			err: "target media: restic snapshots: wrong password", status: drill.Errored},
		{name: "no snapshot", repo: &fakeRepo{findErr: notFound}, target: "media",
			err: "target media: no snapshot of host drillhost to drill: latest snapshot: not found", status: drill.Errored},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.repo.Native = engine.Native{R: r}
			p := &policies.Policy{Version: 1, Name: "repodrill", Host: "drillhost",
				Targets: []policies.Target{
					{Name: "shopdb", Kind: policies.KindMySQL, DSN: srv.DSN(), Databases: []string{"drill_repo"}},
					{Name: "media", Kind: policies.KindFiles, Paths: []string{media}},
				},
				Objectives: policies.Objectives{RPO: policies.Duration(time.Hour)},
				// The shared server as the scratch server: its drill_repo is
				// dropped and restored from the snapshot.
				Drill: policies.Drill{MySQL: policies.DrillServer{DSN: srv.DSN(), PasswordFile: policies.SecretRef(pw)}}}
			rep, err := drill.Run(context.Background(), tt.repo, drill.Options{Policy: p, TempDir: t.TempDir(),
				Targets: []string{tt.target}})
			if tt.err != "" {
				require.ErrorContains(t, err, tt.err)
				require.NotErrorIs(t, err, repo.ErrNoDataKey)
			} else {
				require.NoError(t, err)
			}
			require.Equal(t, tt.status, rep.Status, "%+v", rep)
			require.Equal(t, tt.closed, tt.repo.closed, "snapshots closed")
			if tt.err != "" {
				return
			}
			require.Len(t, rep.Targets, 1)
			got := rep.Targets[0]
			if tt.targetErr != "" {
				require.Contains(t, got.Error, tt.targetErr)
			} else {
				require.Empty(t, got.Error)
			}
			if !tt.rpo.IsZero() {
				require.Equal(t, tt.rpo, got.RecoveryPoint)
				require.InDelta(t, 90*60, got.RPOSeconds, 60)
				require.False(t, rep.RPO.Met)
			}
		})
	}

	// A native repository opened with the host key cannot restore.
	rep, err := drill.Run(context.Background(), engine.Native{R: tr.Open(t, tr.Host)}, drill.Options{
		Policy: &policies.Policy{Version: 1, Name: "hostkey", Host: "drillhost",
			Targets: []policies.Target{{Name: "media", Kind: policies.KindFiles, Paths: []string{media}}}}})
	require.ErrorIs(t, err, repo.ErrNoDataKey)
	require.ErrorContains(t, err, "give the owner key")
	require.Equal(t, drill.Errored, rep.Status, "a refused drill is journaled as an error")
	require.Len(t, rep.Errors, 1)
	require.False(t, rep.End.IsZero())
}

// TestDrillPhysical: the latest snapshot of a mysql target is a physical
// base: the drill restores it into a data directory, starts a server on
// it, runs the SQL checks there and tears it all down.
func TestDrillPhysical(t *testing.T) {
	if _, err := physical.Binary("", "mariabackup"); err != nil {
		if mysqltest.Required() {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	srv := mysqltest.Start(t)
	db := srv.DB(t, "")
	_, err := shop.Generate(context.Background(), db, shop.Options{Database: "phys_shop", Rows: 200, Replace: true})
	require.NoError(t, err)
	_, r := repotest.Mem(t)
	src, err := physical.New(physical.Options{DSN: srv.DSN(), Password: srv.Password})
	require.NoError(t, err)
	_, err = engine.Backup(context.Background(), r, src, engine.BackupOptions{Target: "shopdb", Host: "drillhost", Workers: 2})
	require.NoError(t, err)
	var want string
	require.NoError(t, db.QueryRow("SELECT COUNT(*) FROM phys_shop.sales_order").Scan(&want))

	p := &policies.Policy{Version: 1, Name: "drillphys", Host: "drillhost",
		Targets:    []policies.Target{{Name: "shopdb", Kind: policies.KindMySQL, Method: "physical", DSN: srv.DSN()}},
		Objectives: policies.Objectives{RPO: policies.Duration(time.Hour), RTO: policies.Duration(10 * time.Minute)},
		Drill: policies.Drill{Checks: []policies.DrillCheck{
			{Name: "orders", Target: "shopdb", SQL: "SELECT COUNT(*) FROM phys_shop.sales_order", Expect: want, Timeout: policies.Duration(time.Minute)},
		}}}
	var dir string
	var pid int
	rep, err := drill.Run(context.Background(), engine.Native{R: r}, drill.Options{Policy: p, TempDir: t.TempDir(),
		Scratch: func(d string, p int) { dir = d; pid = max(pid, p) }})
	require.NoError(t, err)
	require.Equal(t, drill.Passed, rep.Status, "%+v", rep)
	require.True(t, rep.Checks[0].OK, "%+v", rep.Checks[0])
	require.NotZero(t, pid, "a server was started on the restored data directory")
	require.Greater(t, rep.Targets[0].Bytes, int64(0))
	gone(t, dir, pid)
}
