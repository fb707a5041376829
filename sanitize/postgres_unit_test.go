package sanitize

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
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
