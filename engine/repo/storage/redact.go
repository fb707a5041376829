package storage

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
	rawUserinfo = regexp.MustCompile(`(//[^/:@?#]*):[^/@?#]*@`)
	rawParam    = regexp.MustCompile(`([?&;]([^=&;#]*))=([^&;#]*)`)
)

// Redact returns url with any password in its userinfo and the values of
// query parameters that may hold secrets (names containing secret,
// password, token, sig, key, credential, ...) replaced by "REDACTED". It
// never fails: text that does not parse as a URL is redacted textually.
// Use it whenever a repository URL is printed or put into an error.
func Redact(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return redactQuery(rawUserinfo.ReplaceAllString(rawURL, "$1:"+redacted+"@"))
	}
	changed := false
	if u.User != nil {
		if _, ok := u.User.Password(); ok {
			u.User = url.UserPassword(u.User.Username(), redacted)
			changed = true
		}
	}
	if q := redactQuery("?" + u.RawQuery); q != "?"+u.RawQuery {
		u.RawQuery = q[1:]
		changed = true
	}
	if !changed {
		return rawURL
	}
	return u.String()
}

// redactQuery redacts secret parameter values in s, keeping their order.
func redactQuery(s string) string {
	return rawParam.ReplaceAllStringFunc(s, func(m string) string {
		sub := rawParam.FindStringSubmatch(m)
		if secretParam(sub[2]) && sub[3] != redacted {
			return sub[1] + "=" + redacted
		}
		return m
	})
}

// scrub removes raw (and its parsed forms) from an error text that may
// quote the URL, replacing it by its redacted form.
func scrub(msg, raw string, u *url.URL) string {
	if raw == "" {
		return msg
	}
	red := Redact(raw)
	msg = strings.ReplaceAll(msg, raw, red)
	if u != nil {
		if s := u.String(); s != raw {
			msg = strings.ReplaceAll(msg, s, Redact(s))
		}
		if u.RawQuery != "" {
			msg = strings.ReplaceAll(msg, u.RawQuery, redactQuery("?" + u.RawQuery)[1:])
		}
	}
	return msg
}
