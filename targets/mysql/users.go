package mysql

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"

	driver "github.com/go-sql-driver/mysql"
)

// UsersFile is the top-level entry of a snapshot taken with Options.Users:
// the server's user accounts and roles and their grants, as idempotent
// statements each ending with ";\n" (CREATE ROLE / CREATE USER IF NOT
// EXISTS for every account first, then every GRANT). Its leading '.'
// keeps it apart from the database directories (EncodeName escapes a
// leading '.'). It holds the password hashes, as mariadb-dump
// --system=users does.
const UsersFile = ".users.sql"

// systemAccounts are never dumped, on any host; nor is the anonymous
// (empty) user.
var systemAccounts = []string{"root", "mariadb.sys", "mysql.sys", "mysql.session", "mysql.infoschema", "PUBLIC"}

// account is a user (user@host) or a MariaDB role (no host).
type account struct {
	user, host string
	role       bool
}

func (a account) String() string {
	if a.role {
		return QuoteName(a.user)
	}
	return QuoteName(a.user) + "@" + QuoteName(a.host)
}

// dumpUsers reads the accounts and roles of the server on c, but the
// system ones, with their CREATE statement and grants, as UsersFile's
// content. The session's sql_mode is empty meanwhile (backticks,
// backslash escapes), as the restore's is.
func dumpUsers(ctx context.Context, c *sql.Conn, mariadb bool) (_ []byte, err error) {
	if _, err := c.ExecContext(ctx, "SET @lifeboat_sql_mode = @@SESSION.sql_mode, SESSION sql_mode = ''"); err != nil {
		return nil, fmt.Errorf("mysql: users: %w", err)
	}
	defer func() {
		if _, rerr := c.ExecContext(context.WithoutCancel(ctx), "SET SESSION sql_mode = @lifeboat_sql_mode"); rerr != nil && err == nil {
			err = fmt.Errorf("mysql: users: %w", rerr)
		}
	}()
	q := "SELECT User, Host, is_role FROM mysql.user ORDER BY User, Host"
	if !mariadb {
		// MySQL has no is_role (its roles are locked accounts). 8.0.17+:
		// caching_sha2 hashes as 0x... hex, not raw bytes in a string
		// literal (older servers lack the variable: error ignored).
		q = "SELECT User, Host, 'N' FROM mysql.user ORDER BY User, Host"
		_, _ = c.ExecContext(ctx, "SET SESSION print_identified_with_as_hex = ON")
	}
	rows, err := c.QueryContext(ctx, q)
	if err != nil {
		if isAccessDenied(err) {
			return nil, fmt.Errorf("mysql: --users needs the SELECT privilege on mysql.user (GRANT SELECT ON mysql.* TO the backup user): %w", err)
		}
		return nil, fmt.Errorf("mysql: list users: %w", err)
	}
	var accounts []account
	for rows.Next() {
		var a account
		var isRole string
		if err := rows.Scan(&a.user, &a.host, &isRole); err != nil {
			rows.Close()
			return nil, fmt.Errorf("mysql: list users: %w", err)
		}
		a.role = isRole == "Y"
		if a.user == "" || slices.Contains(systemAccounts, a.user) {
			continue
		}
		accounts = append(accounts, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("mysql: list users: %w", err)
	}
	// Roles and users first (grants name roles), then the grants.
	var creates, grants bytes.Buffer
	for _, a := range accounts {
		if a.role {
			fmt.Fprintf(&creates, "CREATE ROLE IF NOT EXISTS %s;\n", a)
		} else {
			var stmt string
			if err := c.QueryRowContext(ctx, "SHOW CREATE USER "+a.String()).Scan(&stmt); err != nil {
				return nil, userError("SHOW CREATE USER", a, err)
			}
			rest, ok := cutPrefixFold(stmt, "CREATE USER ")
			if !ok {
				return nil, fmt.Errorf("mysql: SHOW CREATE USER %s: unexpected statement (not CREATE USER)", a)
			}
			fmt.Fprintf(&creates, "CREATE USER IF NOT EXISTS %s;\n", rest)
		}
		gs, err := queryStrings(ctx, c, "SHOW GRANTS FOR "+a.String())
		if err != nil {
			return nil, userError("SHOW GRANTS FOR", a, err)
		}
		for _, g := range gs {
			fmt.Fprintf(&grants, "%s;\n", g)
		}
	}
	creates.Write(grants.Bytes())
	return creates.Bytes(), nil
}

// userError wraps a failed SHOW for account a (the server's message names
// the account, never its password).
func userError(show string, a account, err error) error {
	if isAccessDenied(err) {
		return fmt.Errorf("mysql: --users: %s %s needs the SELECT privilege on the mysql database: %w", show, a, err)
	}
	return fmt.Errorf("mysql: %s %s: %w", show, a, err)
}

// cutPrefixFold is strings.CutPrefix ignoring ASCII case.
func cutPrefixFold(s, prefix string) (string, bool) {
	if len(s) < len(prefix) || !strings.EqualFold(s[:len(prefix)], prefix) {
		return s, false
	}
	return s[len(prefix):], true
}

// UserStatement is one statement of UsersFile.
type UserStatement struct {
	SQL string
	// Summary names the statement without secrets: its verb and the
	// account it is for, e.g. "GRANT to `app`@`%`".
	Summary string
	// Create: a CREATE USER or CREATE ROLE (one per account).
	Create  bool
	secrets []string
}

// Redact replaces the statement's password hashes and other secret
// literals in s (a server's error message, which may quote the
// statement) with "<redacted>".
func (u UserStatement) Redact(s string) string {
	for _, sec := range u.secrets {
		if sec != "" {
			s = strings.ReplaceAll(s, sec, "<redacted>")
		}
	}
	return s
}

// Error is err (a server error running u) with no secret in it.
func (u UserStatement) Error(err error) error {
	var me *driver.MySQLError
	if errors.As(err, &me) {
		return fmt.Errorf("%s: error %d: %s", u.Summary, me.Number, u.Redact(me.Message))
	}
	return fmt.Errorf("%s: %s", u.Summary, u.Redact(err.Error()))
}

// ParseUsers splits UsersFile's content into its statements (";" outside
// quotes ends one) and names each one's account. rename (may be nil) maps
// database names to the names they are restored under: a GRANT or REVOKE
// on `old`.* or `old`.`t` (also written `old\_name`, the escaped pattern)
// names the new database. Errors name the statement by number, never its
// text.
func ParseUsers(b []byte, rename map[string]string) ([]UserStatement, error) {
	var out []UserStatement
	for len(bytes.TrimSpace(b)) > 0 {
		toks, n, err := tokenize(b)
		if err != nil {
			return nil, fmt.Errorf("%s: statement %d: %w", UsersFile, len(out)+1, err)
		}
		stmt := string(b[:n]) // as the tokens' offsets count
		b = b[n:]
		if len(b) > 0 {
			b = b[1:] // the ';'
		}
		if strings.TrimSpace(stmt) == "" {
			continue
		}
		u, err := describe(stmt, toks, rename)
		if err != nil {
			return nil, fmt.Errorf("%s: statement %d: %w", UsersFile, len(out)+1, err)
		}
		u.SQL = strings.TrimSpace(u.SQL)
		out = append(out, u)
	}
	return out, nil
}

// token is a word, a quoted name or string (quote kept in q), or one
// punctuation byte.
type token struct {
	text string // unquoted content
	raw  string // as written, quotes excluded
	q    byte   // '`', '\'', '"' or 0
	at   int    // offset of its first byte (an opening quote) in the statement
}

// tokenize reads tokens up to the first ';' outside quotes (or the end)
// and returns them and that ';”s offset.
func tokenize(b []byte) ([]token, int, error) {
	var toks []token
	i := 0
	for i < len(b) {
		c := b[i]
		switch {
		case c == ';':
			return toks, i, nil
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '`' || c == '\'' || c == '"':
			var s []byte
			j := i + 1
			for ; j < len(b); j++ {
				if b[j] == '\\' && c != '`' && j+1 < len(b) {
					s = append(s, b[j], b[j+1])
					j++
					continue
				}
				if b[j] == c {
					if j+1 < len(b) && b[j+1] == c {
						s = append(s, c)
						j++
						continue
					}
					break
				}
				s = append(s, b[j])
			}
			if j >= len(b) {
				return nil, 0, fmt.Errorf("unterminated %c quote", c)
			}
			toks = append(toks, token{text: string(s), raw: string(b[i+1 : j]), q: c, at: i})
			i = j + 1
		case isWordByte(c):
			j := i
			for j < len(b) && isWordByte(b[j]) {
				j++
			}
			toks = append(toks, token{text: string(b[i:j]), at: i})
			i = j
		default:
			toks = append(toks, token{text: string(c), at: i})
			i++
		}
	}
	return toks, len(b), nil
}

func isWordByte(c byte) bool {
	return c == '_' || c == '$' || c == '.' || c == '*' || c >= 0x80 ||
		('0' <= c && c <= '9') || ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z')
}

// withoutIdentified drops the IDENTIFIED clause MariaDB's SHOW GRANTS puts
// after a GRANT's account (IDENTIFIED BY PASSWORD 'hash', IDENTIFIED VIA
// plugin USING '...' OR ...) up to WITH, REQUIRE or the end; account is the
// index of the account's first token. The CREATE USER before it carries
// the authentication already, and on an account that exists the clause
// would set the snapshot's password again.
func withoutIdentified(stmt string, toks []token, account int) string {
	k := account + 1
	if k+1 < len(toks) && toks[k].text == "@" && toks[k].q == 0 {
		k += 2
	}
	if k >= len(toks) || toks[k].q != 0 || !strings.EqualFold(toks[k].text, "IDENTIFIED") {
		return stmt
	}
	end := len(stmt)
	for _, t := range toks[k+1:] {
		if t.q == 0 && (strings.EqualFold(t.text, "WITH") || strings.EqualFold(t.text, "REQUIRE")) {
			end = t.at
			break
		}
	}
	return strings.TrimRight(stmt[:toks[k].at], " \t\n") + strings.TrimRight(" "+stmt[end:], " ")
}

// renameGrantDatabase gives the database of a GRANT's or REVOKE's ON
// clause (among toks, the tokens before TO or FROM) its name in rename: a
// backquoted name followed by ".*" or ".`table`", the name itself or with
// its "_" and "%" escaped (a database grant's name is a pattern).
func renameGrantDatabase(stmt string, toks []token, rename map[string]string) string {
	if len(rename) == 0 {
		return stmt
	}
	on := slices.IndexFunc(toks, func(t token) bool { return t.q == 0 && strings.EqualFold(t.text, "ON") })
	if on < 0 || on+2 >= len(toks) || toks[on+1].q != '`' || !strings.HasPrefix(toks[on+2].text, ".") {
		return stmt
	}
	db := toks[on+1]
	name := strings.NewReplacer(`\_`, `_`, `\%`, `%`).Replace(db.text)
	to := rename[name]
	switch {
	case to == "":
		return stmt
	case db.text == name:
	case db.text == escapeWildcards(name):
		to = escapeWildcards(to)
	default: // partly escaped: a pattern that is not just the name
		return stmt
	}
	return stmt[:db.at] + QuoteName(to) + stmt[db.at+len(db.raw)+2:]
}

// escapeWildcards escapes what is a wildcard in a database grant's name.
func escapeWildcards(name string) string {
	return strings.NewReplacer(`_`, `\_`, `%`, `\%`).Replace(name)
}

// describe names the account of a statement of UsersFile: the one after
// CREATE USER/ROLE IF NOT EXISTS, after GRANT's or REVOKE's TO/FROM, or
// after SET DEFAULT ROLE's FOR; it collects the string literals after
// PASSWORD, AS, BY and USING (password hashes) as secrets.
func describe(stmt string, toks []token, rename map[string]string) (UserStatement, error) {
	u := UserStatement{SQL: stmt}
	word := func(i int) string {
		if i < len(toks) && toks[i].q == 0 {
			return strings.ToUpper(toks[i].text)
		}
		return ""
	}
	for i := 1; i < len(toks); i++ {
		switch word(i - 1) {
		case "PASSWORD", "AS", "BY", "USING":
			if toks[i].q == '\'' || toks[i].q == '"' || strings.HasPrefix(strings.ToLower(toks[i].text), "0x") {
				u.secrets = append(u.secrets, toks[i].text, toks[i].raw)
			}
		}
	}
	accountAt := func(i int) string {
		if i >= len(toks) {
			return "?"
		}
		a := QuoteName(toks[i].text)
		if i+2 < len(toks) && toks[i+1].text == "@" && toks[i+1].q == 0 {
			a += "@" + QuoteName(toks[i+2].text)
		}
		return a
	}
	find := func(from int, words ...string) int {
		for i := from; i < len(toks); i++ {
			if slices.Contains(words, word(i)) {
				return i
			}
		}
		return -1
	}
	verb := word(0)
	switch {
	case verb == "CREATE" && (word(1) == "USER" || word(1) == "ROLE"):
		i := 2
		if word(2) == "IF" && word(3) == "NOT" && word(4) == "EXISTS" {
			i = 5
		}
		u.Create = true
		u.Summary = "CREATE " + word(1) + " " + accountAt(i)
	case verb == "GRANT" || verb == "REVOKE":
		i := find(1, "TO", "FROM")
		if i < 0 {
			return u, fmt.Errorf("%s without TO or FROM", verb)
		}
		u.Summary = verb + " to " + accountAt(i+1)
		if verb == "REVOKE" {
			u.Summary = verb + " from " + accountAt(i+1)
		}
		// The IDENTIFIED clause is after the ON clause: cut first, so that
		// the offsets of the ON clause still hold.
		u.SQL = renameGrantDatabase(withoutIdentified(u.SQL, toks, i+1), toks[:i], rename)
	case verb == "SET" && word(1) == "DEFAULT" && word(2) == "ROLE":
		i := find(3, "FOR")
		if i < 0 {
			return u, errors.New("SET DEFAULT ROLE without FOR")
		}
		u.Summary = "SET DEFAULT ROLE for " + accountAt(i+1)
	default:
		return u, fmt.Errorf("unexpected statement %q (not CREATE USER/ROLE, GRANT or SET DEFAULT ROLE)", verb)
	}
	return u, nil
}
