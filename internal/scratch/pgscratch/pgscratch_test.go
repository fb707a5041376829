package pgscratch

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
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

// TestStartCancelled cancels a start once the postmaster runs (its pid in
// postmaster.pid), held stopped so that it cannot become ready first:
// Start returns context.Canceled and the postmaster is gone.
func TestStartCancelled(t *testing.T) {
	needServer(t)
	dir := openDir(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	errc := make(chan error, 1)
	go func() {
		s, err := Start(ctx, Options{Dir: dir})
		if err == nil {
			s.Stop()
		}
		errc <- err
	}()
	pid := 0
	for deadline := time.Now().Add(time.Minute); pid == 0; time.Sleep(time.Millisecond) {
		require.True(t, time.Now().Before(deadline), "no postmaster.pid after a minute")
		select {
		case err := <-errc:
			t.Fatalf("Start ended before the postmaster ran: %v", err)
		default:
		}
		b, err := os.ReadFile(filepath.Join(dir, "data", "postmaster.pid"))
		if err != nil {
			continue
		}
		lines := strings.Split(string(b), "\n")
		// initdb's standalone backends write their pid negated.
		if p, err := strconv.Atoi(strings.TrimSpace(lines[0])); err == nil && p > 0 {
			require.NoError(t, syscall.Kill(p, syscall.SIGSTOP))
			b, err = os.ReadFile(filepath.Join(dir, "data", "postmaster.pid"))
			require.NoError(t, err)
			lines = strings.Split(string(b), "\n")
			require.False(t, len(lines) > 7 && strings.TrimSpace(lines[7]) == "ready", "the postmaster was ready before it could be stopped")
			pid = p
		}
	}
	cancel()
	err := <-errc
	require.ErrorIs(t, err, context.Canceled)
	require.ErrorIs(t, syscall.Kill(pid, 0), syscall.ESRCH, "postmaster %d still there", pid)
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
