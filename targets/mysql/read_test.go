package mysql

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/lifeboat-backup/lifeboat/targets/mysql/mysqltest"
)

func TestSplitRange(t *testing.T) {
	for _, c := range []struct {
		lo, hi string
		n      int64
		want   []string
	}{
		{"1", "100", 4, []string{"26", "51", "76"}},
		{"0", "9", 10, []string{"1", "2", "3", "4", "5", "6", "7", "8", "9"}},
		{"-10", "10", 2, []string{"1"}},
		{"-9223372036854775808", "9223372036854775807", 2, []string{"0"}},
		{"-9223372036854775808", "9223372036854775807", 4, []string{"-4611686018427387904", "0", "4611686018427387904"}},
		{"5", "5", 4, nil},                    // one value
		{"1", "3", 8, nil},                    // fewer values than ranges
		{"", "", 4, nil},                      // empty table: MIN is NULL
		{"0", "18446744073709551615", 4, nil}, // beyond int64
		{"1", "100", 1, nil},                  // one range
		{"10", "1", 4, nil},                   // nonsense
		{"x", "1", 4, nil},                    // not a number
	} {
		got := splitRange(c.lo, c.hi, c.n)
		require.Equal(t, c.want, got, "%s..%s in %d", c.lo, c.hi, c.n)
	}
}

// TestParts: which tables are split, and the ranges' SQL.
func TestParts(t *testing.T) {
	srv := mysqltest.Shared(t)
	db := srv.DB(t, "")
	for _, q := range []string{"DROP DATABASE IF EXISTS parts", "CREATE DATABASE parts",
		"CREATE TABLE parts.t (`k``ey` INT PRIMARY KEY, v INT) ENGINE=InnoDB", "INSERT INTO parts.t VALUES (0, 0), (99, 1)",
		"CREATE TABLE parts.s (id VARCHAR(10) PRIMARY KEY) ENGINE=InnoDB", "CREATE TABLE parts.m (id INT PRIMARY KEY) ENGINE=MyISAM",
		"INSERT INTO parts.m VALUES (1), (1000)",
		"CREATE TABLE parts.c (a SMALLINT, b VARCHAR(5), v INT, PRIMARY KEY (a, b)) ENGINE=InnoDB", "INSERT INTO parts.c VALUES (-5, 'x', 0), (5, 'y', 1)",
		"CREATE TABLE parts.cs (a VARCHAR(5), b INT, PRIMARY KEY (a, b)) ENGINE=InnoDB"} {
		_, err := db.Exec(q)
		require.NoError(t, err, q)
	}
	ctx := context.Background()
	c, err := db.Conn(ctx)
	require.NoError(t, err)
	defer c.Close()
	tbl := func(name, engine string, size int64, cols ...string) *table {
		return &table{db: "parts", name: name, engine: engine, size: size, columns: cols}
	}
	for _, tc := range []struct {
		split int64
		t     *table
		want  []string
	}{
		{100, tbl("t", "InnoDB", 250, "k`ey", "v"), []string{
			"SELECT `k``ey`, `v` FROM `parts`.`t` FORCE INDEX (PRIMARY) WHERE `k``ey` < 34 ORDER BY `k``ey`",
			"SELECT `k``ey`, `v` FROM `parts`.`t` FORCE INDEX (PRIMARY) WHERE `k``ey` >= 34 AND `k``ey` < 68 ORDER BY `k``ey`",
			"SELECT `k``ey`, `v` FROM `parts`.`t` FORCE INDEX (PRIMARY) WHERE `k``ey` >= 68 ORDER BY `k``ey`"}},
		{100, tbl("t", "InnoDB", 100, "k`ey", "v"), []string{"SELECT `k``ey`, `v` FROM `parts`.`t`"}},  // not above the size
		{-1, tbl("t", "InnoDB", 1<<40, "k`ey", "v"), []string{"SELECT `k``ey`, `v` FROM `parts`.`t`"}}, // never
		{1, tbl("s", "InnoDB", 1<<30, "id"), []string{"SELECT `id` FROM `parts`.`s`"}},                 // string key
		{50, tbl("c", "InnoDB", 100, "a", "b", "v"), []string{ // composite key: ranges of its first column
			"SELECT `a`, `b`, `v` FROM `parts`.`c` FORCE INDEX (PRIMARY) WHERE `a` < 1 ORDER BY `a`, `b`",
			"SELECT `a`, `b`, `v` FROM `parts`.`c` FORCE INDEX (PRIMARY) WHERE `a` >= 1 ORDER BY `a`, `b`"}},
		{1, tbl("cs", "InnoDB", 1<<30, "a", "b"), []string{"SELECT `a`, `b` FROM `parts`.`cs`"}}, // composite, string first
		{1, tbl("m", "MyISAM", 1<<30, "id"), []string{"SELECT `id` FROM `parts`.`m`"}},           // not InnoDB
	} {
		d := &dump{s: &Source{opts: Options{SplitBytes: tc.split}}}
		got, err := d.parts(ctx, c, tc.t)
		require.NoError(t, err)
		require.Equal(t, tc.want, got, "%s split %d", tc.t.name, tc.split)
	}
	_, err = (&dump{s: &Source{opts: Options{SplitBytes: 1}}}).parts(ctx, c, tbl("gone", "InnoDB", 10, "id"))
	require.NoError(t, err, "a table without a primary key is read whole")
}
