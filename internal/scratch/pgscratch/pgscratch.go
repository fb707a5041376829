// Package pgscratch starts throw-away PostgreSQL servers on loopback in a
// private data directory: the scratch servers of restore drills, and
// (through targets/postgres/postgrestest) of tests. It is what
// scripts/postgres does by hand.
//
// initdb and postgres come from /usr/lib/postgresql/*/bin (Debian's
// postgresql-15; newest first) or PATH. PostgreSQL refuses to run as
// root: as root, initdb and the server run as the postgres system user
// (set as the child's credentials, no su/runuser needed), which owns the
// directory. The superuser is User with Password (scram-sha-256 over TCP
// on 127.0.0.1, trust on the server's Unix socket in the directory).
//
// The server is a child process in its own process group that the kernel
// kills when lifeboat dies (Pdeathsig), so a killed drill leaves no
// server behind.
package pgscratch

import (
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
	"time"

	"github.com/lifeboat-backup/lifeboat/internal/scratch/scratchproc"
)

// Options configure a server.
type Options struct {
	// Server is the postgres binary (path or name): its directory must
	// also hold initdb. Default: the newest /usr/lib/postgresql/*/bin,
	// else PATH.
	Server string
	// Dir holds the data directory, socket and log. It must exist; the
	// caller removes it. As root it is handed to the postgres user, and
	// its parents must be enterable by others (mode o+x).
	Dir string
	// User and Password of the superuser; default "lifeboat" and a random
	// password.
	User, Password string
	// StartTimeout bounds the wait for the server to accept connections;
	// default 60s.
	StartTimeout time.Duration
	// Settings are extra server settings ("name=value", passed as -c
	// after the defaults, so they override them: wal_level=replica, say).
	Settings []string
	// DataDir, when set, is an existing data directory (owned by the
	// server's user) to start instead of initializing Dir/data.
	DataDir string
}

// Server is one PostgreSQL server on 127.0.0.1.
type Server struct {
	Host     string // 127.0.0.1
	Port     int
	DataDir  string
	User     string
	Password string

	dir      string
	binDir   string
	settings []string
	timeout  time.Duration
	cred     *syscall.Credential // postgres user's, as root

	proc scratchproc.Process
}

// BinDir finds the directory of the server programs: that of server (a
// path or a name on PATH) when given, else the newest
// /usr/lib/postgresql/*/bin, else initdb's directory on PATH.
func BinDir(server string) (string, error) {
	if server != "" {
		p := server
		if filepath.Base(server) == server {
			var err error
			if p, err = lookServer(server); err != nil {
				return "", err
			}
		}
		d := filepath.Dir(p)
		if _, err := os.Stat(filepath.Join(d, "initdb")); err != nil {
			return "", fmt.Errorf("pgscratch: no initdb next to %s (install postgresql-15)", p)
		}
		return d, nil
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return versionOf(dirs[i]) > versionOf(dirs[j]) })
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d, nil
		}
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		return filepath.Dir(p), nil
	}
	return "", errors.New("pgscratch: no PostgreSQL server programs (initdb) in /usr/lib/postgresql/*/bin or on PATH: install postgresql-15 (scripts/deps does)")
}

// lookServer finds a server binary by name: PATH, then the Debian
// directories (the server is not on PATH there).
func lookServer(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	d, err := BinDir("")
	if err != nil {
		return "", err
	}
	p := filepath.Join(d, name)
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("pgscratch: no %s on PATH or in %s", name, d)
	}
	return p, nil
}

// versionOf is the major version in /usr/lib/postgresql/VERSION/bin.
func versionOf(dir string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(dir)))
	return v
}

// Start initializes a data directory in o.Dir and starts a server on a
// free loopback port. The caller stops it (Stop) and removes o.Dir.
// Cancelling ctx aborts the start (the server is killed).
func Start(ctx context.Context, o Options) (*Server, error) {
	bin, err := BinDir(o.Server)
	if err != nil {
		return nil, err
	}
	if o.Dir == "" {
		return nil, errors.New("pgscratch: no directory")
	}
	if fi, err := os.Stat(o.Dir); err != nil || !fi.IsDir() {
		return nil, fmt.Errorf("pgscratch: %s is not a directory", o.Dir)
	}
	scratchproc.Defaults(&o.User, &o.Password, &o.StartTimeout)
	s := &Server{Host: "127.0.0.1", User: o.User, Password: o.Password, dir: o.Dir, binDir: bin,
		DataDir: filepath.Join(o.Dir, "data"), settings: o.Settings, timeout: o.StartTimeout}
	if os.Geteuid() == 0 {
		if s.cred, err = postgresUser(o.Dir); err != nil {
			return nil, err
		}
	}
	if o.DataDir != "" {
		s.DataDir = o.DataDir
		return s, s.startOnFreePort(ctx)
	}
	// initdb reads the password from a file only the server's user reads.
	pwfile := filepath.Join(o.Dir, "pwfile")
	if err := os.WriteFile(pwfile, []byte(s.Password+"\n"), 0o600); err != nil {
		return nil, err
	}
	if s.cred != nil {
		if err := os.Chown(pwfile, int(s.cred.Uid), int(s.cred.Gid)); err != nil {
			return nil, err
		}
	}
	out, err := s.command(ctx, "initdb", "-D", s.DataDir, "-U", s.User, "--pwfile", pwfile, "--auth-local=trust",
		"--auth-host=scram-sha-256", "-E", "UTF8", "--locale=C.UTF-8", "--no-sync", "--no-instructions").CombinedOutput()
	os.Remove(pwfile)
	if err != nil {
		return nil, fmt.Errorf("pgscratch: initdb: %v: %s", err, strings.TrimSpace(string(out)))
	}
	if err := s.startOnFreePort(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *Server) startOnFreePort(ctx context.Context) error {
	for attempt := 0; ; attempt++ {
		var err error
		if s.Port, err = scratchproc.FreePort(); err != nil {
			return err
		}
		err = s.start(ctx, s.timeout)
		if err == nil {
			return nil
		}
		if attempt == 2 || ctx.Err() != nil {
			return err
		}
	}
}

// Restart stops the server (fast shutdown) and starts it again on the
// same port and data directory.
func (s *Server) Restart(ctx context.Context) error {
	s.Stop()
	return s.start(ctx, s.timeout)
}

// postgresUser returns the credentials of the postgres system user and
// hands dir to it, checking that it can reach dir.
func postgresUser(dir string) (*syscall.Credential, error) {
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("pgscratch: PostgreSQL refuses to run as root and there is no postgres system user to run it as (Debian's postgresql package creates it): %v", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	for p := filepath.Dir(abs); ; p = filepath.Dir(p) {
		fi, err := os.Stat(p)
		if err != nil {
			return nil, err
		}
		if fi.Mode().Perm()&0o001 == 0 {
			return nil, fmt.Errorf("pgscratch: the server runs as user postgres, which cannot enter %s (mode %04o): make it o+x or use another directory", p, fi.Mode().Perm())
		}
		if p == filepath.Dir(p) {
			break
		}
	}
	if err := os.Chown(dir, uid, gid); err != nil {
		return nil, err
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: []uint32{}}, nil
}

// command runs a server program of the bin dir as the server's user.
func (s *Server) command(ctx context.Context, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, filepath.Join(s.binDir, name), args...)
	cmd.Dir = s.dir
	cmd.Env = append(os.Environ(), "LC_ALL=C.UTF-8", "TZ=UTC")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred}
	return cmd
}

func (s *Server) start(ctx context.Context, timeout time.Duration) error {
	logf, err := os.OpenFile(s.logPath(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := s.command(context.Background(), "postgres", "-D", s.DataDir, "-p", strconv.Itoa(s.Port), "-k", s.dir,
		"-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
		"-c", "max_wal_senders=0", "-c", "wal_level=minimal", "-c", "max_connections=100", "-c", "timezone=UTC",
		"-c", "logging_collector=off")
	for _, kv := range s.settings {
		cmd.Args = append(cmd.Args, "-c", kv)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := s.proc.Start(ctx, cmd, timeout, s.ready); err != nil {
		if ctx.Err() != nil {
			return err
		}
		return fmt.Errorf("pgscratch: postgres: %w: %s", err, s.Logs())
	}
	return nil
}

// ready reads the status line of postmaster.pid (as pg_ctl -w does).
func (s *Server) ready() bool {
	b, err := os.ReadFile(filepath.Join(s.DataDir, "postmaster.pid"))
	if err != nil {
		return false
	}
	lines := strings.Split(string(b), "\n")
	return len(lines) > 7 && strings.TrimSpace(lines[7]) == "ready"
}

func (s *Server) logPath() string { return filepath.Join(s.dir, "server.log") }

// BinDir is the directory of the server programs (psql, pg_restore are
// there too).
func (s *Server) BinDir() string { return s.binDir }

// URL is postgres://User@127.0.0.1:PORT/ (no password; it is Password).
func (s *Server) URL() string { return fmt.Sprintf("postgres://%s@%s:%d/", s.User, s.Host, s.Port) }

// Logs returns the tail of the server's log.
func (s *Server) Logs() string { return strings.TrimSpace(scratchproc.Tail(s.logPath())) }

// Pid is the server's process id (0 when not started).
func (s *Server) Pid() int { return s.proc.Pid() }

// Running reports whether the server process is alive.
func (s *Server) Running() bool { return s.proc.Running() }

// Stop shuts the server down (fast shutdown: SIGINT; SIGKILL after 20 s)
// and waits for it and its backends to exit.
func (s *Server) Stop() { s.proc.Stop(syscall.SIGINT, 20*time.Second) }

// Kill kills the server and its backends at once.
func (s *Server) Kill() { s.proc.Kill() }
