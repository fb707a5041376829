package exec_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lifeboat-backup/lifeboat/engine"
	"github.com/lifeboat-backup/lifeboat/engine/repo"
	"github.com/lifeboat-backup/lifeboat/engine/repo/repotest"
	"github.com/lifeboat-backup/lifeboat/engine/storage"
	"github.com/lifeboat-backup/lifeboat/restore"
	"github.com/lifeboat-backup/lifeboat/targets/exec"
)

func newRepo(t testing.TB) *repo.Repository {
	t.Helper()
	b, err := storage.OpenWith(context.Background(), "mem://", storage.OpenOptions{Create: true})
	require.NoError(t, err)
	t.Cleanup(func() { b.Close() })
	tr := repotest.Init(t, b, repotest.SmallChunks, 0)
	return tr.Open(t, tr.Owner)
}

func sha(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }

func TestNewErrors(t *testing.T) {
	cases := []struct {
		name string
		opts exec.Options
		want string
	}{
		{"no name", exec.Options{Command: []string{"true"}}, "no name"},
		{"slash in name", exec.Options{Name: "a/b", Command: []string{"true"}}, "plain file name"},
		{"dotdot", exec.Options{Name: "..", Command: []string{"true"}}, "plain file name"},
		{"no command", exec.Options{Name: "x"}, "no command"},
		{"command not found", exec.Options{Name: "x", Command: []string{"no-such-command-lifeboat"}}, "not found"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := exec.New(tc.opts)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}

func TestBackupAndRestore(t *testing.T) {
	dir := t.TempDir()
	payload := filepath.Join(dir, "payload")
	data := bytes.Repeat([]byte("redis rdb bytes \x00\x01\xff"), 200000) // ~3.8 MB
	require.NoError(t, os.WriteFile(payload, data, 0o600))
	cases := []struct {
		name    string
		command []string
		wantErr string // "": success
	}{
		{"cat", []string{"cat", payload}, ""},
		{"empty output", []string{"true"}, ""},
		{"exits 1 after output", []string{"sh", "-c", "cat " + payload + "; echo dump failed >&2; exit 1"}, "dump failed"},
		{"exits 1 midway", []string{"sh", "-c", "head -c 1000000 " + payload + "; echo midway >&2; exit 1"}, "exit status 1: midway"},
		{"killed", []string{"sh", "-c", "head -c 100000 " + payload + "; kill -9 $$"}, "signal: killed"},
		{"long stderr is cut", []string{"sh", "-c", "for i in $(seq 3000); do echo line $i >&2; done; exit 2"}, "line 3000"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := newRepo(t)
			src, err := exec.New(exec.Options{Name: "dump.rdb", Command: tc.command})
			require.NoError(t, err)
			res, err := engine.Backup(context.Background(), r, src, engine.BackupOptions{})
			if tc.wantErr != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tc.wantErr)
				assert.Less(t, len(err.Error()), exec.StderrTail+500, "stderr is bounded")
				sns, lerr := r.Snapshots(context.Background())
				require.NoError(t, lerr)
				assert.Empty(t, sns, "no snapshot when the command fails")
				return
			}
			require.NoError(t, err)
			want := data
			if tc.name == "empty output" {
				want = nil
			}
			assert.Equal(t, int64(len(want)), res.Snapshot.Stats.BytesIn)
			assert.Equal(t, "exec", res.Snapshot.Kind)

			// To a file.
			out := filepath.Join(dir, tc.name+".out")
			st, err := restore.Exec(context.Background(), r.SnapshotReader(res.Snapshot), restore.ExecOptions{To: out})
			require.NoError(t, err)
			got, err := os.ReadFile(out)
			require.NoError(t, err)
			assert.True(t, bytes.Equal(want, got))
			assert.Equal(t, sha(want), st.SHA256)

			// Into a command.
			out2 := filepath.Join(dir, tc.name+".piped")
			_, err = restore.Exec(context.Background(), r.SnapshotReader(res.Snapshot), restore.ExecOptions{Command: []string{"sh", "-c", "cat > '" + out2 + "'"}})
			require.NoError(t, err)
			got, err = os.ReadFile(out2)
			require.NoError(t, err)
			assert.True(t, bytes.Equal(want, got))

			// To stdout ("-").
			var buf bytes.Buffer
			_, err = restore.Exec(context.Background(), r.SnapshotReader(res.Snapshot), restore.ExecOptions{To: "-", Stdout: &buf})
			require.NoError(t, err)
			assert.True(t, bytes.Equal(want, buf.Bytes()))

			// A restore command that fails.
			_, err = restore.Exec(context.Background(), r.SnapshotReader(res.Snapshot), restore.ExecOptions{Command: []string{"sh", "-c", "cat >/dev/null; echo cannot load >&2; exit 3"}})
			require.Error(t, err)
			assert.Contains(t, err.Error(), "cannot load")
			// A restore command that does not exist.
			_, err = restore.Exec(context.Background(), r.SnapshotReader(res.Snapshot), restore.ExecOptions{Command: []string{"no-such-command-lifeboat"}})
			require.Error(t, err)
			// Neither or both destinations.
			_, err = restore.Exec(context.Background(), r.SnapshotReader(res.Snapshot), restore.ExecOptions{})
			require.Error(t, err)
		})
	}
}

func TestTailBuffer(t *testing.T) {
	tb := &exec.TailBuffer{Max: 10}
	tb.Write([]byte("hello "))
	assert.Equal(t, "hello ", tb.String())
	tb.Write([]byte(strings.Repeat("x", 20) + "end"))
	assert.Equal(t, "...xxxxxxxend", tb.String())
}
