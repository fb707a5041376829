package main

import (
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// tmuxSession is a tmux server of its own (a socket in the test's
// directory) running one shell; Close kills the server.
type tmuxSession struct {
	t      *testing.T
	socket string
}

func newTmux(t *testing.T, dir string, env []string) *tmuxSession {
	t.Helper()
	if _, err := exec.LookPath("tmux"); err != nil {
		t.Fatal("tmux not installed (scripts/deps installs it)")
	}
	s := &tmuxSession{t: t, socket: filepath.Join(dir, "tmux.sock")}
	args := []string{"new-session", "-d", "-s", "t", "-x", "220", "-y", "50"}
	for _, e := range env {
		args = append(args, "-e", e)
	}
	s.cmd(append(args, "sh")...)
	t.Cleanup(func() { _ = exec.Command("tmux", "-S", s.socket, "kill-server").Run() })
	return s
}

func (s *tmuxSession) cmd(args ...string) string {
	s.t.Helper()
	out, err := exec.Command("tmux", append([]string{"-S", s.socket, "-f", "/dev/null"}, args...)...).CombinedOutput()
	require.NoError(s.t, err, "tmux %v: %s", args, out)
	return string(out)
}

// watch types line into the shell and captures the pane until the command
// ended (it echoes a marker with its exit code), calling seen with every
// capture taken while it ran; it returns the last capture.
func (s *tmuxSession) watch(line string, seen func(screen string)) string {
	s.t.Helper()
	s.cmd("send-keys", "-t", "t", "clear", "Enter")
	marker := fmt.Sprintf("END-%d", time.Now().UnixNano())
	s.cmd("send-keys", "-t", "t", line+"; echo "+marker+"-$?", "Enter")
	deadline := time.Now().Add(45 * time.Second)
	for time.Now().Before(deadline) {
		screen := s.cmd("capture-pane", "-p", "-t", "t")
		if m := regexp.MustCompile(marker + `-(\d+)\n`).FindStringSubmatch(screen); m != nil {
			require.Equal(s.t, "0", m[1], "%s failed:\n%s", line, screen)
			return screen
		}
		seen(screen)
		time.Sleep(10 * time.Millisecond)
	}
	s.t.Fatalf("%s did not end in 45s", line)
	return ""
}

// TestTmuxProgress drives the built binary in a tmux terminal: during a
// restore the redrawn line shows a percent and an ETA, during a run the
// target being backed up with its bytes; the same commands with their
// output to a pipe show none of it.
func TestTmuxProgress(t *testing.T) {
	bin := buildLifeboat(t)
	dir := t.TempDir()
	r := rand.New(rand.NewChaCha8([32]byte{7}))
	for _, tree := range []string{"site", "uploads"} {
		require.NoError(t, os.MkdirAll(filepath.Join(dir, tree), 0o755))
		for i := range 16 { // 64 MiB each, incompressible: a restore or a backup takes a while
			b := make([]byte, 4<<20)
			for j := 0; j < len(b); j += 8 {
				v := r.Uint64()
				for k := range 8 {
					b[j+k] = byte(v >> (8 * k))
				}
			}
			require.NoError(t, os.WriteFile(filepath.Join(dir, tree, fmt.Sprintf("f%02d", i)), b, 0o644))
		}
	}
	repo := "file://" + filepath.Join(dir, "repo")
	env := []string{"LIFEBOAT_REPO=" + repo, "LIFEBOAT_KEY_FILE=" + filepath.Join(dir, "owner.key"), "LIFEBOAT_PROGRESS_FPS=50"}
	lb := func(args ...string) {
		cmd := exec.Command(bin, args...)
		cmd.Env = append(os.Environ(), env...)
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "lifeboat %v: %s", args, out)
	}
	lb("init", "--owner-key-out", filepath.Join(dir, "owner.key"), "--host-key-out", filepath.Join(dir, "host.key"))
	lb("backup", "files", filepath.Join(dir, "site"), filepath.Join(dir, "uploads"))
	policy := write(t, filepath.Join(dir, "shop.yaml"), `version: 1
name: shop
host: web-1
repositories:
  primary:
    url: `+repo+`
    key_file: `+filepath.Join(dir, "host.key")+`
targets:
  - name: site
    kind: files
    paths: [`+filepath.Join(dir, "site")+`]
  - name: uploads
    kind: files
    paths: [`+filepath.Join(dir, "uploads")+`]
`)
	// touched files are read again: the run has work to show
	touch := func() {
		now := time.Now()
		for _, tree := range []string{"site", "uploads"} {
			ents, err := os.ReadDir(filepath.Join(dir, tree))
			require.NoError(t, err)
			for _, e := range ents {
				require.NoError(t, os.Chtimes(filepath.Join(dir, tree, e.Name()), now, now))
			}
		}
	}
	tm := newTmux(t, dir, env)
	percentETA := regexp.MustCompile(`\d+\.\d% .* ETA \d+:\d\d`)
	target := regexp.MustCompile(`target (site|uploads) \([12]/2\) backup: \[\d+:\d\d\] \d+ entries\s+\d+\.\d [KMG]iB`)

	restore := bin + " restore latest --to " + filepath.Join(dir, "out1")
	var during string
	end := tm.watch(restore, func(screen string) {
		if during == "" && percentETA.MatchString(screen) {
			during = percentETA.FindString(screen)
		}
	})
	require.NotEmpty(t, during, "no percent and ETA seen during the restore; at its end:\n%s", end)
	require.Contains(t, end, "restored snapshot")
	require.NotRegexp(t, percentETA, end, "the progress line stays after the restore")
	t.Logf("during the restore: %q", during)

	touch()
	targets := map[string]string{}
	end = tm.watch(bin+" run "+policy+" --journal "+filepath.Join(dir, "journal"), func(screen string) {
		for _, m := range target.FindAllStringSubmatch(screen, -1) {
			targets[m[1]] = m[0]
		}
	})
	require.Len(t, targets, 2, "per-target progress of both targets during the run; seen %v; at its end:\n%s", targets, end)
	require.Contains(t, end, "policy shop on web-1")
	t.Logf("during the run: %q", targets)

	// The same commands into a pipe: no progress, no redrawing.
	touch()
	for _, line := range []string{
		bin + " restore latest --target files --to " + filepath.Join(dir, "out2") + " 2>&1 | cat",
		bin + " run " + policy + " --journal " + filepath.Join(dir, "journal") + " 2>&1 | cat",
	} {
		var bad string
		end := tm.watch(line, func(screen string) {
			if percentETA.MatchString(screen) || target.MatchString(screen) || strings.Contains(screen, "ETA") {
				bad = screen
			}
		})
		require.Empty(t, bad, "%s: progress into a pipe", line)
		require.NotRegexp(t, `ETA|\(\d/2\) backup:|\d\.\d%`, end)
		require.Regexp(t, "restored snapshot|policy shop on web-1", end)
	}
	// And a pipe gets no escape sequences or carriage returns at all.
	cmd := exec.Command(bin, "restore", "latest", "--target", "files", "--to", filepath.Join(dir, "out3"))
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	require.NotContains(t, string(out), "\r")
	require.NotContains(t, string(out), "\033[")
}
