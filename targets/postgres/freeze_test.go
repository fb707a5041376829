package postgres

import (
	"bytes"
	"os"
	"os/exec"
	"testing"

	"github.com/stretchr/testify/require"
)

// testdata/table-1.14.dump: pg_dump 15 -Fc -Z0 --section=data
// --section=post-data --table='"Odd T"' of a table (id serial PRIMARY
// KEY, v text) with two rows (a backslash in one) and an index on v.
func TestFreezeCopy(t *testing.T) {
	arch, err := os.ReadFile("testdata/table-1.14.dump")
	require.NoError(t, err)
	out, ok := FreezeCopy(arch)
	require.True(t, ok)
	stmt := "TRUNCATE ONLY \"public\".\"Odd T\";\nCOPY public.\"Odd T\" (id, v) FROM stdin WITH (FREEZE);\n"
	require.Contains(t, string(out), stmt)
	require.Equal(t, len(arch)+len(stmt)-len("COPY public.\"Odd T\" (id, v) FROM stdin;\n"), len(out))
	// Only the statement changed: the data blocks after the table of
	// contents are the same bytes.
	i := bytes.Index(out, []byte(stmt)) + len(stmt)
	j := bytes.Index(arch, []byte("FROM stdin;\n")) + len("FROM stdin;\n")
	require.Equal(t, arch[j:], out[i:])

	// Not an archive, another format version, a truncated table of
	// contents: unchanged.
	for _, bad := range [][]byte{[]byte("not an archive"), append([]byte("PGDMP\x01\x0d"), arch[7:]...), arch[:200]} {
		got, ok := FreezeCopy(bad)
		require.False(t, ok)
		require.Equal(t, bad, got)
	}

	// pg_restore reads the result: the SQL it would run.
	bin, err := Binary("", "pg_restore")
	if err != nil {
		if os.Getenv("LIFEBOAT_REQUIRE_POSTGRES") != "" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	cmd := exec.Command(bin, "-f", "-")
	cmd.Stdin = bytes.NewReader(out)
	sql, err := cmd.Output()
	require.NoError(t, err)
	require.Contains(t, string(sql), stmt+"1\ta\n2\tb\\\\tc\n\\.\n")
	require.Contains(t, string(sql), "CREATE INDEX")
}
