package redact_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/lifeboat-backup/lifeboat/internal/redact"
)

func TestStringDSN(t *testing.T) {
	for in, want := range map[string]string{
		"host=db user=app password=hunter2 dbname=shop":    "host=db user=app password=REDACTED dbname=shop",
		"host=db password = 'hun ter2' sslmode=require":    "host=db password = REDACTED sslmode=require",
		`host=db password='it\'s hunter2' user=x`:          "host=db password=REDACTED user=x",
		"  dbname=x sslpassword=hunter2 sslkey=/etc/k.pem": "  dbname=x sslpassword=REDACTED sslkey=REDACTED",
		"password=hunter2":  "password=REDACTED",
		"host=db port=5432": "host=db port=5432",
		"postgres://app:hunter2@db:5432/shop?sslmode=disable":  "postgres://app:REDACTED@db:5432/shop?sslmode=disable",
		"postgresql://app@db/shop?password=hunter2":            "postgresql://app@db/shop?password=REDACTED",
		"app:hunter2@tcp(db:3306)/shop?parseTime=true":         "app:REDACTED@tcp(db:3306)/shop?parseTime=true",
		"app:hun@ter2@unix(/run/mysqld/mysqld.sock)/":          "app:REDACTED@unix(/run/mysqld/mysqld.sock)/",
		"app@tcp(db:3306)/":                                    "app@tcp(db:3306)/",
		"mysql://app:hunter2@db:3306/":                         "mysql://app:REDACTED@db:3306/",
		"host= password=hunter2":                               "host= password=REDACTED",
		"postgres://app:hun#ter2@db/shop":                      "postgres://app:REDACTED@db/shop",
		"postgres://app:12/hunter2@db/shop":                    "postgres://app:REDACTED@db/shop",
		"postgres://app:hunter2?x@db/shop?sslpassword=hunter2": "postgres://app:REDACTED@db/shop?sslpassword=REDACTED",
		"app:hun\nter2@tcp(db)/":                               "app:REDACTED@tcp(db)/",
		"postgres://app:hun\nter2@db/":                         "postgres://app:REDACTED@db/",
		"env:PG_DSN":                                           "env:PG_DSN",
	} {
		got := redact.String(in)
		require.Equal(t, want, got, "String(%q)", in)
		require.NotContains(t, got, "hunter2")
	}
}

func FuzzString(f *testing.F) {
	for _, s := range []string{"host=db user=app password=hunter2 dbname=shop", "host=db password='a b\\' c'",
		"postgres://app:hunter2@db/shop?sslpassword=x", "app:hunter2@tcp(db:3306)/shop", "s3://u:p@b?sig=x&region=r",
		"%%bad://user:pw@host/x?password=p1&a=1", "password=", "app:@tcp()/"} {
		f.Add(s, "hunter2")
	}
	f.Fuzz(func(t *testing.T, value, secret string) {
		if len(secret) < 4 || strings.ContainsAny(secret, " \t\n\r\f\v'\\=&;#?@/%:()") {
			return
		}
		tok := strings.Map(func(r rune) rune {
			if strings.ContainsRune(" \t\n\r\f\v'\\", r) {
				return -1
			}
			return r
		}, value)
		if strings.Contains(tok, secret) {
			return
		}
		// Whatever the other values are, a password never survives.
		for _, in := range []string{"host=" + tok + " password=" + secret, "host=x password=" + secret + " dbname=" + tok,
			"host=x password='" + secret + " " + tok + "'", "u:" + secret + "@tcp(" + tok + ")/",
			"postgres://u:" + secret + "@h/" + tok, "s3://b?password=" + secret + "&" + tok} {
			if got := redact.String(in); strings.Contains(got, secret) {
				t.Fatalf("String(%q) = %q keeps the secret", in, got)
			}
		}
	})
}

func TestStringURL(t *testing.T) {
	for in, want := range map[string]string{
		"azblob://c?sig=abc&sv=2020":            "azblob://c?sig=REDACTED&sv=2020",
		"s3://u:hunter2@b?region=x":             "s3://u:REDACTED@b?region=x",
		"s3://b?secret_access_key=xyz&region=r": "s3://b?secret_access_key=REDACTED&region=r",
		"file:///repo":                          "file:///repo",
	} {
		require.Equal(t, want, redact.String(in), in)
	}
}
