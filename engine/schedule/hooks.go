package schedule

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	osexec "os/exec"
	"regexp"
	"strings"
	"syscall"
	"time"

	"github.com/lifeboat-backup/lifeboat/engine"
	"github.com/lifeboat-backup/lifeboat/internal/redact"
	"github.com/lifeboat-backup/lifeboat/policies"
)

// Hook names (policies.Hooks), as LIFEBOAT_HOOK and HookResult.Hook say.
const (
	HookBefore  = "before"
	HookAfter   = "after"
	HookOnError = "on_error"
)

// maxHookOutput bounds what the journal keeps of a hook's output (the
// end, where errors are).
const maxHookOutput = 4 << 10

// hookEnv is what a hook command learns about where it runs.
type hookEnv struct {
	policy, host, target, kind string
	snapshots                  []string // after: the new snapshot(s)
	err                        string   // on_error: what failed
}

func (h hookEnv) environ(hook string) []string {
	env := append(os.Environ(), "LIFEBOAT_HOOK="+hook, "LIFEBOAT_POLICY="+h.policy, "LIFEBOAT_HOST="+h.host)
	if h.target != "" {
		env = append(env, "LIFEBOAT_TARGET="+h.target, "LIFEBOAT_TARGET_KIND="+h.kind)
	}
	if len(h.snapshots) > 0 {
		env = append(env, "LIFEBOAT_SNAPSHOT="+strings.Join(h.snapshots, " "))
	}
	if h.err != "" {
		env = append(env, "LIFEBOAT_ERROR="+h.err)
	}
	return env
}

// runHooks runs one hook's commands in order with sh -c, each within
// timeout, appending each to res.Hooks; the first failing command stops
// the list and is the error.
func runHooks(ctx context.Context, res *engine.RunResult, hook string, cmds policies.Commands, timeout time.Duration, env hookEnv) error {
	for _, c := range cmds {
		hr := runHook(ctx, hook, c, timeout, env)
		res.Hooks = append(res.Hooks, hr)
		if hr.Error != "" {
			return fmt.Errorf("%s hook %q: %s", hook, hr.Command, hr.Error)
		}
	}
	return nil
}

func runHook(ctx context.Context, hook, command string, timeout time.Duration, env hookEnv) engine.HookResult {
	hr := engine.HookResult{Hook: hook, Target: env.target, Command: redactText(command), ExitCode: -1}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := osexec.CommandContext(ctx, "/bin/sh", "-c", command)
	cmd.Env = env.environ(hook)
	cmd.Stdin = nil
	out := &tailBuffer{max: maxHookOutput}
	cmd.Stdout, cmd.Stderr = out, out
	// Its own process group, killed whole: a timed-out `sh -c "sleep 1h"`
	// leaves no sleep behind holding the output pipe.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	start := time.Now()
	err := cmd.Run()
	hr.Seconds = time.Since(start).Seconds()
	hr.Output = redactText(out.String())
	if cmd.ProcessState != nil && cmd.ProcessState.Exited() {
		hr.ExitCode = cmd.ProcessState.ExitCode()
	}
	var ee *osexec.ExitError
	switch {
	case err == nil:
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		hr.Error = fmt.Sprintf("timed out after %s (killed)", policies.Duration(timeout))
	case ctx.Err() != nil:
		hr.Error = "interrupted"
	case errors.As(err, &ee) && hr.ExitCode > 0:
		hr.Error = fmt.Sprintf("exit status %d", hr.ExitCode)
	default:
		hr.Error = redactText(err.Error())
	}
	return hr
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	max       int
	buf       bytes.Buffer
	truncated bool
}

func (b *tailBuffer) Write(p []byte) (int, error) {
	n := len(p)
	if len(p) > b.max {
		p, b.truncated = p[len(p)-b.max:], true
	}
	if over := b.buf.Len() + len(p) - b.max; over > 0 {
		b.buf.Next(over)
		b.truncated = true
	}
	b.buf.Write(p)
	return n, nil
}

func (b *tailBuffer) String() string {
	s := strings.ToValidUTF8(b.buf.String(), "")
	if b.truncated {
		return "[...]" + s
	}
	return s
}

var wordRE = regexp.MustCompile(`\S+`)

// redactText redacts each word of free text that holds a secret as
// redact.String sees one: a URL's password or secret query parameter, a
// DSN's password, a password=... word.
func redactText(s string) string {
	return wordRE.ReplaceAllStringFunc(s, redact.String)
}
