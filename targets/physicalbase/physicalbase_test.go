package physicalbase

import (
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// tool runs sh -c script, counting the Cleanup calls and keeping what
// Finish was given.
func tool(script string, finish func(string, error) error) (Tool, *int) {
	cleaned := 0
	return Tool{
		Cmd:     exec.Command("sh", "-c", script),
		Kind:    "kind",
		Name:    "tool",
		Finish:  finish,
		Cleanup: func() { cleaned++ },
	}, &cleaned
}

func TestStreamToTheEnd(t *testing.T) {
	var gotLog string
	var gotErr error
	tl, cleaned := tool("printf data; echo 'tool log' >&2", func(log string, err error) error {
		gotLog, gotErr = log, err
		return nil
	})
	rc, err := Start(tl)
	require.NoError(t, err)
	b, err := io.ReadAll(rc)
	require.NoError(t, err)
	require.Equal(t, "data", string(b))
	require.Equal(t, "tool log\n", gotLog)
	require.NoError(t, gotErr)
	require.Equal(t, 1, *cleaned)
	require.NoError(t, rc.Close())
	require.Equal(t, 1, *cleaned)
}

func TestStreamFinishError(t *testing.T) {
	bad := errors.New("no recovery point")
	tl, cleaned := tool("printf data; exit 3", func(log string, err error) error {
		var ee *exec.ExitError
		require.ErrorAs(t, err, &ee)
		require.Equal(t, 3, ee.ExitCode())
		return bad
	})
	rc, err := Start(tl)
	require.NoError(t, err)
	_, err = io.ReadAll(rc)
	require.ErrorIs(t, err, bad)
	require.ErrorIs(t, rc.Close(), bad)
	require.Equal(t, 1, *cleaned)
}

func TestStreamClosedEarly(t *testing.T) {
	tl, cleaned := tool("exec yes", func(string, error) error {
		t.Error("Finish ran for a stream closed early")
		return nil
	})
	rc, err := Start(tl)
	require.NoError(t, err)
	_, err = io.ReadFull(rc, make([]byte, 10))
	require.NoError(t, err)
	require.EqualError(t, rc.Close(), "kind: tool output not read to the end")
	require.NotNil(t, tl.Cmd.ProcessState, "the tool was waited for")
	require.Equal(t, 1, *cleaned)
}

func TestStartFails(t *testing.T) {
	tl, cleaned := tool("", nil)
	tl.Cmd = exec.Command(filepath.Join(t.TempDir(), "absent"))
	_, err := Start(tl)
	require.ErrorContains(t, err, "kind: start tool: ")
	require.Equal(t, 1, *cleaned)
}

func TestPoint(t *testing.T) {
	var p Point
	tm, d := p.Get()
	require.True(t, tm.IsZero())
	require.Nil(t, d)
	now := tm.AddDate(2026, 0, 0)
	p.Set(now, map[string]string{"method": "physical"})
	tm, d = p.Get()
	require.Equal(t, now, tm)
	require.Equal(t, "physical", d["method"])
}

func TestOwnerAndPrepareDir(t *testing.T) {
	me := Owner{UID: os.Geteuid(), GID: os.Getegid()}
	o, err := OwnerFor(t.TempDir(), "nosuchuser")
	require.NoError(t, err)
	require.Equal(t, me, o)

	dir := filepath.Join(t.TempDir(), "data")
	require.NoError(t, PrepareDir(dir, 0o700, me))
	fi, err := os.Stat(dir)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o700), fi.Mode().Perm())
	require.NoError(t, os.WriteFile(filepath.Join(dir, "PG_VERSION"), nil, 0o600))
	require.ErrorContains(t, PrepareDir(dir, 0o700, me), "is not empty (PG_VERSION, ...)")
	require.NoError(t, Chown(dir, me))

	if os.Geteuid() == 0 {
		_, err := OwnerFor(filepath.Join(t.TempDir(), "absent"), "nosuchuser")
		require.ErrorContains(t, err, "there is no nosuchuser user")
	}
}
