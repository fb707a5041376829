package restore

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/lifeboat-backup/lifeboat/targets/mysql"
)

func TestAppendFields(t *testing.T) {
	for _, c := range []struct {
		line string
		want []any
	}{
		{`1	a`, []any{[]byte("1"), []byte("a")}},
		{`\N	\N`, []any{nil, nil}},
		{`\NA	N`, []any{[]byte("NA"), []byte("N")}},
		{``, []any{[]byte{}}},
		{"\t", []any{[]byte{}, []byte{}}},
		{`it's	a\\b`, []any{[]byte("it's"), []byte(`a\b`)}},
		{`100\%	a\_b	\t\n\0\r\b\Z`, []any{[]byte("100%"), []byte("a_b"), []byte("\t\n\x00\r\b\x1a")}},
		{"escaped\\\ttab\tx", []any{[]byte("escaped\ttab"), []byte("x")}},
	} {
		buf, args, n := appendFields(nil, nil, []byte(c.line))
		require.Equal(t, c.want, args, "%q", c.line)
		require.Equal(t, len(c.want), n, "%q", c.line)
		require.LessOrEqual(t, len(buf), len(c.line))
	}
	// Every value AppendRow writes comes back as it was, NULL as nil.
	var all []byte
	for b := range 256 {
		all = append(all, byte(b))
	}
	vals := [][]byte{all, nil, []byte(""), []byte(`\N`), []byte("NULL")}
	line := mysql.AppendRow(nil, vals)
	_, args, n := appendFields(nil, nil, line[:len(line)-1])
	require.Equal(t, len(vals), n)
	for i, v := range vals {
		if v == nil {
			require.Nil(t, args[i])
			continue
		}
		require.Equal(t, v, args[i], "field %d", i)
	}
}

func TestBatchRows(t *testing.T) {
	piece := []byte("1\ta\n2\tb\n3\tc\n")
	require.Equal(t, 2048, batchRows(piece, 2), "at most insertParams values")
	big := make([]byte, 0, 4<<20)
	for len(big) < 4<<20 {
		big = append(big, make([]byte, 1023)...)
		big = append(big, '\n')
	}
	require.Equal(t, 1024, batchRows(big, 1), "about insertStmtBytes of rows")
}

func TestHasAutoIncrement(t *testing.T) {
	require.True(t, hasAutoIncrement("CREATE TABLE `t` (\n  `id` int(11) NOT NULL AUTO_INCREMENT,\n  PRIMARY KEY (`id`)\n) ENGINE=InnoDB AUTO_INCREMENT=5"))
	require.True(t, hasAutoIncrement("CREATE TABLE `t` (\n  `id` int(11) NOT NULL AUTO_INCREMENT COMMENT 'x',\n  PRIMARY KEY (`id`)\n) ENGINE=InnoDB"))
	require.False(t, hasAutoIncrement("CREATE TABLE `t` (\n  `id` int(11) NOT NULL,\n  PRIMARY KEY (`id`)\n) ENGINE=InnoDB AUTO_INCREMENT=5"))
}

func TestInsertFits(t *testing.T) {
	require.True(t, insertFits([]byte("1\ta\n2\tb\n"), 100))
	require.False(t, insertFits([]byte("1\ta\n2\t"+string(make([]byte, 100))+"\n"), 100))
}
