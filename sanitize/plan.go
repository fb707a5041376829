package sanitize

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/lifeboat-backup/lifeboat/policies"
)

// tablePlan is how one table is exported.
type tablePlan struct {
	db, name string
	of       string    // "partition of T" / "inherits T": where its rules come from, when not its own
	rule     TableRule // the merged rules of its sources, as written (lint reads them)
	action   string
	where    *where
	cols     []*column
	byName   map[string]*column
	rules    map[string]Rule
}

func (p *tablePlan) qualified() string {
	if p.of != "" {
		return p.db + "." + p.name + " (" + p.of + ")"
	}
	return p.db + "." + p.name
}

// plan merges the rules for a table and checks them against its columns.
// Policy rules naming a missing column, or not fitting the column type,
// are errors; preset rules for missing columns are ignored.
func (c *Config) plan(db, table string, cols []*column) (*tablePlan, error) {
	return c.planFrom(db, table, "", [][2]string{{db, table}}, cols)
}

// planFrom plans db.table with the rules of the tables srcs ({db, table})
// merged in order, later ones winning (a PostgreSQL table inheriting
// from others: its ancestors' rules, then its own); of says where they
// come from when not (only) from the table itself.
func (c *Config) planFrom(db, table, of string, srcs [][2]string, cols []*column) (*tablePlan, error) {
	tr := TableRule{Columns: map[string]Rule{}}
	user := map[string]bool{}
	for _, src := range srcs {
		r := c.ruleFor(src[0], src[1])
		if r.Action != "" {
			tr.Action = r.Action
		}
		if r.Where != "" {
			tr.Where = r.Where
		}
		maps.Copy(tr.Columns, r.Columns)
		for _, k := range []string{src[1], src[0] + "." + src[1]} {
			for col := range c.user[k].Columns {
				user[col] = true
			}
		}
	}
	p := &tablePlan{db: db, name: table, of: of, rule: tr, action: tr.Action, cols: cols, byName: map[string]*column{}, rules: map[string]Rule{}}
	for _, col := range cols {
		p.byName[col.name] = col
	}
	if tr.Where != "" {
		w, err := parseWhere(tr.Where)
		if err != nil {
			return nil, rulesErrorf("%s: where %q: %v", p.qualified(), tr.Where, err)
		}
		for name := range w.cols {
			if p.byName[name] == nil {
				return nil, rulesErrorf("%s: where %q: no column %q", p.qualified(), tr.Where, name)
			}
		}
		p.where = w
	}
	names := make([]string, 0, len(tr.Columns))
	for k := range tr.Columns {
		names = append(names, k)
	}
	slices.Sort(names)
	for _, name := range names {
		r := tr.Columns[name]
		col := p.byName[name]
		if col == nil {
			if user[name] {
				return nil, rulesErrorf("%s: no column %q (columns: %s)", p.qualified(), name, columnNames(cols))
			}
			continue
		}
		if err := fits(r, col); err != nil {
			if !user[name] && r.Kind == policies.RuleNull && col.textLike() {
				r = Rule{Kind: policies.RuleFixed, fixed: []byte{}} // a preset's null on a NOT NULL text column: empty
			} else if !user[name] && r.Kind == policies.RuleNull {
				continue
			} else {
				return nil, rulesErrorf("%s.%s: %v", p.qualified(), name, err)
			}
		}
		if r.Kind == policies.RuleKeep {
			continue
		}
		p.rules[name] = r
	}
	return p, nil
}

func columnNames(cols []*column) string {
	var s []string
	for _, c := range cols {
		s = append(s, c.name)
	}
	return strings.Join(s, ", ")
}

// fits checks that a rule can write its values into the column.
func fits(r Rule, col *column) error {
	switch r.Kind {
	case policies.RuleNull:
		if !col.nullable {
			return fmt.Errorf("null rule on a NOT NULL column: use fixed:VALUE")
		}
	case policies.RuleFixed:
		if col.isNumeric() {
			if _, err := strconv.ParseFloat(r.Arg, 64); err != nil {
				return fmt.Errorf("fixed:%s on a %s column: give a number", r.Arg, col.typ)
			}
		}
		if col.max > 0 && utf8.RuneCountInString(r.Arg) > col.max {
			return fmt.Errorf("fixed value is %d characters, the column holds %d", utf8.RuneCountInString(r.Arg), col.max)
		}
	case policies.RuleFake:
		if r.Arg == "date" && (col.isTemporal() || col.textLike()) {
			return nil
		}
		if col.typ == "inet" && (r.Arg == "ip" || r.Arg == "ipv4" || r.Arg == "ipv6") {
			return nil
		}
		if !col.textLike() {
			return fmt.Errorf("fake:%s on a %s column: fakes are text (use null or fixed:VALUE)", r.Arg, col.typ)
		}
	case policies.RuleHash, policies.RuleMask, "template":
		if !col.textLike() {
			return fmt.Errorf("%s on a %s column: needs a text column (use null or fixed:VALUE)", r.Kind, col.typ)
		}
	}
	return nil
}

// apply sanitizes one value (nil is NULL). NULL and empty values stay as
// they are for every rule but null: there is nothing personal in them.
func (f *faker) apply(r *Rule, col *column, v []byte) []byte {
	if r.Kind == policies.RuleNull {
		return nil
	}
	if v == nil || (len(v) == 0 && r.Kind != policies.RuleFixed) {
		return v
	}
	switch r.Kind {
	case policies.RuleFixed:
		return r.fixed
	case policies.RuleFake:
		return f.cachedFake(r.kid, v, col.max)
	case policies.RuleHash:
		f.scratch = f.appendHashHex(f.scratch[:0], v, col.max)
		return f.scratch
	case policies.RuleMask:
		s := string(v)
		if !utf8.ValidString(s) {
			s = strings.ToValidUTF8(s, "x")
		}
		rs := []rune(s)
		for i := 0; i < len(rs)-r.keep; i++ {
			rs[i] = 'x'
		}
		return []byte(fit(string(rs), col.max))
	case "template":
		var b strings.Builder
		for _, part := range r.tmpl {
			if part.kind == "" {
				b.WriteString(part.lit)
			} else {
				b.Write(f.cachedFake(part.kid, v, 0))
			}
		}
		return []byte(fit(b.String(), col.max))
	}
	return v
}
