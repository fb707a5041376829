package mysql

import (
	"net/url"
	"strings"
	"testing"
)

func FuzzParseDSN(f *testing.F) {
	for _, s := range [][3]string{
		{"alice", "secret", "127.0.0.1:3306"}, {"bob", "p@ss:w/rd", "db.example:3307"}, {"root", "hunter22", "[::1]:3306"},
		{"u", "pw)(x", "/run/mysqld/mysqld.sock"}, {"", "secret", ""}, {"a:b", "longpassword", "h"},
	} {
		f.Add(s[0], s[1], s[2])
	}
	f.Fuzz(func(t *testing.T, user, pw, host string) {
		forms := []string{
			user + ":" + pw + "@tcp(" + host + ")/",
			user + ":" + pw + "@unix(" + host + ")/db?parseTime=true",
			"mysql://" + url.UserPassword(user, pw).String() + "@" + host + "/",
			"mysql://" + user + ":" + pw + "@" + host + "/?socket=" + host,
		}
		for _, dsn := range forms {
			cfg, err := ParseDSN(dsn, "")
			secret := len(pw) >= 6 && !strings.Contains(user+host+"mysql://tcp()unix/db?parseTime=true&socket=", pw)
			if err != nil {
				if secret && strings.Contains(err.Error(), pw) {
					t.Fatalf("ParseDSN(%q): error shows the password: %v", dsn, err)
				}
				continue
			}
			if secret && strings.Contains(RedactConfig(cfg), pw) {
				t.Fatalf("RedactConfig of %q shows the password: %s", dsn, RedactConfig(cfg))
			}
			if secret && strings.Contains(Redact(dsn), pw) {
				t.Fatalf("Redact(%q) shows the password: %s", dsn, Redact(dsn))
			}
		}
		ParseDSN(user+pw+host, "") // any text: no panic
	})
}
