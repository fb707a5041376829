// Package mariadb starts throw-away MariaDB (or MySQL-compatible mariadbd)
// servers on loopback in a private data directory: the scratch servers of
// restore drills, and (through targets/mysql/mysqltest) of tests. It is
// what scripts/mariadb does by hand.
//
// A server has root@localhost without a password (socket only) and
// User@127.0.0.1 / User@localhost with Password and all privileges. The
// binary log is on, so recovery points taken from it have a position.
package mariadb

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	driver "github.com/go-sql-driver/mysql"

	"github.com/lifeboat-backup/lifeboat/internal/scratch/scratchproc"
)

// Options configure a server.
type Options struct {
	// Server is the mariadbd binary: a path, or a name looked up on PATH,
	// /usr/sbin, /usr/bin, /usr/local/{s,}bin. Default "mariadbd".
	Server string
	// Install is mariadb-install-db; default: next to Server, else looked
	// up like Server.
	Install string
	// Dir holds the data directory, socket, pid file and error log. It
	// must exist; the caller removes it.
	Dir string
	// User and Password of the TCP account created; default "lifeboat"
	// and a random password.
	User, Password string
	// StartTimeout bounds the wait for the server to answer; default 60s.
	StartTimeout time.Duration
}

// Server is one MariaDB server on 127.0.0.1.
type Server struct {
	Addr     string // 127.0.0.1:PORT
	Port     int
	Socket   string
	DataDir  string
	User     string
	Password string

	proc    scratchproc.Process
	log     string
	binary  string // mariadbd, for Restart
	dir     string
	timeout time.Duration
}

// Look finds a binary by path or name (PATH, then the sbin/bin dirs
// where Debian's mariadb-server puts it).
func Look(name string) (string, error) {
	if filepath.IsAbs(name) || filepath.Base(name) != name {
		if _, err := os.Stat(name); err != nil {
			return "", err
		}
		return name, nil
	}
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, d := range []string{"/usr/sbin", "/usr/bin", "/usr/local/bin", "/usr/local/sbin"} {
		p := filepath.Join(d, name)
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("no %s found (install mariadb-server; scripts/deps does)", name)
}

// Binaries resolves the server and install-db binaries of o.
func (o Options) Binaries() (server, install string, err error) {
	name := o.Server
	if name == "" {
		name = "mariadbd"
	}
	if server, err = Look(name); err != nil {
		return "", "", err
	}
	if o.Install != "" {
		install, err = Look(o.Install)
		return server, install, err
	}
	if p := filepath.Join(filepath.Dir(server), "mariadb-install-db"); fileExists(p) {
		return server, p, nil
	}
	for _, n := range []string{"mariadb-install-db", "mysql_install_db"} {
		if install, err = Look(n); err == nil {
			return server, install, nil
		}
	}
	return "", "", err
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

// Start initializes a data directory below o.Dir and starts a server on a
// free loopback port. The caller stops it (Stop) and removes o.Dir.
// Cancelling ctx aborts the start (the server is killed).
func Start(ctx context.Context, o Options) (*Server, error) {
	server, install, err := o.Binaries()
	if err != nil {
		return nil, err
	}
	if o.Dir == "" {
		return nil, errors.New("mariadb: no directory")
	}
	scratchproc.Defaults(&o.User, &o.Password, &o.StartTimeout)
	s := &Server{DataDir: filepath.Join(o.Dir, "db"), Socket: filepath.Join(o.Dir, "mysqld.sock"), User: o.User, Password: o.Password}
	args := []string{"--no-defaults", "--datadir=" + s.DataDir, "--auth-root-authentication-method=normal", "--skip-test-db"}
	if os.Geteuid() == 0 {
		args = append(args, "--user=root")
	}
	if out, err := exec.CommandContext(ctx, install, args...).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("mariadb-install-db: %v\n%s", err, out)
	}
	for attempt := 0; ; attempt++ {
		port, err := scratchproc.FreePort()
		if err != nil {
			return nil, err
		}
		s.Port, s.Addr = port, net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		err = s.start(ctx, server, o.Dir, o.StartTimeout)
		if err == nil {
			break
		}
		if attempt == 2 || ctx.Err() != nil {
			return nil, err
		}
	}
	if err := s.createUser(ctx); err != nil {
		s.Stop()
		return nil, err
	}
	return s, nil
}

func (s *Server) start(ctx context.Context, server, dir string, timeout time.Duration) error {
	s.binary, s.dir, s.timeout = server, dir, timeout
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
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := s.proc.Start(ctx, cmd, timeout, func() bool {
		c, err := net.DialTimeout("unix", s.Socket, time.Second)
		if err != nil {
			return false
		}
		c.Close()
		return s.rootExec(ctx, "SELECT 1") == nil
	})
	if err != nil && ctx.Err() == nil {
		return fmt.Errorf("mariadbd: %w: %s\n%s", err, out.String(), s.Logs())
	}
	return err
}

// Pid is the server's process id (0 when not started).
func (s *Server) Pid() int { return s.proc.Pid() }

func (s *Server) DSN() string { return fmt.Sprintf("%s@tcp(%s)/", s.User, s.Addr) }

func (s *Server) rootDB() (*sql.DB, error) {
	cfg := driver.NewConfig()
	cfg.User, cfg.Net, cfg.Addr = "root", "unix", s.Socket
	c, err := driver.NewConnector(cfg)
	if err != nil {
		return nil, err
	}
	return sql.OpenDB(c), nil
}

func (s *Server) rootExec(ctx context.Context, queries ...string) error {
	db, err := s.rootDB()
	if err != nil {
		return err
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for _, q := range queries {
		if _, err := db.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("%s: %w", q, err)
		}
	}
	return nil
}

func (s *Server) createUser(ctx context.Context) error {
	var qs []string
	for _, h := range []string{"127.0.0.1", "localhost"} {
		qs = append(qs,
			fmt.Sprintf("CREATE USER IF NOT EXISTS '%s'@'%s' IDENTIFIED BY '%s'", s.User, h, s.Password),
			fmt.Sprintf("GRANT ALL PRIVILEGES ON *.* TO '%s'@'%s' WITH GRANT OPTION", s.User, h))
	}
	return s.rootExec(ctx, qs...)
}

// Logs returns the tail of the server's error log.
func (s *Server) Logs() string { return scratchproc.Tail(s.log) }

// Running reports whether the server process is alive.
func (s *Server) Running() bool { return s.proc.Running() }

// Stop shuts the server down (SIGTERM, then SIGKILL after 20 s) and waits
// for the process to exit.
func (s *Server) Stop() { s.proc.Stop(syscall.SIGTERM, 20*time.Second) }

// Restart stops the server (as Stop) and starts it again on the same data
// directory and port (a server restart under a client's feet).
func (s *Server) Restart(ctx context.Context) error {
	s.Stop()
	return s.start(ctx, s.binary, s.dir, s.timeout)
}

// Kill kills the server at once.
func (s *Server) Kill() { s.proc.Kill() }
