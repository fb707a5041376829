package policies

import (
	"fmt"
	"os"
	"reflect"
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
	// RuleTemplate is template:TEXT, fakes of the original in {KIND}
	// placeholders (a fixed value with placeholders is the same).
	RuleTemplate = "template"
)

// ColumnRuleKinds lists the column rule kinds.
var ColumnRuleKinds = []string{RuleNull, RuleFixed, RuleHash, RuleFake, RuleMask, RuleKeep, RuleTemplate}

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
// mask:keep_last=N, fixed:VALUE, fake:KIND (FakeKinds), template:TEXT.
// Blanks after the colon are ignored ("fake: email"), except in fixed
// values and templates.
func ParseColumnRule(s string) (ColumnRule, error) {
	kind, arg, hasArg := strings.Cut(s, ":")
	kind = strings.TrimSpace(kind)
	if kind != RuleFixed && kind != RuleTemplate {
		arg = strings.TrimSpace(arg)
	} else {
		arg = strings.TrimPrefix(arg, " ")
	}
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
	case RuleTemplate:
		if !hasArg || !strings.Contains(arg, "{") {
			return r, fmt.Errorf("%q: write template:TEXT with {KIND} placeholders, e.g. template:{first_name}.{last_name}@example.com", s)
		}
	case RuleFake:
		if !slices.Contains(FakeKinds, arg) {
			return r, ruleError{fmt.Sprintf("%q: unknown fake kind %q", s, arg), FakeKinds}
		}
	case RuleMask:
		if !hasArg {
			r.Arg = "4"
			break
		}
		n, err := strconv.Atoi(strings.TrimPrefix(arg, "keep_last="))
		if err != nil || n < 0 {
			return r, fmt.Errorf("%q: write mask, mask:N or mask:keep_last=N (the last N characters kept)", s)
		}
		r.Arg = strconv.Itoa(n)
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

var columnRuleForms = []string{"null", "hash", "keep", "mask", "mask:keep_last=N", "fixed:VALUE", "fake:KIND", "template:TEXT"}

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
			if v.Kind == yaml.MappingNode && len(v.Content) == 2 && v.Content[0].Kind == yaml.ScalarNode &&
				v.Content[1].Kind == yaml.ScalarNode && key != "where" {
				// {fake: email}, {mask: keep_last=4}: the rule as a one-key mapping.
				k, a := v.Content[0], v.Content[1]
				rule := k.Value
				if !isNull(a) {
					rule += ":" + a.Value
				}
				v = &yaml.Node{Kind: yaml.ScalarNode, Value: rule, Line: k.Line, Column: k.Column, Tag: "!!str"}
			}
			if v.Kind != yaml.ScalarNode {
				d.errorf(v, p, "", nil, "expected a rule (a string, or a one-key mapping such as {fake: email}), got %s", describe(v))
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

// LoadRules reads a separate sanitize rules file: a mapping of tables to
// rules, exactly as under sanitize.rules in a policy. Problems carry the
// file, line and column.
func LoadRules(path string) (map[string]TableRules, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("rules file: %w", err)
	}
	return ParseRules(path, data)
}

// ParseRules is LoadRules for data read already; name is the file name in
// messages.
func ParseRules(name string, data []byte) (map[string]TableRules, error) {
	root, errs := parseYAML(name, data)
	if root == nil {
		for i := range errs {
			errs[i].Msg = strings.ReplaceAll(errs[i].Msg, "empty policy", "empty rules file")
		}
		return nil, errs
	}
	src := newSource(name)
	src.root = root
	d := &decoder{src: src}
	var rules map[string]TableRules
	if root.Kind != yaml.MappingNode {
		d.errorf(root, "", "", nil, "a rules file is a mapping of tables to rules, got %s", describe(root))
	} else {
		d.decode(root, reflect.ValueOf(&rules).Elem(), "", nil, 0)
	}
	errs = append(errs, d.errs...)
	c := &checker{src: src}
	c.tableRules(rules, "")
	errs = append(errs, c.errs...)
	if len(errs) > 0 {
		return nil, errs.sort()
	}
	return rules, nil
}

// decodeNode reads one command line (a string) or a list of them.
func (c *Commands) decodeNode(d *decoder, n *yaml.Node, path string) {
	items := []*yaml.Node{n}
	if n.Kind == yaml.SequenceNode {
		items = n.Content
	}
	var out Commands
	for i, it := range items {
		p := path
		if n.Kind == yaml.SequenceNode {
			p = indexPath(path, i)
		}
		for it.Kind == yaml.AliasNode && it.Alias != nil {
			it = it.Alias
		}
		if it.Kind != yaml.ScalarNode || it.ShortTag() != "!!str" {
			d.errorf(it, p, "", nil, "expected a shell command line (a string, or a list of them), got %s", describe(it))
			return
		}
		if strings.TrimSpace(it.Value) == "" {
			d.errorf(it, p, "", nil, "empty command")
			return
		}
		d.src.values[p] = it
		out = append(out, it.Value)
	}
	*c = out
}
