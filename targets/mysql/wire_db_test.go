package mysql_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/lifeboat-backup/lifeboat/targets/mysql"
	"github.com/lifeboat-backup/lifeboat/targets/mysql/mysqltest"
)

// TestWireSameAsDriver: rows read off the connection (the default) are
// byte for byte those of the driver's rows (taken when the connection is
// compressed), for every kind of column, NULLs, escapes and a row longer
// than one protocol packet (16 MiB).
func TestWireSameAsDriver(t *testing.T) {
	srv := mysqltest.Shared(t)
	db := srv.DB(t, "")
	run(t, db, "SET GLOBAL max_allowed_packet = 64 << 20")
	db = srv.DB(t, "") // new sessions see the new limit
	run(t, db, "DROP DATABASE IF EXISTS wire", "CREATE DATABASE wire",
		`CREATE TABLE wire.types (id INT PRIMARY KEY, ti TINYINT, si SMALLINT UNSIGNED, mi MEDIUMINT, i INT UNSIGNED ZEROFILL,
			bi BIGINT, bu BIGINT UNSIGNED, y YEAR, f FLOAT, d DOUBLE, dec1 DECIMAL(65,30), bt BIT(10), dt DATETIME(6), tm TIME,
			s VARCHAR(50), b BLOB, e ENUM('a','b'), j JSON)`,
		`INSERT INTO wire.types VALUES
			(1, -128, 65535, -8388608, 42, -9223372036854775808, 18446744073709551615, 0, 3.4e38, -1.7976931348623157e308,
				-12345678901234567890123456789012345.123456789012345678901234567891, b'1010101010', '2024-02-29 23:59:59.999999',
				'-838:59:59', 'tab\there\nnew\\line', x'00ff0a095c4e', 'b', '{"a": [1, "x\\ty"]}'),
			(2, 127, 0, 8388607, 0, 9223372036854775807, 9223372036854775808, 2155, 1e-38, 0.1, 0, b'0', '0000-00-00 00:00:00',
				'00:00:00', '', '', 'a', 'null'),
			(3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'NULL', '\\N', NULL, NULL),
			(4, 0, 1, 0, 1234567890, 0, 0, 1901, -0.5, 1e300, 0.000000000000000000000000000001, b'1111111111', '1000-01-01 00:00:00',
				'12:34:56', 'x', x'5c', NULL, '[]')`,
		"CREATE TABLE wire.big (id INT PRIMARY KEY, b LONGBLOB)",
		"INSERT INTO wire.big VALUES (1, REPEAT('a\\tb', 6000000)), (2, 'small'), (3, NULL)")

	wire := dumpAll(t, mysql.Options{DSN: srv.DSN(), Password: srv.Password, Databases: []string{"wire"}, Jobs: 2, SplitBytes: -1})
	drv := dumpAll(t, mysql.Options{DSN: srv.DSN() + "?compress=true", Password: srv.Password, Databases: []string{"wire"}, Jobs: 2, SplitBytes: -1})
	require.Equal(t, len(drv), len(wire))
	for p, want := range drv {
		require.Equal(t, want, wire[p], p)
	}
	lines := strings.Split(wire["wire/types.data"], "\n")
	require.Equal(t, []string{
		"id\tti\tsi\tmi\ti\tbi\tbu\ty\tf\td\tdec1\tbt\tdt\ttm\ts\tb\te\tj",
		"1\t-128\t65535\t-8388608\t42\t-9223372036854775808\t18446744073709551615\t0000\t3.4e+38\t-1.7976931348623157e+308\t" +
			"-12345678901234567890123456789012345.123456789012345678901234567891\t\x02\xaa\t2024-02-29 23:59:59.999999\t-838:59:59\t" +
			"tab\\there\\nnew\\\\line\t\\0\xff\\n\\t\\\\N\tb\t{\"a\": [1, \"x\\\\ty\"]}",
		"2\t127\t0\t8388607\t0\t9223372036854775807\t9223372036854775808\t2155\t1e-38\t0.1\t0.000000000000000000000000000000\t\\0\\0\t" + // BIT(10): two bytes
			"0000-00-00 00:00:00.000000\t00:00:00\t\t\ta\tnull",
		"3\t\\N\t\\N\t\\N\t\\N\t\\N\t\\N\t\\N\t\\N\t\\N\t\\N\t\\N\t\\N\t\\N\tNULL\t\\\\N\t\\N\t\\N",
		"4\t0\t1\t0\t1234567890\t0\t0\t1901\t-0.5\t1e+300\t0.000000000000000000000000000001\t\x03\xff\t1000-01-01 00:00:00.000000\t" +
			"12:34:56\tx\t\\\\\t\\N\t[]",
		""}, lines)
	require.Equal(t, "id\tb\n1\t"+strings.Repeat("a\\tb", 6000000)+"\n2\tsmall\n3\t\\N\n", wire["wire/big.data"])
}
