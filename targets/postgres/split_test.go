package postgres

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestOwnTables(t *testing.T) {
	tb := func(name string, size int64) table { return table{pattern: name, size: size} }
	part := table{pattern: "p1", size: 1000, partition: true}
	for _, tc := range []struct {
		name   string
		tables []table
		jobs   int
		want   []string
	}{
		{"largest first", []table{tb("a", 10), tb("b", 100), tb("c", 60), tb("d", 50)}, 1, []string{"b", "c", "d", "a"}},
		{"4 per job", []table{tb("a", 10), tb("b", 100), tb("c", 60), tb("d", 50), tb("e", 5)}, 1, []string{"b", "c", "d", "a"}},
		{"ties keep the listing's order", []table{tb("a", 0), tb("b", 0), tb("c", 0)}, 2, []string{"a", "b", "c"}},
		{"no partitions", []table{part, tb("a", 5)}, 2, []string{"a"}},
		{"no tables", nil, 3, nil},
	} {
		t.Run(tc.name, func(t *testing.T) { require.Equal(t, tc.want, ownTables(tc.tables, tc.jobs)) })
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
		{"oro+2-table-03.dump", "oro", "table", 3, true},
		{"oro+2-tables-03.dump", "", "", 0, false},
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
	require.Equal(t, "+2-table-07.dump", TableSuffix(7))
}
