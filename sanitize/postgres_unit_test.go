package sanitize

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/lifeboat-backup/lifeboat/policies"
)

func TestCopyFields(t *testing.T) {
	for _, tc := range []struct {
		field string
		want  []byte // nil: NULL
	}{
		{`\N`, nil},
		{``, []byte{}},
		{`plain`, []byte("plain")},
		{`a\tb\nc\\d\re`, []byte("a\tb\nc\\d\re")},
		{`\b\f\v`, []byte("\b\f\v")},
		{`\101\7x`, []byte("A\ax")},
		{`\x41\x4a\xg`, []byte("AJxg")},
		{`\N\N`, []byte("NN")},
		{`trailing\`, []byte(`trailing\`)},
	} {
		got, _ := pgDecode([]byte(tc.field), nil)
		require.Equal(t, tc.want, got, tc.field)
	}
	// What appendCopyField writes decodes back to the same bytes.
	for _, v := range [][]byte{nil, {}, []byte("x\ty\nz\\\r"), []byte("Müller \x01")} {
		enc := appendCopyField([]byte{}, v)
		require.NotContains(t, string(enc), "\t")
		require.NotContains(t, string(enc), "\n")
		got, _ := pgDecode(enc, nil)
		require.Equal(t, v, got)
	}
}

func TestPGSchema(t *testing.T) {
	text := `CREATE TABLE public.oro_user (
    id integer NOT NULL,
    "Odd ""Name""" character varying(40),
    email character varying(255) NOT NULL,
    code character(2) DEFAULT 'DE'::bpchar NOT NULL,
    note text COLLATE pg_catalog."C",
    born date,
    seen timestamp(0) without time zone,
    ip inet,
    tags text[],
    attrs jsonb,
    ok boolean DEFAULT true NOT NULL,
    CONSTRAINT chk CHECK ((id > 0))
);
CREATE UNLOGGED TABLE "Sales"."Log" (
    line text
);
CREATE VIEW public.v AS
 SELECT 1;
`
	tables, err := parsePGSchema(strings.NewReader(text))
	require.NoError(t, err)
	require.Len(t, tables, 2)
	got := map[string]column{}
	for _, c := range tables["public.oro_user"].cols {
		got[c.name] = *c
	}
	require.Equal(t, map[string]column{
		"id":         {name: "id", typ: "int"},
		`Odd "Name"`: {name: `Odd "Name"`, typ: "varchar", max: 40, nullable: true},
		"email":      {name: "email", typ: "varchar", max: 255},
		"code":       {name: "code", typ: "char", max: 2},
		"note":       {name: "note", typ: "text", nullable: true},
		"born":       {name: "born", typ: "date", nullable: true},
		"seen":       {name: "seen", typ: "timestamp", nullable: true},
		"ip":         {name: "ip", typ: "inet", nullable: true},
		"tags":       {name: "tags", typ: "array", nullable: true},
		"attrs":      {name: "attrs", typ: "pgjsonb", nullable: true},
		"ok":         {name: "ok", typ: "pg:boolean"},
	}, got)
	require.Equal(t, "line", tables["Sales.Log"].cols[0].name)

	schema, name, cols, ok := parseCopyHeader([]byte("COPY \"Sales\".\"Log\" (line, \"Odd, col\") FROM stdin;\n"))
	require.True(t, ok)
	require.Equal(t, []string{"Sales", "Log"}, []string{schema, name})
	require.Equal(t, []string{"line", "Odd, col"}, cols)
	_, _, _, ok = parseCopyHeader([]byte("COPY public.t (a) TO stdout;\n"))
	require.False(t, ok)
}

// TestPGSchemaPartitions: ATTACH PARTITION lines make a partition take
// its root's rules; attaches that do not add up are errors naming the line.
func TestPGSchemaPartitions(t *testing.T) {
	const tables = `CREATE TABLE public.contact (
    id integer NOT NULL,
    email text
)
PARTITION BY LIST (region);
CREATE TABLE public.contact_eu (
    id integer NOT NULL,
    email text
)
PARTITION BY RANGE (id);
CREATE TABLE public.contact_eu_low (
    id integer NOT NULL,
    email text
);
CREATE TABLE "Odd"."Other ATTACH PARTITION x" (
    id integer NOT NULL,
    email text
);
`
	tbl, err := parsePGSchema(strings.NewReader(tables + `ALTER TABLE ONLY public.contact ATTACH PARTITION public.contact_eu FOR VALUES IN ('de', 'fr');
ALTER TABLE ONLY public.contact_eu ATTACH PARTITION public.contact_eu_low FOR VALUES FROM (0) TO (50);
ALTER TABLE ONLY public.contact ATTACH PARTITION "Odd"."Other ATTACH PARTITION x" DEFAULT;
ALTER INDEX public.contact_eu_pkey ATTACH PARTITION public.contact_pkey;
`))
	require.NoError(t, err)
	require.Nil(t, tbl["public.contact"].parent)
	require.Equal(t, tbl["public.contact"], tbl["public.contact_eu"].parent)
	require.Equal(t, tbl["public.contact_eu"], tbl["public.contact_eu_low"].parent)
	require.Equal(t, tbl["public.contact"], tbl["public.contact_eu_low"].root())
	require.Equal(t, tbl["public.contact"], tbl[`Odd.Other ATTACH PARTITION x`].root())

	c, err := Compile(policies.Sanitize{Rules: map[string]policies.TableRules{
		"contact": {Columns: map[string]string{"email": "fake:email"}, Where: "id > 3"},
	}}, Options{Key: []byte("0123456789abcdef0123456789abcdef")})
	require.NoError(t, err)
	plans, err := c.planPG(tbl)
	require.NoError(t, err)
	for _, key := range []string{"public.contact", "public.contact_eu", "public.contact_eu_low", "Odd.Other ATTACH PARTITION x"} {
		require.Contains(t, plans[key].rules, "email", key)
		require.NotNil(t, plans[key].where, key)
	}
	require.Equal(t, "public.contact_eu_low (partition of public.contact)", plans["public.contact_eu_low"].qualified())

	for _, tc := range []struct{ attach, want string }{
		{"ALTER TABLE ONLY public.contact ATTACH PARTITION public.nope FOR VALUES IN (1);", "a partition of a table without its CREATE TABLE"},
		{"ALTER TABLE ONLY public.nope ATTACH PARTITION public.contact_eu FOR VALUES IN (1);", "a partition of a table without its CREATE TABLE"},
		{"ALTER TABLE ONLY public.contact ATTACH PARTITION public.contact_eu FOR VALUES IN (1);\nALTER TABLE ONLY public.contact_eu_low ATTACH PARTITION public.contact_eu DEFAULT;", "already a partition of public.contact"},
		{"ALTER TABLE ONLY public.contact ATTACH PARTITION public.contact_eu FOR VALUES IN (1);\nALTER TABLE ONLY public.contact_eu ATTACH PARTITION public.contact DEFAULT;", "partitions form a cycle"},
		{"ALTER TABLE ONLY public.contact ATTACH PARTITION public.contact_eu;", "no FOR VALUES or DEFAULT after the partition public.contact_eu"},
		{"ALTER TABLE ONLY public.contact DETACH x ATTACH PARTITION public.contact_eu DEFAULT;", `unexpected " DETACH x ATTACH PARTITION public.contact_eu DEFAULT;"`},
		{`ALTER TABLE ONLY public."contact ATTACH PARTITION public.contact_eu DEFAULT;`, "unterminated quoted identifier"},
	} {
		_, err := parsePGSchema(strings.NewReader(tables + tc.attach + "\n"))
		require.ErrorContains(t, err, tc.want, tc.attach)
	}
}

// TestPGCopyWithoutCreateTable: COPY data for a table the schema does
// not create is a rules error in exports and lint, not rows passed on
// unsanitized.
func TestPGCopyWithoutCreateTable(t *testing.T) {
	input := "SET x = 1;\nCOPY public.ghost (id, email) FROM stdin;\n1\tme@mail.test\n\\.\n"
	var out bytes.Buffer
	err := runPipeline(context.Background(), 1, 0, []byte("0123456789abcdef0123456789abcdef"), &out, func(p *pipeline) error {
		return pgStream(p, strings.NewReader(input), "shop", map[string]*tablePlan{}, time.Now(), func(string, *tablePlan) *TableStats { return &TableStats{} })
	})
	require.ErrorIs(t, err, ErrRules)
	require.ErrorContains(t, err, `database "shop": public.ghost has COPY data but no CREATE TABLE`)
	require.NotContains(t, out.String(), "me@mail.test")

	err = samplePG(strings.NewReader(input), 10, func(key string, cols []string) (*sampler, error) {
		return nil, noCreateTable("shop", key)
	})
	require.ErrorIs(t, err, ErrRules)
}

// TestPGSchemaInherits: a table inheriting from others (INHERITS) gets
// their columns, parents' first, and their rules for them, its own rules
// on top; a bad INHERITS line is an error naming the table.
func TestPGSchemaInherits(t *testing.T) {
	const schema = `CREATE TABLE public.person (
    id integer NOT NULL,
    email text
);
CREATE TABLE public.audit (
    changed_at timestamp without time zone,
    ip text
);
CREATE TABLE public.customer (
    phone text
)
INHERITS (public.person, public.audit);
CREATE TABLE "VIP"."gold customer" (
)
INHERITS (public.customer);
CREATE TABLE public.other (
    note text
)
PARTITION BY LIST (note);
INHERITS (public.person);
`
	tbl, err := parsePGSchema(strings.NewReader(schema))
	require.NoError(t, err)
	names := func(key string) []string {
		var out []string
		for _, c := range tbl[key].cols {
			out = append(out, c.name)
		}
		return out
	}
	require.Equal(t, []string{"id", "email", "changed_at", "ip", "phone"}, names("public.customer"))
	require.Equal(t, []string{"id", "email", "changed_at", "ip", "phone"}, names("VIP.gold customer"))
	require.Equal(t, []string{"note"}, names("public.other"), "an INHERITS line not right after a table's ) is not its")
	require.Equal(t, []*pgTable{tbl["public.person"], tbl["public.audit"], tbl["public.customer"]}, tbl["VIP.gold customer"].ancestors())

	c, err := Compile(policies.Sanitize{Rules: map[string]policies.TableRules{
		"person":   {Columns: map[string]string{"email": "fake:email"}},
		"audit":    {Columns: map[string]string{"ip": "fake:ip"}},
		"customer": {Columns: map[string]string{"phone": "fake:phone", "email": "null"}},
	}}, Options{Key: []byte("0123456789abcdef0123456789abcdef")})
	require.NoError(t, err)
	plans, err := c.planPG(tbl)
	require.NoError(t, err)
	rule := func(p *tablePlan, col string) string {
		r := p.rules[col]
		if r.Arg == "" {
			return r.Kind
		}
		return r.Kind + ":" + r.Arg
	}
	require.Equal(t, "fake:ip", rule(plans["public.customer"], "ip"))
	require.Equal(t, "fake:phone", rule(plans["public.customer"], "phone"))
	require.Equal(t, "null", rule(plans["public.customer"], "email"), "the child's own rule wins")
	gold := plans["VIP.gold customer"]
	require.Equal(t, "null", rule(gold, "email"), "a grandchild: the nearest ancestor's rule")
	require.Equal(t, "fake:ip", rule(gold, "ip"))
	require.Equal(t, `VIP.gold customer (inherits public.customer)`, gold.qualified())
	require.Equal(t, "fake:email", rule(plans["public.person"], "email"))
	require.NotContains(t, plans["public.person"].rules, "phone")

	for _, tc := range []struct{ schema, want string }{
		{"CREATE TABLE public.a (\n    x text\n)\nINHERITS (public.nope);\n", "public.a: \"INHERITS (public.nope);\": inherits from public.nope, which has no CREATE TABLE"},
		{"CREATE TABLE public.a (\n    x text\n)\nINHERITS (public.b;\n", `unexpected ";"`},
		{"CREATE TABLE public.a (\n)\nINHERITS (public.b);\nCREATE TABLE public.b (\n)\nINHERITS (public.a);\n", "inheritance forms a cycle"},
	} {
		_, err := parsePGSchema(strings.NewReader(tc.schema))
		require.ErrorContains(t, err, tc.want, tc.schema)
	}
}
