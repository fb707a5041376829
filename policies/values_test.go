package policies

import (
	"encoding/json"
	"fmt"
	"os"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
)

func TestParseDuration(t *testing.T) {
	for in, want := range map[string]time.Duration{
		"0": 0, "15m": 15 * time.Minute, "26h": 26 * time.Hour, "7d": 7 * 24 * time.Hour, "2w": 14 * 24 * time.Hour,
		"1d12h": 36 * time.Hour, "1h30m": 90 * time.Minute, "60s": time.Minute, "1.5h": 90 * time.Minute, "500ms": 500 * time.Millisecond,
	} {
		got, err := ParseDuration(in)
		require.NoError(t, err, in)
		assert.Equal(t, want, got, in)
	}
	for _, in := range []string{"", "7", "7 d", "-1h", "1y", "h", "d7", "1h 30m"} {
		_, err := ParseDuration(in)
		assert.Error(t, err, in)
	}
	assert.Equal(t, "7d", Duration(7*24*time.Hour).String())
	assert.Equal(t, "1d2h", Duration(26*time.Hour).String())
	assert.Equal(t, "15m", Duration(15*time.Minute).String())
	assert.Equal(t, "0s", Duration(0).String())
}

func TestCalendar(t *testing.T) {
	berlin, err := time.LoadLocation("Europe/Berlin")
	require.NoError(t, err)
	from := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC) // a Wednesday
	tests := []struct {
		expr string
		next time.Time
	}{
		{"*-*-* 02:30:00", time.Date(2026, 11, 26, 2, 30, 0, 0, time.UTC)},
		{"Sun *-*-* 05:00:00", time.Date(2026, 11, 29, 5, 0, 0, 0, time.UTC)},
		{"daily", time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC)},
		{"weekly", time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC)},
		{"monthly", time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)},
		{"hourly", time.Date(2026, 11, 25, 13, 0, 0, 0, time.UTC)},
		{"Mon..Fri 02:00", time.Date(2026, 11, 26, 2, 0, 0, 0, time.UTC)},
		{"Sat,Sun 03:00", time.Date(2026, 11, 28, 3, 0, 0, 0, time.UTC)},
		{"*-*-01 04:00", time.Date(2026, 12, 1, 4, 0, 0, 0, time.UTC)},
		{"2027-01-01", time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)},
		{"*:0/15", time.Date(2026, 11, 25, 12, 15, 0, 0, time.UTC)},
		{"*-*-* 00,12:30", time.Date(2026, 11, 25, 12, 30, 0, 0, time.UTC)},
		{"*-*-* 02:30:00 Europe/Berlin", time.Date(2026, 11, 26, 2, 30, 0, 0, berlin)},
		{"quarterly", time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)},
	}
	for _, tt := range tests {
		c, err := ParseCalendar(tt.expr)
		require.NoError(t, err, tt.expr)
		assert.Equal(t, tt.expr, c.String())
		assert.True(t, tt.next.Equal(c.Next(from)), "%s: got %v want %v", tt.expr, c.Next(from), tt.next)
	}
	for _, bad := range []string{"", "nightly", "*-*-* 25:00", "*-13-01", "Mon..Fry 02:00", "Fri..Mon 02:00",
		"*-*-* 02:30:00 Mars/Base", "02:00 03:00", "*-*-32", "*:*/0", "1-2-3-4", "*-*-* 02:30:00.5", "*-*~01"} {
		_, err := ParseCalendar(bad)
		assert.Error(t, err, bad)
	}
}

func TestSize(t *testing.T) {
	for in, want := range map[string]Size{"1048576": 1 << 20, "500KiB": 500 << 10, "10MB": 10e6, "2 GiB": 2 << 30} {
		var z Size
		require.NoError(t, z.parseScalar(in), in)
		assert.Equal(t, want, z, in)
	}
	var z Size
	assert.Error(t, z.parseScalar("10 parsecs"))
}

func TestColumnRules(t *testing.T) {
	for _, ok := range []string{"null", "hash", "keep", "mask", "mask:2", "fixed:", "fixed:x:y", "fake:email"} {
		_, err := ParseColumnRule(ok)
		assert.NoError(t, err, ok)
	}
	for _, bad := range []string{"", "nul", "fake:", "fake:pet", "mask:x", "truncate", "hash:1"} {
		_, err := ParseColumnRule(bad)
		assert.Error(t, err, bad)
	}
	r, _ := ParseColumnRule("mask")
	assert.Equal(t, ColumnRule{Kind: RuleMask, Arg: "4"}, r)
}

// TestSchema checks that the schema is JSON, covers every key of the
// types and accepts the reference policy and every preset (a small
// validator: type, properties, additionalProperties, required, items,
// enum, const, oneOf, allOf with if/then).
func TestSchema(t *testing.T) {
	raw, err := JSONSchema()
	require.NoError(t, err)
	var schema map[string]any
	require.NoError(t, json.Unmarshal(raw, &schema))
	assert.Equal(t, "https://json-schema.org/draft/2020-12/schema", schema["$schema"])
	props := schema["properties"].(map[string]any)
	for _, fi := range structFields(reflectTypeOfPolicy) {
		assert.Contains(t, props, fi.key)
	}
	for _, k := range []string{"version", "name", "host", "repositories", "targets", "schedule", "retention",
		"objectives", "drill", "sanitize", "notify", "metrics"} {
		assert.Contains(t, props, k)
	}

	docs := map[string][]byte{}
	docs["reference"], err = os.ReadFile("testdata/policy-example.yaml")
	require.NoError(t, err)
	for _, p := range append([]string{""}, Presets...) {
		y, err := Example(p)
		require.NoError(t, err)
		docs["preset "+p] = []byte(y)
	}
	for name, data := range docs {
		var v any
		require.NoError(t, yaml.Unmarshal(data, &v))
		assert.Empty(t, schemaErrors(schema, toJSON(v), ""), name)
	}

	// And it rejects what the validator rejects structurally.
	bad := map[string]any{"version": 1, "name": "x", "repositories": map[string]any{"primary": map[string]any{"url": "mem://"}},
		"targets": []any{map[string]any{"name": "m", "kind": "files", "paths": []any{"/x"}, "lock_mode": "ftwrl"}},
		"bogus":   1}
	errs := schemaErrors(schema, bad, "")
	assert.Contains(t, errs, "/bogus: not allowed")
	assert.Contains(t, errs, "/targets/0/lock_mode: not allowed")
}

var reflectTypeOfPolicy = reflect.TypeFor[Policy]()

// toJSON round-trips a YAML value through JSON (map[string]any keys,
// float64 numbers).
func toJSON(v any) any {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	var out any
	_ = json.Unmarshal(b, &out)
	return out
}

func schemaErrors(s map[string]any, v any, at string) []string {
	var errs []string
	fail := func(format string, args ...any) { errs = append(errs, at+": "+fmt.Sprintf(format, args...)) }
	if typ, ok := s["type"]; ok {
		types := []any{typ}
		if l, ok := typ.([]any); ok {
			types = l
		}
		if !slices.ContainsFunc(types, func(t any) bool { return jsonType(v, t.(string)) }) {
			fail("want %v, got %T", typ, v)
			return errs
		}
	}
	if enum, ok := s["enum"].([]any); ok && !slices.Contains(enum, v) {
		fail("%v not in enum", v)
	}
	if c, ok := s["const"]; ok && c != v {
		fail("%v is not %v", v, c)
	}
	if one, ok := s["oneOf"].([]any); ok {
		n := 0
		for _, sub := range one {
			if len(schemaErrors(sub.(map[string]any), v, at)) == 0 {
				n++
			}
		}
		if n != 1 {
			fail("matches %d of oneOf", n)
		}
	}
	if all, ok := s["allOf"].([]any); ok {
		for _, sub := range all {
			sm := sub.(map[string]any)
			if cond, ok := sm["if"].(map[string]any); ok {
				if len(schemaErrors(cond, v, at)) == 0 {
					errs = append(errs, schemaErrors(sm["then"].(map[string]any), v, at)...)
				}
				continue
			}
			errs = append(errs, schemaErrors(sm, v, at)...)
		}
	}
	switch x := v.(type) {
	case map[string]any:
		props, _ := s["properties"].(map[string]any)
		for _, r := range asList(s["required"]) {
			if _, ok := x[r.(string)]; !ok {
				fail("%s required", r)
			}
		}
		for k, val := range x {
			if ps, ok := props[k]; ok {
				if psm, ok := ps.(map[string]any); ok {
					errs = append(errs, schemaErrors(psm, val, at+"/"+k)...)
				}
				continue
			}
			switch ap := s["additionalProperties"].(type) {
			case bool:
				if !ap {
					errs = append(errs, at+"/"+k+": not allowed")
				}
			case map[string]any:
				errs = append(errs, schemaErrors(ap, val, at+"/"+k)...)
			}
		}
	case []any:
		if items, ok := s["items"].(map[string]any); ok {
			for i, e := range x {
				errs = append(errs, schemaErrors(items, e, fmt.Sprintf("%s/%d", at, i))...)
			}
		}
	}
	return errs
}

func asList(v any) []any {
	l, _ := v.([]any)
	return l
}

func jsonType(v any, t string) bool {
	switch t {
	case "object":
		_, ok := v.(map[string]any)
		return ok
	case "array":
		_, ok := v.([]any)
		return ok
	case "string":
		_, ok := v.(string)
		return ok
	case "integer":
		f, ok := v.(float64)
		return ok && f == float64(int64(f))
	case "number":
		_, ok := v.(float64)
		return ok
	case "boolean":
		_, ok := v.(bool)
		return ok
	case "null":
		return v == nil
	}
	return false
}

// TestDocsListEveryKey keeps docs/policy.md in step with the types.
func TestDocsListEveryKey(t *testing.T) {
	doc, err := os.ReadFile("../docs/policy.md")
	if err != nil {
		t.Skip("docs/policy.md not found")
	}
	var walk func(rt reflect.Type, prefix string)
	walk = func(rt reflect.Type, prefix string) {
		for _, fi := range structFields(rt) {
			ft := rt.Field(fi.index).Type
			p := prefix + fi.key
			if ft.Kind() == reflect.Slice && ft.Elem().Kind() == reflect.Struct {
				p += "[]"
				ft = ft.Elem()
			}
			assert.Contains(t, string(doc), "`"+p+"`", "docs/policy.md lacks %s", p)
			if ft.Kind() == reflect.Struct && ft != reflect.TypeFor[Calendar]() {
				walk(ft, p+".")
			}
		}
	}
	walk(reflect.TypeFor[Policy](), "")
	for _, o := range EnvOverrides {
		assert.Contains(t, string(doc), "`"+o.Var+"`")
	}
}
