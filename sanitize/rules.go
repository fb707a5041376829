package sanitize

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/lifeboat-backup/lifeboat/policies"
)

// ErrRules marks bad rules or a bad key: the caller's input (exit 2).
var ErrRules = errors.New("sanitize")

func rulesErrorf(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrRules, fmt.Sprintf(format, args...))
}

// Rule is one column rule.
type Rule struct {
	Kind  string // policies.Rule* or "template"
	Arg   string // fixed value, fake kind, kept characters (mask), template text
	kid   int    // fake kind (fakeKind) of a fake rule
	keep  int
	fixed []byte // Arg of a fixed rule
	tmpl  []tmplPart
}

type tmplPart struct {
	lit, kind string
	kid       int // fakeKind(kind)
}

var placeholder = regexp.MustCompile(`\{([a-z0-9_]+)\}`)

// ParseRule parses a column rule (policies.ParseColumnRule); a fixed
// value holding {KIND} placeholders (fake kinds) is a template, as is
// template:TEXT: fixed:{first_name}.{last_name}@example.com.
func ParseRule(s string) (Rule, error) {
	pr, err := policies.ParseColumnRule(s)
	if err != nil {
		return Rule{}, rulesErrorf("%v", err)
	}
	r := Rule{Kind: pr.Kind, Arg: pr.Arg}
	if r.Kind == policies.RuleTemplate {
		if !placeholder.MatchString(r.Arg) {
			return Rule{}, rulesErrorf("%q: a template needs {KIND} placeholders (fake kinds: %s)", s, strings.Join(policies.FakeKinds, ", "))
		}
		r.Kind = policies.RuleFixed
	}
	if r.Kind == policies.RuleFixed {
		r.fixed = []byte(r.Arg)
	}
	switch r.Kind {
	case policies.RuleFake:
		r.kid = fakeKind(r.Arg)
	case policies.RuleMask:
		r.keep, _ = strconv.Atoi(r.Arg)
	case policies.RuleFixed:
		ms := placeholder.FindAllStringSubmatchIndex(r.Arg, -1)
		if len(ms) == 0 {
			break
		}
		last := 0
		for _, m := range ms {
			kind := r.Arg[m[2]:m[3]]
			if !slices.Contains(policies.FakeKinds, kind) {
				return Rule{}, rulesErrorf("%q: unknown fake kind {%s} in template (allowed: %s)", s, kind, strings.Join(policies.FakeKinds, ", "))
			}
			r.tmpl = append(r.tmpl, tmplPart{lit: r.Arg[last:m[0]]}, tmplPart{kind: kind, kid: fakeKind(kind)})
			last = m[1]
		}
		r.tmpl = append(r.tmpl, tmplPart{lit: r.Arg[last:]})
		r.Kind = "template"
	}
	return r, nil
}

// TableRule is the compiled rule of one table.
type TableRule struct {
	Action  string // "", policies.TableTruncate, policies.TableSkip
	Where   string
	Columns map[string]Rule
}

// Config is a compiled sanitize configuration: preset plus policy rules.
type Config struct {
	key    []byte
	preset map[string]TableRule // table -> rule
	user   map[string]TableRule // TABLE or DB.TABLE -> rule
}

// Options of Compile.
type Options struct {
	// Key overrides the policy's key_file (tests).
	Key []byte
	// RulesFile is a separate rules file (policies.LoadRules) whose
	// tables add to the policy's rules; a table in both is an error.
	RulesFile string
}

// Compile checks a policy's sanitize block and reads its key.
func Compile(s policies.Sanitize, o Options) (*Config, error) {
	c := &Config{key: o.Key, user: map[string]TableRule{}}
	if s.Preset != "" {
		p, ok := presets[s.Preset]
		if !ok {
			return nil, rulesErrorf("unknown preset %q (presets: %s)", s.Preset, strings.Join(Presets(), ", "))
		}
		var err error
		if c.preset, err = compileTables(p); err != nil {
			return nil, fmt.Errorf("preset %s: %w", s.Preset, err)
		}
	}
	rules := s.Rules
	if o.RulesFile != "" {
		file, err := policies.LoadRules(o.RulesFile)
		if err != nil {
			return nil, rulesErrorf("%v", err)
		}
		rules = maps.Clone(rules)
		if rules == nil {
			rules = map[string]policies.TableRules{}
		}
		for name, tr := range file {
			if _, dup := rules[name]; dup {
				return nil, rulesErrorf("%s: table %q has rules in the policy too: keep them in one place", o.RulesFile, name)
			}
			rules[name] = tr
		}
	}
	for name, tr := range rules {
		t, err := compileTable(name, tr.Action, tr.Where, tr.Columns)
		if err != nil {
			return nil, err
		}
		c.user[name] = t
	}
	if c.key == nil {
		if s.KeyFile == "" {
			return nil, rulesErrorf("sanitize.key_file is required: fakes are derived from a secret key (e.g. head -c 32 /dev/urandom > sanitize.key)")
		}
		data, err := s.KeyFile.Read()
		if err != nil {
			return nil, rulesErrorf("sanitize.key_file: %v", err)
		}
		c.key = []byte(strings.TrimRight(string(data), "\r\n"))
	}
	if len(c.key) < 16 {
		return nil, rulesErrorf("sanitize key is %d bytes: use at least 16 random bytes", len(c.key))
	}
	return c, nil
}

func compileTables(m map[string]policies.TableRules) (map[string]TableRule, error) {
	out := map[string]TableRule{}
	for name, tr := range m {
		t, err := compileTable(name, tr.Action, tr.Where, tr.Columns)
		if err != nil {
			return nil, err
		}
		out[name] = t
	}
	return out, nil
}

func compileTable(name, action, where string, cols map[string]string) (TableRule, error) {
	t := TableRule{Action: action, Where: where, Columns: map[string]Rule{}}
	if where != "" {
		if _, err := parseWhere(where); err != nil {
			return t, rulesErrorf("%s: where %q: %v", name, where, err)
		}
	}
	for col, s := range cols {
		r, err := ParseRule(s)
		if err != nil {
			return t, fmt.Errorf("%s.%s: %w", name, col, err)
		}
		t.Columns[col] = r
	}
	return t, nil
}

// ruleFor merges the rules of db.table: the preset's (by table name),
// then the policy's TABLE, then the policy's DB.TABLE, each overriding
// column by column; the action and where of the most specific one win.
func (c *Config) ruleFor(db, table string) TableRule {
	out := TableRule{Columns: map[string]Rule{}}
	for _, t := range []TableRule{c.preset[table], c.user[table], c.user[db+"."+table]} {
		if t.Action != "" {
			out.Action = t.Action
		}
		if t.Where != "" {
			out.Where = t.Where
		}
		for k, v := range t.Columns {
			out.Columns[k] = v
		}
	}
	return out
}

// userTables lists the policy's rule keys (not the preset's): each must
// name a table of the snapshot.
func (c *Config) userTables() []string {
	var out []string
	for k := range c.user {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// ReadKey reads a sanitize key file (tests and tools).
func ReadKey(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, rulesErrorf("key file: %v", err)
	}
	return b, nil
}
