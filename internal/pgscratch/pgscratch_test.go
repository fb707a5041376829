package pgscratch

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func needServer(t *testing.T) {
	t.Helper()
	if _, err := BinDir(""); err != nil {
		if os.Getenv("LIFEBOAT_REQUIRE_POSTGRES") == "1" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
}

// openDir is a new directory the postgres user can enter when root.
func openDir(t *testing.T) string {
	t.Helper()
	parent, err := os.MkdirTemp("", "pgscratch-test-")
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(parent) })
	require.NoError(t, os.Chmod(parent, 0o711))
	dir := filepath.Join(parent, "pg")
	require.NoError(t, os.Mkdir(dir, 0o700))
	return dir
}

func psql(s *Server, password, sql string) (string, error) {
	cmd := exec.Command(filepath.Join(s.BinDir(), "psql"), "-X", "-w", "-A", "-t", "-c", sql,
		"-d", s.URL()+"postgres")
	cmd.Env = append(os.Environ(), "PGPASSWORD="+password, "PGCONNECT_TIMEOUT=5")
	out, err := cmd.CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

func TestStartStop(t *testing.T) {
	needServer(t)
	dir := openDir(t)
	s, err := Start(context.Background(), Options{Dir: dir})
	require.NoError(t, err)
	defer s.Stop()
	require.True(t, s.Running())
	require.Len(t, s.Password, 32, "random password")
	out, err := psql(s, s.Password, "SELECT current_user || ' ' || current_setting('server_encoding')")
	require.NoError(t, err, out)
	require.Equal(t, "lifeboat UTF8", out)
	// TCP needs the password.
	out, err = psql(s, "wrong", "SELECT 1")
	require.Error(t, err)
	require.Contains(t, out, "password authentication failed")

	pid := s.Pid()
	s.Stop()
	require.False(t, s.Running())
	require.Error(t, syscall.Kill(pid, 0), "server %d still alive", pid)
	require.NotContains(t, s.Logs(), "PANIC")
	s.Stop() // twice is harmless
}

func TestStartBadInput(t *testing.T) {
	needServer(t)
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		o    Options
		want string
	}{
		{"no dir", Options{}, "no directory"},
		{"dir missing", Options{Dir: filepath.Join(t.TempDir(), "nope")}, "nope is not a directory"},
		{"server not found", Options{Dir: t.TempDir(), Server: "/nonexistent/bin/postgres"}, "no initdb next to /nonexistent/bin/postgres"},
		{"server name unknown", Options{Dir: t.TempDir(), Server: "no-such-postgres"}, "no no-such-postgres on PATH"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Start(ctx, tc.o)
			require.Error(t, err)
			require.Contains(t, err.Error(), tc.want)
		})
	}
	if os.Geteuid() == 0 {
		// A parent the postgres user cannot enter is named.
		dir := openDir(t)
		parent := filepath.Dir(dir)
		require.NoError(t, os.Chmod(parent, 0o700))
		_, err := Start(ctx, Options{Dir: dir})
		require.ErrorContains(t, err, "cannot enter "+parent)
	}
}

func TestStartCancelled(t *testing.T) {
	needServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	_, err := Start(ctx, Options{Dir: openDir(t)})
	require.Error(t, err)
}

func TestBinDir(t *testing.T) {
	needServer(t)
	d, err := BinDir("")
	require.NoError(t, err)
	d2, err := BinDir(filepath.Join(d, "postgres"))
	require.NoError(t, err)
	require.Equal(t, d, d2)
	d3, err := BinDir("postgres")
	require.NoError(t, err)
	require.FileExists(t, filepath.Join(d3, "initdb"))
}
