package scratchproc

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestStart(t *testing.T) {
	dir := t.TempDir()
	flag := filepath.Join(dir, "ready")
	exists := func() bool { _, err := os.Stat(flag); return err == nil }
	tests := []struct {
		name    string
		script  string
		timeout time.Duration
		cancel  bool
		want    string // error substring; "" for success
	}{
		{"ready", "touch " + flag + "; exec sleep 60", 10 * time.Second, false, ""},
		{"exits", "exit 3", 10 * time.Second, false, ErrExited.Error()},
		{"never ready", "exec sleep 60", 300 * time.Millisecond, false, "not ready after 300ms"},
		{"cancelled", "exec sleep 60", 10 * time.Second, true, context.Canceled.Error()},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			os.Remove(flag)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if tc.cancel {
				time.AfterFunc(200*time.Millisecond, cancel)
			}
			var p Process
			err := p.Start(ctx, exec.Command("sh", "-c", tc.script), tc.timeout, exists)
			if tc.want != "" {
				require.ErrorContains(t, err, tc.want)
				assert.False(t, p.Running(), "a failed start leaves no process")
				return
			}
			require.NoError(t, err)
			require.True(t, p.Running())
			require.NotZero(t, p.Pid())
			p.Stop(syscall.SIGTERM, 5*time.Second)
			assert.False(t, p.Running())
		})
	}
}

func TestStopKillsTheGroup(t *testing.T) {
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "child")
	var p Process
	// The shell ignores the signal and leaves a child behind.
	script := "trap '' TERM; sleep 60 & echo $! > " + pidFile + "; wait"
	require.NoError(t, p.Start(context.Background(), exec.Command("sh", "-c", script), 10*time.Second, func() bool {
		b, err := os.ReadFile(pidFile)
		return err == nil && strings.HasSuffix(string(b), "\n")
	}))
	b, err := os.ReadFile(pidFile)
	require.NoError(t, err)
	var child int
	_, err = fmt.Sscan(strings.TrimSpace(string(b)), &child)
	require.NoError(t, err)
	p.Stop(syscall.SIGTERM, 200*time.Millisecond)
	assert.False(t, p.Running())
	require.Eventually(t, func() bool { return syscall.Kill(child, 0) != nil }, 5*time.Second, 20*time.Millisecond, "the child outlived the stop")
}

func TestTail(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log")
	require.NoError(t, os.WriteFile(path, []byte(strings.Repeat("a", 1<<17)+"end"), 0o600))
	got := Tail(path)
	assert.Len(t, got, 1<<16)
	assert.True(t, strings.HasSuffix(got, "end"))
	assert.Empty(t, Tail(filepath.Join(t.TempDir(), "missing")))
}
