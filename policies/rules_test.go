package policies

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestColumnRuleForms(t *testing.T) {
	for _, tc := range []struct{ in, kind, arg, err string }{
		{"fake:email", RuleFake, "email", ""},
		{"fake: email", RuleFake, "email", ""},
		{"mask", RuleMask, "4", ""},
		{"mask:2", RuleMask, "2", ""},
		{"mask:keep_last=3", RuleMask, "3", ""},
		{"mask: keep_last=0", RuleMask, "0", ""},
		{"fixed:", RuleFixed, "", ""},
		{"fixed: two  words ", RuleFixed, "two  words ", ""},
		{"template:{first_name}@example.com", RuleTemplate, "{first_name}@example.com", ""},
		{"mask:keep_last=x", "", "", "mask:keep_last=N"},
		{"mask:-1", "", "", "mask:keep_last=N"},
		{"template:plain", "", "", "{KIND} placeholders"},
		{"fake", "", "", "unknown fake kind"},
		{"hash:x", "", "", "takes no argument"},
		{"truncate", "", "", "is a table rule"},
		{"scramble", "", "", "is not a column rule"},
	} {
		r, err := ParseColumnRule(tc.in)
		if tc.err != "" {
			require.ErrorContains(t, err, tc.err, tc.in)
			continue
		}
		require.NoError(t, err, tc.in)
		require.Equal(t, ColumnRule{Kind: tc.kind, Arg: tc.arg}, r, tc.in)
	}
}

func TestParseRules(t *testing.T) {
	good := `customer_entity:
  email: fake:email
  phone: {mask: keep_last=4}
  note: {keep: }
  display: {template: "{first_name} {last_name}"}
  dob: null
shop.sales_order:
  where: created_at > NOW() - INTERVAL 90 DAY
  customer_email: "fake: email"
report_event: truncate
`
	rules, err := ParseRules("rules.yaml", []byte(good))
	require.NoError(t, err)
	require.Equal(t, map[string]TableRules{
		"customer_entity": {Columns: map[string]string{"email": "fake:email", "phone": "mask:keep_last=4", "note": "keep",
			"display": "template:{first_name} {last_name}", "dob": "null"}},
		"shop.sales_order": {Where: "created_at > NOW() - INTERVAL 90 DAY", Columns: map[string]string{"customer_email": "fake: email"}},
		"report_event":     {Action: TableTruncate},
	}, rules)

	for _, tc := range []struct{ name, in, want string }{
		{"empty", "", "rules.yaml: empty rules file"},
		{"not a mapping", "- a\n- b\n", "rules.yaml:1:1: a rules file is a mapping of tables to rules, got a list"},
		{"bad rule", "t:\n  email: fake:mail\n", `rules.yaml:2:10: t.email: "fake:mail": unknown fake kind "mail"`},
		{"bad mask", "t:\n  phone: {mask: keep_last=x}\n", `rules.yaml:2:11: t.phone: "mask:keep_last=x"`},
		{"bad table rule", "t: drop\n", `rules.yaml:1:4: t: "drop" is not a table rule`},
		{"empty table", "t:\n", "rules.yaml:1:1: t: empty table rule"},
		{"two keys", "t:\n  a: {fake: email, mask: 4}\n", "rules.yaml:2:6: t.a: expected a rule"},
		{"syntax", "t:\n  a: [\n", "rules.yaml:2: YAML syntax"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseRules("rules.yaml", []byte(tc.in))
			require.Error(t, err)
			require.Contains(t, err.Error(), tc.want)
		})
	}
	_, err = LoadRules(filepath.Join(t.TempDir(), "missing.yaml"))
	require.ErrorIs(t, err, os.ErrNotExist)
}
