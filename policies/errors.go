package policies

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
)

// ValidationError is one problem in a policy: where it is, which key and
// value, what is wrong and, for enumerations and unknown keys, what is
// allowed. Value never holds a secret (it is empty for secret-looking
// keys and DSNs).
type ValidationError struct {
	File    string   `json:"file"`
	Line    int      `json:"line,omitempty"`   // 1-based; 0 when unknown (e.g. an environment override)
	Column  int      `json:"column,omitempty"` // 1-based; 0 when unknown
	Field   string   `json:"field,omitempty"`  // dotted path: targets[1].lock_mode
	Value   string   `json:"value,omitempty"`
	Msg     string   `json:"message"`
	Allowed []string `json:"allowed,omitempty"`
}

// Error formats the problem as one line:
//
//	policy.yaml:23:15: targets[1].lock_mode: "ftwr" is not allowed (allowed: ftwrl, backup_lock, single)
func (e ValidationError) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
		if e.Column > 0 {
			fmt.Fprintf(&b, ":%d", e.Column)
		}
	}
	b.WriteString(": ")
	if e.Field != "" {
		b.WriteString(e.Field)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	if len(e.Allowed) > 0 {
		b.WriteString(" (allowed: ")
		b.WriteString(strings.Join(e.Allowed, ", "))
		b.WriteString(")")
	}
	return b.String()
}

// ValidationErrors is every problem found in a policy, in file order.
// Parse and Load return it (as error) when a policy is invalid.
type ValidationErrors []ValidationError

// Error is one line per problem.
func (es ValidationErrors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// sort orders problems by position (environment overrides, line 0, last),
// then field, dropping exact duplicates.
func (es ValidationErrors) sort() ValidationErrors {
	slices.SortStableFunc(es, func(a, b ValidationError) int {
		la, lb := a.Line, b.Line
		if la == 0 {
			la = 1 << 30
		}
		if lb == 0 {
			lb = 1 << 30
		}
		return cmp.Or(cmp.Compare(la, lb), cmp.Compare(a.Column, b.Column), cmp.Compare(a.Field, b.Field))
	})
	return slices.CompactFunc(es, func(a, b ValidationError) bool { return a.Error() == b.Error() })
}
