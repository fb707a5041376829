package restore

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	osexec "os/exec"
	"time"

	"github.com/lifeboat-backup/lifeboat/engine/snapshot"
	"github.com/lifeboat-backup/lifeboat/internal/atomicfile"
	"github.com/lifeboat-backup/lifeboat/targets/exec"
)

// ExecOptions say where the stream of an exec snapshot goes: into the
// stdin of Command (argv, no shell), or into the file To ("-": w).
type ExecOptions struct {
	Command  []string
	To       string
	Stdout   io.Writer // for To == "-"
	Progress *snapshot.Progress
}

// ExecStats summarize a stream restore.
type ExecStats struct {
	Name   string `json:"name"`
	Bytes  int64  `json:"bytes"`
	SHA256 string `json:"sha256"`
}

// Exec restores the stream of an exec snapshot: it pipes it into a
// command (which must exit 0) or writes it to a file (written to an
// unpredictable temporary file created with O_EXCL beside it, mode 0600,
// and renamed over FILE when complete: nothing planted beside FILE is
// followed).
func Exec(ctx context.Context, s snapshot.Reader, opts ExecOptions) (*ExecStats, error) {
	sn := s.Info()
	if sn.Kind != "exec" {
		return nil, fmt.Errorf("snapshot %s is a %s snapshot, not exec", sn.ID.Short(), sn.Kind)
	}
	if (len(opts.Command) == 0) == (opts.To == "") {
		return nil, errors.New("restore exec: give either a file or a command")
	}
	if opts.Progress == nil {
		opts.Progress = &snapshot.Progress{}
	}
	n, err := singleFile(ctx, s)
	if err != nil {
		return nil, err
	}
	st := &ExecStats{Name: n.Path}
	h := sha256.New()
	copyTo := func(w io.Writer) error {
		cr := s.Open(ctx, n)
		defer cr.Close()
		written, err := io.Copy(io.MultiWriter(w, h, progressWriter{opts.Progress}), cr)
		st.Bytes = written
		return err
	}
	switch {
	case len(opts.Command) > 0:
		cmd := osexec.CommandContext(ctx, opts.Command[0], opts.Command[1:]...)
		tail := &exec.TailBuffer{Max: exec.StderrTail}
		cmd.Stderr = tail
		cmd.Stdout = tail
		cmd.WaitDelay = 5 * time.Second
		in, err := cmd.StdinPipe()
		if err != nil {
			return nil, err
		}
		if err := cmd.Start(); err != nil {
			return nil, fmt.Errorf("restore: start %s: %w", opts.Command[0], err)
		}
		cerr := copyTo(in)
		in.Close()
		werr := cmd.Wait()
		if werr != nil {
			return nil, exec.CommandError(opts.Command[0], werr, tail.String())
		}
		if cerr != nil {
			return nil, fmt.Errorf("restore %s into %s: %w", n.Path, opts.Command[0], cerr)
		}
	case opts.To == "-":
		w := opts.Stdout
		if w == nil {
			w = os.Stdout
		}
		if err := copyTo(w); err != nil {
			return nil, err
		}
	default:
		f, err := atomicfile.Create(opts.To, 0o600)
		if err != nil {
			return nil, fmt.Errorf("restore %s to %s: %w", n.Path, opts.To, err)
		}
		if err = copyTo(f); err == nil {
			err = f.Commit()
		}
		if err != nil {
			f.Abort()
			return nil, fmt.Errorf("restore %s to %s: %w", n.Path, opts.To, err)
		}
	}
	if st.Bytes != n.Size {
		return nil, fmt.Errorf("restore %s: content is %d bytes, metadata says %d", n.Path, st.Bytes, n.Size)
	}
	st.SHA256 = hex.EncodeToString(h.Sum(nil))
	opts.Progress.Files.Add(1)
	return st, nil
}

type progressWriter struct{ p *snapshot.Progress }

func (w progressWriter) Write(b []byte) (int, error) {
	w.p.Bytes.Add(int64(len(b)))
	return len(b), nil
}

// singleFile returns the one file entry of a stream or volume snapshot.
func singleFile(ctx context.Context, s snapshot.Reader) (*snapshot.Node, error) {
	sn := s.Info()
	tr := s.Tree(ctx)
	var found *snapshot.Node
	for {
		n, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		if n.Type != snapshot.TypeFile {
			continue
		}
		if found != nil {
			return nil, fmt.Errorf("snapshot %s holds more than one file (%s, %s)", sn.ID.Short(), found.Path, n.Path)
		}
		found = n
	}
	if found == nil {
		return nil, fmt.Errorf("snapshot %s holds no file", sn.ID.Short())
	}
	return found, nil
}
