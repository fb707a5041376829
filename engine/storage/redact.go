package storage

import (
	"net/url"
	"strings"

	"github.com/lifeboat-backup/lifeboat/internal/redact"
)

// Redact returns a repository URL or database DSN without its secrets
// (see redact.String). Use it whenever one is printed or put into an
// error.
func Redact(rawURL string) string { return redact.String(rawURL) }

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
			msg = strings.ReplaceAll(msg, u.RawQuery, redact.Query("?" + u.RawQuery)[1:])
		}
	}
	return msg
}
