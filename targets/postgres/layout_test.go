package postgres_test

import (
	"errors"
	"io"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/lifeboat-backup/lifeboat/engine/snapshot"
	"github.com/lifeboat-backup/lifeboat/targets/postgres"
)

// nodeList yields nodes, then err (io.EOF if nil).
type nodeList struct {
	nodes []*snapshot.Node
	err   error
}

func (l *nodeList) Next() (*snapshot.Node, error) {
	if len(l.nodes) == 0 {
		if l.err != nil {
			return nil, l.err
		}
		return nil, io.EOF
	}
	n := l.nodes[0]
	l.nodes = l.nodes[1:]
	return n, nil
}

func files(paths ...string) []*snapshot.Node {
	var out []*snapshot.Node
	for _, p := range paths {
		out = append(out, &snapshot.Node{Entry: snapshot.Entry{Path: p, Type: snapshot.TypeFile}})
	}
	return out
}

func paths(nodes []*snapshot.Node) []string {
	var out []string
	for _, n := range nodes {
		out = append(out, n.Path)
	}
	return out
}

func TestReadLayout(t *testing.T) {
	// Tree order: '+' < '-' < '.', so shop-eu's entries come between
	// shop's properties and shop's archive.
	l, err := postgres.ReadLayout(&nodeList{nodes: files(
		"%C3%BCml.dump",
		"globals.sql",
		"shop+0-properties.json",
		"shop-eu+0-properties.json",
		"shop-eu+1-pre.dump", "shop-eu+2-data-00.dump", "shop-eu+2-data-01.dump", "shop-eu+3-post.dump",
		"shop.dump",
		"tb+1-pre.dump", "tb+2-data-00.dump", "tb+2-table-00.dump", "tb+2-table-01.dump", "tb+3-post.dump",
	)})
	require.NoError(t, err)
	require.Equal(t, "globals.sql", l.Globals.Path)
	var names []string
	for _, d := range l.Databases {
		names = append(names, d.Name)
	}
	require.Equal(t, []string{"üml", "shop-eu", "shop", "tb"}, names, "in the tree order of the first archive")
	eu, shop := l.Databases[1], l.Databases[2]
	require.Equal(t, "shop-eu+0-properties.json", eu.Props.Path)
	require.Equal(t, []string{"shop-eu+1-pre.dump", "shop-eu+2-data-00.dump", "shop-eu+2-data-01.dump", "shop-eu+3-post.dump"}, paths(eu.Archives()))
	require.Nil(t, eu.Whole)
	require.Equal(t, "shop+0-properties.json", shop.Props.Path)
	require.Equal(t, []string{"shop.dump"}, paths(shop.Archives()))
	require.Nil(t, l.Databases[0].Props, "snapshots from before properties")
	require.Empty(t, eu.Tables, "snapshots from before table archives")
	tb := l.Databases[3]
	require.Equal(t, []string{"tb+2-table-00.dump", "tb+2-table-01.dump"}, paths(tb.Tables))
	require.Equal(t, []string{"tb+1-pre.dump", "tb+2-data-00.dump", "tb+2-table-00.dump", "tb+2-table-01.dump", "tb+3-post.dump"}, paths(tb.Archives()))

	l, err = postgres.ReadLayout(&nodeList{nodes: files("a.dump")})
	require.NoError(t, err)
	require.Nil(t, l.Globals)
}

func TestReadLayoutBad(t *testing.T) {
	dir := &snapshot.Node{Entry: snapshot.Entry{Path: "shop", Type: snapshot.TypeDir}}
	link := &snapshot.Node{Entry: snapshot.Entry{Path: "globals.sql", Type: snapshot.TypeSymlink}}
	readErr := errors.New("tree blob 1234: corrupt")
	for _, tc := range []struct {
		name  string
		nodes []*snapshot.Node
		err   error
		want  string
	}{
		{"empty", nil, nil, "no database in the snapshot"},
		{"globals only", files("globals.sql"), nil, "no database in the snapshot"},
		{"read error", files("shop.dump"), readErr, "tree blob 1234: corrupt"},
		{"unknown entry", files("shop.dump", "notes.txt"), nil, `unexpected entry "notes.txt"`},
		{"entry in a directory", files("a/shop.dump"), nil, `unexpected entry "a/shop.dump"`},
		{"directory", append(files("shop.dump"), dir), nil, `unexpected dir entry "shop"`},
		{"globals not a file", append([]*snapshot.Node{link}, files("shop.dump")...), nil, `unexpected symlink entry "globals.sql"`},
		{"whole and split", files("shop+1-pre.dump", "shop+2-data-00.dump", "shop+3-post.dump", "shop.dump"), nil,
			`database "shop" has a whole archive and split archives`},
		{"properties only", files("shop+0-properties.json"), nil, `database "shop" has properties but no archive`},
		{"pre and post without data", files("shop+1-pre.dump", "shop+3-post.dump"), nil, `database "shop" is incomplete`},
		{"no post", files("shop+1-pre.dump", "shop+2-data-00.dump"), nil, `database "shop" is incomplete`},
		{"no pre", files("shop+2-data-00.dump", "shop+3-post.dump"), nil, `database "shop" is incomplete`},
		{"data gap", files("shop+1-pre.dump", "shop+2-data-00.dump", "shop+2-data-02.dump", "shop+3-post.dump"), nil,
			`database "shop": data archive 1 of 2 is missing`},
		{"data twice", files("shop+1-pre.dump", "shop+2-data-00.dump", "shop+2-data-000.dump", "shop+3-post.dump"), nil,
			`database "shop": data archive 0 appears twice ("shop+2-data-000.dump")`},
		{"whole and table", files("shop+2-table-00.dump", "shop.dump"), nil,
			`database "shop" has a whole archive and split archives`},
		{"tables without data", files("shop+1-pre.dump", "shop+2-table-00.dump", "shop+3-post.dump"), nil, `database "shop" is incomplete`},
		{"table gap", files("shop+1-pre.dump", "shop+2-data-00.dump", "shop+2-table-01.dump", "shop+3-post.dump"), nil,
			`database "shop": table archive 0 of 1 is missing`},
		{"table twice", files("shop+1-pre.dump", "shop+2-data-00.dump", "shop+2-table-00.dump", "shop+2-table-000.dump", "shop+3-post.dump"), nil,
			`database "shop": table archive 0 appears twice ("shop+2-table-000.dump")`},
		{"same name encoded twice", files("sh%6Fp.dump", "shop.dump"), nil, `entry "shop.dump" appears twice`},
		{"globals twice", files("globals.sql", "globals.sql", "shop.dump"), nil, `entry "globals.sql" appears twice`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := postgres.ReadLayout(&nodeList{nodes: tc.nodes, err: tc.err})
			require.ErrorContains(t, err, tc.want)
			if tc.err != nil {
				require.ErrorIs(t, err, tc.err)
			}
		})
	}
}
