package files

import (
	"path"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// refMatch is the plain recursive definition of the exclude syntax
// (exponential in the number of "**"; fine for the short inputs of the
// fuzz test): the reference matchSegs is checked against.
func refMatch(segs, comps []string) bool {
	if len(segs) == 0 {
		return len(comps) == 0
	}
	if segs[0] == "**" {
		for i := 0; i <= len(comps); i++ {
			if refMatch(segs[1:], comps[i:]) {
				return true
			}
		}
		return false
	}
	if len(comps) == 0 {
		return false
	}
	ok, _ := path.Match(segs[0], comps[0])
	return ok && refMatch(segs[1:], comps[1:])
}

func refExcluded(p pattern, comps []string) bool {
	if p.anchored {
		return refMatch(p.segs, comps)
	}
	for start := len(comps) - 1; start >= 0; start-- {
		if refMatch(p.segs, comps[start:]) {
			return true
		}
	}
	return false
}

func TestExcludeMatch(t *testing.T) {
	tests := []struct {
		pattern, rel string
		want         bool
	}{
		{"*.tmp", "r/a.tmp", true},
		{"*.tmp", "r/a.tmp/x", false},
		{"/r/**/cache", "r/cache", true},
		{"/r/**/cache", "r/a/b/cache", true},
		{"/r/**/cache", "x/r/cache", false},
		{"media/**/y.jpg", "r/media/a/b/y.jpg", true},
		{"media/**/y.jpg", "r/media/y.jpg", true},
		{"media/**/y.jpg", "r/medias/y.jpg", false},
		{"**", "r", true},
		{"/**/**", "r/a", true},
		{"a/**/b/**/c", "r/a/x/b/y/z/c", true},
		{"a/**/b/**/c", "r/a/x/c/y/b", false},
		{"*/cache/*", "r/media/catalog/cache/x", true},
		{"/media", "r/media", false},
	}
	for _, tt := range tests {
		ex, err := newExcluder([]string{tt.pattern})
		require.NoError(t, err)
		_, got := ex.match(tt.rel, false)
		assert.Equal(t, tt.want, got, "%s against %s", tt.pattern, tt.rel)
	}
}

// TestExcludeManyDoubleStars is the regression test for exponential
// backtracking: eight "**" against a deep path that almost matches took
// 14 s per entry.
func TestExcludeManyDoubleStars(t *testing.T) {
	pat := strings.Repeat("**/a/", 8) + "**/nomatch"
	ex, err := newExcluder([]string{pat, "/" + pat})
	require.NoError(t, err)
	rel := strings.TrimSuffix(strings.Repeat("a/", 60), "/")
	start := time.Now()
	for range 100 {
		_, ok := ex.match(rel, false)
		require.False(t, ok)
	}
	assert.Less(t, time.Since(start), 2*time.Second, "100 matches of 8 ** against 60 components")
}

func FuzzExcludeMatch(f *testing.F) {
	for _, s := range [][2]string{
		{"*.tmp", "r/a.tmp"}, {"/r/**/cache", "r/media/cache"}, {"media/**/y.jpg", "r/media/catalog/product/cache/y.jpg"},
		{"*/cache/*", "r/media/cache/x.jpg"}, {"cache/", "r/deep/a/b/c/cache"}, {"[ab].tmp", "r/a.tmp"},
		{"**/a/**/a/**/b", "r/a/a/a/a/c"}, {"/**", "r"}, {"a\\*b", "r/a*b"}, {"**/**/x", "x"},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, pat, rel string) {
		ex, err := newExcluder([]string{pat})
		if err != nil {
			return
		}
		p := ex.pats[0]
		comps := strings.Split(rel, "/")
		doubles := strings.Count(pat, "**")
		if doubles > 4 || len(comps) > 12 {
			return // the reference is exponential
		}
		_, got := ex.match(rel, p.dirOnly)
		if want := refExcluded(p, comps); got != want {
			t.Fatalf("pattern %q, path %q: got %v, reference %v", pat, rel, got, want)
		}
	})
}
