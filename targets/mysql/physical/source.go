package physical

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	driver "github.com/go-sql-driver/mysql"

	"github.com/lifeboat-backup/lifeboat/engine/snapshot"
	"github.com/lifeboat-backup/lifeboat/targets/mysql"
	"github.com/lifeboat-backup/lifeboat/targets/physicalbase"
)

// Entry is the name of the one entry of a physical base snapshot.
const Entry = "backup.xbstream"

// Method is the recovery point detail that marks a physical base.
const Method = "physical"

// Options configure a physical base backup.
type Options struct {
	// DSN of the server to back up; mariabackup runs on its host (it
	// reads the data directory the server names).
	DSN      string
	Password string
	// BinDir holds mariabackup; default PATH.
	BinDir string
}

// Source streams mariabackup's xbstream into the repository. It has the
// method set of engine.Source, engine.RecoveryPointer and
// engine.AllOrNothing.
type Source struct {
	opts Options
	cfg  *driver.Config
	rp   physicalbase.Point
}

// New checks the options; it does not connect.
func New(opts Options) (*Source, error) {
	if opts.DSN == "" {
		return nil, errors.New("mysql: no DSN")
	}
	cfg, err := mysql.ParseDSN(opts.DSN, opts.Password)
	if err != nil {
		return nil, err
	}
	return &Source{opts: opts, cfg: cfg}, nil
}

// Kind implements engine.Source: a physical base is a mysql snapshot
// (its recovery point has method=physical).
func (s *Source) Kind() string { return "mysql" }

// Paths implements engine.Source.
func (s *Source) Paths() []string { return []string{mysql.RedactConfig(s.cfg) + " (physical)"} }

// AllOrNothing implements engine.AllOrNothing.
func (s *Source) AllOrNothing() bool { return true }

// RecoveryPoint implements engine.RecoveryPointer: the base holds every
// transaction up to the binlog coordinates mariabackup reported (taken
// under BACKUP STAGE BLOCK_COMMIT); the time recorded is when mariabackup
// finished, at or after that point. Details: method=physical,
// binlog_file, binlog_position, gtid_binlog_pos (as a logical dump's),
// start_time, tool (mariabackup's version line).
func (s *Source) RecoveryPoint() (time.Time, map[string]string) { return s.rp.Get() }

// Walk implements engine.Source: one file entry, backup.xbstream, whose
// content is mariabackup's stream (nothing is stored locally).
func (s *Source) Walk(ctx context.Context, warn func(string, error), fn func(snapshot.Entry, func() (io.ReadCloser, error)) error) error {
	e := snapshot.Entry{Path: Entry, Type: snapshot.TypeFile, Mode: 0o600, ModTime: time.Now().UTC()}
	return fn(e, func() (io.ReadCloser, error) { return s.start(ctx) })
}

// Binary finds a MariaDB tool (mariabackup, mbstream) in binDir or on PATH.
func Binary(binDir, name string) (string, error) {
	if binDir != "" {
		p := filepath.Join(binDir, name)
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("mysql: %w", err)
		}
		return p, nil
	}
	p, err := exec.LookPath(name)
	if err != nil {
		return "", fmt.Errorf("mysql: no %s found (install the mariadb-backup package)", name)
	}
	return p, nil
}

// clientOptions is the option file mariabackup reads its connection from.
func clientOptions(cfg *driver.Config) ([]byte, error) {
	q := strings.NewReplacer("\\", "\\\\", "\"", "\\\"", "\n", "\\n", "\r", "\\r", "\t", "\\t", "\b", "\\b")
	opt := func(b *bytes.Buffer, k, v string) { fmt.Fprintf(b, "%s=\"%s\"\n", k, q.Replace(v)) }
	var b bytes.Buffer
	b.WriteString("[client]\n")
	opt(&b, "user", cfg.User)
	if cfg.Passwd != "" {
		opt(&b, "password", cfg.Passwd)
	}
	if cfg.Net == "unix" {
		opt(&b, "socket", cfg.Addr)
	} else {
		host, port, err := net.SplitHostPort(cfg.Addr)
		if err != nil {
			return nil, fmt.Errorf("mysql address %q: %w", cfg.Addr, err)
		}
		opt(&b, "host", host)
		opt(&b, "port", port)
		b.WriteString("protocol=tcp\n")
	}
	return b.Bytes(), nil
}

func (s *Source) start(ctx context.Context) (io.ReadCloser, error) {
	bin, err := Binary(s.opts.BinDir, "mariabackup")
	if err != nil {
		return nil, err
	}
	opts, err := clientOptions(s.cfg)
	if err != nil {
		return nil, err
	}
	// --target-dir is required but stays empty in stream mode; the option
	// file (mode 0600, beside it) keeps the password off the command line.
	tmp, err := os.MkdirTemp("", "lifeboat-mariabackup-")
	if err != nil {
		return nil, err
	}
	cnf := filepath.Join(tmp, "client.cnf")
	if err := os.WriteFile(cnf, opts, 0o600); err != nil {
		os.RemoveAll(tmp)
		return nil, err
	}
	target := filepath.Join(tmp, "target")
	started := time.Now().UTC()
	return physicalbase.Start(physicalbase.Tool{
		Cmd: exec.CommandContext(ctx, bin, "--defaults-extra-file="+cnf, "--backup", "--stream=xbstream",
			"--target-dir="+target, "--parallel=1"),
		Kind:    "mysql",
		Name:    "mariabackup",
		Finish:  func(log string, waitErr error) error { return s.finish(started, log, waitErr) },
		Cleanup: func() { os.RemoveAll(tmp) },
	})
}

var (
	binlogRE  = regexp.MustCompile(`MySQL binlog position: filename '([^']*)', position '(\d+)'(?:, GTID of the last change '([^']*)')?`)
	versionRE = regexp.MustCompile(`mariabackup based on MariaDB server [^\n]*`)
)

// ParseBinlogInfo reads the recovery point details from mariabackup's
// log (its stderr): binlog_file, binlog_position and gtid_binlog_pos, or
// binlog=off when the server has no binary log.
func ParseBinlogInfo(log string) map[string]string {
	d := map[string]string{"method": Method}
	m := binlogRE.FindStringSubmatch(log)
	if m == nil {
		d["binlog"] = "off"
	} else {
		d["binlog_file"], d["binlog_position"] = m[1], m[2]
		if m[3] != "" {
			d["gtid_binlog_pos"] = m[3]
		}
	}
	if v := versionRE.FindString(log); v != "" {
		d["tool"] = strings.TrimSpace(v)
	}
	return d
}

// finish records the recovery point from the log of a mariabackup that
// ended.
func (s *Source) finish(started time.Time, log string, waitErr error) error {
	if waitErr != nil {
		return fmt.Errorf("mysql: mariabackup failed (%v): %s", waitErr, lastLines(log, 15))
	}
	if !strings.Contains(log, "completed OK!") {
		return fmt.Errorf("mysql: mariabackup did not report success: %s", lastLines(log, 15))
	}
	d := ParseBinlogInfo(log)
	d["start_time"] = started.Format(time.RFC3339Nano)
	s.rp.Set(time.Now().UTC(), d)
	return nil
}

// lastLines is the end of a tool's log, for its error.
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
