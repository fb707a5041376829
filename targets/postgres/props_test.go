package postgres

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func strp(s string) *string { return &s }

func TestCreateOptions(t *testing.T) {
	for _, tc := range []struct {
		name string
		p    DatabaseProps
		want string
	}{
		{"libc", DatabaseProps{Encoding: "LATIN1", LocaleProvider: "libc", Collate: "C", Ctype: "C"},
			` ENCODING 'LATIN1' LC_COLLATE 'C' LC_CTYPE 'C'`},
		{"icu", DatabaseProps{Encoding: "UTF8", LocaleProvider: "icu", Locale: "de-DE", ICURules: "&a < b", Collate: "C.UTF-8", Ctype: "C.UTF-8"},
			` ENCODING 'UTF8' LOCALE_PROVIDER icu ICU_LOCALE 'de-DE' ICU_RULES '&a < b' LC_COLLATE 'C.UTF-8' LC_CTYPE 'C.UTF-8'`},
		{"builtin", DatabaseProps{Encoding: "UTF8", LocaleProvider: "builtin", Locale: "C.UTF-8", Collate: "C", Ctype: "C"},
			` ENCODING 'UTF8' LOCALE_PROVIDER builtin BUILTIN_LOCALE 'C.UTF-8' LC_COLLATE 'C' LC_CTYPE 'C'`},
		{"quotes", DatabaseProps{Encoding: "UTF8", Collate: "it's"}, ` ENCODING 'UTF8' LC_COLLATE 'it''s'`},
		{"empty", DatabaseProps{}, ``},
	} {
		t.Run(tc.name, func(t *testing.T) { require.Equal(t, tc.want, tc.p.CreateOptions()) })
	}
}

func TestStatements(t *testing.T) {
	full := DatabaseProps{Owner: "oro_app", ConnectionLimit: 50, Comment: strp("shop's db"),
		ACL:          []string{"=T/oro_app", "oro_app=CTc/oro_app", `"Read Only"=c*T/oro_app`, "gone=c/oro_app"},
		Settings:     []string{`search_path="$user", public, "My ""Schema"""`, "work_mem=64MB", "app.tenant=x'y", "statement_timeout=0"},
		RoleSettings: map[string][]string{"oro_app": {"work_mem=32MB"}, "gone": {"work_mem=1MB"}}}
	roles := map[string]bool{"lifeboat": true, "oro_app": true, "Read Only": true}
	for _, tc := range []struct {
		name  string
		p     DatabaseProps
		a     Apply
		want  []string
		warns []string
	}{
		{"full", full, Apply{Database: "oro copy", Owner: "lifeboat", Roles: roles}, []string{
			`ALTER DATABASE "oro copy" OWNER TO "oro_app"`,
			`ALTER DATABASE "oro copy" CONNECTION LIMIT 50`,
			`COMMENT ON DATABASE "oro copy" IS 'shop''s db'`,
			`ALTER DATABASE "oro copy" SET search_path TO '$user', 'public', 'My "Schema"'`,
			`ALTER DATABASE "oro copy" SET work_mem TO '64MB'`,
			`ALTER DATABASE "oro copy" SET "app.tenant" TO 'x''y'`,
			`ALTER DATABASE "oro copy" SET statement_timeout TO '0'`,
			`ALTER ROLE "oro_app" IN DATABASE "oro copy" SET work_mem TO '32MB'`,
			`REVOKE ALL ON DATABASE "oro copy" FROM PUBLIC`,
			`REVOKE ALL ON DATABASE "oro copy" FROM "oro_app"`,
			`GRANT TEMPORARY ON DATABASE "oro copy" TO PUBLIC`,
			`GRANT CREATE, TEMPORARY, CONNECT ON DATABASE "oro copy" TO "oro_app"`,
			`GRANT TEMPORARY ON DATABASE "oro copy" TO "Read Only"`,
			`GRANT CONNECT ON DATABASE "oro copy" TO "Read Only" WITH GRANT OPTION`,
		}, []string{
			`database oro copy: settings of role "gone" left out: the role does not exist here`,
			`database oro copy: grant to role "gone" left out: the role does not exist here`,
		}},
		{"no owner, no privileges", full, Apply{Database: "x", Owner: "lifeboat", Roles: roles, NoOwner: true, NoPrivileges: true}, []string{
			`ALTER DATABASE "x" CONNECTION LIMIT 50`,
			`COMMENT ON DATABASE "x" IS 'shop''s db'`,
			`ALTER DATABASE "x" SET search_path TO '$user', 'public', 'My "Schema"'`,
			`ALTER DATABASE "x" SET work_mem TO '64MB'`,
			`ALTER DATABASE "x" SET "app.tenant" TO 'x''y'`,
			`ALTER DATABASE "x" SET statement_timeout TO '0'`,
			`ALTER ROLE "oro_app" IN DATABASE "x" SET work_mem TO '32MB'`,
		}, []string{`database x: settings of role "gone" left out: the role does not exist here`}},
		{"owner missing: the owner's privileges go to the restoring user", DatabaseProps{Owner: "gone", ConnectionLimit: -1, ACL: []string{"gone=CTc/gone", "other=c/gone"}},
			Apply{Database: "x", Owner: "lifeboat", Roles: roles}, []string{
				`REVOKE ALL ON DATABASE "x" FROM PUBLIC`,
				`REVOKE ALL ON DATABASE "x" FROM "lifeboat"`,
				`GRANT CREATE, TEMPORARY, CONNECT ON DATABASE "x" TO "lifeboat"`,
			}, []string{
				`database x: owner role "gone" does not exist here; owned by "lifeboat"`,
				`database x: grant to role "other" left out: the role does not exist here`,
			}},
		{"defaults: nothing to do", DatabaseProps{Owner: "lifeboat", ConnectionLimit: -1}, Apply{Database: "x", Owner: "lifeboat", Roles: roles}, nil, nil},
		{"empty search_path, empty comment", DatabaseProps{Owner: "lifeboat", ConnectionLimit: -1, Comment: strp(""), Settings: []string{`search_path=""`}},
			Apply{Database: "x", Owner: "lifeboat", Roles: roles}, []string{
				`COMMENT ON DATABASE "x" IS ''`,
				`ALTER DATABASE "x" SET search_path TO ''`,
			}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stmts, warns, err := tc.p.Statements(tc.a)
			require.NoError(t, err)
			var got []string
			for _, st := range stmts {
				got = append(got, st.SQL)
			}
			require.Equal(t, tc.want, got)
			require.Equal(t, tc.warns, warns)
		})
	}
}

func TestStatementsBadInput(t *testing.T) {
	a := Apply{Database: "oro", Owner: "lifeboat", Roles: map[string]bool{"r": true}}
	for _, tc := range []struct {
		name string
		p    DatabaseProps
		want string
	}{
		{"setting without =", DatabaseProps{Settings: []string{"work_mem"}}, `database oro: unparsable setting "work_mem" (want name=value)`},
		{"setting without name", DatabaseProps{Settings: []string{"=1"}}, `unparsable setting "" (want name=value)`},
		{"unterminated list quote", DatabaseProps{Settings: []string{`search_path="abc`}}, `database oro: setting search_path: unterminated quote in "\"abc"`},
		{"junk after list element", DatabaseProps{Settings: []string{`search_path="a"b`}}, `unexpected 'b' in list`},
		{"role setting", DatabaseProps{RoleSettings: map[string][]string{"r": {"x"}}}, `database oro, role r: unparsable setting "x"`},
		{"acl without =", DatabaseProps{ACL: []string{"r"}}, `database oro: unparsable database privilege "r": no '='`},
		{"acl without grantor", DatabaseProps{ACL: []string{"r=c"}}, `unparsable database privilege "r=c": no grantor`},
		{"acl unknown privilege", DatabaseProps{ACL: []string{"r=cX/r"}}, `unknown privilege 'X'`},
		{"acl unterminated quote", DatabaseProps{ACL: []string{`"r=c/r`}}, `unterminated quoted name`},
		{"acl quote then junk", DatabaseProps{ACL: []string{`"r"x=c/r`}}, `no '=' after the grantee`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := tc.p.Statements(a)
			require.ErrorContains(t, err, tc.want)
		})
	}
}

func TestStatementLabels(t *testing.T) {
	p := DatabaseProps{Owner: "lifeboat", ConnectionLimit: 5, Comment: strp("c"),
		Settings:     []string{"app.jwt_secret=s3cr3t-'jwt'", "work_mem=64MB", `search_path="$user", "hidden schema"`},
		RoleSettings: map[string][]string{"r": {"app.api_key=k3y-value"}}}
	stmts, _, err := p.Statements(Apply{Database: "x", Owner: "lifeboat", Roles: map[string]bool{"r": true}})
	require.NoError(t, err)
	var labels []string
	for _, st := range stmts {
		labels = append(labels, st.Label)
	}
	require.Equal(t, []string{
		`ALTER DATABASE "x" CONNECTION LIMIT 5`,
		`COMMENT ON DATABASE "x" IS 'c'`,
		`ALTER DATABASE "x" SET "app.jwt_secret" TO ***`,
		`ALTER DATABASE "x" SET work_mem TO ***`,
		`ALTER DATABASE "x" SET search_path TO ***`,
		`ALTER ROLE "r" IN DATABASE "x" SET "app.api_key" TO ***`,
	}, labels)
	require.Equal(t, `ALTER DATABASE "x" SET "app.jwt_secret" TO 's3cr3t-''jwt'''`, stmts[2].SQL)

	for _, tc := range []struct {
		name string
		st   Statement
		msg  string
		want string
	}{
		{"server quotes the value", stmts[3], `ERROR:  invalid value for parameter "work_mem": "64MB"`, `ERROR:  invalid value for parameter "work_mem": ***`},
		{"statement shown", stmts[2], `LINE 1: ALTER DATABASE "x" SET "app.jwt_secret" TO 's3cr3t-''jwt''' x`, `LINE 1: ALTER DATABASE "x" SET "app.jwt_secret" TO *** x`},
		{"bare long value", stmts[2], `ERROR: bad s3cr3t-'jwt' here`, `ERROR: bad *** here`},
		{"list elements", stmts[4], `ERROR: schema "hidden schema" does not exist`, `ERROR: schema *** does not exist`},
		{"short bare value kept: no secret, and digits stay", stmts[3], `line 64MB`, `line 64MB`},
		{"plain statement unchanged", stmts[0], `ERROR: 's3cr3t'`, `ERROR: 's3cr3t'`},
	} {
		t.Run(tc.name, func(t *testing.T) { require.Equal(t, tc.want, tc.st.Redact(tc.msg)) })
	}
}

func TestSplitGUCList(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
	}{
		{`"$user", public`, []string{"$user", "public"}},
		{`a,b ,  c`, []string{"a", "b", "c"}},
		{`""`, []string{""}},
		{`"a,b", "q""q"`, []string{"a,b", `q"q`}},
		{`ünï`, []string{"ünï"}},
	} {
		got, err := splitGUCList(tc.in)
		require.NoError(t, err, tc.in)
		require.Equal(t, tc.want, got, tc.in)
	}
	for _, bad := range []string{`"a`, `a b`, `"a" "b"`} {
		_, err := splitGUCList(bad)
		require.Error(t, err, bad)
	}
}

func TestPropsQueryVersions(t *testing.T) {
	require.Contains(t, PropsQuery(140000), "'libc'")
	require.NotContains(t, PropsQuery(140000), "datlocprovider")
	require.Contains(t, PropsQuery(150000), "d.daticulocale")
	require.NotContains(t, PropsQuery(150000), "daticurules")
	require.Contains(t, PropsQuery(160000), "d.daticurules")
	require.Contains(t, PropsQuery(170000), "d.datlocale")
	require.NotContains(t, PropsQuery(170000), "daticulocale")
}
