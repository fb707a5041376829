package postgres

import (
	"os"
	"path/filepath"
	"testing"
)

func TestUnwrap(t *testing.T) {
	dir := t.TempDir()
	old := libRoot
	libRoot = filepath.Join(dir, "lib")
	t.Cleanup(func() { libRoot = old })
	write := func(p string, mode os.FileMode) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("#!/bin/sh\n"), mode); err != nil {
			t.Fatal(err)
		}
	}
	wrapper := filepath.Join(dir, "share", "pg_wrapper")
	write(wrapper, 0o755)
	for _, v := range []string{"9.6", "13", "15"} {
		write(filepath.Join(libRoot, v, "bin", "pg_dump"), 0o755)
	}
	write(filepath.Join(libRoot, "16", "bin", "pg_dump"), 0o644) // not executable
	write(filepath.Join(libRoot, "9.6", "bin", "psql"), 0o755)
	bin := filepath.Join(dir, "bin")
	if err := os.MkdirAll(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"pg_dump", "psql", "pg_restore"} {
		if err := os.Symlink("../share/pg_wrapper", filepath.Join(bin, n)); err != nil {
			t.Fatal(err)
		}
	}
	plain := filepath.Join(dir, "plain", "pg_dump")
	write(plain, 0o755)
	t.Setenv("PGCLUSTER", "")
	for _, c := range []struct{ path, name, want string }{
		{filepath.Join(bin, "pg_dump"), "pg_dump", filepath.Join(libRoot, "15", "bin", "pg_dump")},
		{filepath.Join(bin, "psql"), "psql", filepath.Join(libRoot, "9.6", "bin", "psql")},
		{filepath.Join(bin, "pg_restore"), "pg_restore", filepath.Join(bin, "pg_restore")}, // no versioned one
		{plain, "pg_dump", plain}, // not the wrapper
	} {
		if got := unwrap(c.path, c.name); got != c.want {
			t.Errorf("unwrap(%s) = %s, want %s", c.path, got, c.want)
		}
	}
	t.Setenv("PGCLUSTER", "13/main")
	if got := unwrap(filepath.Join(bin, "pg_dump"), "pg_dump"); got != filepath.Join(bin, "pg_dump") {
		t.Errorf("with PGCLUSTER: unwrap = %s, want the wrapper", got)
	}
}
