// Package postgrestest starts throw-away PostgreSQL servers on loopback
// for tests, as scripts/postgres does by hand.
//
// initdb, pg_ctl and postgres are found in /usr/lib/postgresql/*/bin
// (Debian's postgresql-15; scripts/deps installs it) or on PATH. Without
// them tests skip, unless LIFEBOAT_REQUIRE_POSTGRES=1, when they fail.
//
// PostgreSQL refuses to run as root: as root the server runs as the
// postgres system user (runuser), with its data in a directory of its own
// below the temp dir. The superuser is User with Password (scram-sha-256
// over TCP on 127.0.0.1; trust on the server's Unix socket).
package postgrestest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lifeboat-backup/lifeboat/internal/sharedserver"
)

// Test-only credentials of every server started here.
const (
	User     = "lifeboat"
	Password = "lifeboat-secret"
)

// Server is one PostgreSQL server on 127.0.0.1.
type Server struct {
	Host     string // 127.0.0.1
	Port     int
	DataDir  string
	User     string
	Password string

	dir    string // the directory holding data, socket and log
	binDir string
	asUser []string // runuser prefix when running as root
}

// BinDir finds the directory holding initdb, pg_ctl and postgres.
func BinDir() (string, error) {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Sort(sort.Reverse(sort.StringSlice(dirs)))
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d, nil
		}
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		return filepath.Dir(p), nil
	}
	return "", errors.New("no PostgreSQL server binaries (initdb) in /usr/lib/postgresql/*/bin or on PATH: run scripts/deps (installs postgresql-15)")
}

// Required tells whether LIFEBOAT_REQUIRE_POSTGRES=1 forbids skipping.
func Required() bool { return os.Getenv("LIFEBOAT_REQUIRE_POSTGRES") == "1" }

func skipOrFail(t testing.TB) {
	t.Helper()
	if _, err := BinDir(); err != nil {
		if Required() {
			t.Fatalf("postgrestest: LIFEBOAT_REQUIRE_POSTGRES=1 but %v", err)
		}
		t.Skipf("postgrestest: %v (set LIFEBOAT_REQUIRE_POSTGRES=1 to fail instead)", err)
	}
}

// URL is postgres://User@127.0.0.1:PORT/ (no password; it is Password).
func (s *Server) URL() string { return fmt.Sprintf("postgres://%s@%s:%d/", s.User, s.Host, s.Port) }

// URLWithPassword is URL with the password (tests only).
func (s *Server) URLWithPassword() string {
	return fmt.Sprintf("postgres://%s:%s@%s:%d/", s.User, s.Password, s.Host, s.Port)
}

// Env is the environment for psql and friends to reach the server.
func (s *Server) Env() []string {
	return append(os.Environ(), "PGHOST="+s.Host, "PGPORT="+strconv.Itoa(s.Port), "PGUSER="+s.User,
		"PGPASSWORD="+s.Password, "PGDATABASE=postgres", "PGCONNECT_TIMEOUT=10")
}

// PSQL runs sql with psql in database db (ON_ERROR_STOP, unaligned,
// tuples only) and returns its output without the final newline.
func (s *Server) PSQL(ctx context.Context, db, sql string) (string, error) {
	cmd := exec.CommandContext(ctx, filepath.Join(s.binDir, "psql"), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d", db, "-f", "-")
	cmd.Env = s.Env()
	cmd.Stdin = strings.NewReader(sql)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("psql: %v: %s", err, strings.TrimSpace(errb.String()))
	}
	return strings.TrimRight(out.String(), "\n"), nil
}

// MustPSQL is PSQL failing t on error.
func (s *Server) MustPSQL(t testing.TB, db, sql string) string {
	t.Helper()
	out, err := s.PSQL(context.Background(), db, sql)
	if err != nil {
		t.Fatalf("postgrestest: %v", err)
	}
	return out
}

// CreateDatabase creates database name (failing t on error).
func (s *Server) CreateDatabase(t testing.TB, name string) {
	t.Helper()
	s.MustPSQL(t, "postgres", `CREATE DATABASE "`+strings.ReplaceAll(name, `"`, `""`)+`"`)
}

// Start starts a server and stops it (removing its data) when t ends.
func Start(t testing.TB) *Server {
	t.Helper()
	skipOrFail(t)
	s, err := New("")
	if err != nil {
		t.Fatalf("postgrestest: %v", err)
	}
	t.Cleanup(s.Stop)
	return s
}

func (s *Server) run(name string, args ...string) (string, error) {
	argv := append(append(append([]string{}, s.asUser...), filepath.Join(s.binDir, name)), args...)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = s.dir
	cmd.Env = append(os.Environ(), "LC_ALL=C.UTF-8", "TZ=UTC")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s: %v: %s", name, err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

// New initializes a data directory in a new directory below parent (""
// for the temp dir) and starts a server on a free loopback port. The
// caller stops it; Stop removes the directory.
func New(parent string) (*Server, error) {
	bin, err := BinDir()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp(parent, "lifeboat-postgres-")
	if err != nil {
		return nil, err
	}
	s := &Server{Host: "127.0.0.1", User: User, Password: Password, dir: dir, binDir: bin, DataDir: filepath.Join(dir, "data")}
	ok := false
	defer func() {
		if !ok {
			os.RemoveAll(dir)
		}
	}()
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			return nil, fmt.Errorf("running as root needs the postgres system user (Debian's postgresql package creates it): %v", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		// (the parent must be open to others: the temp dir is)
		if err := os.Chown(dir, uid, gid); err != nil {
			return nil, err
		}
		s.asUser = []string{"runuser", "-u", "postgres", "--"}
	}
	pwfile := filepath.Join(dir, "pwfile")
	if err := os.WriteFile(pwfile, []byte(s.Password+"\n"), 0o644); err != nil {
		return nil, err
	}
	if _, err := s.run("initdb", "-D", s.DataDir, "-U", s.User, "--pwfile", pwfile, "--auth-local=trust",
		"--auth-host=scram-sha-256", "-E", "UTF8", "--locale=C.UTF-8", "--no-sync"); err != nil {
		return nil, err
	}
	os.Remove(pwfile)
	var lastErr error
	for range 5 {
		port, err := sharedserver.FreePort()
		if err != nil {
			return nil, err
		}
		opts := fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_wal_senders=0 -c wal_level=minimal -c max_connections=100 -c timezone=UTC", port, dir)
		if _, lastErr = s.run("pg_ctl", "-D", s.DataDir, "-w", "-t", "60", "-l", filepath.Join(dir, "server.log"), "-o", opts, "start"); lastErr == nil {
			s.Port = port
			ok = true
			return s, nil
		}
	}
	return nil, fmt.Errorf("%v; log: %s", lastErr, s.Logs())
}

// Logs returns the server's log.
func (s *Server) Logs() string {
	b, _ := os.ReadFile(filepath.Join(s.dir, "server.log"))
	return string(b)
}

func (s *Server) pid() int {
	b, err := os.ReadFile(filepath.Join(s.DataDir, "postmaster.pid"))
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	pid, _ := strconv.Atoi(strings.TrimSpace(line))
	return pid
}

// Running reports whether the server process is alive.
func (s *Server) Running() bool {
	pid := s.pid()
	return pid > 0 && syscall.Kill(pid, 0) == nil
}

// Stop shuts the server down (fast) and removes its directory.
func (s *Server) Stop() {
	if s.Running() {
		if _, err := s.run("pg_ctl", "-D", s.DataDir, "-m", "fast", "-w", "-t", "20", "stop"); err != nil {
			s.Kill()
		}
	}
	os.RemoveAll(s.dir)
}

// Kill kills the server at once (a dead server for fault tests).
func (s *Server) Kill() {
	if pid := s.pid(); pid > 0 {
		_ = syscall.Kill(pid, syscall.SIGKILL)
		for range 100 {
			if syscall.Kill(pid, 0) != nil {
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

var shared sharedserver.Shared[*Server]

// Shared returns one server for the whole test binary, started on first
// use; databases keep tests apart. It skips t like Start. Use Main in
// TestMain to stop it.
func Shared(t testing.TB) *Server {
	t.Helper()
	skipOrFail(t)
	return shared.Get(t, "postgrestest", func(string) (*Server, error) { return New("") })
}

// Main runs m, then stops the shared server and removes its data:
//
//	func TestMain(m *testing.M) { os.Exit(postgrestest.Main(m)) }
func Main(m *testing.M) int { return shared.Main(m) }
