package postgrestest

import "testing"

func TestStart(t *testing.T) {
	s := Start(t)
	out := s.MustPSQL(t, "postgres", "SELECT version()")
	t.Log(out, s.URL())
	if !s.Running() {
		t.Fatal("not running")
	}
}
