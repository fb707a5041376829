package restore

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/lifeboat-backup/lifeboat/targets/mysql"
)

func TestAppendValues(t *testing.T) {
	for _, c := range []struct {
		line, want string
		n          int
	}{
		{`1	a`, `('1','a')`, 2},
		{`\N	\N`, `(NULL,NULL)`, 2},
		{`\NA	N`, `('\NA','N')`, 2},
		{``, `('')`, 1},
		{"\t", `('','')`, 2},
		{`it's	a\\b`, `('it\'s','a\\b')`, 2},
		{`100\%	a\_b	\t\n\0`, `('100%','a_b','\t\n\0')`, 3},
		{`ends with \`, `('ends with \\')`, 1},
		{"escaped\\\ttab\tx", "('escaped\\\ttab','x')", 2},
		{`eight bytes long and more, then a quote: '`, `('eight bytes long and more, then a quote: \'')`, 1},
	} {
		got, n := appendValues(nil, []byte(c.line))
		require.Equal(t, c.want, string(got), "%q", c.line)
		require.Equal(t, c.n, n, "%q", c.line)
	}
	// Every value AppendField writes comes out as one field.
	var all []byte
	for b := range 256 {
		all = append(all, byte(b))
	}
	line := mysql.AppendRow(nil, [][]byte{all, nil, []byte("x")})
	got, n := appendValues(nil, line[:len(line)-1])
	require.Equal(t, 3, n)
	require.Contains(t, string(got), ",NULL,'x')")
}

func TestHasAutoIncrement(t *testing.T) {
	require.True(t, hasAutoIncrement("CREATE TABLE `t` (\n  `id` int(11) NOT NULL AUTO_INCREMENT,\n  PRIMARY KEY (`id`)\n) ENGINE=InnoDB AUTO_INCREMENT=5"))
	require.True(t, hasAutoIncrement("CREATE TABLE `t` (\n  `id` int(11) NOT NULL AUTO_INCREMENT COMMENT 'x',\n  PRIMARY KEY (`id`)\n) ENGINE=InnoDB"))
	require.False(t, hasAutoIncrement("CREATE TABLE `t` (\n  `id` int(11) NOT NULL,\n  PRIMARY KEY (`id`)\n) ENGINE=InnoDB AUTO_INCREMENT=5"))
}

func TestInsertFits(t *testing.T) {
	require.True(t, insertFits([]byte("1\ta\n2\tb\n"), 2, "INSERT ", 100))
	require.False(t, insertFits([]byte("1\ta\n2\t"+string(make([]byte, 60))+"\n"), 2, "INSERT ", 100))
}
