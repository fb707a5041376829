// Package postgrestest starts throw-away PostgreSQL servers on loopback
// for tests (through internal/scratch/pgscratch, as drills do; scripts/postgres
// does the same by hand).
//
// initdb and postgres are found in /usr/lib/postgresql/*/bin (Debian's
// postgresql-15; scripts/deps installs it) or on PATH. Without them tests
// skip, unless LIFEBOAT_REQUIRE_POSTGRES=1, when they fail.
//
// As root the server runs as the postgres system user (PostgreSQL refuses
// root). The superuser is User with Password (scram-sha-256 over TCP on
// 127.0.0.1; trust on the server's Unix socket).
package postgrestest

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/lifeboat-backup/lifeboat/internal/scratch/pgscratch"
	"github.com/lifeboat-backup/lifeboat/internal/testutil/sharedserver"
)

// Test-only credentials of every server started here.
const (
	User     = "lifeboat"
	Password = "lifeboat-secret"
)

// Server is one PostgreSQL server on 127.0.0.1.
type Server struct {
	*pgscratch.Server
	dir string // removed by Stop
}

// BinDir finds the directory holding initdb and postgres.
func BinDir() (string, error) { return pgscratch.BinDir("") }

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
	cmd := exec.CommandContext(ctx, filepath.Join(s.BinDir(), "psql"), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d", db, "-f", "-")
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

// New starts a server in a new directory below parent ("" for the temp
// dir). The caller stops it; Stop removes the directory.
func New(parent string) (*Server, error) {
	dir, err := os.MkdirTemp(parent, "lifeboat-postgres-")
	if err != nil {
		return nil, err
	}
	// The server may run as the postgres user: let it enter.
	if err := os.Chmod(dir, 0o711); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	srv, err := pgscratch.Start(context.Background(), pgscratch.Options{Dir: dir, User: User, Password: Password})
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	return &Server{Server: srv, dir: dir}, nil
}

// Stop shuts the server down and removes its directory.
func (s *Server) Stop() {
	s.Server.Stop()
	os.RemoveAll(s.dir)
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
