package sanitize

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// A where condition is evaluated on each row's original values, without a
// server. Supported: column references (bare or `quoted`), string and
// number literals, NULL, TRUE/FALSE, = <> != < <= > >=, AND, OR, NOT,
// parentheses, IS [NOT] NULL, [NOT] LIKE (with % and _), [NOT] IN (...),
// [NOT] BETWEEN x AND y, and NOW() / CURRENT_TIMESTAMP / CURDATE() with
// optional - or + INTERVAL N SECOND|MINUTE|HOUR|DAY|WEEK|MONTH|YEAR. NOW()
// is the snapshot's recovery point time (UTC), so exports of one snapshot
// are identical whenever they run. Comparisons are numeric when both sides
// are numbers, else by bytes (which orders DATE/DATETIME text correctly).
// SQL three-valued logic: a comparison with NULL is unknown, and a row is
// kept only when the condition is true.

type expr interface {
	eval(e *env) value
}

type value struct {
	null bool
	s    string
}

type env struct {
	row  [][]byte
	cols map[string]int
	now  time.Time
}

type (
	colRef  struct{ name string }
	literal struct{ v value }
	nowExpr struct {
		date bool
		sign int
		n    int
		unit string
	}
	binOp struct {
		op   string
		l, r expr
	}
	notExpr struct{ x expr }
	isNull  struct {
		x   expr
		not bool
	}
	likeExpr struct {
		x   expr
		re  *regexp.Regexp
		not bool
	}
	inExpr struct {
		x    expr
		list []expr
		not  bool
	}
)

var (
	vTrue    = value{s: "1"}
	vFalse   = value{s: "0"}
	vUnknown = value{null: true}
)

func boolValue(b bool) value {
	if b {
		return vTrue
	}
	return vFalse
}

func truthy(v value) bool {
	if v.null {
		return false
	}
	f, err := strconv.ParseFloat(strings.TrimSpace(v.s), 64)
	return err == nil && f != 0
}

func (c colRef) eval(e *env) value {
	b := e.row[e.cols[c.name]]
	if b == nil {
		return vUnknown
	}
	return value{s: string(b)}
}

func (l literal) eval(*env) value { return l.v }

func (n nowExpr) eval(e *env) value {
	t := e.now.UTC()
	switch n.unit {
	case "SECOND":
		t = t.Add(time.Duration(n.sign*n.n) * time.Second)
	case "MINUTE":
		t = t.Add(time.Duration(n.sign*n.n) * time.Minute)
	case "HOUR":
		t = t.Add(time.Duration(n.sign*n.n) * time.Hour)
	case "DAY":
		t = t.AddDate(0, 0, n.sign*n.n)
	case "WEEK":
		t = t.AddDate(0, 0, 7*n.sign*n.n)
	case "MONTH":
		t = t.AddDate(0, n.sign*n.n, 0)
	case "YEAR":
		t = t.AddDate(n.sign*n.n, 0, 0)
	}
	if n.date {
		return value{s: t.Format("2006-01-02")}
	}
	return value{s: t.Format("2006-01-02 15:04:05")}
}

func compare(a, b value) (int, bool) {
	if a.null || b.null {
		return 0, false
	}
	fa, ea := strconv.ParseFloat(strings.TrimSpace(a.s), 64)
	fb, eb := strconv.ParseFloat(strings.TrimSpace(b.s), 64)
	if ea == nil && eb == nil {
		switch {
		case fa < fb:
			return -1, true
		case fa > fb:
			return 1, true
		}
		return 0, true
	}
	return strings.Compare(a.s, b.s), true
}

func (b binOp) eval(e *env) value {
	switch b.op {
	case "AND":
		l, r := b.l.eval(e), b.r.eval(e)
		if (!l.null && !truthy(l)) || (!r.null && !truthy(r)) {
			return vFalse
		}
		if l.null || r.null {
			return vUnknown
		}
		return vTrue
	case "OR":
		l, r := b.l.eval(e), b.r.eval(e)
		if truthy(l) || truthy(r) {
			return vTrue
		}
		if l.null || r.null {
			return vUnknown
		}
		return vFalse
	}
	c, ok := compare(b.l.eval(e), b.r.eval(e))
	if !ok {
		return vUnknown
	}
	switch b.op {
	case "=":
		return boolValue(c == 0)
	case "<>", "!=":
		return boolValue(c != 0)
	case "<":
		return boolValue(c < 0)
	case "<=":
		return boolValue(c <= 0)
	case ">":
		return boolValue(c > 0)
	case ">=":
		return boolValue(c >= 0)
	}
	return vUnknown
}

func (n notExpr) eval(e *env) value {
	v := n.x.eval(e)
	if v.null {
		return v
	}
	return boolValue(!truthy(v))
}

func (n isNull) eval(e *env) value { return boolValue(n.x.eval(e).null != n.not) }

func (l likeExpr) eval(e *env) value {
	v := l.x.eval(e)
	if v.null {
		return v
	}
	return boolValue(l.re.MatchString(v.s) != l.not)
}

func (in inExpr) eval(e *env) value {
	v := in.x.eval(e)
	if v.null {
		return v
	}
	unknown := false
	for _, x := range in.list {
		c, ok := compare(v, x.eval(e))
		if !ok {
			unknown = true
			continue
		}
		if c == 0 {
			return boolValue(!in.not)
		}
	}
	if unknown {
		return vUnknown
	}
	return boolValue(in.not)
}

// Parsing.

type token struct {
	kind string // ident, str, num, op, kw
	s    string
}

var keywords = map[string]bool{"AND": true, "OR": true, "NOT": true, "IS": true, "NULL": true, "LIKE": true, "IN": true,
	"BETWEEN": true, "INTERVAL": true, "TRUE": true, "FALSE": true}

func lex(s string) ([]token, error) {
	var out []token
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '\'' || c == '"':
			var b strings.Builder
			j := i + 1
			for ; j < len(s); j++ {
				if s[j] == '\\' && j+1 < len(s) {
					j++
					b.WriteByte(s[j])
					continue
				}
				if s[j] == c {
					if j+1 < len(s) && s[j+1] == c {
						b.WriteByte(c)
						j++
						continue
					}
					break
				}
				b.WriteByte(s[j])
			}
			if j >= len(s) {
				return nil, fmt.Errorf("unterminated string")
			}
			out = append(out, token{"str", b.String()})
			i = j + 1
		case c == '`':
			name, rest, ok := cutQuoted(s[i:])
			if !ok {
				return nil, fmt.Errorf("unterminated `name`")
			}
			out = append(out, token{"ident", name})
			i = len(s) - len(rest)
		case c >= '0' && c <= '9' || c == '.' && i+1 < len(s) && s[i+1] >= '0' && s[i+1] <= '9':
			j := i
			for j < len(s) && (s[j] >= '0' && s[j] <= '9' || s[j] == '.') {
				j++
			}
			out = append(out, token{"num", s[i:j]})
			i = j
		case c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z':
			j := i
			for j < len(s) && (s[j] == '_' || s[j] == '.' || s[j] >= 'a' && s[j] <= 'z' || s[j] >= 'A' && s[j] <= 'Z' || s[j] >= '0' && s[j] <= '9') {
				j++
			}
			w := s[i:j]
			if keywords[strings.ToUpper(w)] {
				out = append(out, token{"kw", strings.ToUpper(w)})
			} else {
				out = append(out, token{"ident", w})
			}
			i = j
		default:
			for _, op := range []string{"<=", ">=", "<>", "!=", "=", "<", ">", "(", ")", ",", "+", "-"} {
				if strings.HasPrefix(s[i:], op) {
					out = append(out, token{"op", op})
					i += len(op)
					goto next
				}
			}
			return nil, fmt.Errorf("unexpected %q", s[i:])
		next:
		}
	}
	return out, nil
}

type parser struct {
	toks []token
	pos  int
	cols map[string]bool // referenced columns
}

func (p *parser) peek() token {
	if p.pos < len(p.toks) {
		return p.toks[p.pos]
	}
	return token{}
}

func (p *parser) accept(kind, s string) bool {
	t := p.peek()
	if t.kind == kind && t.s == s {
		p.pos++
		return true
	}
	return false
}

func (p *parser) expect(kind, s string) error {
	if !p.accept(kind, s) {
		return fmt.Errorf("expected %s near %q", s, p.peek().s)
	}
	return nil
}

// where is a parsed condition and the columns it uses.
type where struct {
	x    expr
	cols map[string]bool
}

func parseWhere(s string) (*where, error) {
	toks, err := lex(s)
	if err != nil {
		return nil, err
	}
	p := &parser{toks: toks, cols: map[string]bool{}}
	x, err := p.or()
	if err != nil {
		return nil, err
	}
	if p.pos != len(p.toks) {
		return nil, fmt.Errorf("unexpected %q (supported: comparisons, AND, OR, NOT, IS NULL, LIKE, IN, BETWEEN, NOW() - INTERVAL N DAY)", p.peek().s)
	}
	return &where{x: x, cols: p.cols}, nil
}

func (p *parser) or() (expr, error) {
	l, err := p.and()
	if err != nil {
		return nil, err
	}
	for p.accept("kw", "OR") {
		r, err := p.and()
		if err != nil {
			return nil, err
		}
		l = binOp{"OR", l, r}
	}
	return l, nil
}

func (p *parser) and() (expr, error) {
	l, err := p.not()
	if err != nil {
		return nil, err
	}
	for p.accept("kw", "AND") {
		r, err := p.not()
		if err != nil {
			return nil, err
		}
		l = binOp{"AND", l, r}
	}
	return l, nil
}

func (p *parser) not() (expr, error) {
	if p.accept("kw", "NOT") {
		x, err := p.not()
		return notExpr{x}, err
	}
	return p.predicate()
}

func (p *parser) predicate() (expr, error) {
	l, err := p.operand()
	if err != nil {
		return nil, err
	}
	t := p.peek()
	if t.kind == "op" {
		switch t.s {
		case "=", "<>", "!=", "<", "<=", ">", ">=":
			p.pos++
			r, err := p.operand()
			if err != nil {
				return nil, err
			}
			return binOp{t.s, l, r}, nil
		}
	}
	if p.accept("kw", "IS") {
		not := p.accept("kw", "NOT")
		if err := p.expect("kw", "NULL"); err != nil {
			return nil, err
		}
		return isNull{l, not}, nil
	}
	not := p.accept("kw", "NOT")
	switch {
	case p.accept("kw", "LIKE"):
		pat := p.peek()
		if pat.kind != "str" {
			return nil, fmt.Errorf("LIKE needs a string pattern")
		}
		p.pos++
		return likeExpr{l, likeRegexp(pat.s), not}, nil
	case p.accept("kw", "IN"):
		if err := p.expect("op", "("); err != nil {
			return nil, err
		}
		var list []expr
		for {
			x, err := p.operand()
			if err != nil {
				return nil, err
			}
			list = append(list, x)
			if !p.accept("op", ",") {
				break
			}
		}
		if err := p.expect("op", ")"); err != nil {
			return nil, err
		}
		return inExpr{l, list, not}, nil
	case p.accept("kw", "BETWEEN"):
		lo, err := p.operand()
		if err != nil {
			return nil, err
		}
		if err := p.expect("kw", "AND"); err != nil {
			return nil, err
		}
		hi, err := p.operand()
		if err != nil {
			return nil, err
		}
		var x expr = binOp{"AND", binOp{">=", l, lo}, binOp{"<=", l, hi}}
		if not {
			x = notExpr{x}
		}
		return x, nil
	}
	if not {
		return nil, fmt.Errorf("expected LIKE, IN or BETWEEN after NOT")
	}
	return l, nil
}

func (p *parser) operand() (expr, error) {
	t := p.peek()
	switch t.kind {
	case "str":
		p.pos++
		return literal{value{s: t.s}}, nil
	case "num":
		p.pos++
		return literal{value{s: t.s}}, nil
	case "kw":
		switch t.s {
		case "NULL":
			p.pos++
			return literal{vUnknown}, nil
		case "TRUE":
			p.pos++
			return literal{vTrue}, nil
		case "FALSE":
			p.pos++
			return literal{vFalse}, nil
		}
	case "op":
		if t.s == "(" {
			p.pos++
			x, err := p.or()
			if err != nil {
				return nil, err
			}
			return x, p.expect("op", ")")
		}
		if t.s == "-" && p.pos+1 < len(p.toks) && p.toks[p.pos+1].kind == "num" {
			p.pos += 2
			return literal{value{s: "-" + p.toks[p.pos-1].s}}, nil
		}
	case "ident":
		p.pos++
		up := strings.ToUpper(t.s)
		switch up {
		case "NOW", "CURRENT_TIMESTAMP", "CURDATE", "CURRENT_DATE", "UTC_TIMESTAMP":
			if p.accept("op", "(") {
				if err := p.expect("op", ")"); err != nil {
					return nil, err
				}
			}
			n := nowExpr{date: up == "CURDATE" || up == "CURRENT_DATE"}
			if p.peek().kind == "op" && (p.peek().s == "-" || p.peek().s == "+") &&
				p.pos+1 < len(p.toks) && p.toks[p.pos+1].s == "INTERVAL" {
				n.sign = 1
				if p.peek().s == "-" {
					n.sign = -1
				}
				p.pos += 2
				num := p.peek()
				if num.kind != "num" && num.kind != "str" {
					return nil, fmt.Errorf("INTERVAL needs a number")
				}
				p.pos++
				v, err := strconv.Atoi(num.s)
				if err != nil {
					return nil, fmt.Errorf("INTERVAL %q: whole numbers only", num.s)
				}
				n.n = v
				unit := strings.ToUpper(p.peek().s)
				switch unit {
				case "SECOND", "MINUTE", "HOUR", "DAY", "WEEK", "MONTH", "YEAR":
				default:
					return nil, fmt.Errorf("INTERVAL unit %q: use SECOND, MINUTE, HOUR, DAY, WEEK, MONTH or YEAR", p.peek().s)
				}
				p.pos++
				n.unit = unit
			}
			return n, nil
		}
		if p.peek().kind == "op" && p.peek().s == "(" {
			return nil, fmt.Errorf("function %s() is not supported (only NOW(), CURDATE())", t.s)
		}
		name := t.s
		if i := strings.LastIndexByte(name, '.'); i >= 0 {
			name = name[i+1:]
		}
		p.cols[name] = true
		return colRef{name}, nil
	}
	return nil, fmt.Errorf("unexpected %q", t.s)
}

func likeRegexp(pat string) *regexp.Regexp {
	var b strings.Builder
	b.WriteString("(?is)^")
	for i := 0; i < len(pat); i++ {
		switch c := pat[i]; c {
		case '%':
			b.WriteString(".*")
		case '_':
			b.WriteString(".")
		case '\\':
			if i+1 < len(pat) {
				i++
				b.WriteString(regexp.QuoteMeta(pat[i : i+1]))
			}
		default:
			b.WriteString(regexp.QuoteMeta(pat[i : i+1]))
		}
	}
	b.WriteString("$")
	return regexp.MustCompile(b.String())
}
