package mysql

import (
	"errors"
	"io"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lifeboat-backup/lifeboat/engine/snapshot"
)

func nodes(paths ...string) func() (*snapshot.Node, error) {
	var ns []*snapshot.Node
	for _, p := range paths {
		typ := snapshot.TypeFile
		if p[len(p)-1] == '/' {
			p, typ = p[:len(p)-1], snapshot.TypeDir
		}
		ns = append(ns, &snapshot.Node{Entry: snapshot.Entry{Path: p, Type: typ}})
	}
	return func() (*snapshot.Node, error) {
		if len(ns) == 0 {
			return nil, io.EOF
		}
		n := ns[0]
		ns = ns[1:]
		return n, nil
	}
}

func TestReadLayout(t *testing.T) {
	shop := []string{"shop/", "shop/" + DatabaseFile, "shop/orders" + SuffixData, "shop/orders" + SuffixSchema,
		"shop/recent" + SuffixView, "shop/t_upd" + SuffixTrigger, "shop/z" + SuffixSchema}
	l, err := ReadLayout(nodes(shop...))
	require.NoError(t, err)
	require.Len(t, l.DBs, 1)
	assert.Nil(t, l.Users, "no users file")
	d := l.DBs[0]
	assert.Equal(t, "shop", d.Name)
	assert.Equal(t, "shop/"+DatabaseFile, d.Create.Path)
	assert.Equal(t, []string{"orders", "z"}, d.Tables)
	assert.NotNil(t, d.Data["orders"])
	assert.Nil(t, d.Data["z"], "a table without data (excluded rows)")
	assert.Len(t, d.Objects[SuffixView], 1)
	assert.Len(t, d.Objects[SuffixTrigger], 1)

	failed := errors.New("tree read failed")
	for _, tc := range []struct {
		name string
		next func() (*snapshot.Node, error)
		want string
	}{
		{"empty", nodes(), "no databases"},
		{"file at the top", nodes("shop.sql"), `unexpected top-level entry "shop.sql"`},
		{"users file twice", nodes(UsersFile, UsersFile, "shop/", "shop/"+DatabaseFile), `unexpected top-level entry ".users.sql"`},
		{"users directory", nodes(UsersFile+"/", "shop/", "shop/"+DatabaseFile), `".users.sql"`},
		{"users file only", nodes(UsersFile), "no databases"},
		{"entry outside a database", nodes("shop/", "shop/"+DatabaseFile, "other/x"+SuffixSchema), `unexpected entry "other/x.schema.sql"`},
		{"nested", nodes("shop/", "shop/"+DatabaseFile, "shop/a/b"+SuffixSchema), `unexpected entry "shop/a/b.schema.sql"`},
		{"unknown suffix", nodes("shop/", "shop/"+DatabaseFile, "shop/x.txt"), "shop/x.txt"},
		{"no database file", nodes("shop/", "shop/a"+SuffixSchema), `database "shop" has no .database.sql`},
		{"data without schema", nodes("shop/", "shop/"+DatabaseFile, "shop/a"+SuffixData), `table "a" of "shop" has data but no schema`},
		{"read error", func() (*snapshot.Node, error) { return nil, failed }, "tree read failed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ReadLayout(tc.next)
			require.ErrorContains(t, err, tc.want)
			if tc.name != "read error" {
				assert.ErrorIs(t, err, ErrLayout)
			}
		})
	}
}

func TestReadLayoutUsers(t *testing.T) {
	paths := []string{UsersFile, "shop/", "shop/" + DatabaseFile, "shop/orders" + SuffixSchema}
	l, err := ReadLayout(nodes(paths...))
	require.NoError(t, err)
	require.NotNil(t, l.Users)
	assert.Equal(t, UsersFile, l.Users.Path)
	require.Len(t, l.DBs, 1)
	assert.Equal(t, []string{"orders"}, l.DBs[0].Tables)
}
