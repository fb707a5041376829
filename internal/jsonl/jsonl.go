// Package jsonl keeps append-only JSON-lines files: the run and drill
// journals. A line is written whole with one append; a damaged line (a
// crash mid-write) is skipped on reading, never fatal.
package jsonl

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// Append writes v as one line at the end of path, creating the file (0600)
// and its directory (0700).
func Append(path string, v any) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	line, err := json.Marshal(v)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	// After a crash mid-write the file ends in half a line: end it, so
	// only that line is lost and not this one too.
	if st, err := f.Stat(); err == nil && st.Size() > 0 {
		last := make([]byte, 1)
		if _, err := f.ReadAt(last, st.Size()-1); err == nil && last[0] != '\n' {
			line = append([]byte{'\n'}, line...)
		}
	}
	if _, err := f.Write(append(line, '\n')); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// Read returns the lines of path that decode as T and pass keep (nil: all),
// oldest first. A missing file is empty.
func Read[T any](path string, keep func(*T) bool) ([]T, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []T
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), 16<<20)
	for sc.Scan() {
		var v T
		if json.Unmarshal(sc.Bytes(), &v) == nil && (keep == nil || keep(&v)) {
			out = append(out, v)
		}
	}
	return out, sc.Err()
}

// Journal is a directory of per-policy JSON-lines files, DIR/POLICY+Suffix:
// the local record of runs (".jsonl"), drills (".drills.jsonl") and
// exports (".exports.jsonl"). Records are appended, never rewritten, and
// hold no secret.
type Journal[T any] struct {
	Dir    string
	Suffix string
	// Keep, if set, filters records on reading (a schema check).
	Keep func(*T) bool
}

// Path is the file of policy's records.
func (j Journal[T]) Path(policy string) string { return filepath.Join(j.Dir, policy+j.Suffix) }

// Append records v for policy.
func (j Journal[T]) Append(policy string, v *T) error {
	if err := Append(j.Path(policy), v); err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	return nil
}

// Read returns policy's records, oldest first; damaged lines (a crash
// mid-write) are skipped, a missing file is empty.
func (j Journal[T]) Read(policy string) ([]T, error) {
	out, err := Read(j.Path(policy), j.Keep)
	if err != nil {
		return nil, fmt.Errorf("journal: %w", err)
	}
	return out, nil
}
