package policies

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Column rule kinds (ColumnRule.Kind).
const (
	RuleNull  = "null"  // NULL
	RuleFixed = "fixed" // fixed:VALUE, the same value for every row
	RuleHash  = "hash"  // keyed hash of the original (hex)
	RuleFake  = "fake"  // fake:KIND, deterministic from a keyed hash of the original
	RuleMask  = "mask"  // mask or mask:N, keep the last N characters (default 4)
	RuleKeep  = "keep"  // leave as is (overrides a preset rule)
)

// ColumnRuleKinds lists the column rule kinds.
var ColumnRuleKinds = []string{RuleNull, RuleFixed, RuleHash, RuleFake, RuleMask, RuleKeep}

// FakeKinds lists the values fake:KIND accepts.
var FakeKinds = []string{
	"email", "name", "full_name", "first_name", "last_name", "username", "company",
	"phone", "street", "address", "city", "postcode", "region", "country",
	"ip", "ipv4", "ipv6", "url", "iban", "vat", "date", "text",
}

// ColumnRule is a parsed column rule: Kind, and Arg for fixed (the
// value), fake (the fake kind) and mask (the number of characters kept).
type ColumnRule struct {
	Kind string
	Arg  string
}

// ParseColumnRule parses a column rule: null, hash, keep, mask, mask:N,
// fixed:VALUE, fake:KIND (FakeKinds).
func ParseColumnRule(s string) (ColumnRule, error) {
	kind, arg, hasArg := strings.Cut(s, ":")
	r := ColumnRule{Kind: kind, Arg: arg}
	switch kind {
	case RuleNull, RuleHash, RuleKeep:
		if hasArg {
			return r, fmt.Errorf("%q: %s takes no argument", s, kind)
		}
	case RuleFixed:
		if !hasArg {
			return r, fmt.Errorf("%q: write fixed:VALUE", s)
		}
	case RuleFake:
		if !slices.Contains(FakeKinds, arg) {
			return r, ruleError{fmt.Sprintf("%q: unknown fake kind %q", s, arg), FakeKinds}
		}
	case RuleMask:
		if !hasArg {
			r.Arg = "4"
		} else if n, err := strconv.Atoi(arg); err != nil || n < 0 {
			return r, fmt.Errorf("%q: write mask or mask:N (N characters kept)", s)
		}
	case TableTruncate, TableSkip, "where":
		return r, fmt.Errorf("%q is a table rule: write `TABLE: %s`", s, kind)
	default:
		return r, fmt.Errorf("%q is not a column rule", s)
	}
	return r, nil
}

type ruleError struct {
	msg     string
	allowed []string
}

func (e ruleError) Error() string { return e.msg + " (allowed: " + strings.Join(e.allowed, ", ") + ")" }

var columnRuleForms = []string{"null", "hash", "keep", "mask", "mask:N", "fixed:VALUE", "fake:KIND"}

// decodeNode reads `TABLE: truncate|skip` or `TABLE: {where: SQL, COLUMN: RULE...}`.
func (r *TableRules) decodeNode(d *decoder, n *yaml.Node, path string) {
	switch n.Kind {
	case yaml.ScalarNode:
		if n.Value != TableTruncate && n.Value != TableSkip {
			d.errorf(n, path, n.Value, []string{TableTruncate, TableSkip, "a mapping of column rules"}, "%q is not a table rule", n.Value)
			return
		}
		r.Action = n.Value
	case yaml.MappingNode:
		d.eachKey(n, path, func(key string, k, v *yaml.Node) {
			p := childPath(path, key)
			d.src.keys[p] = k
			for v.Kind == yaml.AliasNode && v.Alias != nil {
				v = v.Alias
			}
			d.src.values[p] = v
			if v.Kind != yaml.ScalarNode {
				d.errorf(v, p, "", nil, "expected a string, got %s", describe(v))
				return
			}
			if key == "where" {
				if strings.TrimSpace(v.Value) == "" || isNull(v) {
					d.errorf(v, p, "", nil, "empty where condition")
					return
				}
				r.Where = v.Value
				return
			}
			rule := v.Value
			if isNull(v) {
				rule = RuleNull // dob: null means the null rule
			}
			if _, err := ParseColumnRule(rule); err != nil {
				allowed, msg := columnRuleForms, err.Error()
				if re, ok := err.(ruleError); ok {
					allowed, msg = re.allowed, re.msg
				}
				d.errorf(v, p, rule, allowed, "%s", msg)
				return
			}
			if r.Columns == nil {
				r.Columns = map[string]string{}
			}
			r.Columns[key] = rule
		})
	default:
		d.errorf(n, path, "", nil, "expected truncate, skip or a mapping of column rules, got %s", describe(n))
	}
}
