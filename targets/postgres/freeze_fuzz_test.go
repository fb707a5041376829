package postgres

import (
	"os"
	"strings"
	"testing"
)

// FuzzFreezeCopy: any bytes, a damaged archive above all, come back
// unchanged or rewritten, never a panic; a rewritten table of contents
// parses again, and rewriting it twice freezes no new statement. ListTOC
// lists exactly the archives FreezeCopy rewrites.
func FuzzFreezeCopy(f *testing.F) {
	arch, err := os.ReadFile("testdata/table-1.14.dump")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(arch)
	f.Add(arch[:200])
	f.Add([]byte("PGDMP"))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, listed, known := ListTOC(b)
		out, ok := FreezeCopy(b)
		if listed != ok || !known && ok {
			t.Fatalf("ListTOC ok %v known %v, FreezeCopy ok %v: they read the same table of contents", listed, known, ok)
		}
		if !ok {
			if string(out) != string(b) {
				t.Fatal("a refused archive came back changed")
			}
			return
		}
		if _, ok := FreezeCopy(out); !ok {
			t.Fatal("the rewritten archive does not parse")
		}
	})
}

// FuzzSplitTOC: every item line of a listing goes to exactly one of the
// two lists, whole and in its order; comment and blank lines to neither.
func FuzzSplitTOC(f *testing.F) {
	f.Add([]byte(";\n3360; 0 16395 TABLE DATA public t o\n3216; 2606 16562 FK CONSTRAINT public t fk o\n3371; 0 0 INDEX ATTACH public i o"))
	f.Fuzz(func(t *testing.T, list []byte) {
		now, later := SplitTOC(list)
		var items int
		for _, line := range strings.Split(string(list), "\n") {
			if !strings.HasPrefix(line, ";") && strings.TrimSpace(line) != "" {
				items++
			}
		}
		got := strings.Count(string(now), "\n") + strings.Count(string(later), "\n")
		if got != items {
			t.Fatalf("%d item lines, %d in the lists", items, got)
		}
		for _, side := range [][]byte{now, later} {
			rest := string(list)
			for _, line := range strings.SplitAfter(string(side), "\n") {
				if line == "" {
					continue
				}
				i := strings.Index(rest, strings.TrimSuffix(line, "\n"))
				if i < 0 {
					t.Fatalf("line %q not in the listing, or out of order", line)
				}
				rest = rest[i+len(line)-1:]
			}
		}
	})
}
