// Package restic is lifeboat's second repository engine: a driver of the
// restic executable (never its Go packages), so a policy can keep its
// snapshots in a restic repository operators already have. See
// docs/restic-engine.md.
package restic

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	osexec "os/exec"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/lifeboat-backup/lifeboat/engine/storage"
)

// MinVersion is the oldest restic this driver accepts: 0.17 gave the exit
// codes it classifies errors by (10 no repository, 11 locked, 12 wrong
// password) and the snapshot summary that `snapshots --json` reports.
var MinVersion = [3]int{0, 17, 0}

// EnvBinary names the restic executable to use (default: restic on PATH).
const EnvBinary = "LIFEBOAT_RESTIC"

// Errors a restic command can end in; each *Error unwraps to one of them.
var (
	ErrNotInstalled  = errors.New("restic executable not found (install restic >= 0.17 or set " + EnvBinary + ")")
	ErrTooOld        = errors.New("restic is too old")
	ErrWrongPassword = errors.New("wrong password for the restic repository")
	ErrLocked        = errors.New("restic repository is locked by another process (`restic unlock` removes stale locks)")
	ErrNoRepository  = errors.New("no restic repository at this location (run `lifeboat init` first)")
	ErrFailed        = errors.New("restic command failed")
)

// Error is a failed restic command: what ran (without secrets), restic's
// exit code and the last lines it printed on stderr.
type Error struct {
	Op     string // e.g. "restic backup"
	Code   int
	Stderr string
	Kind   error // one of the Err* values
}

func (e *Error) Error() string {
	msg := fmt.Sprintf("%s: %v", e.Op, e.Kind)
	if e.Stderr != "" {
		msg += ": " + e.Stderr
	}
	return msg
}

// Unwrap returns the kind of failure.
func (e *Error) Unwrap() error { return e.Kind }

// Options say which restic to run on which repository.
type Options struct {
	// Binary is the restic executable (default: $LIFEBOAT_RESTIC, else
	// restic on PATH).
	Binary string
	// URL is the repository in lifeboat's URL form (file:///path,
	// s3://bucket/prefix?endpoint=...), see Location.
	URL string
	// Password of the repository. It reaches restic only through
	// RESTIC_PASSWORD_FILE pointing at a pipe (never argv, env or disk).
	Password []byte
}

// Restic runs restic commands on one repository.
type Restic struct {
	bin      string
	repo     string   // restic's form of the location
	env      []string // the location's environment (AWS_*)
	url      string   // lifeboat's form, for messages
	password []byte
	Version  [3]int
}

// New finds restic, checks its version and maps the repository location.
// It does not touch the repository.
func New(ctx context.Context, o Options) (*Restic, error) {
	if len(bytes.TrimSpace(o.Password)) == 0 {
		return nil, errors.New("restic repository: a password is required (repositories.primary.password_file or --passphrase-file)")
	}
	loc, env, err := Location(o.URL)
	if err != nil {
		return nil, err
	}
	bin, err := findBinary(o.Binary)
	if err != nil {
		return nil, err
	}
	v, err := version(ctx, bin)
	if err != nil {
		return nil, err
	}
	return &Restic{bin: bin, repo: loc, env: env, url: o.URL, password: o.Password, Version: v}, nil
}

func findBinary(bin string) (string, error) {
	if bin == "" {
		bin = os.Getenv(EnvBinary)
	}
	if bin == "" {
		bin = "restic"
	}
	p, err := osexec.LookPath(bin)
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrNotInstalled, err)
	}
	return p, nil
}

var versionRE = regexp.MustCompile(`^restic (\d+)\.(\d+)\.(\d+)`)

// version runs `restic version` and checks it against MinVersion.
func version(ctx context.Context, bin string) ([3]int, error) {
	var v [3]int
	out, err := osexec.CommandContext(ctx, bin, "version").Output()
	if err != nil {
		return v, fmt.Errorf("%w: %s version: %v", ErrNotInstalled, bin, err)
	}
	m := versionRE.FindSubmatch(out)
	if m == nil {
		return v, fmt.Errorf("%s version printed %q, not \"restic X.Y.Z ...\": is it restic?", bin, firstLine(string(out)))
	}
	for i := range v {
		v[i], _ = strconv.Atoi(string(m[i+1]))
	}
	if compareVersions(v, MinVersion) < 0 {
		return v, fmt.Errorf("%w: %s is %d.%d.%d, lifeboat needs >= %d.%d.%d", ErrTooOld, bin, v[0], v[1], v[2],
			MinVersion[0], MinVersion[1], MinVersion[2])
	}
	return v, nil
}

func compareVersions(a, b [3]int) int {
	for i := range a {
		if a[i] != b[i] {
			return a[i] - b[i]
		}
	}
	return 0
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	return s
}

// cmd is one restic invocation being prepared.
type cmd struct {
	args   []string
	stdin  io.Reader
	stdout io.Writer
	// fromPassword is a second repository's password (copy --from-repo):
	// passed like the main one, through a pipe.
	fromPassword []byte
	fromEnv      []string
}

// run runs restic with args on the repository and classifies failures.
func (r *Restic) run(ctx context.Context, c cmd) error {
	args := append([]string{"--repo", r.repo, "--quiet"}, c.args...)
	x := osexec.CommandContext(ctx, r.bin, args...)
	// Ctrl-C: restic removes its lock on SIGINT; killed after 30 s.
	x.Cancel = func() error { return x.Process.Signal(syscall.SIGINT) }
	x.WaitDelay = 30 * time.Second
	x.Stdin, x.Stdout = c.stdin, c.stdout
	if x.Stdout == nil {
		x.Stdout = io.Discard
	}
	var stderr tailBuffer
	x.Stderr = &stderr
	x.Env = append(cleanEnv(), r.env...)
	x.Env = append(x.Env, c.fromEnv...)
	x.Env = append(x.Env, "RESTIC_PASSWORD_FILE=/dev/fd/3", "RESTIC_PROGRESS_FPS=0.1")
	closers, err := passwordPipes(x, r.password, c.fromPassword)
	if err != nil {
		return err
	}
	if c.fromPassword != nil {
		x.Env = append(x.Env, "RESTIC_FROM_PASSWORD_FILE=/dev/fd/4")
	}
	err = x.Run()
	for _, f := range closers {
		_ = f.Close()
	}
	if err == nil {
		return nil
	}
	op := "restic " + c.args[0] + " on " + storage.Redact(r.url)
	var ee *osexec.ExitError
	if !errors.As(err, &ee) {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return &Error{Op: op, Code: -1, Kind: ErrFailed, Stderr: err.Error()}
	}
	if ctx.Err() != nil {
		return fmt.Errorf("%s: %w", op, ctx.Err())
	}
	msg := readable(stderr.String())
	return &Error{Op: op, Code: ee.ExitCode(), Stderr: msg, Kind: classify(ee.ExitCode(), msg)}
}

// readable is restic's stderr with the JSON messages of --json commands
// ({"message_type":"exit_error","message":"Fatal: ..."}) as their text.
func readable(stderr string) string {
	lines := strings.Split(stderr, "\n")
	for i, l := range lines {
		var m struct {
			Message string `json:"message"`
		}
		if strings.HasPrefix(l, "{") && json.Unmarshal([]byte(l), &m) == nil && m.Message != "" {
			lines[i] = m.Message
		}
	}
	return strings.Join(lines, "\n")
}

// classify maps restic's exit code (0.17+) or, failing that, its message
// to a kind of failure.
func classify(code int, stderr string) error {
	switch {
	case code == 10 || strings.Contains(stderr, "repository does not exist") || strings.Contains(stderr, "Is there a repository at the following location"):
		return ErrNoRepository
	case code == 11 || strings.Contains(stderr, "repository is already locked"):
		return ErrLocked
	case code == 12 || strings.Contains(stderr, "wrong password"):
		return ErrWrongPassword
	}
	return ErrFailed
}

// cleanEnv is this process's environment without the RESTIC_* variables
// that would override what the driver passes (another repository or
// password); others (RESTIC_CACHE_DIR, ...) stay.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "RESTIC_REPOSITORY") || strings.HasPrefix(kv, "RESTIC_PASSWORD") ||
			strings.HasPrefix(kv, "RESTIC_FROM_") || strings.HasPrefix(kv, "RESTIC_KEY_HINT") {
			continue
		}
		env = append(env, kv)
	}
	return env
}

// passwordPipes gives the child its passwords as fds 3 (and 4): pipes
// written from memory, so no password is on a command line, in the
// environment or on disk. The returned files are closed after the run.
func passwordPipes(x *osexec.Cmd, pws ...[]byte) ([]*os.File, error) {
	var closers []*os.File
	for _, pw := range pws {
		if pw == nil {
			continue
		}
		pr, pw2, err := os.Pipe()
		if err != nil {
			return closers, err
		}
		closers = append(closers, pr)
		x.ExtraFiles = append(x.ExtraFiles, pr)
		// A password is far below a pipe's buffer: the write never blocks.
		_, err = pw2.Write(pw)
		_ = pw2.Close()
		if err != nil {
			return closers, err
		}
	}
	return closers, nil
}

// tailBuffer keeps the last 4 KiB written (restic's stderr).
type tailBuffer struct{ b []byte }

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.b = append(t.b, p...)
	if len(t.b) > 4096 {
		t.b = t.b[len(t.b)-4096:]
	}
	return len(p), nil
}

func (t *tailBuffer) String() string { return strings.TrimSpace(string(t.b)) }
