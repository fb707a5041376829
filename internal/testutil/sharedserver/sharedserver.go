// Package sharedserver keeps one throw-away server (MinIO, MariaDB, ...)
// per test binary: started on first use, stopped and its data removed by
// Main after the tests.
package sharedserver

import (
	"os"
	"sync"
	"testing"
)

// Server is what a shared server must offer.
type Server interface {
	Running() bool
	Stop()
	Logs() string // the tail of the server's log, shown when it died
}

// Shared holds the one server of a test binary. The zero value is ready.
type Shared[S Server] struct {
	mu  sync.Mutex
	srv S
	ok  bool
	dir string
	err error
}

// Get returns the server, starting it with start(dataDir) on first use.
// name prefixes the temp dir and the failure messages.
func (s *Shared[S]) Get(t testing.TB, name string, start func(dir string) (S, error)) S {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.ok && s.err == nil {
		dir, err := os.MkdirTemp("", name+"-")
		if err == nil {
			s.dir = dir
			s.srv, err = start(dir)
		}
		s.ok, s.err = err == nil, err
	}
	if s.err != nil {
		t.Fatalf("%s: shared server: %v", name, s.err)
	}
	if !s.srv.Running() {
		t.Fatalf("%s: the shared server is not running (it crashed, or a test stopped it: use Start for a server a test may stop); its log ends:\n%s", name, s.srv.Logs())
	}
	srv := s.srv
	t.Cleanup(func() {
		if !srv.Running() {
			t.Errorf("%s: the shared server died during this test; its log ends:\n%s", name, srv.Logs())
		}
	})
	return srv
}

// Main runs m, then stops the server and removes its data:
//
//	func TestMain(m *testing.M) { os.Exit(pkgtest.Main(m)) }
func (s *Shared[S]) Main(m *testing.M) int {
	code := m.Run()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ok {
		s.srv.Stop()
		s.ok = false
	}
	if s.dir != "" {
		_ = os.RemoveAll(s.dir)
	}
	return code
}
