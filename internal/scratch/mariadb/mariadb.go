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
	"strings"
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
	// Dir holds the data directory, socket, pid file, error log and the
	// server's temporary files (--tmpdir, apart from other servers). It
	// must exist; the caller removes it.
	Dir string
	// User and Password of the TCP account created; default "lifeboat"
	// and a random password.
	User, Password string
	// StartTimeout bounds the wait for the server to answer; default 60s.
	StartTimeout time.Duration
	// DefaultsFile (StartOn only) is read instead of no option file: a
	// restored backup's backup-my.cnf (its InnoDB page and log settings).
	DefaultsFile string
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
	if err := installDB(ctx, install, s.DataDir); err != nil {
		return nil, err
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

// Install makes dataDir a new, empty data directory (mariadb-install-db:
// system tables only; root@localhost without a password, socket only).
func Install(ctx context.Context, o Options, dataDir string) error {
	_, install, err := o.Binaries()
	if err != nil {
		return err
	}
	return installDB(ctx, install, dataDir)
}

func installDB(ctx context.Context, install, dataDir string) error {
	args := []string{"--no-defaults", "--datadir=" + dataDir, "--auth-root-authentication-method=normal", "--skip-test-db"}
	if os.Geteuid() == 0 {
		args = append(args, "--user=root")
	}
	if out, err := exec.CommandContext(ctx, install, args...).CombinedOutput(); err != nil {
		return fmt.Errorf("mariadb-install-db on %s: %v\n%s", dataDir, err, out)
	}
	return nil
}

func (s *Server) start(ctx context.Context, server, dir string, timeout time.Duration) error {
	s.binary, s.dir, s.timeout = server, dir, timeout
	s.log = filepath.Join(dir, "error.log")
	args := []string{"--no-defaults", "--datadir=" + s.DataDir, "--socket=" + s.Socket,
		"--port=" + strconv.Itoa(s.Port), "--bind-address=127.0.0.1", "--skip-name-resolve",
		"--pid-file=" + filepath.Join(dir, "mariadbd.pid"), "--log-error=" + s.log, "--tmpdir=" + dir,
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

// StartOn starts a server on an existing data directory (a restored
// one: its grants are unknown) on a free loopback port, with the socket,
// pid file and error log in o.Dir and without a binary log (what it
// applies is not logged again). An init file creates User@127.0.0.1 with
// Password and all privileges (default User: a fresh lifeboat_tmp_ name);
// DropUser removes it again before Shutdown. Install is not used.
func StartOn(ctx context.Context, o Options, dataDir string) (*Server, error) {
	name := o.Server
	if name == "" {
		name = "mariadbd"
	}
	server, err := Look(name)
	if err != nil {
		return nil, err
	}
	if o.Dir == "" {
		return nil, errors.New("mariadb: no directory")
	}
	if o.User == "" {
		// A name the restored grants cannot hold already (CREATE OR
		// REPLACE must not replace a real account).
		o.User = fmt.Sprintf("lifeboat_tmp_%d_%d", os.Getpid(), time.Now().UnixNano()%1e9)
	}
	scratchproc.Defaults(&o.User, &o.Password, &o.StartTimeout)
	s := &Server{DataDir: dataDir, Socket: filepath.Join(o.Dir, "mysqld.sock"), User: o.User, Password: o.Password,
		binary: server, dir: o.Dir, timeout: o.StartTimeout, log: filepath.Join(o.Dir, "error.log")}
	init := filepath.Join(o.Dir, "init.sql")
	q := fmt.Sprintf("CREATE OR REPLACE USER '%s'@'127.0.0.1' IDENTIFIED BY '%s';\nGRANT ALL PRIVILEGES ON *.* TO '%s'@'127.0.0.1' WITH GRANT OPTION;\n",
		s.User, s.Password, s.User)
	if err := os.WriteFile(init, []byte(q), 0o600); err != nil {
		return nil, err
	}
	defer os.Remove(init)
	for attempt := 0; ; attempt++ {
		if s.Port, err = scratchproc.FreePort(); err != nil {
			return nil, err
		}
		s.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(s.Port))
		defaults := "--no-defaults"
		if o.DefaultsFile != "" {
			defaults = "--defaults-file=" + o.DefaultsFile
		}
		args := []string{defaults, "--datadir=" + dataDir, "--socket=" + s.Socket,
			"--port=" + strconv.Itoa(s.Port), "--bind-address=127.0.0.1", "--skip-name-resolve",
			"--pid-file=" + filepath.Join(o.Dir, "mariadbd.pid"), "--log-error=" + s.log, "--tmpdir=" + o.Dir,
			"--skip-log-bin", "--skip-slave-start", "--init-file=" + init, "--local-infile=1",
			"--innodb-buffer-pool-size=256M", "--max-allowed-packet=1G", "--innodb-fast-shutdown=0"}
		if os.Geteuid() == 0 {
			args = append(args, "--user=root")
		}
		cmd := exec.Command(server, args...)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		err = s.proc.Start(ctx, cmd, o.StartTimeout, func() bool { return s.ping(ctx) == nil })
		if err == nil {
			return s, nil
		}
		if ctx.Err() != nil {
			return nil, err
		}
		if attempt == 2 {
			return nil, fmt.Errorf("mariadbd on %s: %w: %s\n%s", dataDir, err, out.String(), s.Logs())
		}
	}
}

// DB opens a connection pool to the server as User over TCP.
func (s *Server) DB() (*sql.DB, error) {
	cfg := driver.NewConfig()
	cfg.User, cfg.Passwd, cfg.Net, cfg.Addr = s.User, s.Password, "tcp", s.Addr
	c, err := driver.NewConnector(cfg)
	if err != nil {
		return nil, err
	}
	return sql.OpenDB(c), nil
}

func (s *Server) ping(ctx context.Context) error {
	db, err := s.DB()
	if err != nil {
		return err
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	return db.PingContext(ctx)
}

// DropUser removes the account StartOn created (from the server's own
// connection: the data directory keeps no trace of it).
func (s *Server) DropUser(ctx context.Context) error {
	db, err := s.DB()
	if err != nil {
		return err
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	_, err = db.ExecContext(ctx, fmt.Sprintf("DROP USER '%s'@'127.0.0.1'", s.User))
	return err
}

// Shutdown stops the server cleanly (SIGTERM: InnoDB flushes everything,
// StartOn sets a slow shutdown) and waits up to grace before it kills
// it; it reports whether the server ended by itself.
func (s *Server) Shutdown(grace time.Duration) error {
	s.proc.Stop(syscall.SIGTERM, grace)
	if !strings.Contains(s.Logs(), "Shutdown complete") {
		return fmt.Errorf("mariadbd on %s did not shut down cleanly within %s:\n%s", s.DataDir, grace, s.Logs())
	}
	return nil
}
