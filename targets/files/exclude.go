package files

import (
	"fmt"
	"os"
	"path"
	"slices"
	"strings"
)

// excluder matches entry paths against exclude patterns.
//
// Syntax (see docs/files-target.md):
//   - a pattern is split at "/" into segments; each segment is matched
//     against one path component with path.Match ("*", "?", "[a-z]",
//     "\" escapes); "*" never crosses a "/";
//   - a "**" segment matches any number (including zero) of components;
//   - a pattern starting with "/" is anchored at the snapshot root (the
//     root's base name is the first component: "/media/cache");
//     any other pattern may match at any depth, i.e. against every
//     trailing run of components of the path: "*.tmp" and "node_modules"
//     match base names, "*/cache/*" matches "media/catalog/cache/x";
//   - a pattern ending in "/" matches directories only.
//
// Patterns always match the whole run of components through the end of
// the path, so "cache" matches ".../cache" but not ".../cache/x" (which is
// never visited anyway: an excluded directory is not descended).
type excluder struct {
	pats []pattern
}

type pattern struct {
	raw      string
	anchored bool
	dirOnly  bool
	fold     bool // --iexclude: matched without regard to case
	segs     []string
}

func newExcluder(patterns []string) (*excluder, error) {
	return newFoldExcluder(patterns, nil)
}

// newFoldExcluder also takes case-insensitive patterns (ipatterns, restic's
// --iexclude): they and the path components they meet are lower-cased
// (Unicode simple folding) before matching.
func newFoldExcluder(patterns, ipatterns []string) (*excluder, error) {
	ex := &excluder{}
	all := append(slices.Clone(patterns), ipatterns...)
	for i, raw := range all {
		p := pattern{raw: raw, fold: i >= len(patterns)}
		s := raw
		if p.fold {
			s = strings.ToLower(s)
		}
		if strings.HasPrefix(s, "/") {
			p.anchored = true
			s = strings.TrimLeft(s, "/")
		}
		if strings.HasSuffix(s, "/") {
			p.dirOnly = true
			s = strings.TrimRight(s, "/")
		}
		if s == "" {
			return nil, fmt.Errorf("exclude pattern %q: empty", raw)
		}
		p.segs = strings.Split(s, "/")
		for _, seg := range p.segs {
			if seg == "" {
				return nil, fmt.Errorf("exclude pattern %q: empty path element", raw)
			}
			if seg == "**" {
				continue
			}
			if _, err := path.Match(seg, ""); err != nil {
				return nil, fmt.Errorf("exclude pattern %q: %w", raw, err)
			}
		}
		ex.pats = append(ex.pats, p)
	}
	return ex, nil
}

// CheckExcludes reports the first malformed exclude pattern, so a command
// can refuse it as a usage error before it opens anything.
func CheckExcludes(patterns, ipatterns []string) error {
	_, err := newFoldExcluder(patterns, ipatterns)
	return err
}

// ReadExcludeFile reads an exclude file as restic's --exclude-file does:
// a pattern a line; blank lines and lines starting with # are skipped.
func ReadExcludeFile(name string) ([]string, error) {
	data, err := os.ReadFile(name)
	if err != nil {
		return nil, err
	}
	var pats []string
	for _, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		pats = append(pats, line)
	}
	return pats, nil
}

// empty reports whether there is nothing to exclude.
func (ex *excluder) empty() bool { return ex == nil || len(ex.pats) == 0 }

// match reports whether rel (slash-separated, relative to the snapshot
// root) is excluded by one of the patterns whose dirOnly flag equals
// dirOnly, and returns that pattern. The walker checks the other patterns
// before lstat and the dir-only ones once it knows rel is a directory.
func (ex *excluder) match(rel string, dirOnly bool) (string, bool) {
	if ex.empty() {
		return "", false
	}
	comps := strings.Split(rel, "/")
	var lower []string
	for i := range ex.pats {
		p := &ex.pats[i]
		cs := comps
		if p.fold {
			if lower == nil {
				lower = strings.Split(strings.ToLower(rel), "/")
			}
			cs = lower
		}
		if p.dirOnly == dirOnly && matchSegs(p.segs, cs, p.anchored) {
			return p.raw, true
		}
	}
	return "", false
}

// matchSegs matches pattern segments against all of comps (anchored) or
// against any trailing run of them. It simulates the pattern as an NFA
// whose state j means "segs[:j] matched the components read so far", so
// it takes O(len(segs)*len(comps)) segment matches whatever the number of
// "**": no backtracking.
func matchSegs(segs, comps []string, anchored bool) bool {
	n := len(segs)
	cur := make([]bool, n+1)
	next := make([]bool, n+1)
	// closure adds, for every reachable "**", the state after it (the
	// "**" matching zero components).
	closure := func(st []bool) {
		for j := 0; j < n; j++ {
			if st[j] && segs[j] == "**" {
				st[j+1] = true
			}
		}
	}
	cur[0] = true
	closure(cur)
	for i, c := range comps {
		if !anchored && i > 0 {
			cur[0] = true // a match may start at any component
			closure(cur)
		}
		clear(next)
		alive := false
		for j := 0; j < n; j++ {
			if !cur[j] {
				continue
			}
			if segs[j] == "**" {
				next[j] = true
				alive = true
			} else if ok, _ := path.Match(segs[j], c); ok {
				next[j+1] = true
				alive = true
			}
		}
		if !alive && anchored {
			return false
		}
		closure(next)
		cur, next = next, cur
	}
	return cur[n]
}
