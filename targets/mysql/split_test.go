package mysql_test

import (
	"context"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/lifeboat-backup/lifeboat/engine/snapshot"
	"github.com/lifeboat-backup/lifeboat/targets/mysql"
	"github.com/lifeboat-backup/lifeboat/targets/mysql/mysqltest"
)

// dumpAll walks a source and returns every file entry's content.
func dumpAll(t *testing.T, o mysql.Options) map[string]string {
	t.Helper()
	src, err := mysql.New(o)
	require.NoError(t, err)
	out := map[string]string{}
	require.NoError(t, src.Walk(context.Background(), nil, func(e snapshot.Entry, open func() (io.ReadCloser, error)) error {
		if open == nil {
			return nil
		}
		rc, err := open()
		require.NoError(t, err, e.Path)
		// Small reads, so that parts are consumed while others are read.
		var b strings.Builder
		_, err = io.CopyBuffer(&b, struct{ io.Reader }{rc}, make([]byte, 1000))
		require.NoError(t, err, e.Path)
		require.NoError(t, rc.Close())
		out[e.Path] = b.String()
		return nil
	}))
	return out
}

// TestSplitTablesSameStream: tables read in primary-key ranges by several
// connections give exactly the bytes of reading them whole, whatever the
// key: negative and sparse, spanning all of BIGINT, unsigned beyond
// int64, composite (also with few values of its first column), or an
// empty table.
func TestSplitTablesSameStream(t *testing.T) {
	srv := mysqltest.Shared(t)
	db := srv.DB(t, "")
	run(t, db, "DROP DATABASE IF EXISTS split", "CREATE DATABASE split",
		"CREATE TABLE split.sparse (id INT PRIMARY KEY, v VARCHAR(200), b BLOB) ENGINE=InnoDB",
		"CREATE TABLE split.wide (id BIGINT PRIMARY KEY, v INT) ENGINE=InnoDB",
		"CREATE TABLE split.ubig (id BIGINT UNSIGNED PRIMARY KEY, v INT) ENGINE=InnoDB",
		"CREATE TABLE split.comp (a INT, b INT, v TEXT, PRIMARY KEY (a, b)) ENGINE=InnoDB",
		"CREATE TABLE split.comp2 (a INT, b INT, v TEXT, PRIMARY KEY (a, b)) ENGINE=InnoDB",
		"CREATE TABLE split.empty (id INT PRIMARY KEY) ENGINE=InnoDB",
		"CREATE TABLE split.nokey (v INT) ENGINE=InnoDB",
		"INSERT INTO split.wide VALUES (-9223372036854775808, 1), (0, 2), (9223372036854775807, 3)",
		"INSERT INTO split.ubig VALUES (0, 1), (18446744073709551615, 2), (9223372036854775808, 3)")
	var b strings.Builder
	for i := range 3000 {
		if i%500 == 0 {
			if i > 0 {
				run(t, db, b.String())
			}
			b.Reset()
			b.WriteString("INSERT INTO split.sparse VALUES ")
		} else {
			b.WriteString(",")
		}
		v := fmt.Sprintf("'row %d\\ttab\\nline'", i)
		if i%7 == 0 {
			v = "NULL"
		}
		fmt.Fprintf(&b, "(%d, %s, REPEAT(CHAR(%d), %d))", i*i-4000000, v, i%256, i%300)
	}
	run(t, db, b.String())
	run(t, db, "INSERT INTO split.comp SELECT id, -id, v FROM split.sparse", "INSERT INTO split.nokey SELECT id FROM split.sparse",
		"INSERT INTO split.comp2 SELECT MOD(id, 10), id, v FROM split.sparse", "ANALYZE TABLE split.sparse, split.comp, split.comp2")

	whole := dumpAll(t, mysql.Options{DSN: srv.DSN(), Password: srv.Password, Databases: []string{"split"}, Jobs: 4, SplitBytes: -1})
	require.Len(t, whole, 15)
	require.Equal(t, 3001, strings.Count(whole["split/sparse.data"], "\n"))
	for _, mode := range []mysql.LockMode{mysql.LockFTWRL, mysql.LockSingle} {
		split := dumpAll(t, mysql.Options{DSN: srv.DSN(), Password: srv.Password, Databases: []string{"split"}, Jobs: 4, SplitBytes: 1, LockMode: mode})
		require.Equal(t, len(whole), len(split))
		for p, want := range whole {
			require.Equal(t, want, split[p], "%s %s", mode, p)
		}
	}
}
