// Package restictest finds the restic executable for tests: $LIFEBOAT_RESTIC,
// else $LIFEBOAT_CACHE/bin/restic (scripts/deps builds 0.18.1 there), else
// restic on PATH. Tests skip without one unless LIFEBOAT_REQUIRE_RESTIC=1.
package restictest

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// Binary returns the restic executable's path or an error saying where it
// was looked for.
func Binary() (string, error) {
	if p := os.Getenv("LIFEBOAT_RESTIC"); p != "" {
		return exec.LookPath(p)
	}
	cache := os.Getenv("LIFEBOAT_CACHE")
	if cache == "" {
		if home, err := os.UserHomeDir(); err == nil {
			cache = filepath.Join(home, ".cache", "lifeboat")
		}
	}
	if cache != "" {
		p := filepath.Join(cache, "bin", "restic")
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	if p, err := exec.LookPath("restic"); err == nil {
		return p, nil
	}
	return "", errors.New("no restic: set LIFEBOAT_RESTIC, run scripts/deps (builds $LIFEBOAT_CACHE/bin/restic) or put restic on PATH")
}

// BinaryOrSkip returns Binary() or skips t (fails it when
// LIFEBOAT_REQUIRE_RESTIC=1).
func BinaryOrSkip(t testing.TB) string {
	t.Helper()
	p, err := Binary()
	if err != nil {
		if os.Getenv("LIFEBOAT_REQUIRE_RESTIC") == "1" {
			t.Fatalf("restictest: LIFEBOAT_REQUIRE_RESTIC=1 but %v", err)
		}
		t.Skipf("restictest: %v", err)
	}
	return p
}
