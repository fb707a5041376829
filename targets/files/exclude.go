package files

import (
	"fmt"
	"path"
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
	segs     []string
}

func newExcluder(patterns []string) (*excluder, error) {
	ex := &excluder{}
	for _, raw := range patterns {
		p := pattern{raw: raw}
		s := raw
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
	for i := range ex.pats {
		p := &ex.pats[i]
		if p.dirOnly != dirOnly {
			continue
		}
		if p.anchored {
			if matchSegs(p.segs, comps) {
				return p.raw, true
			}
			continue
		}
		for start := len(comps) - 1; start >= 0; start-- {
			if matchSegs(p.segs, comps[start:]) {
				return p.raw, true
			}
		}
	}
	return "", false
}

// matchSegs matches pattern segments against all of comps.
func matchSegs(segs, comps []string) bool {
	for len(segs) > 0 {
		if segs[0] == "**" {
			rest := segs[1:]
			for len(rest) > 0 && rest[0] == "**" {
				rest = rest[1:]
			}
			if len(rest) == 0 {
				return true
			}
			for i := 0; i <= len(comps); i++ {
				if matchSegs(rest, comps[i:]) {
					return true
				}
			}
			return false
		}
		if len(comps) == 0 {
			return false
		}
		if ok, _ := path.Match(segs[0], comps[0]); !ok {
			return false
		}
		segs, comps = segs[1:], comps[1:]
	}
	return len(comps) == 0
}
