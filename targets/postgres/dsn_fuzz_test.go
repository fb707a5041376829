package postgres

import (
	"net/url"
	"strings"
	"testing"
)

func FuzzParseDSN(f *testing.F) {
	for _, s := range [][4]string{
		{"app", "hunter22", "127.0.0.1:5432", "shop"}, {"app", "p@ss:w/rd?#", "db.example", "db name"},
		{"", "secretpw", "[::1]:5432", ""}, {"u", "secretpw", "", "x?host=/run/postgresql"}, {"u", "secretpw", "h", "x"},
	} {
		f.Add(s[0], s[1], s[2], s[3])
	}
	f.Fuzz(func(t *testing.T, user, pw, host, db string) {
		// The password must not show, when the other parts are plain
		// words (a '?' in a database name would start another query).
		secret := len(pw) >= 6 && !strings.Contains(user+host+db+"postgres://postgresql://host= user= dbname= password=", pw) &&
			!strings.ContainsAny(user+host+db, "?#&@/ '\\=%:[]")
		for _, dsn := range []string{
			"postgres://" + url.UserPassword(user, pw).String() + "@" + host + "/" + db,
			"postgresql://" + user + "@" + host + "/" + db + "?password=" + url.QueryEscape(pw),
			"postgres://" + user + ":" + pw + "@" + host + "/" + db,
			"host=" + host + " user=" + user + " password=" + pw + " dbname=" + db,
			"host=" + host + " password='" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(pw) + "' dbname=" + db,
		} {
			if r := Redact(dsn); secret && strings.Contains(r, pw) {
				t.Fatalf("Redact(%q) = %q shows the password", dsn, r)
			}
			c, err := ParseDSN(dsn, "")
			if err != nil {
				if secret && strings.Contains(err.Error(), pw) {
					t.Fatalf("ParseDSN(%q): error shows the password: %v", dsn, err)
				}
				continue
			}
			for _, s := range []string{c.String(), c.URL(""), c.URL("other"), c.Database()} {
				if secret && strings.Contains(s, pw) && !strings.Contains(db, pw) {
					t.Fatalf("ParseDSN(%q) prints the password: %s", dsn, s)
				}
			}
		}
	})
}
