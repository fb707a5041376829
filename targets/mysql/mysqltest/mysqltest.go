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
	"context"
	"database/sql"
	"fmt"
	"os"
	"testing"

	driver "github.com/go-sql-driver/mysql"

	"github.com/lifeboat-backup/lifeboat/internal/scratch/mariadb"
	"github.com/lifeboat-backup/lifeboat/internal/testutil/sharedserver"
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

	srv *mariadb.Server
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
func binaries() (server, install string, err error) { return mariadb.Options{}.Binaries() }

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
// free loopback port (package internal/scratch/mariadb). The caller stops it.
func New(dir string) (*Server, error) {
	m, err := mariadb.Start(context.Background(), mariadb.Options{Dir: dir, User: User, Password: Password})
	if err != nil {
		return nil, err
	}
	return &Server{Addr: m.Addr, Port: m.Port, Socket: m.Socket, DataDir: m.DataDir, User: m.User, Password: m.Password, srv: m}, nil
}

// Logs returns the server's error log.
func (s *Server) Logs() string { return s.srv.Logs() }

// Running reports whether the server process is alive.
func (s *Server) Running() bool { return s.srv.Running() }

// Stop shuts the server down (SIGTERM, then SIGKILL after 20 s).
func (s *Server) Stop() { s.srv.Stop() }

// Restart stops the server and starts it again on the same data directory
// and port.
func (s *Server) Restart() error { return s.srv.Restart(context.Background()) }

// Kill kills the server at once (a dead server for fault tests).
func (s *Server) Kill() { s.srv.Kill() }

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
