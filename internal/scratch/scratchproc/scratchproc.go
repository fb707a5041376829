// Package scratchproc runs the process of a scratch server (the MariaDB or
// PostgreSQL a drill or a test starts): in its own process group, so a
// Ctrl-C reaches lifeboat, which shuts it down in order; killed with
// lifeboat if lifeboat dies without teardown (Pdeathsig); started until a
// readiness probe passes; stopped with a signal and a grace period, then
// the whole group is killed so no child outlives it.
package scratchproc

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"
)

// Defaults fills what a scratch server's options leave empty: the user
// "lifeboat", a random password (16 bytes, hex) and a 60 s start timeout.
func Defaults(user, password *string, startTimeout *time.Duration) {
	if *user == "" {
		*user = "lifeboat"
	}
	if *password == "" {
		b := make([]byte, 16)
		_, _ = rand.Read(b)
		*password = hex.EncodeToString(b)
	}
	if *startTimeout <= 0 {
		*startTimeout = 60 * time.Second
	}
}

// ErrExited: the server process ended while it was starting.
var ErrExited = errors.New("exited during start")

// Process is one server process. The zero value is ready to Start.
type Process struct {
	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
}

// Start starts cmd and polls ready every 50 ms until it reports true. The
// process is killed when ctx ends or timeout passes first; ErrExited is
// returned when it ends by itself.
func (p *Process) Start(ctx context.Context, cmd *exec.Cmd, timeout time.Duration, ready func() bool) error {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setpgid = true
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	p.mu.Lock()
	p.cmd, p.done = cmd, done
	p.mu.Unlock()
	deadline := time.Now().Add(timeout)
	for {
		select {
		case <-done:
			return ErrExited
		case <-ctx.Done():
			p.Kill()
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if ready() {
			return nil
		}
		if time.Now().After(deadline) {
			p.Kill()
			return fmt.Errorf("not ready after %s", timeout)
		}
	}
}

// Pid is the process id (0 when not started).
func (p *Process) Pid() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil || p.cmd.Process == nil {
		return 0
	}
	return p.cmd.Process.Pid
}

// Running reports whether the process is alive.
func (p *Process) Running() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.done == nil {
		return false
	}
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// Stop sends sig, waits up to grace for the process to exit, then kills
// its whole process group and waits for it.
func (p *Process) Stop(sig syscall.Signal, grace time.Duration) {
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(sig)
	select {
	case <-done:
	case <-time.After(grace):
	}
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	<-done
}

// Kill kills the process group at once and waits for the process.
func (p *Process) Kill() { p.Stop(syscall.SIGKILL, 0) }

// Tail returns the last 64 KiB of a log file ("" when unreadable).
func Tail(path string) string {
	b, _ := os.ReadFile(path)
	if len(b) > 1<<16 {
		b = b[len(b)-1<<16:]
	}
	return string(b)
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago (a
// server started on it may still lose a race; callers retry).
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
