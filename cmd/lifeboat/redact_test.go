package main

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
)

// TestDSNPasswordNeverPrinted connects with DSNs holding a password to a
// port where nothing listens (and with forms lifeboat refuses): the
// errors on stderr, in text and --json, name the server but never the
// password.
func TestDSNPasswordNeverPrinted(t *testing.T) {
	c, dir, _ := setup(t)
	c.env["LIFEBOAT_KEY_FILE"] = filepath.Join(dir, "host.key")
	for _, args := range [][]string{
		{"backup", "postgres", "--dsn", "host=127.0.0.1 port=1 user=app password=hunter2 dbname=shop"},
		{"backup", "postgres", "--dsn", "host=127.0.0.1 port=1 user=app password='hunter2 x' dbname=shop"},
		{"backup", "postgres", "--dsn", "postgres://app:hunter2@127.0.0.1:1/shop?sslmode=disable&connect_timeout=2"},
		{"backup", "postgres", "--dsn", "postgresql://app@127.0.0.1:1/shop?password=hunter2"},
		{"backup", "mysql", "--dsn", "app:hunter2@tcp(127.0.0.1:1)/"},
		{"backup", "mysql", "--dsn", "mysql://app:hunter2@127.0.0.1:1/"},
		{"backup", "mysql", "--dsn", "app:hunter2@tcp(127.0.0.1:1/"},
	} {
		for _, json := range []bool{false, true} {
			a := args
			if json {
				a = append(append([]string{}, args...), "--json")
			}
			out, errs, code := c.run(a...)
			assert.NotEqual(t, 0, code, "%v", a)
			assert.NotContains(t, out+errs, "hunter2", "%v", a)
		}
	}
}
