package postgres

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strconv"
	"strings"

	"github.com/lifeboat-backup/lifeboat/internal/redact"
)

// Conn is a parsed server address: the URL without its password, and the
// password apart (it goes to child processes in PGPASSWORD only).
type Conn struct {
	u        *url.URL
	Password string
}

// ParseDSN parses postgres://user[:password]@host[:port]/[dbname][?params]
// (postgresql:// too). password, if not empty, overrides one in the URL.
func ParseDSN(dsn, password string) (*Conn, error) {
	u, err := url.Parse(dsn)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return nil, fmt.Errorf("postgres: DSN must look like postgres://user@host:5432/ (got %s)", Redact(dsn))
	}
	if (u.User == nil && strings.Contains(dsn, "@")) || u.Fragment != "" || strings.Contains(u.Path+u.RawQuery, "@") {
		// postgres://app:pa/ss@db/: the password's '/' ended the host.
		return nil, fmt.Errorf("postgres: DSN %s has an '@' or '#' outside user@host: percent-encode the password's special characters, or give it in a password file", Redact(dsn))
	}
	if u.Host == "" && u.Query().Get("host") == "" {
		return nil, errors.New("postgres: DSN has no host: postgres://user@host:5432/")
	}
	c := &Conn{Password: password}
	if u.User != nil {
		if p, ok := u.User.Password(); ok && password == "" {
			c.Password = p
		}
		u.User = url.User(u.User.Username())
	}
	for _, k := range []string{"password", "passfile"} {
		if q := u.Query(); q.Has(k) {
			if k == "password" && c.Password == "" {
				c.Password = q.Get(k)
			}
			q.Del(k)
			u.RawQuery = q.Encode()
		}
	}
	c.u = u
	return c, nil
}

// Database is the database named in the URL ("" if none).
func (c *Conn) Database() string { return strings.TrimPrefix(c.u.Path, "/") }

// URL is the server URL without password for database db ("" keeps the
// URL's own).
func (c *Conn) URL(db string) string {
	u := *c.u
	if db != "" {
		u.Path, u.RawPath = "/"+db, ""
	}
	return u.String()
}

// String is the URL without password and without database.
func (c *Conn) String() string {
	u := *c.u
	u.Path, u.RawPath = "/", ""
	return u.String()
}

// Env is the environment of a child process: the caller's, with
// PGPASSWORD if a password was given, no password prompt and a connect
// timeout.
func (c *Conn) Env() []string {
	env := []string{}
	for _, e := range envList() {
		if c.Password != "" && (strings.HasPrefix(e, "PGPASSWORD=") || strings.HasPrefix(e, "PGPASSFILE=")) {
			continue
		}
		env = append(env, e)
	}
	if c.Password != "" {
		env = append(env, "PGPASSWORD="+c.Password)
	}
	if !hasEnv(env, "PGCONNECT_TIMEOUT") {
		env = append(env, "PGCONNECT_TIMEOUT=15")
	}
	if !hasEnv(env, "PGAPPNAME") {
		env = append(env, "PGAPPNAME=lifeboat")
	}
	return env
}

func hasEnv(env []string, k string) bool {
	for _, e := range env {
		if strings.HasPrefix(e, k+"=") {
			return true
		}
	}
	return false
}

// Redact returns dsn without its password (for logs and snapshots): a
// postgres:// URL loses its password; the secrets of any other form (a
// libpq key=value string, a URL of another scheme) are replaced as
// redact.String does.
func Redact(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") || strings.Count(dsn, "@") > 1 || u.Fragment != "" {
		return redact.String(dsn) // also a password with '@' or '#' that url.Parse cut short
	}
	if u.User != nil {
		u.User = url.User(u.User.Username())
	}
	if q := u.Query(); q.Has("password") {
		q.Del("password")
		u.RawQuery = q.Encode()
	}
	return redact.String(u.String())
}

// EncodeName turns a database name into a path element: bytes other than
// letters, digits, '_', '-' and a '.' not in front become %XX.
func EncodeName(name string) string {
	var b strings.Builder
	for i := 0; i < len(name); i++ {
		c := name[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || (c == '.' && i > 0) {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

// DecodeName reverses EncodeName.
func DecodeName(s string) (string, error) {
	n, err := url.PathUnescape(s)
	if err != nil {
		return "", fmt.Errorf("postgres: bad database entry name %q", s)
	}
	return n, nil
}

// Entry names in a postgres snapshot ('+' is always escaped by
// EncodeName, so the suffixes cannot be part of a name). A database's
// split entries (db+0-properties.json, db+1-pre.dump, db+2-data-NN.dump,
// db+2-table-NN.dump, db+3-post.dump) follow each other in tree order, but its whole archive
// db.dump need not follow its properties: EncodeName keeps '-' and '.',
// which sort after '+', so other databases' entries can come between
// (shop+0-properties.json, shop-eu+0-properties.json, shop-eu.dump,
// shop.dump). ReadLayout orders databases by their first archive, so a
// restore in its order opens the archives in tree order.
const (
	// SuffixProps ends a database's properties entry: EncodeName(db) +
	// SuffixProps, JSON of DatabaseProps. Snapshots made before it
	// existed have none; their databases get the server's defaults.
	SuffixProps = "+0-properties.json"
	// SuffixDump ends a database's whole pg_dump custom-format archive
	// (one pg_dump: Jobs 1, and every snapshot before split archives):
	// EncodeName(db) + SuffixDump.
	SuffixDump = ".dump"
	// SuffixPre and SuffixPost end a database's pre-data and post-data
	// archives (pg_dump --section) when its data is split over several
	// archives, EncodeName(db) + DataSuffix(i), dumped in parallel.
	SuffixPre  = "+1-pre.dump"
	SuffixPost = "+3-post.dump"
	// GlobalsFile holds pg_dumpall --globals-only (roles, tablespaces).
	GlobalsFile = "globals.sql"
)

// DataSuffix ends the i-th data-only archive of a split database.
func DataSuffix(i int) string { return fmt.Sprintf("+2-data-%02d.dump", i) }

// TableSuffix ends the i-th table archive of a split database: one
// table's data and post-data (pg_dump --section=data
// --section=post-data --table=T), restored as soon as a connection is
// free, its indexes right after its rows (docs/postgres-target.md).
func TableSuffix(i int) string { return fmt.Sprintf("+2-table-%02d.dump", i) }

var dataSuffixRE = regexp.MustCompile(`^(.*)\+2-(data|table)-([0-9]{2,})\.dump$`)

// SplitEntry tells which database an entry name belongs to and what it
// is: "props", "pre", "data" or "table" (with its index), "post", "whole"
// (a complete archive); ok is false for other names.
func SplitEntry(path string) (db, part string, index int, ok bool) {
	cut := func(suffix, what string) bool {
		if strings.HasSuffix(path, suffix) {
			db, part = strings.TrimSuffix(path, suffix), what
			return true
		}
		return false
	}
	if m := dataSuffixRE.FindStringSubmatch(path); m != nil {
		n, err := strconv.Atoi(m[3])
		if err != nil {
			return "", "", 0, false
		}
		db, part, index = m[1], m[2], n
	} else if !cut(SuffixProps, "props") && !cut(SuffixPre, "pre") && !cut(SuffixPost, "post") && !cut(SuffixDump, "whole") {
		return "", "", 0, false
	}
	if db == "" || strings.Contains(db, "/") || strings.Contains(db, "+") {
		return "", "", 0, false
	}
	name, err := DecodeName(db)
	if err != nil {
		return "", "", 0, false
	}
	return name, part, index, true
}
