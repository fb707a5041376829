// Package redact removes secrets from connection strings (URLs, libpq
// key=value strings, go-sql-driver DSNs) before they reach an error, a
// log line, a journal or a terminal.
package redact

import (
	"net/url"
	"regexp"
	"strings"
)

const redacted = "REDACTED"

// secretParam tells whether a URL query parameter may carry a secret.
func secretParam(name string) bool {
	n := strings.ToLower(name)
	for _, s := range []string{"secret", "password", "passwd", "pass", "token", "sig", "signature", "credential", "accountkey", "account_key", "access_key", "key"} {
		if strings.Contains(n, s) {
			return true
		}
	}
	return false
}

var (
	// rawUserinfo is the password of a URL that url.Parse cannot read,
	// or reads otherwise (a password holding '#', '/' or '?'): from the
	// first ':' of the authority to the last '@'.
	rawUserinfo = regexp.MustCompile(`(?s)(//[^/:@?#]*):.*@`)
	rawParam    = regexp.MustCompile(`([?&;]([^=&;#]*))=([^&;#]*)`)
)

// String returns a connection string fit for errors, logs and journals:
// in a URL, any password in its userinfo and the values of query
// parameters that may hold secrets (names containing secret, password,
// token, sig, key, credential, ...) are replaced by "REDACTED"; in a
// libpq key=value string ("host=db user=app password=secret") the values
// of such keys; in a go-sql-driver DSN ("user:secret@tcp(db:3306)/") the
// password. It never fails: text that does not parse is redacted
// textually. Use it whenever a repository URL or a database DSN is
// printed or put into an error.
func String(rawURL string) string {
	if keyValue.MatchString(rawURL) {
		return redactKeyValue(rawURL)
	}
	if m := sqlDriverDSN.FindStringSubmatchIndex(rawURL); m != nil {
		rawURL = rawURL[:m[2]] + redacted + rawURL[m[3]:]
	}
	u, err := url.Parse(rawURL)
	if err != nil || rawUserinfo.MatchString(rawURL) && (u.User == nil || u.Fragment != "" || strings.Contains(u.Path+u.RawQuery, "@")) {
		return Query(rawUserinfo.ReplaceAllString(rawURL, "$1:"+redacted+"@"))
	}
	changed := false
	if u.User != nil {
		if _, ok := u.User.Password(); ok {
			u.User = url.UserPassword(u.User.Username(), redacted)
			changed = true
		}
	}
	if q := Query("?" + u.RawQuery); q != "?"+u.RawQuery {
		u.RawQuery = q[1:]
		changed = true
	}
	if !changed {
		return rawURL
	}
	return u.String()
}

var (
	// keyValue is a libpq connection string: it starts with keyword=.
	keyValue = regexp.MustCompile(`^\s*[A-Za-z_]+\s*=`)
	// kvPair is one keyword=value of it; a value is 'quoted' (with \'
	// and \\ escapes) or runs to the next white space.
	kvPair = regexp.MustCompile(`([A-Za-z_]+)(\s*=\s*)('(?:[^'\\]|\\.)*'?|(?:[^\s\\]|\\.)*)`)
	// sqlDriverDSN is user:password@ at the start of a go-sql-driver
	// DSN (user:password@tcp(host:port)/db); the password is group 1.
	sqlDriverDSN = regexp.MustCompile(`(?s)^[^:@/(]*:(.*)@[a-z0-9]*\(`)
)

// redactKeyValue redacts the values of secret keys in a libpq key=value
// connection string, keeping everything else as written.
func redactKeyValue(s string) string {
	return kvPair.ReplaceAllStringFunc(s, func(m string) string {
		sub := kvPair.FindStringSubmatch(m)
		if secretParam(sub[1]) {
			return sub[1] + sub[2] + redacted
		}
		if strings.Contains(sub[3], "=") {
			// "host= password=x": libpq reads host's value as
			// "password=x"; redact it all the same.
			return sub[1] + sub[2] + redactKeyValue(sub[3])
		}
		return m
	})
}

// Query redacts the secret parameter values in a URL query s (with its
// leading "?"), keeping their order.
func Query(s string) string {
	return rawParam.ReplaceAllStringFunc(s, func(m string) string {
		sub := rawParam.FindStringSubmatch(m)
		if secretParam(sub[2]) && sub[3] != redacted {
			return sub[1] + "=" + redacted
		}
		if i := strings.IndexByte(sub[3], '?'); i >= 0 {
			// "?host=/run/pg?password=x": a second query inside a value.
			return sub[1] + "=" + sub[3][:i] + Query(sub[3][i:])
		}
		return m
	})
}
