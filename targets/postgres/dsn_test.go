package postgres

import (
	"strings"
	"testing"
)

func TestParseDSN(t *testing.T) {
	c, err := ParseDSN("postgres://app:s3cret@db.example:5433/shop?sslmode=require", "")
	if err != nil {
		t.Fatal(err)
	}
	if c.Password != "s3cret" || c.Database() != "shop" {
		t.Fatalf("got %+v %q", c, c.Database())
	}
	if got := c.URL("other"); got != "postgres://app@db.example:5433/other?sslmode=require" {
		t.Fatalf("URL: %s", got)
	}
	if got := c.String(); got != "postgres://app@db.example:5433/?sslmode=require" {
		t.Fatalf("String: %s", got)
	}
	c, _ = ParseDSN("postgresql://app:inurl@h/?password=q", "given")
	if c.Password != "given" || strings.Contains(c.URL(""), "q") && strings.Contains(c.URL(""), "password") {
		t.Fatalf("password precedence / query: %+v %s", c, c.URL(""))
	}
	for _, bad := range []string{"mysql://x@h/", "postgres:///db", "user@host"} {
		if _, err := ParseDSN(bad, ""); err == nil {
			t.Errorf("%s: no error", bad)
		}
	}
	if r := Redact("postgres://u:pw@h:1/db?password=pw2"); strings.Contains(r, "pw") {
		t.Fatalf("Redact: %s", r)
	}
	old := envList
	envList = func() []string { return []string{"PGPASSWORD=old", "HOME=/x"} }
	defer func() { envList = old }()
	env := strings.Join((&Conn{Password: "new"}).Env(), " ")
	if strings.Contains(env, "old") || !strings.Contains(env, "PGPASSWORD=new") || !strings.Contains(env, "PGCONNECT_TIMEOUT=") {
		t.Fatalf("Env: %s", env)
	}
}

func TestEncodeName(t *testing.T) {
	for _, n := range []string{"shop", "audit db", ".hidden", "a/b%c", "ünï.v2", "x.dump"} {
		e := EncodeName(n)
		if strings.ContainsAny(e, "/ ") || strings.HasPrefix(e, ".") {
			t.Errorf("%q -> %q", n, e)
		}
		d, err := DecodeName(e)
		if err != nil || d != n {
			t.Errorf("%q -> %q -> %q, %v", n, e, d, err)
		}
	}
}
