package sanitize

import (
	"testing"
	"time"
	"unicode/utf8"

	"github.com/lifeboat-backup/lifeboat/policies"
)

func FuzzParseWhere(f *testing.F) {
	for _, s := range []string{"a = 10", "a > 9.5 AND a < 11", "a >= 11 OR email LIKE '%@example.com'", "email NOT LIKE 'foo%'",
		"n IS NOT NULL", "NOT (n = 1)", "a IN (1, 2, 10)", "a NOT IN (1, 2)", "a BETWEEN 5 AND 10",
		"created_at > NOW() - INTERVAL 90 DAY", "`created_at` >= '2025-06-01'", "created_at < CURDATE() - INTERVAL 1 MONTH",
		"t.a = -10 OR TRUE", "a = 'it''s'", "email LIKE '\\%_x'", "((((a))))", "a = ", "SLEEP(1) = 0", "a = 'x",
		"created_at > NOW() + INTERVAL 99999999999999999999 YEAR", "created_at > NOW() - INTERVAL 9223372036854775807 SECOND"} {
		f.Add(s)
	}
	now := time.Date(2025, 6, 30, 12, 0, 0, 0, time.UTC)
	cols := map[string]int{"a": 0, "created_at": 1, "email": 2, "n": 3}
	row := [][]byte{[]byte("10"), []byte("2025-06-01 00:00:00"), []byte("Foo@Example.com"), nil}
	f.Fuzz(func(t *testing.T, s string) {
		w, err := parseWhere(s)
		if err != nil {
			return
		}
		// A parsed condition evaluates without panicking on rows that have
		// the columns it names (callers check that), NULL or not.
		c, r, nulls := map[string]int{}, append([][]byte{}, row...), make([][]byte, len(row))
		for name, i := range cols {
			c[name] = i
		}
		for name := range w.cols {
			if _, ok := c[name]; !ok {
				c[name] = len(r)
				r, nulls = append(r, []byte(name)), append(nulls, nil)
			}
		}
		truthy(w.x.eval(&env{row: r, cols: c, now: now}))
		truthy(w.x.eval(&env{row: nulls, cols: c, now: now}))
	})
}

func FuzzParseRule(f *testing.F) {
	for _, s := range []string{"fake:email", "fake:iban", "null", "keep", "mask:keep_last=4", "fixed:x", "hash",
		"fixed:{first_name}.{last_name}@example.com", "template:{email}", "template:none", "fixed:{nope}", "mask:keep_last=-1",
		"mask:keep_last=99999999999999999999", "fixed:", "fake:"} {
		f.Add(s, []byte("4111111111111234"))
	}
	fk := &faker{key: []byte("0123456789abcdef")}
	f.Fuzz(func(t *testing.T, s string, v []byte) {
		r, err := ParseRule(s)
		if err != nil {
			return
		}
		for _, col := range []*column{{typ: "varchar", max: 255}, {typ: "char", max: 2}, {typ: "text"}, {typ: "int"}} {
			out := fk.apply(&r, col, v)
			// Every rule fits the column except keep and fixed, whose values
			// are written as they are (a fixed value is the user's own).
			if col.max > 0 && utf8.Valid(v) && utf8.RuneCount(out) > col.max && r.Kind != policies.RuleKeep && r.Kind != policies.RuleFixed {
				t.Fatalf("rule %q on %s(%d): %d characters %q", s, col.typ, col.max, utf8.RuneCount(out), out)
			}
		}
	})
}
