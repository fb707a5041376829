package browse

import (
	"context"
	"fmt"
	"path"
	"strings"

	"github.com/lifeboat-backup/lifeboat/engine/snapshot"
)

// Matcher is a find pattern: a shell glob (path.Match) against an entry's
// base name, or against its whole path ("/a/b") when the pattern has a
// slash.
type Matcher struct {
	pattern    string
	whole      bool
	ignoreCase bool
}

// NewMatcher checks pattern.
func NewMatcher(pattern string, ignoreCase bool) (*Matcher, error) {
	if ignoreCase {
		pattern = strings.ToLower(pattern)
	}
	if _, err := path.Match(pattern, ""); err != nil {
		return nil, fmt.Errorf("pattern %q: %w", pattern, err)
	}
	return &Matcher{pattern: pattern, whole: strings.Contains(pattern, "/"), ignoreCase: ignoreCase}, nil
}

// Match reports whether the entry at p (relative, no leading slash) matches.
func (m *Matcher) Match(p string) bool {
	s := path.Base(p)
	if m.whole {
		s = "/" + p
	}
	if m.ignoreCase {
		s = strings.ToLower(s)
	}
	ok, _ := path.Match(m.pattern, s)
	return ok
}

// Find calls fn with each node of sn that m matches, in tree order.
func Find(ctx context.Context, r Repo, sn *snapshot.Snapshot, m *Matcher, fn func(*snapshot.Node) error) error {
	tr, err := r.Tree(ctx, sn)
	if err != nil {
		return err
	}
	for {
		n, err := next(tr)
		if err != nil || n == nil {
			return err
		}
		if m.Match(n.Path) {
			if err := fn(n); err != nil {
				return err
			}
		}
	}
}
