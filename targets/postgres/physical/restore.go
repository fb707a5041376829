package physical

import (
	"archive/tar"
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/lifeboat-backup/lifeboat/engine/snapshot"
	"github.com/lifeboat-backup/lifeboat/targets/physicalbase"
)

// Owner is who the restored data directory belongs to (the server's user).
type Owner = physicalbase.Owner

// OwnerFor is the owner a data directory restored to dir gets: the owner
// of dir when it exists, else (as root) the postgres system user, else
// the current user.
func OwnerFor(dir string) (Owner, error) { return physicalbase.OwnerFor(dir, "postgres") }

// PrepareDir makes dir an empty data directory (mode 0700) owned by o;
// a directory that holds anything is refused.
func PrepareDir(dir string, o Owner) error { return physicalbase.PrepareDir(dir, 0o700, o) }

// UntarStats counts what Untar wrote.
type UntarStats struct {
	Files, Dirs int
	Bytes       int64
}

// Untar unpacks a base.tar stream into dir (made by PrepareDir): regular
// files and directories only (a base with tablespaces or links is
// refused), nothing outside dir (os.Root), owned by o.
func Untar(ctx context.Context, r io.Reader, dir string, o Owner) (UntarStats, error) {
	var st UntarStats
	root, err := os.OpenRoot(dir)
	if err != nil {
		return st, fmt.Errorf("restore: %w", err)
	}
	defer root.Close()
	chown := os.Geteuid() == 0
	tr := tar.NewReader(r)
	buf := make([]byte, 1<<20)
	for {
		if err := ctx.Err(); err != nil {
			return st, err
		}
		h, err := tr.Next()
		if err == io.EOF {
			return st, nil
		}
		if err != nil {
			return st, fmt.Errorf("restore: %s: %w", Entry, err)
		}
		name := path.Clean(strings.TrimPrefix(h.Name, "./"))
		if name == "." {
			continue
		}
		if !fs.ValidPath(name) {
			return st, fmt.Errorf("restore: %s: entry %q leaves the data directory", Entry, h.Name)
		}
		mode := fs.FileMode(h.Mode).Perm()
		switch h.Typeflag {
		case tar.TypeDir:
			if err := root.MkdirAll(name, mode|0o700); err != nil {
				return st, fmt.Errorf("restore: %s: %w", name, err)
			}
			st.Dirs++
		case tar.TypeReg:
			if d := path.Dir(name); d != "." {
				if err := root.MkdirAll(d, 0o700); err != nil {
					return st, fmt.Errorf("restore: %s: %w", d, err)
				}
			}
			f, err := root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode|0o600)
			if err != nil {
				return st, fmt.Errorf("restore: %s: %w", name, err)
			}
			n, err := io.CopyBuffer(f, tr, buf)
			if err == nil {
				err = f.Close()
			} else {
				f.Close()
			}
			if err != nil {
				return st, fmt.Errorf("restore: %s: %w", name, err)
			}
			st.Files++
			st.Bytes += n
		default:
			return st, fmt.Errorf("restore: %s: entry %q is a %c (links and tablespaces are not supported in physical bases)", Entry, h.Name, h.Typeflag)
		}
		if chown {
			if err := root.Lchown(name, o.UID, o.GID); err != nil {
				return st, fmt.Errorf("restore: %s: %w", name, err)
			}
		}
		_ = root.Chtimes(name, h.ModTime, h.ModTime)
	}
}

// Recovery are the settings of a point-in-time recovery.
type Recovery struct {
	// RestoreCommand is the full restore_command (lifeboat wal fetch ...).
	RestoreCommand string
	// One target at most: Time, LSN or Name; none recovers to the end of
	// the archive (latest).
	Time time.Time
	LSN  string
	Name string
	// NoArchive turns archive_mode off in the restored cluster (a drill or
	// test copy must not archive its new timeline into the archive).
	NoArchive bool
}

// WriteRecovery appends the recovery settings to postgresql.auto.conf
// (read after postgresql.conf, so they win) and creates recovery.signal.
func WriteRecovery(dir string, rc Recovery, o Owner) error {
	var b strings.Builder
	fmt.Fprintf(&b, "\n# point-in-time recovery settings written by lifeboat restore at %s\n", time.Now().UTC().Format(time.RFC3339))
	set := func(k, v string) { fmt.Fprintf(&b, "%s = '%s'\n", k, strings.ReplaceAll(v, "'", "''")) }
	set("restore_command", rc.RestoreCommand)
	switch {
	case !rc.Time.IsZero():
		set("recovery_target_time", rc.Time.UTC().Format("2006-01-02 15:04:05.999999")+"+00")
	case rc.LSN != "":
		set("recovery_target_lsn", rc.LSN)
	case rc.Name != "":
		set("recovery_target_name", rc.Name)
	}
	set("recovery_target_timeline", "latest")
	if !rc.Time.IsZero() || rc.LSN != "" || rc.Name != "" {
		set("recovery_target_action", "promote")
		set("recovery_target_inclusive", "on")
	}
	if rc.NoArchive {
		set("archive_mode", "off")
	}
	auto := filepath.Join(dir, "postgresql.auto.conf")
	f, err := os.OpenFile(auto, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	if _, err := f.WriteString(b.String()); err != nil {
		f.Close()
		return fmt.Errorf("restore: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	sig := filepath.Join(dir, "recovery.signal")
	if err := os.WriteFile(sig, nil, 0o600); err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	if os.Geteuid() == 0 {
		for _, p := range []string{auto, sig} {
			if err := os.Chown(p, o.UID, o.GID); err != nil {
				return err
			}
		}
	}
	return nil
}

// ShellQuote quotes s for /bin/sh (restore_command runs through it).
func ShellQuote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("/._-=:+,@", r))
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// StartOptions start a restored data directory.
type StartOptions struct {
	BinDir  string // server programs (pg_ctl); default: found like pgscratch does
	DataDir string
	Owner   Owner
	Options []string // extra server options (pg_ctl -o), e.g. -p 5433 -k /tmp
	Timeout time.Duration
}

// Reached is what a recovery reports it reached (from the server log).
type Reached struct {
	Stop       string // "recovery stopping before/after commit of transaction N, time T"
	LastCommit string // "last completed transaction was at log time T"
	RedoDone   string // "redo done at LSN ..."
	Timeline   string // "selected new timeline ID: N"
}

func (r Reached) String() string {
	var parts []string
	for _, s := range []string{r.Stop, r.RedoDone, r.LastCommit, r.Timeline} {
		if s != "" {
			parts = append(parts, s)
		}
	}
	return strings.Join(parts, "; ")
}

var (
	stopRE     = regexp.MustCompile(`recovery stopping (before|after) [^\n]*`)
	lastRE     = regexp.MustCompile(`last completed transaction was at log time [^\n]*`)
	redoRE     = regexp.MustCompile(`redo done at [0-9A-F]+/[0-9A-F]+`)
	timelineRE = regexp.MustCompile(`selected new timeline ID: \d+`)
)

// Start starts the server on a restored data directory with pg_ctl (as
// the directory's owner) and waits until recovery finished and the server
// was promoted (recovery.signal gone, accepting connections), or the
// server stopped (recovery failed: the log says why).
func Start(ctx context.Context, o StartOptions) (Reached, error) {
	pgctl, err := serverProgram(o.BinDir, "pg_ctl")
	if err != nil {
		return Reached{}, err
	}
	if o.Timeout == 0 {
		o.Timeout = time.Hour
	}
	logPath := filepath.Join(o.DataDir, "log", "lifeboat-recovery.log")
	args := []string{"start", "-D", o.DataDir, "-l", logPath, "-w", "-t", strconv.Itoa(int(o.Timeout.Seconds()))}
	if len(o.Options) > 0 {
		args = append(args, "-o", strings.Join(o.Options, " "))
	}
	if err := os.MkdirAll(filepath.Dir(logPath), 0o700); err != nil {
		return Reached{}, err
	}
	if os.Geteuid() == 0 {
		_ = os.Chown(filepath.Dir(logPath), o.Owner.UID, o.Owner.GID)
	}
	cmd := exec.CommandContext(ctx, pgctl, args...)
	if os.Geteuid() == 0 {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(o.Owner.UID), Gid: uint32(o.Owner.GID)}}
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return Reached{}, fmt.Errorf("restore: pg_ctl start: %v: %s\n%s", err, strings.TrimSpace(string(out)), tail(logPath))
	}
	controldata, err := serverProgram(o.BinDir, "pg_controldata")
	if err != nil {
		return Reached{}, err
	}
	deadline := time.Now().Add(o.Timeout)
	for {
		// recovery.signal goes before the end-of-recovery checkpoint, and
		// a hot standby is "ready" too: only the control file's state says
		// the server runs as a primary.
		_, sigErr := os.Stat(filepath.Join(o.DataDir, "recovery.signal"))
		if errors.Is(sigErr, fs.ErrNotExist) && pmStatus(o.DataDir) == "ready" && inProduction(ctx, controldata, o.DataDir) {
			return reached(logPath), nil
		}
		if pmStatus(o.DataDir) == "" {
			return reached(logPath), fmt.Errorf("restore: the server stopped during recovery:\n%s", tail(logPath))
		}
		if time.Now().After(deadline) {
			return reached(logPath), fmt.Errorf("restore: recovery not finished after %s:\n%s", o.Timeout, tail(logPath))
		}
		select {
		case <-ctx.Done():
			return Reached{}, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// inProduction asks pg_controldata whether the cluster state is "in
// production" (recovery finished, promoted).
func inProduction(ctx context.Context, controldata, dir string) bool {
	out, err := exec.CommandContext(ctx, controldata, "-D", dir).Output()
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(out), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && k == "Database cluster state" {
			return strings.TrimSpace(v) == "in production"
		}
	}
	return false
}

// pmStatus is the status line of postmaster.pid ("" without a server).
func pmStatus(dir string) string {
	b, err := os.ReadFile(filepath.Join(dir, "postmaster.pid"))
	if err != nil {
		return ""
	}
	lines := strings.Split(string(b), "\n")
	if len(lines) > 7 {
		if st := strings.TrimSpace(lines[7]); st != "" {
			return st
		}
	}
	return "starting"
}

func reached(logPath string) Reached {
	b, _ := os.ReadFile(logPath)
	s := string(b)
	last := func(re *regexp.Regexp) string {
		m := re.FindAllString(s, -1)
		if len(m) == 0 {
			return ""
		}
		return strings.TrimSpace(m[len(m)-1])
	}
	return Reached{Stop: last(stopRE), LastCommit: last(lastRE), RedoDone: last(redoRE), Timeline: last(timelineRE)}
}

func tail(p string) string {
	f, err := os.Open(p)
	if err != nil {
		return ""
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if len(lines) > 30 {
			lines = lines[1:]
		}
	}
	return strings.Join(lines, "\n")
}

// serverProgram finds pg_ctl: in binDir, else the newest
// /usr/lib/postgresql/*/bin, else PATH.
func serverProgram(binDir, name string) (string, error) {
	if binDir != "" {
		return filepath.Join(binDir, name), nil
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin/" + name)
	best, bestV := "", -1
	for _, d := range dirs {
		v, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(d))))
		if v > bestV {
			best, bestV = d, v
		}
	}
	if best != "" {
		return best, nil
	}
	return exec.LookPath(name)
}

// Stop stops a server started by Start (pg_ctl stop -m fast, as the data
// directory's owner).
func Stop(ctx context.Context, binDir, dataDir string, o Owner) error {
	pgctl, err := serverProgram(binDir, "pg_ctl")
	if err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, pgctl, "stop", "-D", dataDir, "-m", "fast", "-w", "-t", "60")
	if os.Geteuid() == 0 {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(o.UID), Gid: uint32(o.GID)}}
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("pg_ctl stop %s: %v: %s", dataDir, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// UntarBase unpacks the base.tar of physical base s into dir (made by
// PrepareDir).
func UntarBase(ctx context.Context, s snapshot.Reader, dir string, owner Owner) (UntarStats, error) {
	tr := s.Tree(ctx)
	for {
		n, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return UntarStats{}, fmt.Errorf("snapshot %s has no %s: not a physical base", s.Info().ID.Short(), Entry)
		}
		if err != nil {
			return UntarStats{}, err
		}
		if n.Path != Entry {
			continue
		}
		rd := s.Open(ctx, n)
		defer rd.Close()
		return Untar(ctx, rd, dir, owner)
	}
}
