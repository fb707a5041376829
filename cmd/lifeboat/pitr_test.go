package main

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lifeboat-backup/lifeboat/engine/logarchive"
	"github.com/lifeboat-backup/lifeboat/engine/repo"
	"github.com/lifeboat-backup/lifeboat/engine/storage"
	"github.com/lifeboat-backup/lifeboat/targets/mysql/mysqltest"
)

// shopSchema is the generator's database.
var shopSchema = []string{
	"CREATE DATABASE shop",
	"CREATE TABLE shop.orders (id BIGINT PRIMARY KEY, customer VARCHAR(64) NOT NULL, amount DECIMAL(12,2) NOT NULL, status VARCHAR(16) NOT NULL, note BLOB)",
	"CREATE TABLE shop.order_items (id BIGINT PRIMARY KEY, order_id BIGINT NOT NULL, sku VARCHAR(32) NOT NULL, qty INT NOT NULL, price DECIMAL(10,2) NOT NULL, KEY (order_id))",
}

// mutation is one row a transaction set ("" row: deleted).
type mutation struct {
	table string
	id    int64
	row   string
}

// commit is one committed transaction of the generator's commit log:
// when it began and when COMMIT returned, what it changed and the
// checksum of that.
type commit struct {
	seq        int
	begin, end time.Time
	muts       []mutation
	sum        string
}

// orderGen inserts, updates and deletes orders (with their items) in
// transactions on one connection and logs each commit.
type orderGen struct {
	db   *sql.DB
	gate sync.Mutex // held around each transaction; a server restart holds it
	rng  *rand.Rand

	mu      sync.Mutex
	log     []commit
	orders  []int64 // live order ids
	items   map[int64][]int64
	nextID  int64
	nextItm int64
}

func newOrderGen(db *sql.DB) *orderGen {
	db.SetMaxOpenConns(1)
	return &orderGen{db: db, rng: rand.New(rand.NewPCG(21, 7)), items: map[int64][]int64{}, nextID: 1, nextItm: 1}
}

func money(cents int) string { return fmt.Sprintf("%d.%02d", cents/100, cents%100) }

func orderRow(id int64, customer, amount, status string, note []byte) string {
	return fmt.Sprintf("%d|%s|%s|%s|%X", id, customer, amount, status, note)
}

func itemRow(id, order int64, sku string, qty int, price string) string {
	return fmt.Sprintf("%d|%d|%s|%d|%s", id, order, sku, qty, price)
}

// tx runs one random transaction and logs it.
func (g *orderGen) tx(ctx context.Context) error {
	g.gate.Lock()
	defer g.gate.Unlock()
	var muts []mutation
	begin := time.Now()
	tx, err := g.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	exec := func(q string, args ...any) error {
		_, err := tx.ExecContext(ctx, q, args...)
		return err
	}
	r := g.rng.IntN(100)
	switch {
	case r < 60 || len(g.orders) < 20: // a new order with 1-3 items
		id := g.nextID
		cust := fmt.Sprintf("customer-%d", g.rng.IntN(500))
		note := []byte{byte(g.rng.IntN(256)), 0, '\n', '\'', '"', '\\', byte(id)}
		amount := money(g.rng.IntN(100000))
		if err := exec("INSERT INTO shop.orders VALUES (?, ?, ?, 'new', ?)", id, cust, amount, note); err != nil {
			return err
		}
		muts = append(muts, mutation{"orders", id, orderRow(id, cust, amount, "new", note)})
		var its []int64
		for range 1 + g.rng.IntN(3) {
			iid, sku, qty, price := g.nextItm+int64(len(its)), fmt.Sprintf("SKU-%04d", g.rng.IntN(10000)), 1+g.rng.IntN(9), money(g.rng.IntN(20000))
			if err := exec("INSERT INTO shop.order_items VALUES (?, ?, ?, ?, ?)", iid, id, sku, qty, price); err != nil {
				return err
			}
			muts = append(muts, mutation{"order_items", iid, itemRow(iid, id, sku, qty, price)})
			its = append(its, iid)
		}
		if err := tx.Commit(); err != nil {
			return err
		}
		g.nextID++
		g.nextItm += int64(len(its))
		g.orders = append(g.orders, id)
		g.items[id] = its
	case r < 85: // an order changes status and amount
		id := g.orders[g.rng.IntN(len(g.orders))]
		var cust, note string
		var noteB []byte
		if err := tx.QueryRowContext(ctx, "SELECT customer, note FROM shop.orders WHERE id = ?", id).Scan(&cust, &noteB); err != nil {
			return err
		}
		note = string(noteB)
		status := []string{"paid", "shipped", "returned"}[g.rng.IntN(3)]
		amount := money(g.rng.IntN(100000))
		if err := exec("UPDATE shop.orders SET status = ?, amount = ? WHERE id = ?", status, amount, id); err != nil {
			return err
		}
		muts = append(muts, mutation{"orders", id, orderRow(id, cust, amount, status, []byte(note))})
		if err := tx.Commit(); err != nil {
			return err
		}
	default: // an order and its items are deleted
		i := g.rng.IntN(len(g.orders))
		id := g.orders[i]
		if err := exec("DELETE FROM shop.order_items WHERE order_id = ?", id); err != nil {
			return err
		}
		if err := exec("DELETE FROM shop.orders WHERE id = ?", id); err != nil {
			return err
		}
		muts = append(muts, mutation{"orders", id, ""})
		for _, iid := range g.items[id] {
			muts = append(muts, mutation{"order_items", iid, ""})
		}
		if err := tx.Commit(); err != nil {
			return err
		}
		g.orders = slices.Delete(g.orders, i, i+1)
		delete(g.items, id)
	}
	end := time.Now()
	h := sha256.New()
	for _, m := range muts {
		fmt.Fprintf(h, "%s\x00%d\x00%s\n", m.table, m.id, m.row)
	}
	g.mu.Lock()
	g.log = append(g.log, commit{seq: len(g.log) + 1, begin: begin, end: end, muts: muts, sum: hex.EncodeToString(h.Sum(nil))[:16]})
	g.mu.Unlock()
	return nil
}

// run makes transactions at about rate per second until ctx ends.
func (g *orderGen) run(ctx context.Context, rate int) error {
	tick := time.NewTicker(time.Second / time.Duration(rate))
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		if err := g.tx(ctx); err != nil && ctx.Err() == nil {
			return err
		}
	}
}

func (g *orderGen) commits() []commit {
	g.mu.Lock()
	defer g.mu.Unlock()
	return slices.Clone(g.log)
}

// state is each table's rows after the first n commits.
func state(log []commit, n int) map[string]map[int64]string {
	st := map[string]map[int64]string{"orders": {}, "order_items": {}}
	for _, c := range log[:n] {
		for _, m := range c.muts {
			if m.row == "" {
				delete(st[m.table], m.id)
			} else {
				st[m.table][m.id] = m.row
			}
		}
	}
	return st
}

// tableSums is a checksum per table of a state.
func tableSums(st map[string]map[int64]string) map[string]string {
	out := map[string]string{}
	for table, rows := range st {
		ids := slices.Sorted(func(yield func(int64) bool) {
			for id := range rows {
				if !yield(id) {
					return
				}
			}
		})
		h := sha256.New()
		for _, id := range ids {
			fmt.Fprintln(h, rows[id])
		}
		out[table] = fmt.Sprintf("%d rows %x", len(ids), h.Sum(nil)[:8])
	}
	return out
}

// serverChecksums reads the same sums from a server.
func serverChecksums(t *testing.T, db *sql.DB) map[string]string {
	t.Helper()
	st := map[string]map[int64]string{"orders": {}, "order_items": {}}
	rows, err := db.Query("SELECT id, customer, amount, status, note FROM shop.orders")
	require.NoError(t, err)
	for rows.Next() {
		var id int64
		var cust, amount, status string
		var note []byte
		require.NoError(t, rows.Scan(&id, &cust, &amount, &status, &note))
		st["orders"][id] = orderRow(id, cust, amount, status, note)
	}
	require.NoError(t, rows.Err())
	rows.Close()
	rows, err = db.Query("SELECT id, order_id, sku, qty, price FROM shop.order_items")
	require.NoError(t, err)
	for rows.Next() {
		var id, order int64
		var sku, price string
		var qty int
		require.NoError(t, rows.Scan(&id, &order, &sku, &qty, &price))
		st["order_items"][id] = itemRow(id, order, sku, qty, price)
	}
	require.NoError(t, rows.Err())
	rows.Close()
	return tableSums(st)
}

// committedBy is the range of commit counts a restore to second p may
// hold: every transaction that ended before p+1s is in, none that began
// after is (the one transaction running across the boundary may be
// either: its binlog time is somewhere between its begin and its end).
func committedBy(log []commit, p time.Time) (lo, hi int) {
	next := p.Add(time.Second)
	for _, c := range log {
		if c.end.Before(next) {
			lo++
		}
		if c.begin.Before(next) {
			hi++
		}
	}
	return lo, hi
}

// pitrEnv is a policy with an archived mysql target, its repository and
// the built binary.
type pitrEnv struct {
	t       *testing.T
	bin     string
	dir     string
	policy  string
	repoURL string
	owner   string
	host    string
	journal string
}

func newPITREnv(t *testing.T, srv *mysqltest.Server, maxDelay string) *pitrEnv {
	e := &pitrEnv{t: t, bin: buildLifeboat(t), dir: t.TempDir()}
	e.repoURL = "file://" + filepath.Join(e.dir, "repo")
	e.owner, e.host = filepath.Join(e.dir, "owner.key"), filepath.Join(e.dir, "host.key")
	e.journal = filepath.Join(e.dir, "journal")
	pass := filepath.Join(e.dir, "mysql.pass")
	require.NoError(t, os.WriteFile(pass, []byte(srv.Password+"\n"), 0o600))
	e.must(nil, "init", "--repo", e.repoURL, "--owner-key-out", e.owner, "--host-key-out", e.host)
	e.policy = filepath.Join(e.dir, "policy.yaml")
	require.NoError(t, os.WriteFile(e.policy, []byte(`version: 1
name: pitr
repositories:
  primary:
    url: `+e.repoURL+`
    key_file: `+e.host+`
  secondaries:
    - name: dr
      url: file://`+filepath.Join(e.dir, "dr")+`
targets:
  - name: shop
    kind: mysql
    dsn: `+srv.DSN()+`
    password_file: `+pass+`
    databases: [shop]
    archive:
      max_delay: `+maxDelay+`
metrics:
  textfile: `+filepath.Join(e.dir, "lifeboat.prom")+`
objectives:
  rpo: 1m
`), 0o600))
	return e
}

func (e *pitrEnv) env(extra []string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "LIFEBOAT_") && !strings.HasPrefix(kv, "MYSQL_PWD=") {
			env = append(env, kv)
		}
	}
	return append(env, extra...)
}

// run runs the binary; extra environment on top (LIFEBOAT_* removed).
func (e *pitrEnv) run(extra []string, args ...string) (string, int) {
	cmd := exec.Command(e.bin, args...)
	cmd.Env = e.env(extra)
	out, err := cmd.CombinedOutput()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		e.t.Fatal(err)
	}
	return string(out), code
}

func (e *pitrEnv) must(extra []string, args ...string) string {
	e.t.Helper()
	out, code := e.run(extra, args...)
	require.Equal(e.t, 0, code, "lifeboat %s: %s", strings.Join(args, " "), out)
	return out
}

// archiver starts lifeboat binlog archive; stop sends SIGTERM and returns
// its exit code and output.
func (e *pitrEnv) archiver() (stop func() (int, string), done <-chan struct{}) {
	logf := filepath.Join(e.dir, fmt.Sprintf("archiver-%d.log", time.Now().UnixNano()))
	fh, err := os.Create(logf)
	require.NoError(e.t, err)
	cmd := exec.Command(e.bin, "binlog", "archive", e.policy, "--spool", filepath.Join(e.dir, "spool"))
	cmd.Env = e.env(nil)
	cmd.Stdout, cmd.Stderr = fh, fh
	require.NoError(e.t, cmd.Start())
	ch := make(chan struct{})
	go func() { _ = cmd.Wait(); fh.Close(); close(ch) }()
	var once sync.Once
	stop = func() (int, string) {
		once.Do(func() {
			_ = cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-ch:
			case <-time.After(30 * time.Second):
				_ = cmd.Process.Kill()
				<-ch
			}
		})
		out, _ := os.ReadFile(logf)
		return cmd.ProcessState.ExitCode(), string(out)
	}
	e.t.Cleanup(func() { stop() })
	return stop, ch
}

// segments lists the archive's binlog segments with the host key, as
// status does.
func (e *pitrEnv) segments() []logarchive.Segment {
	ctx := context.Background()
	b, err := storage.OpenWith(ctx, e.repoURL, storage.OpenOptions{})
	require.NoError(e.t, err)
	defer b.Close()
	creds, err := repo.ReadKeyFile(e.host)
	require.NoError(e.t, err)
	r, err := repo.OpenUnindexed(ctx, b, creds)
	require.NoError(e.t, err)
	segs, damaged, err := logarchive.New(r).List(ctx, "shop", "binlog")
	require.NoError(e.t, err)
	require.Empty(e.t, damaged)
	return segs
}

func newestArchived(segs []logarchive.Segment) time.Time {
	var t time.Time
	for _, s := range segs {
		if s.LastTime.After(t) {
			t = s.LastTime
		}
	}
	return t
}

// waitCaughtUp waits until the archive ends at the server's binlog
// position.
func (e *pitrEnv) waitCaughtUp(db *sql.DB, within time.Duration) {
	e.t.Helper()
	var file, pos string
	rows, err := db.Query("SHOW MASTER STATUS")
	require.NoError(e.t, err)
	cols, _ := rows.Columns()
	require.True(e.t, rows.Next())
	vals := make([]sql.RawBytes, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	require.NoError(e.t, rows.Scan(ptrs...))
	file, pos = string(vals[0]), string(vals[1])
	rows.Close()
	want := file + ":" + pos
	require.Eventually(e.t, func() bool {
		segs := e.segments()
		return len(segs) > 0 && segs[len(segs)-1].End == want
	}, within, 200*time.Millisecond, "the archive never reached %s", want)
}

// restoreAt restores to dst at point (args: --until ...) with the owner
// key and compares the tables with the commit log at p.
func (e *pitrEnv) restoreAt(dst *mysqltest.Server, log []commit, p time.Time, args ...string) (string, int) {
	e.t.Helper()
	ddb := dst.DB(e.t, "")
	_, err := ddb.Exec("DROP DATABASE IF EXISTS shop")
	require.NoError(e.t, err)
	start := time.Now()
	out := e.must([]string{"LIFEBOAT_KEY_FILE=" + e.owner}, append([]string{"restore", "--policy", e.policy, "--to", dst.URL()}, args...)...)
	e.t.Logf("restore %s: %.1fs\n%s", strings.Join(args, " "), time.Since(start).Seconds(), out)
	got := serverChecksums(e.t, ddb)
	lo, hi := committedBy(log, p)
	for n := lo; n <= hi; n++ {
		if want := tableSums(state(log, n)); assert.ObjectsAreEqual(want, got) {
			return out, n
		}
	}
	e.t.Fatalf("restore %s: tables %v match no state of the commit log between commit %d (%v) and %d (%v)", strings.Join(args, " "),
		got, lo, tableSums(state(log, lo)), hi, tableSums(state(log, hi)))
	return out, 0
}

// TestPITRMustShow is issue 21's must-show: a MariaDB under continuous
// load (>= 50 tx/s) is archived with max_delay 10s; a snapshot, more
// load with a binlog rotation and a server restart in the middle; then
// the server is killed (-9) and its datadir deleted. Restores to a point
// before the restart, one after, and the last archived second each give
// exactly the rows committed up to that point (checksum per table). The
// archive is never more than 15 s behind the server during the load
// (measured from the archive's index; a drill run during the load
// reports its RPO from the archive, <= 15 s). The archiver has only the host
// key, and a restore with it fails with exit 12.
// LIFEBOAT_PITR_LONG=1 runs 5 minutes of load instead of about 20 s.
func TestPITRMustShow(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary, runs MariaDB under load")
	}
	phase := 6 * time.Second
	if os.Getenv("LIFEBOAT_PITR_LONG") == "1" {
		phase = 100 * time.Second
	}
	srv := mysqltest.Start(t)
	db := srv.DB(t, "")
	for _, q := range shopSchema {
		_, err := db.Exec(q)
		require.NoError(t, err, q)
	}
	e := newPITREnv(t, srv, "10s")
	stopArchiver, _ := e.archiver()

	gen := newOrderGen(srv.DB(t, ""))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	genErr := make(chan error, 1)
	go func() { genErr <- gen.run(ctx, 100) }()

	// RPO: the newest archived event against the newest commit, each second.
	var rpoMu sync.Mutex
	var worstRPO time.Duration
	rpoDone := make(chan struct{})
	go func() {
		defer close(rpoDone)
		for ctx.Err() == nil {
			time.Sleep(time.Second)
			segs := e.segments()
			log := gen.commits()
			if len(segs) == 0 || len(log) == 0 {
				continue
			}
			behind := log[len(log)-1].end.Sub(newestArchived(segs))
			rpoMu.Lock()
			worstRPO = max(worstRPO, behind)
			rpoMu.Unlock()
		}
	}()

	// Phase A: load, then a snapshot under load.
	time.Sleep(phase / 2)
	out := e.must(nil, "run", e.policy, "--journal", e.journal)
	t.Logf("snapshot: %s", out)
	time.Sleep(phase / 2)
	// Phase B: a binlog rotation in the middle; point 1 before the restart.
	time.Sleep(phase / 2)
	_, err := db.Exec("FLUSH BINARY LOGS")
	require.NoError(t, err)
	time.Sleep(phase / 2)
	p1 := time.Now().Truncate(time.Second).Add(-time.Second)
	time.Sleep(1500 * time.Millisecond)
	// The server restarts under the load (the generator waits for it).
	gen.gate.Lock()
	require.NoError(t, srv.Restart())
	db.SetMaxIdleConns(0)
	gen.db.SetMaxIdleConns(0)
	db.SetMaxIdleConns(2)
	gen.db.SetMaxIdleConns(1)
	gen.gate.Unlock()
	// Phase C: point 2 after the restart. A drill under the load measures
	// the RPO from the archive: the archive's lag, not the snapshot's age.
	t0 := time.Now()
	time.Sleep(phase / 2)
	drillOut := e.must([]string{"LIFEBOAT_KEY_FILE=" + e.owner}, "drill", e.policy, "--journal", e.journal, "--json")
	time.Sleep(max(0, phase-time.Since(t0)))
	p2 := time.Now().Truncate(time.Second).Add(-time.Second)
	time.Sleep(phase / 2)
	cancel()
	require.NoError(t, <-genErr)
	<-rpoDone
	log := gen.commits()
	loadTime := log[len(log)-1].end.Sub(log[0].begin)
	rate := float64(len(log)) / loadTime.Seconds()
	t.Logf("load: %d transactions in %s (%.0f/s)", len(log), loadTime.Round(time.Millisecond), rate)
	require.GreaterOrEqual(t, rate, 50.0, "the generator must make at least 50 transactions/s")

	// The archive catches up within max_delay; then the server dies.
	e.waitCaughtUp(db, 20*time.Second)
	segs := e.segments()
	last := newestArchived(segs)
	rpoMu.Lock()
	t.Logf("RPO: the newest archived event was at most %s behind the newest commit (max_delay 10s); %d segments", worstRPO, len(segs))
	assert.LessOrEqual(t, worstRPO, 15*time.Second, "the archive fell more than 15 s behind")
	rpoMu.Unlock()
	rep, ok := lastJSON(t, drillOut)["drill"].(map[string]any)
	require.True(t, ok, drillOut)
	tg := rep["targets"].([]any)[0].(map[string]any)
	t.Logf("drill under load: RPO %.1fs (newest archived event %v), RTO %.1fs", tg["rpo_seconds"], tg["archived_until"], rep["rto"].(map[string]any)["seconds"])
	require.NotEmpty(t, tg["archived_until"], "the drill measured the RPO from the archive")
	assert.LessOrEqual(t, tg["rpo_seconds"].(float64), 15.0, "the drill's report: RPO within max_delay 10s + 5s")
	assert.Equal(t, true, rep["rpo"].(map[string]any)["met"])

	srv.Kill()
	require.NoError(t, os.RemoveAll(srv.DataDir))
	code, aout := stopArchiver()
	assert.Contains(t, []int{0, 130}, code, aout)
	for _, bad := range []string{srv.Password} {
		assert.NotContains(t, aout, bad, "the archiver's log holds the password")
	}

	status := e.must(nil, "status", e.policy, "--journal", e.journal)
	assert.Contains(t, status, "binlog archive shop")
	assert.Contains(t, status, "restorable to any second from")

	dst := mysqltest.Start(t)
	// The host key (the policy's) cannot restore: exit 12.
	hout, hcode := e.run(nil, "restore", "--policy", e.policy, "--until", "latest", "--to", dst.URL())
	require.Equal(t, exitWrongKey, hcode, hout)

	// A dry run says what it would do.
	dry := e.must([]string{"LIFEBOAT_KEY_FILE=" + e.owner}, "restore", "--policy", e.policy, "--until", p1.Format(time.RFC3339), "--dry-run")
	assert.Contains(t, dry, "base snapshot")
	assert.Contains(t, dry, "would replay")

	_, n1 := e.restoreAt(dst, log, p1, "--until", p1.Format(time.RFC3339))
	_, n2 := e.restoreAt(dst, log, p2, "--until", p2.UTC().Format("2006-01-02 15:04:05"))
	out3, n3 := e.restoreAt(dst, log, last, "--until", last.UTC().Format(time.RFC3339))
	t.Logf("points: %s -> %d commits (before the restart), %s -> %d (after), last archived second %s -> %d of %d",
		p1.Format(time.RFC3339), n1, p2.Format(time.RFC3339), n2, last.Format(time.RFC3339), n3, len(log))
	assert.Less(t, n1, n2)
	assert.Equal(t, len(log), n3, "the last archived second holds every commit")
	assert.Contains(t, out3, "last transaction: GTID")
}

// TestPITRGap: binary logs purged before they were archived are a gap:
// the archiver exits 13 (after archiving what the server still has), its
// metric says so, status names it, and a restore to a point inside it is
// refused with the reason; after the next snapshot restores to a point
// work again.
func TestPITRGap(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary, runs MariaDB")
	}
	srv := mysqltest.Start(t)
	db := srv.DB(t, "")
	for _, q := range shopSchema {
		_, err := db.Exec(q)
		require.NoError(t, err, q)
	}
	gen := newOrderGen(srv.DB(t, ""))
	load := func(n int) {
		for range n {
			require.NoError(t, gen.tx(context.Background()))
		}
	}
	e := newPITREnv(t, srv, "2s")
	owner := []string{"LIFEBOAT_KEY_FILE=" + e.owner}
	load(20)
	e.must(nil, "run", e.policy, "--journal", e.journal)
	stop, _ := e.archiver()
	load(20)
	e.waitCaughtUp(db, 20*time.Second)
	code, out := stop()
	require.Contains(t, []int{0, 130}, code, out)

	// Events the archiver never saw, then their binary logs purged.
	time.Sleep(1100 * time.Millisecond)
	load(20)
	inGap := time.Now().Truncate(time.Second)
	time.Sleep(1100 * time.Millisecond)
	load(20)
	for _, q := range []string{"FLUSH BINARY LOGS", "FLUSH BINARY LOGS"} {
		_, err := db.Exec(q)
		require.NoError(t, err)
	}
	var file string
	var pos any
	cols := make([]any, 0)
	rows, err := db.Query("SHOW MASTER STATUS")
	require.NoError(t, err)
	cn, _ := rows.Columns()
	require.True(t, rows.Next())
	cols = append(cols, &file, &pos)
	for range len(cn) - 2 {
		cols = append(cols, new(sql.RawBytes))
	}
	require.NoError(t, rows.Scan(cols...))
	rows.Close()
	// The stopped archiver's dump thread may linger until the server
	// writes to it, and a binary log in use is not purged.
	ids, err := db.Query("SELECT ID FROM information_schema.PROCESSLIST WHERE COMMAND LIKE 'Binlog Dump%'")
	require.NoError(t, err)
	var dump []int64
	for ids.Next() {
		var id int64
		require.NoError(t, ids.Scan(&id))
		dump = append(dump, id)
	}
	ids.Close()
	for _, id := range dump {
		_, _ = db.Exec(fmt.Sprintf("KILL %d", id))
	}
	// A binary log is also in use until InnoDB's checkpoint passed it.
	require.Eventually(t, func() bool {
		_, err = db.Exec("PURGE BINARY LOGS TO '" + file + "'")
		require.NoError(t, err)
		var oldest string
		require.NoError(t, db.QueryRow("SHOW BINARY LOGS").Scan(&oldest, new(any)))
		return oldest == file
	}, 20*time.Second, 250*time.Millisecond, "the older binary logs are never purged")

	// The archiver finds the gap, archives past it and exits 13.
	stop, done := e.archiver()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		_, out := stop()
		t.Fatalf("the archiver did not stop at the gap:\n%s", out)
	}
	code, out = stop()
	assert.Equal(t, exitGap, code, out)
	assert.Contains(t, out, "binlog gap")
	assert.Contains(t, out, "purged")
	prom, err := os.ReadFile(filepath.Join(e.dir, "lifeboat-binlog-shop.prom"))
	require.NoError(t, err)
	assert.Contains(t, string(prom), `lifeboat_binlog_archive_gap{policy="pitr",target="shop"} 1`)

	status, scode := e.run(nil, "status", e.policy, "--journal", e.journal)
	assert.Equal(t, exitFailure, scode, status)
	assert.Contains(t, status, "gap in shop/binlog")
	assert.Contains(t, status, "binlog archive shop: not restorable to a point")
	assert.Contains(t, status, "possible again after the next snapshot")

	dst := mysqltest.Start(t)
	refused, rcode := e.run(owner, "restore", "--policy", e.policy, "--until", inGap.Format(time.RFC3339), "--to", dst.URL())
	assert.Equal(t, exitFailure, rcode, refused)
	assert.Contains(t, refused, "refused")
	assert.Contains(t, refused, "purged")
	t.Logf("restore inside the gap: %s", refused)
	var tables int
	require.NoError(t, dst.DB(t, "").QueryRow("SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'shop'").Scan(&tables))
	assert.Zero(t, tables, "a refused restore restores nothing")

	// The next snapshot closes the gap: restores to a point work again.
	stop, _ = e.archiver()
	e.must(nil, "run", e.policy, "--journal", e.journal)
	load(30)
	e.waitCaughtUp(db, 20*time.Second)
	status, _ = e.run(nil, "status", e.policy, "--journal", e.journal)
	assert.Contains(t, status, "binlog archive shop: restorable to any second from")
	log := gen.commits()
	_, n := e.restoreAt(dst, log, time.Now().Truncate(time.Second), "--until", "latest")
	assert.Equal(t, len(log), n)
	code, out = stop()
	assert.Contains(t, []int{0, 130}, code, out)

	// The secondary gets the segments with replicate; failover --until
	// restores from it alone.
	e.must(nil, "replicate", e.policy)
	ddb := dst.DB(t, "")
	_, err = ddb.Exec("DROP DATABASE shop")
	require.NoError(t, err)
	fo := e.must(owner, "failover", e.policy, "--from", "dr", "--until", "latest", "--to", dst.URL())
	assert.Contains(t, fo, "replayed 30 transactions")
	assert.Equal(t, tableSums(state(log, len(log))), serverChecksums(t, ddb), "failover --until latest from the secondary")
}
