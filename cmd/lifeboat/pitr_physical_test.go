package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lifeboat-backup/lifeboat/internal/scratch/mariadb"
	"github.com/lifeboat-backup/lifeboat/targets/mysql/mysqltest"
	"github.com/lifeboat-backup/lifeboat/targets/mysql/physical"
)

// datadirSums starts a plain mariadbd on a restored data directory and
// returns the shop tables' checksums (as serverChecksums).
func datadirSums(t *testing.T, dir string) map[string]string {
	t.Helper()
	m, err := mariadb.StartOn(context.Background(), mariadb.Options{Dir: t.TempDir()}, dir)
	require.NoError(t, err, "a server starts on the restored %s", dir)
	defer m.Stop()
	db, err := m.DB()
	require.NoError(t, err)
	defer db.Close()
	return serverChecksums(t, db)
}

// matchingPrefix is the commit count in [lo, hi] whose state has sums
// (-1: none).
func matchingPrefix(log []commit, lo, hi int, sums map[string]string) int {
	for n := lo; n <= hi; n++ {
		if assert.ObjectsAreEqual(tableSums(state(log, n)), sums) {
			return n
		}
	}
	return -1
}

// TestPITRPhysical: a mysql target under load (50 tx/s, archived) gets a
// logical snapshot, then (method: physical) a mariabackup base. restore
// --until ... --to-datadir picks the newest base before the point, of
// either method, replays the archive on a temporary server and leaves a
// data directory a plain mariadbd starts on with exactly the rows
// committed up to the point (the last point by failover from the
// secondary); restore latest --to-datadir restores the physical base
// alone. The host key cannot: exit 12.
func TestPITRPhysical(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary, runs MariaDB under load")
	}
	if _, err := physical.Binary("", "mariabackup"); err != nil {
		if mysqltest.Required() {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	srv := mysqltest.Start(t)
	db := srv.DB(t, "")
	for _, q := range shopSchema {
		_, err := db.Exec(q)
		require.NoError(t, err, q)
	}
	e := newPITREnv(t, srv, "2s")
	stopArchiver, _ := e.archiver()
	gen := newOrderGen(srv.DB(t, ""))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	genErr := make(chan error, 1)
	go func() { genErr <- gen.run(ctx, 50) }()

	time.Sleep(3 * time.Second)
	e.must(nil, "run", e.policy, "--journal", e.journal) // logical
	time.Sleep(3 * time.Second)
	p1 := time.Now().Truncate(time.Second).Add(-time.Second)
	time.Sleep(1500 * time.Millisecond)
	pol, err := os.ReadFile(e.policy)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(e.policy, []byte(strings.Replace(string(pol), "    kind: mysql\n", "    kind: mysql\n    method: physical\n", 1)), 0o600))
	start := time.Now()
	out := e.must(nil, "run", e.policy, "--journal", e.journal) // physical, with the host key
	t.Logf("physical base under load: %.1fs\n%s", time.Since(start).Seconds(), out)
	time.Sleep(3 * time.Second)
	p2 := time.Now().Truncate(time.Second).Add(-time.Second)
	time.Sleep(1500 * time.Millisecond)
	cancel()
	require.NoError(t, <-genErr)
	log := gen.commits()
	e.waitCaughtUp(db, 20*time.Second)
	last := newestArchived(e.segments())
	code, aout := stopArchiver()
	assert.Contains(t, []int{0, 130}, code, aout)
	srv.Kill()
	require.NoError(t, os.RemoveAll(srv.DataDir))

	snaps := e.must(nil, "snapshots", "--policy", e.policy, "--json")
	require.Contains(t, snaps, `"method":"physical"`)

	owner := []string{"LIFEBOAT_KEY_FILE=" + e.owner}
	dirs := t.TempDir()
	// The host key (the policy's) cannot restore: exit 12, nothing written.
	hout, hcode := e.run(nil, "restore", "--policy", e.policy, "--until", "latest", "--to-datadir", filepath.Join(dirs, "host"))
	require.Equal(t, exitWrongKey, hcode, hout)
	hout, hcode = e.run(nil, "restore", "latest", "--policy", e.policy, "--target", "shop", "--to-datadir", filepath.Join(dirs, "host2"))
	require.Equal(t, exitWrongKey, hcode, hout)

	// The secondary gets the newest segments with replicate: the last
	// point is restored from there (failover).
	e.must(nil, "replicate", e.policy)
	for i, pt := range []struct {
		at     time.Time
		method string
	}{{p1, "logical"}, {p2, "physical"}, {last, "physical"}} {
		dir := filepath.Join(dirs, pt.method+"-"+pt.at.Format("150405"))
		start := time.Now()
		args := []string{"restore", "--policy", e.policy}
		if i == 2 {
			args = []string{"failover", e.policy, "--from", "dr"}
		}
		out := e.must(owner, append(args, "--target", "shop", "--until", pt.at.UTC().Format(time.RFC3339), "--to-datadir", dir)...)
		t.Logf("%s --until %s --to-datadir: %.1fs\n%s", args[0], pt.at.Format(time.RFC3339), time.Since(start).Seconds(), out)
		assert.Contains(t, out, pt.method+" base")
		assert.Contains(t, out, "last transaction: GTID")
		fi, err := os.Stat(dir)
		require.NoError(t, err)
		assert.Equal(t, os.FileMode(0o750), fi.Mode().Perm())
		lo, hi := committedBy(log, pt.at)
		n := matchingPrefix(log, lo, hi, datadirSums(t, dir))
		require.GreaterOrEqual(t, n, 0, "point %d (%s): the restored rows match no state between commits %d and %d", i, pt.at, lo, hi)
		if i == 2 {
			assert.Equal(t, len(log), n, "the last archived second holds every commit")
		}
	}

	// The physical base alone.
	dir := filepath.Join(dirs, "base")
	out = e.must(owner, "restore", "latest", "--policy", e.policy, "--target", "shop", "--to-datadir", dir)
	assert.Contains(t, out, "restored physical base")
	n := matchingPrefix(log, 0, len(log), datadirSums(t, dir))
	require.GreaterOrEqual(t, n, 0, "the physical base matches no state of the commit log")
	// Into a directory that is not empty: refused, naming it.
	out, code = e.run(owner, "restore", "latest", "--policy", e.policy, "--target", "shop", "--to-datadir", dir)
	assert.NotEqual(t, 0, code)
	assert.Contains(t, out, dir+" is not empty")
	t.Logf("%d commits; points %s, %s, %s", len(log), p1.Format(time.RFC3339), p2.Format(time.RFC3339), last.Format(time.RFC3339))
}
