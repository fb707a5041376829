package sanitize

import (
	"fmt"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/lifeboat-backup/lifeboat/policies"
	"github.com/lifeboat-backup/lifeboat/targets/mysql"
)

func TestWhere(t *testing.T) {
	now := time.Date(2025, 6, 30, 12, 0, 0, 0, time.UTC)
	cols := map[string]int{"a": 0, "created_at": 1, "email": 2, "n": 3}
	row := [][]byte{[]byte("10"), []byte("2025-06-01 00:00:00"), []byte("Foo@Example.com"), nil}
	for cond, want := range map[string]bool{
		"a = 10":                                    true,
		"a > 9.5 AND a < 11":                        true,
		"a >= 11 OR email LIKE '%@example.com'":     true,
		"email NOT LIKE 'foo%'":                     false,
		"n IS NULL":                                 true,
		"n IS NOT NULL":                             false,
		"n = 1 OR a = 10":                           true,
		"n = 1":                                     false,
		"NOT (n = 1)":                               false, // unknown stays unknown
		"a IN (1, 2, 10)":                           true,
		"a NOT IN (1, 2)":                           true,
		"a BETWEEN 5 AND 10":                        true,
		"created_at > NOW() - INTERVAL 90 DAY":      true,
		"created_at > NOW() - INTERVAL 10 DAY":      false,
		"`created_at` >= '2025-06-01'":              true,
		"created_at < CURDATE() - INTERVAL 1 MONTH": false,
		"t.a = -10 OR TRUE":                         true,
	} {
		w, err := parseWhere(cond)
		require.NoError(t, err, cond)
		got := truthy(w.x.eval(&env{row: row, cols: cols, now: now}))
		require.Equal(t, want, got, cond)
	}
	for _, bad := range []string{"a = ", "SLEEP(1) = 0", "a = 'x", "created_at > NOW() - INTERVAL 1 FORTNIGHT", "a LIKE b"} {
		_, err := parseWhere(bad)
		require.Error(t, err, bad)
	}
}

func TestFakes(t *testing.T) {
	f := &faker{key: []byte("0123456789abcdef")}
	for _, kind := range policies.FakeKinds {
		a, b := f.fake(kind, []byte("x@y.z"), 0), f.fake(kind, []byte("x@y.z"), 0)
		require.Equal(t, a, b, kind)
		require.NotEmpty(t, a, kind)
		for _, max := range []int{3, 8, 12, 20} {
			require.LessOrEqual(t, len(f.fake(kind, []byte("some value"), max)), max, kind)
		}
	}
	// Unique kinds stay unique: 50k originals, 50k fakes, even in 20 chars.
	seen := map[string]bool{}
	for i := range 50000 {
		e := f.fake("email", fmt.Appendf(nil, "customer%d@example.com", i), 20)
		require.False(t, seen[e], e)
		require.Contains(t, e, "@")
		seen[e] = true
	}
	// IBANs pass their check digits.
	ib := f.fake("iban", []byte("DE89370400440532013000"), 0)
	n, ok := new(big.Int).SetString(ib[4:]+"1314"+ib[2:4], 10)
	require.True(t, ok, ib)
	require.Equal(t, int64(1), new(big.Int).Mod(n, big.NewInt(97)).Int64(), ib)
	// Templates combine fakes of the same original.
	r, err := ParseRule("fixed:{first_name}.{last_name}@example.com")
	require.NoError(t, err)
	col := &column{typ: "varchar", max: 255}
	v := string(f.apply(&r, col, []byte("orig")))
	require.Equal(t, strings.ToLower(f.fake("first_name", []byte("orig"), 0)), strings.ToLower(strings.Split(v, ".")[0]))
	require.True(t, strings.HasSuffix(v, "@example.com"))
	m, err := ParseRule("mask:keep_last=4")
	require.NoError(t, err)
	require.Equal(t, "xxxxxxxxxxxx1234", string(f.apply(&m, col, []byte("4111111111111234"))))
	require.Nil(t, f.apply(&Rule{Kind: policies.RuleFake, Arg: "email"}, col, nil))
}

func TestParseColumns(t *testing.T) {
	cols := parseColumns("CREATE TABLE `t` (\n  `id` int(10) unsigned NOT NULL AUTO_INCREMENT,\n  `e``x` varchar(32) DEFAULT NULL,\n" +
		"  `c` char(2) NOT NULL,\n  `b` tinytext,\n  PRIMARY KEY (`id`),\n  UNIQUE KEY `u` (`e``x`,`c`)\n) ENGINE=InnoDB")
	require.Len(t, cols, 4)
	require.Equal(t, column{name: "id", typ: "int", unique: true}, *cols[0])
	require.Equal(t, column{name: "e`x", typ: "varchar", max: 32, nullable: true, unique: true}, *cols[1])
	require.Equal(t, column{name: "c", typ: "char", max: 2, unique: true}, *cols[2])
	require.Equal(t, column{name: "b", typ: "tinytext", max: 255, nullable: true}, *cols[3])
}

func TestContentKind(t *testing.T) {
	for v, want := range map[string]string{
		"a.b@example.com":     "email",
		"+49 170 1234567":     "phone",
		"(030) 123-4567":      "phone",
		"192.0.2.1":           "ip",
		"2001:db8::1":         "ip",
		"4111 1111 1111 1111": "card",
		"4111111111111112":    "",
		"2024-01-01":          "",
		"100000123":           "",
		"T-Shirt Anna":        "",
	} {
		require.Equal(t, want, contentKind([]byte(v)), v)
	}
}

func TestSplitRow(t *testing.T) {
	vals := [][]byte{nil, {}, []byte("plain"), []byte("tab\there"), []byte("nl\nx\\y"), {0, '\\', 'N'}, []byte("\\N"), []byte("N")}
	for i := range vals {
		for j := range vals {
			line := mysql.AppendRow(nil, [][]byte{vals[i], vals[j], vals[(i+j)%len(vals)]})
			line = line[:len(line)-1]
			got, _ := splitRow(line, nil, nil)
			require.Equal(t, mysql.SplitRow(line), got, "%q", line)
		}
	}
}
