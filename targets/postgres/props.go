package postgres

import (
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"
)

// DatabaseProps are the properties of a database itself, which a
// per-database pg_dump archive only restores with pg_restore --create
// (under the original name only): recorded at backup, applied by restore
// under any name.
type DatabaseProps struct {
	Encoding       string `json:"encoding"`        // UTF8, LATIN1, ...
	LocaleProvider string `json:"locale_provider"` // libc, icu, builtin
	Collate        string `json:"collate"`
	Ctype          string `json:"ctype"`
	// Locale is the ICU (or builtin) locale, "" with libc.
	Locale          string  `json:"locale,omitempty"`
	ICURules        string  `json:"icu_rules,omitempty"`
	Owner           string  `json:"owner"`
	ConnectionLimit int     `json:"connection_limit"` // -1: none
	Comment         *string `json:"comment"`
	// ACL holds the database's aclitems (grantee=privileges/grantor);
	// nil: the default privileges.
	ACL []string `json:"acl"`
	// Settings are ALTER DATABASE ... SET values as name=value.
	Settings []string `json:"settings,omitempty"`
	// RoleSettings are ALTER ROLE ... IN DATABASE ... SET values.
	RoleSettings map[string][]string `json:"role_settings,omitempty"`
}

// PropsQuery returns the query (for a server of version num, as in
// server_version_num) reading DatabaseProps of the current database as
// one line of JSON.
func PropsQuery(num int) string {
	provider, locale, rules := "'libc'", "NULL::text", "NULL::text"
	if num >= 150000 {
		provider = "CASE d.datlocprovider WHEN 'i' THEN 'icu' WHEN 'b' THEN 'builtin' ELSE 'libc' END"
		locale = "d.daticulocale"
	}
	if num >= 160000 {
		rules = "d.daticurules"
	}
	if num >= 170000 {
		locale = "d.datlocale"
	}
	return `SELECT json_build_object('encoding', pg_encoding_to_char(d.encoding), 'locale_provider', ` + provider + `,
		'collate', d.datcollate, 'ctype', d.datctype, 'locale', ` + locale + `, 'icu_rules', ` + rules + `,
		'owner', pg_get_userbyid(d.datdba), 'connection_limit', d.datconnlimit,
		'comment', shobj_description(d.oid, 'pg_database'), 'acl', d.datacl::text[],
		'settings', (SELECT s.setconfig FROM pg_db_role_setting s WHERE s.setdatabase = d.oid AND s.setrole = 0),
		'role_settings', (SELECT json_object_agg(pg_get_userbyid(s.setrole), s.setconfig) FROM pg_db_role_setting s
			WHERE s.setdatabase = d.oid AND s.setrole <> 0))::text
		FROM pg_database d WHERE d.datname = current_database()`
}

// CreateOptions are the CREATE DATABASE options (after TEMPLATE
// template0) that give a new database p's encoding and locale.
func (p *DatabaseProps) CreateOptions() string {
	var b strings.Builder
	if p.Encoding != "" {
		fmt.Fprintf(&b, " ENCODING %s", QuoteLiteral(p.Encoding))
	}
	if p.LocaleProvider != "" && p.LocaleProvider != "libc" {
		fmt.Fprintf(&b, " LOCALE_PROVIDER %s", p.LocaleProvider)
		if p.Locale != "" {
			if p.LocaleProvider == "icu" {
				fmt.Fprintf(&b, " ICU_LOCALE %s", QuoteLiteral(p.Locale))
			} else {
				fmt.Fprintf(&b, " BUILTIN_LOCALE %s", QuoteLiteral(p.Locale))
			}
		}
		if p.ICURules != "" {
			fmt.Fprintf(&b, " ICU_RULES %s", QuoteLiteral(p.ICURules))
		}
	}
	if p.Collate != "" {
		fmt.Fprintf(&b, " LC_COLLATE %s", QuoteLiteral(p.Collate))
	}
	if p.Ctype != "" {
		fmt.Fprintf(&b, " LC_CTYPE %s", QuoteLiteral(p.Ctype))
	}
	return b.String()
}

// Apply says how the properties are applied to the restored database.
type Apply struct {
	Database string          // name restored under
	Owner    string          // its owner now (the restoring user)
	Roles    map[string]bool // roles that exist on the destination
	// NoOwner keeps the restoring user as owner; NoPrivileges leaves the
	// grants on the database out.
	NoOwner, NoPrivileges bool
}

// Statement is one SQL statement and the label that errors and logs show
// instead: the SQL itself, or for a setting (whose value can be a secret,
// such as app.jwt_secret) the statement with the value as ***.
type Statement struct {
	SQL, Label string
	values     []string
}

// Plain is a statement that holds nothing secret: its label is its SQL.
func Plain(sql string) Statement { return Statement{SQL: sql, Label: sql} }

// Redact replaces the statement's setting values in msg (a server error
// can quote them: "invalid value for parameter ...: "v"", or show the
// statement) with ***: quoted as the SQL and the server quote them, and
// bare when at least minBare bytes long (shorter ones would mangle the
// message's numbers and words, and are no secrets).
func (s Statement) Redact(msg string) string {
	for _, v := range s.values {
		if v == "" {
			continue
		}
		msg = strings.ReplaceAll(msg, QuoteLiteral(v), "***")
		msg = strings.ReplaceAll(msg, `"`+v+`"`, "***")
		if len(v) >= minBare {
			msg = strings.ReplaceAll(msg, v, "***")
		}
	}
	return msg
}

const minBare = 6

// Statements returns the SQL (run in any database of the destination)
// that gives database a.Database the owner, connection limit, comment,
// settings and grants of p, and warnings for what refers to roles absent
// on the destination (left out). Grants are made by the restoring user
// (the grantor of the original is not kept).
func (p *DatabaseProps) Statements(a Apply) (stmts []Statement, warnings []string, err error) {
	db := QuoteIdent(a.Database)
	owner := a.Owner
	if !a.NoOwner && p.Owner != "" && p.Owner != owner {
		if a.Roles[p.Owner] {
			stmts = append(stmts, Plain("ALTER DATABASE "+db+" OWNER TO "+QuoteIdent(p.Owner)))
			owner = p.Owner
		} else {
			warnings = append(warnings, fmt.Sprintf("database %s: owner role %q does not exist here; owned by %q", a.Database, p.Owner, owner))
		}
	}
	if p.ConnectionLimit != -1 {
		stmts = append(stmts, Plain(fmt.Sprintf("ALTER DATABASE %s CONNECTION LIMIT %d", db, p.ConnectionLimit)))
	}
	if p.Comment != nil {
		stmts = append(stmts, Plain("COMMENT ON DATABASE "+db+" IS "+QuoteLiteral(*p.Comment)))
	}
	for _, s := range p.Settings {
		set, err := setClause(s)
		if err != nil {
			return nil, nil, fmt.Errorf("database %s: %w", a.Database, err)
		}
		stmts = append(stmts, set.on("ALTER DATABASE "+db+" "))
	}
	roles := make([]string, 0, len(p.RoleSettings))
	for r := range p.RoleSettings {
		roles = append(roles, r)
	}
	sort.Strings(roles)
	for _, r := range roles {
		if !a.Roles[r] {
			warnings = append(warnings, fmt.Sprintf("database %s: settings of role %q left out: the role does not exist here", a.Database, r))
			continue
		}
		for _, s := range p.RoleSettings[r] {
			set, err := setClause(s)
			if err != nil {
				return nil, nil, fmt.Errorf("database %s, role %s: %w", a.Database, r, err)
			}
			stmts = append(stmts, set.on("ALTER ROLE "+QuoteIdent(r)+" IN DATABASE "+db+" "))
		}
	}
	if p.ACL != nil && !a.NoPrivileges {
		grants, warns, err := aclStatements(db, a.Database, p.Owner, owner, p.ACL, a.Roles)
		if err != nil {
			return nil, nil, err
		}
		for _, g := range grants {
			stmts = append(stmts, Plain(g))
		}
		warnings = append(warnings, warns...)
	}
	return stmts, warnings, nil
}

// aclStatements replaces the default privileges of database db by acl;
// the original owner's privileges go to the owner (who may be another
// role here).
func aclStatements(db, name, origOwner, owner string, acl []string, roles map[string]bool) (stmts, warnings []string, err error) {
	stmts = []string{"REVOKE ALL ON DATABASE " + db + " FROM PUBLIC", "REVOKE ALL ON DATABASE " + db + " FROM " + QuoteIdent(owner)}
	for _, item := range acl {
		grantee, privs, grantable, err := parseACLItem(item)
		if err != nil {
			return nil, nil, fmt.Errorf("database %s: %w", name, err)
		}
		to := "PUBLIC"
		switch {
		case grantee == "":
		case grantee == origOwner || grantee == owner:
			to = QuoteIdent(owner)
		case !roles[grantee]:
			warnings = append(warnings, fmt.Sprintf("database %s: grant to role %q left out: the role does not exist here", name, grantee))
			continue
		default:
			to = QuoteIdent(grantee)
		}
		if len(privs) > 0 {
			stmts = append(stmts, "GRANT "+strings.Join(privs, ", ")+" ON DATABASE "+db+" TO "+to)
		}
		if len(grantable) > 0 {
			stmts = append(stmts, "GRANT "+strings.Join(grantable, ", ")+" ON DATABASE "+db+" TO "+to+" WITH GRANT OPTION")
		}
	}
	return stmts, warnings, nil
}

var dbPrivileges = map[byte]string{'C': "CREATE", 'c': "CONNECT", 'T': "TEMPORARY"}

// parseACLItem splits a database aclitem, grantee=privileges/grantor
// (grantee "" is PUBLIC, names double-quoted when needed), into its
// grantee and the privileges granted without and with grant option.
func parseACLItem(item string) (grantee string, privs, grantable []string, err error) {
	bad := func(why string) error { return fmt.Errorf("unparsable database privilege %q: %s", item, why) }
	rest := item
	if strings.HasPrefix(rest, `"`) {
		var b strings.Builder
		i := 1
		for ; i < len(rest); i++ {
			if rest[i] == '"' {
				if i+1 < len(rest) && rest[i+1] == '"' {
					b.WriteByte('"')
					i++
					continue
				}
				break
			}
			b.WriteByte(rest[i])
		}
		if i >= len(rest) {
			return "", nil, nil, bad("unterminated quoted name")
		}
		grantee, rest = b.String(), rest[i+1:]
	} else {
		eq := strings.IndexByte(rest, '=')
		if eq < 0 {
			return "", nil, nil, bad("no '='")
		}
		grantee, rest = rest[:eq], rest[eq:]
	}
	if !strings.HasPrefix(rest, "=") {
		return "", nil, nil, bad("no '=' after the grantee")
	}
	rest = rest[1:]
	letters, _, ok := strings.Cut(rest, "/")
	if !ok {
		return "", nil, nil, bad("no grantor")
	}
	for i := 0; i < len(letters); i++ {
		p, ok := dbPrivileges[letters[i]]
		if !ok {
			return "", nil, nil, bad(fmt.Sprintf("unknown privilege %q", letters[i]))
		}
		if i+1 < len(letters) && letters[i+1] == '*' {
			grantable = append(grantable, p)
			i++
		} else {
			privs = append(privs, p)
		}
	}
	return grantee, privs, grantable, nil
}

// listQuoted are the settings pg_dump splits into quoted list elements
// (GUC_LIST_QUOTE): their stored value is a list of identifiers.
var listQuoted = []string{"local_preload_libraries", "search_path", "session_preload_libraries",
	"shared_preload_libraries", "temp_tablespaces", "unix_socket_directories"}

var plainName = regexp.MustCompile(`^[a-z_][a-z0-9_]*$`)

// setting is a SET clause: the SQL, and its label and values for
// Statement.
type setting struct {
	sql, label string
	values     []string
}

// on is the statement prefix + the SET clause.
func (c setting) on(prefix string) Statement {
	return Statement{SQL: prefix + c.sql, Label: prefix + c.label, values: c.values}
}

// setClause turns a stored setting, name=value, into SET name TO value,
// the value quoted as pg_dump does. Its errors do not show the value.
func setClause(s string) (setting, error) {
	name, value, ok := strings.Cut(s, "=")
	if !ok || name == "" {
		return setting{}, fmt.Errorf("unparsable setting %q (want name=value)", name)
	}
	n := name
	if !plainName.MatchString(n) {
		n = QuoteIdent(n)
	}
	c := setting{label: "SET " + n + " TO ***", values: []string{value}}
	if !slices.Contains(listQuoted, strings.ToLower(name)) {
		c.sql = "SET " + n + " TO " + QuoteLiteral(value)
		return c, nil
	}
	elems, err := splitGUCList(value)
	if err != nil {
		return setting{}, fmt.Errorf("setting %s: %w", name, err)
	}
	c.values = append(c.values, elems...)
	quoted := make([]string, len(elems))
	for i, e := range elems {
		quoted[i] = QuoteLiteral(e)
	}
	c.sql = "SET " + n + " TO " + strings.Join(quoted, ", ")
	return c, nil
}

// splitGUCList splits a list setting's value into its elements:
// comma-separated, each bare or double-quoted ("" inside for a quote),
// spaces around ignored (PostgreSQL's SplitGUCList).
func splitGUCList(v string) ([]string, error) {
	var out []string
	i := 0
	skip := func() {
		for i < len(v) && (v[i] == ' ' || v[i] == '\t' || v[i] == '\n' || v[i] == '\r') {
			i++
		}
	}
	for {
		skip()
		var b strings.Builder
		if i < len(v) && v[i] == '"' {
			i++
			for {
				if i >= len(v) {
					return nil, fmt.Errorf("unterminated quote in %q", v)
				}
				if v[i] == '"' {
					if i+1 < len(v) && v[i+1] == '"' {
						b.WriteByte('"')
						i += 2
						continue
					}
					i++
					break
				}
				b.WriteByte(v[i])
				i++
			}
		} else {
			for i < len(v) && v[i] != ',' && v[i] != ' ' && v[i] != '\t' && v[i] != '\n' && v[i] != '\r' {
				b.WriteByte(v[i])
				i++
			}
		}
		out = append(out, b.String())
		skip()
		if i >= len(v) {
			return out, nil
		}
		if v[i] != ',' {
			return nil, fmt.Errorf("unexpected %q in list %q", v[i], v)
		}
		i++
	}
}

// QuoteIdent quotes a name for SQL.
func QuoteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

// QuoteLiteral quotes a string for SQL (standard_conforming_strings on).
func QuoteLiteral(s string) string { return `'` + strings.ReplaceAll(s, `'`, `''`) + `'` }
