// Package atomicfile writes files that appear whole or not at all: the
// content goes to a temporary file in the same directory, is synced, and
// is renamed over the final name (metrics textfiles, drill reports,
// systemd units, restored streams, sanitized dumps).
package atomicfile

import (
	"errors"
	"os"
	"path/filepath"
)

// File is a file being written under a temporary name; Commit moves it
// into place, Abort removes it.
type File struct {
	*os.File
	path string
	mode os.FileMode
	done bool
}

// Create starts writing path. The temporary name starts with a dot and
// ends in .tmp, so readers of a directory's *.prom or *.sql files skip
// it. The directory is created (0755) if missing.
func Create(path string, mode os.FileMode) (*File, error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return nil, err
	}
	return &File{File: tmp, path: path, mode: mode}, nil
}

// Commit syncs the content, applies the mode and renames the file over
// its final name. On failure the temporary file is removed.
func (f *File) Commit() error {
	if f.done {
		return errors.New("atomicfile: " + f.path + " already committed or aborted")
	}
	f.done = true
	err := f.Chmod(f.mode)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), f.path)
	}
	if err != nil {
		os.Remove(f.Name())
	}
	return err
}

// Abort removes the temporary file; after Commit it does nothing.
func (f *File) Abort() {
	if f.done {
		return
	}
	f.done = true
	f.Close()
	os.Remove(f.Name())
}

// WriteFile writes data to path atomically with mode.
func WriteFile(path string, data []byte, mode os.FileMode) error {
	f, err := Create(path, mode)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Abort()
		return err
	}
	return f.Commit()
}
