// Package exec backs up the standard output of a command as one stream:
// a dump tool such as `redis-cli --rdb -` or `pg_dump -Fc`. The command runs
// without a shell; its output is chunked as it arrives (no temporary file).
// A command that exits non-zero, is killed, or cannot be started fails the
// snapshot: the source is all-or-nothing.
package exec

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"sync"
	"time"

	"github.com/lifeboat-backup/lifeboat/engine/snapshot"
	"github.com/lifeboat-backup/lifeboat/targets/files"
)

// StderrTail is how many bytes of the command's stderr (the last ones) an
// error message quotes.
const StderrTail = 4 << 10

// Options configure a command source.
type Options struct {
	// Name is the path of the one entry in the snapshot ("redis.rdb");
	// no "/" allowed.
	Name string
	// Command is the argv to run (no shell).
	Command []string
	// Env, if not nil, replaces the environment of the command.
	Env []string
	// Dir is the working directory of the command (default: the current).
	Dir string
}

// Source runs a command and stores its stdout. It has the method set of
// engine.Source and engine.AllOrNothing.
type Source struct {
	opts Options
	path string // resolved program
}

// New checks the options and resolves the program (a missing program is
// an error here, before anything is written).
func New(opts Options) (*Source, error) {
	if opts.Name == "" {
		return nil, errors.New("exec: no name")
	}
	if strings.Contains(opts.Name, "/") || files.CheckPath(opts.Name) != nil {
		return nil, fmt.Errorf("exec: name %q: must be a plain file name (no /, not . or ..)", opts.Name)
	}
	if len(opts.Command) == 0 || opts.Command[0] == "" {
		return nil, errors.New("exec: no command")
	}
	p, err := exec.LookPath(opts.Command[0])
	if err != nil {
		return nil, fmt.Errorf("exec: command %q: %w", opts.Command[0], err)
	}
	return &Source{opts: opts, path: p}, nil
}

// Kind implements engine.Source.
func (s *Source) Kind() string { return "exec" }

// Paths implements engine.Source: the entry name.
func (s *Source) Paths() []string { return []string{s.opts.Name} }

// AllOrNothing implements engine.AllOrNothing: a dump is one whole; a
// failed command fails the backup.
func (s *Source) AllOrNothing() bool { return true }

// Walk implements engine.Source: one file entry whose content is the
// command's stdout. The command starts when the engine opens the entry.
func (s *Source) Walk(ctx context.Context, warn func(string, error), fn func(snapshot.Entry, func() (io.ReadCloser, error)) error) error {
	e := snapshot.Entry{Path: s.opts.Name, Type: snapshot.TypeFile, Mode: 0o600, ModTime: time.Now().UTC()}
	return fn(e, func() (io.ReadCloser, error) { return s.Start(ctx) })
}

// Start runs the command and returns its stdout. Read returns the exit
// error (with the tail of stderr) instead of io.EOF when the command
// fails; Close kills a command that is still running and returns its error.
func (s *Source) Start(ctx context.Context) (io.ReadCloser, error) {
	cmd := exec.CommandContext(ctx, s.path, s.opts.Command[1:]...)
	cmd.Args[0] = s.opts.Command[0]
	cmd.Env = s.opts.Env
	cmd.Dir = s.opts.Dir
	cmd.WaitDelay = 5 * time.Second
	tail := &TailBuffer{Max: StderrTail}
	cmd.Stderr = tail
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("exec: start %s: %w", s.opts.Command[0], err)
	}
	return &stream{cmd: cmd, out: out, tail: tail, name: s.opts.Command[0]}, nil
}

type stream struct {
	cmd     *exec.Cmd
	out     io.ReadCloser
	tail    *TailBuffer
	name    string
	waited  bool
	waitErr error
}

func (s *stream) wait() error {
	if !s.waited {
		s.waited = true
		if err := s.cmd.Wait(); err != nil {
			s.waitErr = CommandError(s.name, err, s.tail.String())
		}
	}
	return s.waitErr
}

func (s *stream) Read(p []byte) (int, error) {
	n, err := s.out.Read(p)
	if err == io.EOF {
		if werr := s.wait(); werr != nil {
			return n, werr
		}
	}
	return n, err
}

func (s *stream) Close() error {
	if !s.waited && s.cmd.Process != nil {
		// Not read to the end: the stream is incomplete whatever the exit
		// status would be.
		_ = s.cmd.Process.Kill()
		_ = s.wait()
		return fmt.Errorf("exec: %s: output not read to the end", s.name)
	}
	return s.wait()
}

// CommandError describes a failed command with the tail of its stderr.
func CommandError(name string, err error, stderr string) error {
	stderr = strings.TrimSpace(stderr)
	if stderr == "" {
		return fmt.Errorf("exec: %s: %w", name, err)
	}
	return fmt.Errorf("exec: %s: %w: %s", name, err, stderr)
}

// TailBuffer keeps the last Max bytes written to it.
type TailBuffer struct {
	Max  int
	mu   sync.Mutex
	buf  []byte
	lost bool
}

func (t *TailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if len(t.buf) > t.Max {
		t.buf = append(t.buf[:0], t.buf[len(t.buf)-t.Max:]...)
		t.lost = true
	}
	return len(p), nil
}

func (t *TailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := string(bytes.ToValidUTF8(t.buf, []byte("?")))
	if t.lost {
		return "..." + s
	}
	return s
}
