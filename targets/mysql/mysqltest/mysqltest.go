// Package mysqltest starts throw-away MariaDB servers on loopback for
// tests, as scripts/mariadb does by hand.
//
// mariadbd and mariadb-install-db are found on PATH, /usr/sbin and
// /usr/bin (Debian's mariadb-server; scripts/deps installs it). Without
// them tests skip, unless LIFEBOAT_REQUIRE_MARIADB=1, when they fail.
//
// A server has its grants on: root@localhost without a password (socket
// only) and User@127.0.0.1 with Password and all privileges. The binary
// log is on, so recovery points have a position.
package mysqltest

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	driver "github.com/go-sql-driver/mysql"

	"github.com/lifeboat-backup/lifeboat/internal/sharedserver"
)

// Test-only credentials of every server started here.
const (
	User     = "lifeboat"
	Password = "lifeboat-secret"
)

// Server is one MariaDB server on 127.0.0.1.
type Server struct {
	Addr     string // 127.0.0.1:PORT
	Port     int
	Socket   string
	DataDir  string
	User     string
	Password string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
	log  string
}

// DSN is the go-sql-driver DSN of User without the password.
func (s *Server) DSN() string { return fmt.Sprintf("%s@tcp(%s)/", s.User, s.Addr) }

// DSNWithPassword is DSN with the password (tests only).
func (s *Server) DSNWithPassword() string {
	return fmt.Sprintf("%s:%s@tcp(%s)/", s.User, s.Password, s.Addr)
}

// URL is mysql://User:Password@127.0.0.1:PORT/.
func (s *Server) URL() string {
	return fmt.Sprintf("mysql://%s:%s@%s/", s.User, s.Password, s.Addr)
}

// DB opens a pool to database (may be "") as User; closed when t ends.
func (s *Server) DB(t testing.TB, database string) *sql.DB {
	t.Helper()
	cfg := driver.NewConfig()
	cfg.User, cfg.Passwd, cfg.Net, cfg.Addr, cfg.DBName = s.User, s.Password, "tcp", s.Addr, database
	cfg.AllowAllFiles = false
	cfg.InterpolateParams = true
	c, err := driver.NewConnector(cfg)
	if err != nil {
		t.Fatal(err)
	}
	db := sql.OpenDB(c)
	t.Cleanup(func() { db.Close() })
	return db
}

// binaries finds mariadbd and mariadb-install-db.
func binaries() (server, install string, err error) {
	look := func(name string) (string, error) {
		if p, err := exec.LookPath(name); err == nil {
			return p, nil
		}
		for _, d := range []string{"/usr/sbin", "/usr/bin", "/usr/local/bin", "/usr/local/sbin"} {
			p := filepath.Join(d, name)
			if _, err := os.Stat(p); err == nil {
				return p, nil
			}
		}
		return "", fmt.Errorf("no %s: run scripts/deps (installs mariadb-server)", name)
	}
	if server, err = look("mariadbd"); err != nil {
		return
	}
	install, err = look("mariadb-install-db")
	return
}

// Required tells whether LIFEBOAT_REQUIRE_MARIADB=1 forbids skipping.
func Required() bool { return os.Getenv("LIFEBOAT_REQUIRE_MARIADB") == "1" }

func skipOrFail(t testing.TB) {
	t.Helper()
	if _, _, err := binaries(); err != nil {
		if Required() {
			t.Fatalf("mysqltest: LIFEBOAT_REQUIRE_MARIADB=1 but %v", err)
		}
		t.Skipf("mysqltest: %v (set LIFEBOAT_REQUIRE_MARIADB=1 to fail instead)", err)
	}
}

// Start starts a server in a t.TempDir and stops it when t ends.
func Start(t testing.TB) *Server {
	t.Helper()
	skipOrFail(t)
	s, err := New(t.TempDir())
	if err != nil {
		t.Fatalf("mysqltest: %v", err)
	}
	t.Cleanup(s.Stop)
	return s
}

// New initializes a data directory below dir and starts a server on a
// free loopback port. The caller stops it.
func New(dir string) (*Server, error) {
	server, install, err := binaries()
	if err != nil {
		return nil, err
	}
	s := &Server{DataDir: filepath.Join(dir, "db"), Socket: filepath.Join(dir, "mysqld.sock"), User: User, Password: Password}
	args := []string{"--no-defaults", "--datadir=" + s.DataDir, "--auth-root-authentication-method=normal", "--skip-test-db"}
	if os.Geteuid() == 0 {
		args = append(args, "--user=root")
	}
	if out, err := exec.Command(install, args...).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("mariadb-install-db: %v\n%s", err, out)
	}
	for attempt := 0; ; attempt++ {
		port, err := sharedserver.FreePort()
		if err != nil {
			return nil, err
		}
		s.Port, s.Addr = port, net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		err = s.start(server, dir)
		if err == nil {
			break
		}
		if attempt == 2 {
			return nil, err
		}
	}
	if err := s.createUser(); err != nil {
		s.Stop()
		return nil, err
	}
	return s, nil
}

func (s *Server) start(server, dir string) error {
	s.log = filepath.Join(dir, "error.log")
	args := []string{"--no-defaults", "--datadir=" + s.DataDir, "--socket=" + s.Socket,
		"--port=" + strconv.Itoa(s.Port), "--bind-address=127.0.0.1", "--skip-name-resolve",
		"--pid-file=" + filepath.Join(dir, "mariadbd.pid"), "--log-error=" + s.log,
		"--local-infile=1", "--server-id=1", "--log-bin=" + filepath.Join(s.DataDir, "binlog"),
		"--innodb-buffer-pool-size=128M", "--innodb-flush-log-at-trx-commit=2", "--sync-binlog=0",
		"--innodb-doublewrite=0", "--max-allowed-packet=64M", "--max-connections=200"}
	if os.Geteuid() == 0 {
		args = append(args, "--user=root")
	}
	cmd := exec.Command(server, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	s.mu.Lock()
	s.cmd, s.done = cmd, done
	s.mu.Unlock()
	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case <-done:
			return fmt.Errorf("mariadbd exited: %s\n%s", out.String(), s.Logs())
		default:
		}
		if c, err := net.DialTimeout("unix", s.Socket, time.Second); err == nil {
			c.Close()
			if err := s.rootExec("SELECT 1"); err == nil {
				return nil
			}
		}
		if time.Now().After(deadline) {
			s.Kill()
			return fmt.Errorf("mariadbd not ready after 60s:\n%s", s.Logs())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// RootDB opens a pool as root over the socket.
func (s *Server) rootDB() (*sql.DB, error) {
	cfg := driver.NewConfig()
	cfg.User, cfg.Net, cfg.Addr = "root", "unix", s.Socket
	c, err := driver.NewConnector(cfg)
	if err != nil {
		return nil, err
	}
	return sql.OpenDB(c), nil
}

func (s *Server) rootExec(queries ...string) error {
	db, err := s.rootDB()
	if err != nil {
		return err
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, q := range queries {
		if _, err := db.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("%s: %w", q, err)
		}
	}
	return nil
}

func (s *Server) createUser() error {
	var qs []string
	for _, h := range []string{"127.0.0.1", "localhost"} {
		qs = append(qs,
			fmt.Sprintf("CREATE USER IF NOT EXISTS '%s'@'%s' IDENTIFIED BY '%s'", s.User, h, s.Password),
			fmt.Sprintf("GRANT ALL PRIVILEGES ON *.* TO '%s'@'%s' WITH GRANT OPTION", s.User, h))
	}
	return s.rootExec(qs...)
}

// Logs returns the server's error log.
func (s *Server) Logs() string {
	b, _ := os.ReadFile(s.log)
	if len(b) > 1<<16 {
		b = b[len(b)-1<<16:]
	}
	return string(b)
}

// Running reports whether the server process is alive.
func (s *Server) Running() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.done == nil {
		return false
	}
	select {
	case <-s.done:
		return false
	default:
		return true
	}
}

// Stop shuts the server down (SIGTERM, then SIGKILL after 20 s).
func (s *Server) Stop() { s.halt(syscall.SIGTERM, 20*time.Second) }

// Kill kills the server at once (a dead server for fault tests).
func (s *Server) Kill() { s.halt(syscall.SIGKILL, 0) }

func (s *Server) halt(sig syscall.Signal, grace time.Duration) {
	s.mu.Lock()
	cmd, done := s.cmd, s.done
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(sig)
	select {
	case <-done:
	case <-time.After(grace):
		_ = cmd.Process.Kill()
		<-done
	}
}

var shared sharedserver.Shared[*Server]

// Shared returns one server for the whole test binary, started on first
// use; databases keep tests apart. It skips t like Start. Use Main in
// TestMain to stop it (without Main it dies with the test binary).
func Shared(t testing.TB) *Server {
	t.Helper()
	skipOrFail(t)
	return shared.Get(t, "mysqltest", func(dir string) (*Server, error) { return New(dir) })
}

// Main runs m, then stops the shared server and removes its data:
//
//	func TestMain(m *testing.M) { os.Exit(mysqltest.Main(m)) }
func Main(m *testing.M) int { return shared.Main(m) }
