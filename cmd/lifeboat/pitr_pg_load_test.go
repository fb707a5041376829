package main

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/lifeboat-backup/lifeboat/internal/scratch/scratchproc"
	"github.com/lifeboat-backup/lifeboat/targets/postgres"
	"github.com/lifeboat-backup/lifeboat/targets/postgres/postgrestest"
)

// pgLoad is a load generator with its commit log: every committed
// insert, update and delete (one transaction each) and the state it
// leaves, so the rows at any quiet point are known exactly.
type pgLoad struct {
	t      *testing.T
	p      *pitrPG
	rng    *rand.Rand
	rows   map[int]string // id -> checksum (md5 of the value)
	nextID int
	log    []commitRecord
}

type commitRecord struct {
	// Sent is when the transaction was sent and At when its COMMIT
	// returned: the server's commit timestamp lies between the two.
	Sent, At time.Time
	ID       int
	Op       string
	Checksum string
}

func newPGLoad(p *pitrPG) *pgLoad {
	p.sql("CREATE TABLE orders (id int PRIMARY KEY, v text NOT NULL)")
	return &pgLoad{t: p.t, p: p, rng: rand.New(rand.NewPCG(22, 15)), rows: map[int]string{}, nextID: 1}
}

func md5hex(s string) string { h := md5.Sum([]byte(s)); return hex.EncodeToString(h[:]) }

// run commits random transactions for d and returns how many.
func (l *pgLoad) run(d time.Duration) int {
	l.t.Helper()
	psql := filepath.Join(l.p.pg.BinDir(), "psql")
	conn, err := postgres.ParseDSN(fmt.Sprintf("postgres://%s@127.0.0.1:%d/postgres", l.p.pg.User, l.p.pg.Port), l.p.pg.Password)
	require.NoError(l.t, err)
	se, err := postgres.OpenSession(context.Background(), psql, conn, "postgres")
	require.NoError(l.t, err)
	defer se.Close()
	n := 0
	for end := time.Now().Add(d); time.Now().Before(end); n++ {
		var stmt, op string
		var id int
		ids := slices.Collect(maps.Keys(l.rows))
		v := strconv.FormatUint(l.rng.Uint64(), 36)
		switch r := l.rng.IntN(10); {
		case r < 6 || len(ids) < 10:
			id, op = l.nextID, "insert"
			l.nextID++
			stmt = fmt.Sprintf("INSERT INTO orders VALUES (%d, '%s')", id, v)
		case r < 9:
			id, op = ids[l.rng.IntN(len(ids))], "update"
			stmt = fmt.Sprintf("UPDATE orders SET v = '%s' WHERE id = %d", v, id)
		default:
			id, op = ids[l.rng.IntN(len(ids))], "delete"
			stmt = fmt.Sprintf("DELETE FROM orders WHERE id = %d", id)
		}
		sent := time.Now()
		_, err := se.Query("BEGIN; " + stmt + "; COMMIT; SELECT 1")
		require.NoError(l.t, err)
		sum := ""
		if op == "delete" {
			delete(l.rows, id)
		} else {
			sum = md5hex(v)
			l.rows[id] = sum
		}
		l.log = append(l.log, commitRecord{Sent: sent, At: time.Now(), ID: id, Op: op, Checksum: sum})
	}
	return n
}

// point is a quiet moment between commits and the rows at it.
type point struct {
	At   time.Time
	Rows map[int]string
}

func (l *pgLoad) mark() point {
	time.Sleep(30 * time.Millisecond)
	pt := point{At: time.Now(), Rows: maps.Clone(l.rows)}
	time.Sleep(30 * time.Millisecond)
	return pt
}

// rowsOf reads the orders table of a server as id -> md5(v).
func rowsOf(t *testing.T, binDir string, port int) map[int]string {
	t.Helper()
	cmd := exec.Command(filepath.Join(binDir, "psql"), "-X", "-A", "-t", "-F", " ", "-c", "SELECT id, md5(v) FROM orders")
	cmd.Env = append(os.Environ(), "PGHOST=127.0.0.1", "PGPORT="+strconv.Itoa(port), "PGUSER="+postgrestest.User,
		"PGPASSWORD="+postgrestest.Password, "PGDATABASE=postgres")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	rows := map[int]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if line == "" {
			continue
		}
		f := strings.Fields(line)
		id, err := strconv.Atoi(f[0])
		require.NoError(t, err)
		rows[id] = f[1]
	}
	return rows
}

// restoreAt restores the archive to until into a new data directory,
// starts it (lifeboat restore --start) and returns its port and a stop
// function.
func (p *pitrPG) restoreAt(until string, extra ...string) (string, int, func()) {
	return p.recoverAt([]string{"restore", "--policy", p.policy, "--target", "pg"}, until, extra...)
}

// recoverAt is restoreAt with another command (failover from the
// secondary).
func (p *pitrPG) recoverAt(command []string, until string, extra ...string) (string, int, func()) {
	p.t.Helper()
	dir, err := os.MkdirTemp(p.dir, "restore-")
	require.NoError(p.t, err)
	require.NoError(p.t, os.Chmod(dir, 0o711))
	sock := filepath.Join(dir, "sock")
	require.NoError(p.t, os.Mkdir(sock, 0o700))
	p.chownPostgres(dir, sock)
	port, err := scratchproc.FreePort()
	require.NoError(p.t, err)
	datadir := filepath.Join(dir, "data")
	args := append(slices.Clone(command), "--until", until, "--to-datadir", datadir, "--start",
		"--pg-option", fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off", port, sock))
	args = append(args, extra...)
	// The binary, not in-process: restore_command names the running
	// executable.
	cmd := exec.Command(p.bin, args...)
	cmd.Env = append(os.Environ(), "LIFEBOAT_KEY_FILE="+p.owner)
	b, err := cmd.CombinedOutput()
	out := string(b)
	require.NoError(p.t, err, "lifeboat %s: %s", strings.Join(args, " "), out)
	stop := func() {
		cmd := exec.Command(filepath.Join(p.pg.BinDir(), "pg_ctl"), "stop", "-D", datadir, "-m", "fast", "-w")
		if os.Geteuid() == 0 {
			uid, gid := postgresIDs(p.t)
			cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: gid}}
		}
		out, err := cmd.CombinedOutput()
		require.NoError(p.t, err, "%s", out)
	}
	return out, port, stop
}

// The must-show of issue 22, short form (make test): a cluster under
// load with a commit log, a physical base taken during the load, more
// load with a forced WAL switch and a server restart, the cluster
// destroyed; recovery to three recorded points gives exactly the rows
// committed up to each. Then a recovered cluster is promoted (timeline
// 2), writes and archives on its new timeline, is destroyed too, and a
// restore to the latest point follows timeline 2.
// LIFEBOAT_PITR_LONG=1 runs PITR_LOAD_SECONDS (default 300) of load after the base.
func TestPITRPGRecoveryToPoints(t *testing.T) {
	if testing.Short() {
		t.Skip("starts MinIO and PostgreSQL")
	}
	phase := time.Second
	if os.Getenv("LIFEBOAT_PITR_LONG") == "1" {
		total := 300
		if s := os.Getenv("PITR_LOAD_SECONDS"); s != "" {
			total, _ = strconv.Atoi(s)
		}
		phase = time.Duration(total) * time.Second * 4 / 13 // 3.25 phases of load after the base
	}
	p := newPITRPG(t)
	l := newPGLoad(p)
	l.run(phase / 2)

	// The physical base, taken while the load goes on.
	journal := t.TempDir()
	done := make(chan string)
	go func() {
		out, errs, code := p.c.run("run", p.policy, "--target", "pg", "--journal", journal)
		done <- fmt.Sprintf("exit %d: %s%s", code, out, errs)
	}()
	n := 0
	var res string
	for res == "" {
		n += l.run(200 * time.Millisecond)
		select {
		case res = <-done:
		default:
		}
	}
	require.True(t, strings.HasPrefix(res, "exit 0"), res)
	t.Logf("base taken during %d commits", n)

	n = l.run(phase)
	p1 := l.mark()
	p.switchWAL()
	n += l.run(phase)
	p2 := l.mark()
	require.NoError(t, p.pg.Restart(context.Background()))
	n += l.run(phase)
	p3 := l.mark()
	n += l.run(phase / 4) // commits after p3, so recovery finds its stop
	last := p.switchWAL()
	p.waitArchived(last, 60*time.Second)
	t.Logf("%d commits after the base; %d in the commit log", n, len(l.log))

	// Destroy the cluster.
	p.pg.Kill()
	require.NoError(t, os.RemoveAll(p.pg.DataDir))

	// The secondary gets the bases and the WAL: point 3 is recovered from
	// it (failover --until), never reading the primary.
	p.c.ok("replicate", p.policy)
	for i, pt := range []point{p1, p2, p3} {
		command := []string{"restore", "--policy", p.policy, "--target", "pg"}
		if i == 2 {
			command = []string{"failover", p.policy, "--from", "dr", "--target", "pg"}
		}
		out, port, stop := p.recoverAt(command, pt.At.UTC().Format(time.RFC3339Nano), "--no-archive")
		if i == 2 {
			require.Contains(t, out, "--repo")
		}
		got := rowsOf(t, p.pg.BinDir(), port)
		stop()
		require.Equal(t, len(pt.Rows), len(got), "point %d (%s): row count\n%s", i+1, pt.At, out)
		require.Equal(t, pt.Rows, got, "point %d (%s)\n%s", i+1, pt.At, out)
		require.Contains(t, out, "recovery finished: recovery stopping before")
		t.Logf("point %d: %d rows exactly; %s", i+1, len(got), strings.TrimSpace(out[strings.Index(out, "recovery finished"):]))
	}

	// Timeline 2: recover to p2 with archiving on, write, archive, destroy;
	// the latest point then is on timeline 2.
	archive := "-c archive_mode=on -c archive_command='" + p.bin + " wal push --policy " + p.policy + " --target pg %p'"
	out, port, stop := p.restoreAt(p2.At.UTC().Format(time.RFC3339Nano), "--pg-option", archive)
	require.Contains(t, out, "selected new timeline ID: 2")
	psql := func(q string) string {
		cmd := exec.Command(filepath.Join(p.pg.BinDir(), "psql"), "-X", "-A", "-t", "-c", q)
		cmd.Env = append(os.Environ(), "PGHOST=127.0.0.1", "PGPORT="+strconv.Itoa(port), "PGUSER="+postgrestest.User,
			"PGPASSWORD="+postgrestest.Password, "PGDATABASE=postgres")
		b, err := cmd.CombinedOutput()
		require.NoError(t, err, "%s", b)
		return strings.TrimSpace(string(b))
	}
	psql("INSERT INTO orders VALUES (-2, 'timeline two')")
	seg := psql("SELECT pg_walfile_name(pg_switch_wal())")
	require.True(t, strings.HasPrefix(seg, "00000002"), seg)
	deadline := time.Now().Add(60 * time.Second)
	for psql("SELECT coalesce(last_archived_wal, '') FROM pg_stat_archiver") < seg {
		require.True(t, time.Now().Before(deadline), "timeline 2 segment %s not archived", seg)
		time.Sleep(200 * time.Millisecond)
	}
	stop()
	out, port, stop = p.restoreAt("latest", "--no-archive")
	got := rowsOf(t, p.pg.BinDir(), port)
	stop()
	want := maps.Clone(p2.Rows)
	want[-2] = md5hex("timeline two")
	require.Equal(t, want, got, "latest on timeline 2\n%s", out)
	require.Contains(t, out, "selected new timeline ID: 3")
}
