package postgres

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestSpread(t *testing.T) {
	tb := func(name string, size int64) table { return table{pattern: name, size: size} }
	for _, tc := range []struct {
		name   string
		tables []table
		n      int
		want   [][]string
	}{
		{"largest first, to the least loaded", []table{tb("a", 10), tb("b", 100), tb("c", 60), tb("d", 50)}, 2,
			[][]string{{"b", "a"}, {"c", "d"}}},
		{"three parts", []table{tb("a", 10), tb("b", 100), tb("c", 60), tb("d", 50)}, 3,
			[][]string{{"b"}, {"c"}, {"d", "a"}}},
		{"empty tables spread by count", []table{tb("a", 0), tb("b", 0), tb("c", 0)}, 2, [][]string{{"a", "c"}, {"b"}}},
		{"fewer tables than parts: empty parts dropped", []table{tb("a", 5)}, 4, [][]string{{"a"}}},
		{"no tables: part 0 stays", nil, 3, [][]string{nil}},
	} {
		t.Run(tc.name, func(t *testing.T) { require.Equal(t, tc.want, spread(tc.tables, tc.n)) })
	}
}

func TestExactPattern(t *testing.T) {
	require.Equal(t, `"Odd*Name.x?"`, exactPattern("Odd*Name.x?"))
	require.Equal(t, `"Qu""ote"`, exactPattern(`Qu"ote`))
}

func TestSplitEntry(t *testing.T) {
	for _, tc := range []struct {
		path, db, part string
		index          int
		ok             bool
	}{
		{"oro.dump", "oro", "whole", 0, true},
		{"oro+0-properties.json", "oro", "props", 0, true},
		{"oro+1-pre.dump", "oro", "pre", 0, true},
		{"oro+2-data-00.dump", "oro", "data", 0, true},
		{"oro+2-data-12.dump", "oro", "data", 12, true},
		{"audit%20db+3-post.dump", "audit db", "post", 0, true},
		{"x.pre.dump", "x.pre", "whole", 0, true},
		{"globals.sql", "", "", 0, false},
		{"+1-pre.dump", "", "", 0, false},
		{"a+b.dump", "", "", 0, false},
		{"dir/oro.dump", "", "", 0, false},
		{"oro+2-data-x.dump", "", "", 0, false},
		{"bad%zz.dump", "", "", 0, false},
	} {
		db, part, i, ok := SplitEntry(tc.path)
		require.Equal(t, tc.ok, ok, tc.path)
		require.Equal(t, tc.db, db, tc.path)
		require.Equal(t, tc.part, part, tc.path)
		require.Equal(t, tc.index, i, tc.path)
	}
	require.Equal(t, "+2-data-03.dump", DataSuffix(3))
}
