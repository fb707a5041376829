// Package inflight tracks the entries of a database dump that are still
// being read: a dump's Walk must not end its snapshot transactions (or
// pg_dump's exported snapshot) before the engine has read every entry it
// emitted, and must stop at the first entry that failed.
package inflight

import (
	"context"
	"sync"
)

// Streams counts entries in flight and keeps their first error. The zero
// value is ready to use.
type Streams struct {
	mu   sync.Mutex
	cond *sync.Cond
	n    int
	err  error // the first entry's error
}

func (s *Streams) lock() {
	s.mu.Lock()
	if s.cond == nil {
		s.cond = sync.NewCond(&s.mu)
	}
}

// Begin counts one more entry in flight.
func (s *Streams) Begin() {
	s.lock()
	s.n++
	s.mu.Unlock()
}

// Finish ends an entry begun with Begin; err (if not nil) fails the dump.
func (s *Streams) Finish(err error) {
	s.lock()
	if s.err == nil {
		s.err = err
	}
	s.n--
	s.cond.Broadcast()
	s.mu.Unlock()
}

// Wait returns once no entry is in flight (nil), an entry failed (its
// error, the first one) or ctx ended (its error).
func (s *Streams) Wait(ctx context.Context) error {
	stop := context.AfterFunc(ctx, func() {
		s.lock()
		s.cond.Broadcast()
		s.mu.Unlock()
	})
	defer stop()
	s.lock()
	defer s.mu.Unlock()
	for s.n > 0 && s.err == nil && ctx.Err() == nil {
		s.cond.Wait()
	}
	if s.err != nil {
		return s.err
	}
	return ctx.Err()
}
