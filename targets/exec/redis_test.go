package exec_test

import (
	"context"
	"fmt"
	"net"
	"os"
	osexec "os/exec"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lifeboat-backup/lifeboat/engine"
	"github.com/lifeboat-backup/lifeboat/restore"
	"github.com/lifeboat-backup/lifeboat/targets/exec"
)

// redisServer starts redis-server on a free loopback port with dir as its
// data directory, or skips t when Redis is not installed (unless
// LIFEBOAT_REQUIRE_REDIS=1).
func redisServer(t *testing.T, dir string) int {
	t.Helper()
	for _, bin := range []string{"redis-server", "redis-cli"} {
		if _, err := osexec.LookPath(bin); err != nil {
			if os.Getenv("LIFEBOAT_REQUIRE_REDIS") == "1" {
				t.Fatalf("%s not installed", bin)
			}
			t.Skipf("%s not installed (apt-get install redis-server)", bin)
		}
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	cmd := osexec.Command("redis-server", "--port", fmt.Sprint(port), "--bind", "127.0.0.1", "--dir", dir,
		"--dbfilename", "dump.rdb", "--appendonly", "no", "--save", "")
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	for i := 0; ; i++ {
		if out, _ := osexec.Command("redis-cli", "-p", fmt.Sprint(port), "ping").Output(); strings.TrimSpace(string(out)) == "PONG" {
			return port
		}
		require.Less(t, i, 100, "redis-server did not start")
		time.Sleep(50 * time.Millisecond)
	}
}

func redisCLI(t *testing.T, port int, stdin string, args ...string) string {
	t.Helper()
	cmd := osexec.Command("redis-cli", append([]string{"-p", fmt.Sprint(port)}, args...)...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, string(out))
	return strings.TrimSpace(string(out))
}

func TestRedisRDB(t *testing.T) {
	port := redisServer(t, t.TempDir())
	var cmds strings.Builder
	for i := range 2000 {
		fmt.Fprintf(&cmds, "SET key:%d value-%d\n", i, i*i)
	}
	cmds.WriteString("RPUSH list a b c\nHSET h f1 v1 f2 v2\n")
	redisCLI(t, port, cmds.String())
	require.Equal(t, "2002", redisCLI(t, port, "", "DBSIZE"))

	r := newRepo(t)
	src, err := exec.New(exec.Options{Name: "redis.rdb", Command: []string{"redis-cli", "-p", fmt.Sprint(port), "--rdb", "-"}})
	require.NoError(t, err)
	res, err := engine.Backup(context.Background(), r, src, engine.BackupOptions{})
	require.NoError(t, err)
	assert.Positive(t, res.Snapshot.Stats.BytesIn)

	// Restore into a fresh server: the RDB file is its data directory's dump.
	dir2 := t.TempDir()
	_, err = restore.Exec(context.Background(), r.SnapshotReader(res.Snapshot), restore.ExecOptions{
		Command: []string{"sh", "-c", `cat > "$0/dump.rdb"`, dir2}})
	require.NoError(t, err)
	port2 := redisServer(t, dir2)
	assert.Equal(t, "2002", redisCLI(t, port2, "", "DBSIZE"))
	assert.Equal(t, "value-1521", redisCLI(t, port2, "", "GET", "key:39"))
	assert.Equal(t, "a\nb\nc", redisCLI(t, port2, "", "LRANGE", "list", "0", "-1"))

	// A dump that fails (server gone) leaves no snapshot.
	src, err = exec.New(exec.Options{Name: "redis.rdb", Command: []string{"sh", "-c",
		fmt.Sprintf("redis-cli -p %d --rdb - && exit 1", port)}})
	require.NoError(t, err)
	_, err = engine.Backup(context.Background(), r, src, engine.BackupOptions{})
	require.Error(t, err)
	sns, err := r.Snapshots(context.Background())
	require.NoError(t, err)
	assert.Len(t, sns, 1)
}
