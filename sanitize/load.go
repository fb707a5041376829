package sanitize

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"

	driver "github.com/go-sql-driver/mysql"

	"github.com/lifeboat-backup/lifeboat/targets/mysql"
)

// Loader streams an export into a MySQL/MariaDB server through the
// mariadb (or mysql) client, the same way a developer loads a dump file.
// The password goes to the client in its environment (MYSQL_PWD), never on
// a command line or in a message. A failed statement is reported with the
// table whose section of the dump it is in.
type Loader struct {
	server string // redacted URL
	cmd    *exec.Cmd
	stdin  interface {
		Write([]byte) (int, error)
		Close() error
	}
	stderr   limitedBuffer
	line     int64  // lines written so far
	partial  []byte // start of the current line, up to sectionPrefixMax bytes
	db       string // current database section
	sections []section
	done     bool
}

type section struct {
	line int64 // first line
	name string
}

// ClientBinary finds the mariadb or mysql client on PATH.
func ClientBinary() (string, error) {
	for _, name := range []string{"mariadb", "mysql"} {
		if p, err := exec.LookPath(name); err == nil {
			return p, nil
		}
	}
	return "", errors.New("neither the mariadb nor the mysql client is on PATH (install mariadb-client)")
}

// StartLoad starts the client against the server of cfg (from
// mysql.ParseDSN: TCP or unix socket, user, password).
func StartLoad(ctx context.Context, cfg *driver.Config) (*Loader, error) {
	bin, err := ClientBinary()
	if err != nil {
		return nil, err
	}
	args := []string{"--batch", "--user=" + cfg.User}
	if cfg.Net == "unix" {
		args = append(args, "--socket="+cfg.Addr)
	} else {
		host, port, err := net.SplitHostPort(cfg.Addr)
		if err != nil {
			return nil, fmt.Errorf("server address %q: %w", cfg.Addr, err)
		}
		args = append(args, "--host="+host, "--port="+port, "--protocol=TCP")
	}
	l := &Loader{server: mysql.RedactConfig(cfg)}
	l.cmd = exec.CommandContext(ctx, bin, args...)
	env := slicesWithout(os.Environ(), "MYSQL_PWD=")
	if cfg.Passwd != "" {
		env = append(env, "MYSQL_PWD="+cfg.Passwd)
	}
	l.cmd.Env = env
	l.cmd.Stderr = &l.stderr
	l.cmd.Stdout = &l.stderr
	if l.stdin, err = l.cmd.StdinPipe(); err != nil {
		return nil, err
	}
	if err := l.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	return l, nil
}

func slicesWithout(env []string, prefix string) []string {
	out := env[:0:0]
	for _, e := range env {
		if !strings.HasPrefix(e, prefix) {
			out = append(out, e)
		}
	}
	return out
}

// Section headers of an export (objects as mysql.Format writes them).
var (
	tableHeader  = []byte("-- Table ")
	dbHeader     = []byte("-- Database ")
	objectHeader = []byte("-- lifeboat mysql ")
)

const sectionPrefixMax = 512

// LoadWriteError is a write to the client's input that failed: the
// client exited or stopped reading (a failed statement, a lost server).
// Its own error, from Close, says why better than the broken pipe.
type LoadWriteError struct {
	Server string // redacted URL
	Err    error
}

func (e *LoadWriteError) Error() string { return "load into " + e.Server + ": " + e.Err.Error() }

func (e *LoadWriteError) Unwrap() error { return e.Err }

// Write sends dump text to the client, noting where each table's section
// starts. Its errors are *LoadWriteError.
func (l *Loader) Write(p []byte) (int, error) {
	l.track(p)
	n, err := l.stdin.Write(p)
	if err != nil {
		return n, &LoadWriteError{Server: l.server, Err: err}
	}
	return n, nil
}

// track counts lines and records the lines that start a section.
func (l *Loader) track(p []byte) {
	for len(p) > 0 {
		nl := bytes.IndexByte(p, '\n')
		end := nl
		if end < 0 {
			end = len(p)
		}
		if room := sectionPrefixMax - len(l.partial); room > 0 {
			l.partial = append(l.partial, p[:min(end, room)]...)
		}
		if nl < 0 {
			return
		}
		l.line++
		switch line := l.partial; {
		case bytes.HasPrefix(line, dbHeader):
			l.db = string(line[len(dbHeader):])
			l.sections = append(l.sections, section{l.line, "database " + l.db})
		case bytes.HasPrefix(line, tableHeader):
			l.sections = append(l.sections, section{l.line, "table " + l.db + "." + string(line[len(tableHeader):])})
		case bytes.HasPrefix(line, objectHeader):
			l.sections = append(l.sections, section{l.line, string(line[len(objectHeader):]) + " in " + l.db})
		}
		l.partial = l.partial[:0]
		p = p[nl+1:]
	}
}

var reClientLine = regexp.MustCompile(`at line (\d+)`)

// Close ends the input and waits for the client: the load's error, if
// any, names the table being loaded.
func (l *Loader) Close() error {
	if l.done {
		return nil
	}
	l.done = true
	l.stdin.Close()
	err := l.cmd.Wait()
	if err == nil {
		return nil
	}
	msg := strings.TrimSpace(l.stderr.String())
	// The client echoes the failed statement around its ERROR line: keep
	// the ERROR lines (the statement may be a megabyte of rows).
	var errs []string
	for _, line := range strings.Split(msg, "\n") {
		if strings.HasPrefix(line, "ERROR") {
			errs = append(errs, line)
		}
	}
	if len(errs) > 0 {
		msg = strings.Join(errs, "; ")
	}
	if msg == "" {
		msg = err.Error()
	}
	where := ""
	if m := reClientLine.FindStringSubmatch(msg); m != nil {
		n, _ := strconv.ParseInt(m[1], 10, 64)
		if i := sort.Search(len(l.sections), func(i int) bool { return l.sections[i].line > n }); i > 0 {
			where = l.sections[i-1].name + ": "
		}
	}
	return fmt.Errorf("load into %s: %s%s", l.server, where, msg)
}

// Abort stops the client (an export that failed before its end): it is
// killed before its input is closed, so that it does not take the end of
// the input for the end of the dump and run the statements still unread.
// Statements it already ran stay.
func (l *Loader) Abort() {
	if l.done {
		return
	}
	l.done = true
	if l.cmd.Process != nil {
		l.cmd.Process.Kill()
	}
	l.stdin.Close()
	l.cmd.Wait()
}

// limitedBuffer keeps the first 8 KiB written to it (the client's error).
type limitedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if room := 8<<10 - b.b.Len(); room > 0 {
		b.b.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

func (b *limitedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
