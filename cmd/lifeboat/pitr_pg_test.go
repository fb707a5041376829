package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/lifeboat-backup/lifeboat/engine/storage/miniotest"
	"github.com/lifeboat-backup/lifeboat/internal/scratch/pgscratch"
	"github.com/lifeboat-backup/lifeboat/targets/postgres/postgrestest"
)

// pitrPG is a PostgreSQL 15 server archiving its WAL with the lifeboat
// binary into a repository on MinIO, as a real deployment would: the
// server runs as the postgres user, which reads the policy and the host
// key.
type pitrPG struct {
	t      *testing.T
	dir    string
	bin    string
	policy string
	owner  string // owner key file
	host   string // host key file
	minio  *miniotest.Server
	pg     *postgrestest.Server
	c      *cli
}

func newPITRPG(t *testing.T, settings ...string) *pitrPG {
	t.Helper()
	if _, err := postgrestest.BinDir(); err != nil {
		if postgrestest.Required() {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	dir, err := os.MkdirTemp("", "lifeboat-pitr-")
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(dir) })
	require.NoError(t, os.Chmod(dir, 0o711))
	p := &pitrPG{t: t, dir: dir, owner: filepath.Join(dir, "owner.key"), host: filepath.Join(dir, "host.key")}
	p.bin = filepath.Join(dir, "lifeboat")
	out, err := exec.Command("go", "build", "-o", p.bin, ".").CombinedOutput()
	require.NoError(t, err, "%s", out)

	p.minio = miniotest.Start(t)
	p.minio.CreateBucket(t, "pitr")
	p.minio.CreateBucket(t, "pitr-dr")
	url := p.minio.URL("pitr", "")
	p.c = &cli{t: t, env: map[string]string{}}
	p.c.ok("init", "--repo", url, "--owner-key-out", p.owner, "--host-key-out", p.host)

	pgDir := filepath.Join(dir, "pg")
	require.NoError(t, os.Mkdir(pgDir, 0o700))
	p.policy = filepath.Join(dir, "policy.yaml")
	require.NoError(t, os.WriteFile(p.policy, []byte(fmt.Sprintf(`version: 1
name: pitr
repositories:
  primary:
    url: %s
    key_file: %s
  secondaries:
    - name: dr
      url: %s
targets:
  - name: pg
    kind: postgres
    dsn: postgres://%s@127.0.0.1:%%d/postgres
    password_file: %s
    method: physical
metrics:
  textfile: %s
`, url, p.host, p.minio.URL("pitr-dr", ""), postgrestest.User, filepath.Join(dir, "pg.pass"), filepath.Join(dir, "metrics", "lifeboat.prom"))), 0o644))
	require.NoError(t, os.Mkdir(filepath.Join(dir, "metrics"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "pg.pass"), []byte(postgrestest.Password), 0o600))
	p.chownPostgres(p.host, p.owner, p.policy, filepath.Join(dir, "metrics"))
	base := []string{"wal_level=replica", "archive_mode=on", "max_wal_senders=4", "full_page_writes=on", "wal_keep_size=1024",
		"archive_command=" + p.bin + " wal push --policy " + p.policy + " --target pg %p"}
	srv, err := pgscratch.Start(context.Background(), pgscratch.Options{Dir: pgDir, User: postgrestest.User,
		Password: postgrestest.Password, Settings: append(base, settings...)})
	require.NoError(t, err)
	p.pg = &postgrestest.Server{Server: srv}
	t.Cleanup(srv.Stop)
	// The policy names the server's port, known only now.
	pol, err := os.ReadFile(p.policy)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(p.policy, []byte(strings.Replace(string(pol), "%d", strconv.Itoa(srv.Port), 1)), 0o644))
	return p
}

// chownPostgres hands files to the postgres user when running as root
// (the server and its archive_command run as that user).
func (p *pitrPG) chownPostgres(paths ...string) {
	if os.Geteuid() != 0 {
		return
	}
	uid, gid := postgresIDs(p.t)
	for _, path := range paths {
		require.NoError(p.t, os.Chown(path, int(uid), int(gid)))
	}
}

func postgresIDs(t *testing.T) (uint32, uint32) {
	u, err := user.Lookup("postgres")
	require.NoError(t, err)
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return uint32(uid), uint32(gid)
}

func (p *pitrPG) sql(q string) string { return p.pg.MustPSQL(p.t, "postgres", q) }

// lifeboat runs the built binary (as PostgreSQL would) and returns its
// output and exit code.
func (p *pitrPG) lifeboat(args ...string) (string, int) {
	cmd := exec.Command(p.bin, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		return out.String(), ee.ExitCode()
	}
	require.NoError(p.t, err)
	return out.String(), 0
}

// waitArchived waits until PostgreSQL has archived the WAL file name.
func (p *pitrPG) waitArchived(name string, timeout time.Duration) {
	p.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		last := p.sql("SELECT coalesce(last_archived_wal, '') FROM pg_stat_archiver")
		if last >= name {
			return
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("WAL %s not archived after %s (last %q, archiver: %s); server log:\n%s", name, timeout, last,
				p.sql("SELECT archived_count, failed_count, last_failed_wal FROM pg_stat_archiver"), p.pg.Logs())
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// switchWAL writes a little, switches to a new segment and returns the
// name of the one it closed.
func (p *pitrPG) switchWAL() string {
	return p.sql("CREATE TABLE IF NOT EXISTS walfill (x int); INSERT INTO walfill SELECT generate_series(1,100);" +
		"SELECT pg_walfile_name(pg_switch_wal())")
}

// The archive_command contract: a segment archived twice succeeds, another
// file under an archived name fails naming it, an unreachable repository
// fails and PostgreSQL keeps the segment and retries until it is back,
// nothing lost; restore_command's "not found" and owner-only reads.
func TestPITRPGArchiveCommandContract(t *testing.T) {
	if testing.Short() {
		t.Skip("starts MinIO and PostgreSQL")
	}
	p := newPITRPG(t)
	var names []string
	for range 3 {
		names = append(names, p.switchWAL())
	}
	p.waitArchived(names[2], 60*time.Second)
	walDir := filepath.Join(p.pg.DataDir, "pg_wal")
	// Each successful push writes its gauges beside the policy's textfile.
	prom, err := os.ReadFile(filepath.Join(p.dir, "metrics", "lifeboat-wal-pg.prom"))
	require.NoError(t, err)
	require.Contains(t, string(prom), `lifeboat_wal_archive_last_segment_timestamp_seconds{policy="pitr",target="pg"} `)
	require.Contains(t, string(prom), `lifeboat_wal_archive_last_push_timestamp_seconds{policy="pitr",target="pg"} `)
	seg := filepath.Join(walDir, names[1])

	// Same segment again: success.
	out, code := p.lifeboat("wal", "push", "--policy", p.policy, "--target", "pg", seg)
	require.Equal(t, 0, code, out)
	// Other content under an archived name: failure naming the segment.
	bad := filepath.Join(p.dir, names[1])
	data, err := os.ReadFile(seg)
	require.NoError(t, err)
	data[100] ^= 0xff
	require.NoError(t, os.WriteFile(bad, data, 0o600))
	out, code = p.lifeboat("wal", "push", "--policy", p.policy, "--target", "pg", bad)
	require.Equal(t, 1, code, out)
	require.Contains(t, out, "pg/wal/"+names[1])
	require.Contains(t, out, "different content")

	// Repository unreachable: non-zero, PostgreSQL keeps the segments.
	p.minio.Stop()
	var during []string
	for range 2 {
		during = append(during, p.switchWAL())
	}
	deadline := time.Now().Add(60 * time.Second)
	for p.sql("SELECT failed_count FROM pg_stat_archiver") == "0" {
		require.True(t, time.Now().Before(deadline), "no failed archive_command while MinIO is down")
		time.Sleep(200 * time.Millisecond)
	}
	require.Less(t, p.sql("SELECT coalesce(last_archived_wal, '') FROM pg_stat_archiver"), during[0])
	_, err = os.Stat(filepath.Join(walDir, "archive_status", during[0]+".ready"))
	require.NoError(t, err, "the segment stays ready while the repository is down")
	require.NoError(t, p.minio.Restart())
	p.waitArchived(during[1], 120*time.Second)

	// Every archived segment fetched with the owner key equals the server's.
	env := append(os.Environ(), "LIFEBOAT_KEY_FILE="+p.owner)
	for _, name := range append(names, during...) {
		dest := filepath.Join(p.dir, "fetched-"+name)
		cmd := exec.Command(p.bin, "wal", "fetch", "--policy", p.policy, "--target", "pg", name, dest)
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "%s", out)
		got, err := os.ReadFile(dest)
		require.NoError(t, err)
		want, err := os.ReadFile(filepath.Join(walDir, name))
		require.NoError(t, err)
		require.True(t, bytes.Equal(got, want), "segment %s differs", name)
	}
	// Not found: exit 1 (PostgreSQL's "not in the archive"); the host key
	// cannot read: 126 (PostgreSQL stops recovery, no early promotion).
	cmd := exec.Command(p.bin, "wal", "fetch", "--policy", p.policy, "--target", "pg", "0000000100000000000000FF", filepath.Join(p.dir, "x"))
	cmd.Env = env
	out2, err := cmd.CombinedOutput()
	require.Equal(t, 1, cmd.ProcessState.ExitCode(), "%s", out2)
	require.Contains(t, string(out2), "not found")
	out, code = p.lifeboat("wal", "fetch", "--policy", p.policy, "--target", "pg", names[0], filepath.Join(p.dir, "y"))
	require.Equal(t, 126, code, out)
	require.Contains(t, out, "owner")
	_, err = os.Stat(filepath.Join(p.dir, "y"))
	require.True(t, os.IsNotExist(err))
	// A policy that cannot be read is no "not found" either.
	out, code = p.lifeboat("wal", "fetch", "--policy", filepath.Join(p.dir, "missing.yaml"), "--target", "pg", names[0], filepath.Join(p.dir, "y"))
	require.Equal(t, 126, code, out)
}
