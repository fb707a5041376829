package physicalbase

import (
	"bytes"
	"fmt"
	"io"
	"os/exec"
	"sync"
	"time"
)

// Tool is a backup tool whose output (stdout) is the content of a base's
// one entry.
type Tool struct {
	Cmd  *exec.Cmd // not started; Start keeps its stderr for Finish
	Kind string    // what its errors begin with: mysql, postgres
	Name string    // the tool its errors name: mariabackup, pg_basebackup
	// Finish runs once the output was read to its end, with the tool's
	// log (stderr) and the error of its Wait; an error it returns ends the
	// stream in place of io.EOF.
	Finish func(log string, waitErr error) error
	// Cleanup (may be nil) runs once the tool is over: after Finish, after
	// an early Close, or when it did not start.
	Cleanup func()
}

func (t Tool) cleanup() {
	if t.Cleanup != nil {
		t.Cleanup()
	}
}

// Start starts t and returns its output. Read to its end, the tool is
// waited for and Finish decides how the stream ends; closed before its
// end, the tool is killed and Close says the output was not read to the
// end.
func Start(t Tool) (io.ReadCloser, error) {
	t.Cmd.WaitDelay = 5 * time.Second
	stderr := &bytes.Buffer{}
	t.Cmd.Stderr = stderr
	out, err := t.Cmd.StdoutPipe()
	if err != nil {
		t.cleanup()
		return nil, err
	}
	if err := t.Cmd.Start(); err != nil {
		t.cleanup()
		return nil, fmt.Errorf("%s: start %s: %w", t.Kind, t.Name, err)
	}
	return &stream{t: t, out: out, stderr: stderr}, nil
}

type stream struct {
	t      Tool
	out    io.ReadCloser
	stderr *bytes.Buffer
	done   bool
	err    error
}

func (st *stream) Read(p []byte) (int, error) {
	if st.done {
		return 0, st.err
	}
	n, err := st.out.Read(p)
	if err == io.EOF {
		st.finish()
		if st.err != nil {
			return n, st.err
		}
		st.err = io.EOF
		return n, io.EOF
	}
	return n, err
}

// finish waits for the tool and lets Finish judge its end.
func (st *stream) finish() {
	st.done = true
	defer st.t.cleanup()
	waitErr := st.t.Cmd.Wait()
	st.err = st.t.Finish(st.stderr.String(), waitErr)
}

func (st *stream) Close() error {
	if !st.done {
		_ = st.t.Cmd.Process.Kill()
		_ = st.t.Cmd.Wait()
		st.done = true
		st.t.cleanup()
		return fmt.Errorf("%s: %s output not read to the end", st.t.Kind, st.t.Name)
	}
	if st.err == io.EOF {
		return nil
	}
	return st.err
}

// Point is the recovery point of a base: what its tool reported at the
// end of its stream (Set), read by the source's RecoveryPoint (Get).
type Point struct {
	mu      sync.Mutex
	time    time.Time
	details map[string]string
}

// Set records the recovery point.
func (p *Point) Set(t time.Time, details map[string]string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.time, p.details = t, details
}

// Get returns the recovery point Set recorded (zero before).
func (p *Point) Get() (time.Time, map[string]string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.time, p.details
}
