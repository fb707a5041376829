package mysql

import (
	"bufio"
	"bytes"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/lifeboat-backup/lifeboat/engine/snapshot"
)

func TestFieldRoundTrip(t *testing.T) {
	all := make([]byte, 256)
	for i := range all {
		all[i] = byte(i)
	}
	rows := [][][]byte{
		{nil, []byte{}, []byte("NULL"), []byte(`\N`), []byte("N")},
		{all, []byte("a\tb\nc\\d\x00e"), []byte("😀 ü"), []byte(`\`), []byte("\\\\")},
	}
	for _, row := range rows {
		line := AppendRow(nil, row)
		require.Equal(t, byte('\n'), line[len(line)-1])
		require.Equal(t, 1, bytes.Count(line, []byte{'\n'}), "one line: %q", line)
		require.Equal(t, len(row)-1, bytes.Count(line, []byte{'\t'}))
		got := SplitRow(line[:len(line)-1])
		require.Equal(t, len(row), len(got))
		for i := range row {
			require.Equal(t, row[i] == nil, got[i] == nil, "field %d NULL-ness", i)
			require.Equal(t, string(row[i]), string(got[i]), "field %d", i)
		}
	}
	require.Equal(t, `\N`, string(AppendField(nil, nil)))
	require.Equal(t, `\\N`, string(AppendField(nil, []byte(`\N`))))
}

// TestAppendFieldEveryPosition: a byte to escape is found wherever it is
// in the eight-byte words AppendField scans, next to any other byte.
func TestAppendFieldEveryPosition(t *testing.T) {
	simple := func(v []byte) string { // one byte at a time
		var b strings.Builder
		for _, c := range v {
			switch c {
			case '\\':
				b.WriteString(`\\`)
			case '\t':
				b.WriteString(`\t`)
			case '\n':
				b.WriteString(`\n`)
			case 0:
				b.WriteString(`\0`)
			default:
				b.WriteByte(c)
			}
		}
		return b.String()
	}
	for _, special := range []byte{'\\', '\t', '\n', 0} {
		for _, fill := range []byte{'a', 0x01, 0x08, 0x0b, 0x5b, 0x5d, 0x80, 0xdc, 0xff} {
			for n := 1; n <= 24; n++ {
				for pos := range n {
					v := bytes.Repeat([]byte{fill}, n)
					v[pos] = special
					require.Equal(t, simple(v), string(AppendField([]byte("x"), v))[1:], "%q", v)
					v[n-1-pos] = special // two of them
					require.Equal(t, simple(v), string(AppendField(nil, v)), "%q", v)
				}
			}
		}
	}
	all := make([]byte, 0, 3*256)
	for i := range 3 * 256 {
		all = append(all, byte(i*7))
	}
	require.Equal(t, simple(all), string(AppendField(nil, all)))
}

func TestReadHeader(t *testing.T) {
	cols := [][]byte{[]byte("id"), []byte("col with\ttab"), []byte("ëxtra")}
	br := bufio.NewReader(bytes.NewReader(append(AppendRow(nil, cols), "1\t2\t3\n"...)))
	got, err := ReadHeader(br)
	require.NoError(t, err)
	require.Equal(t, []string{"id", "col with\ttab", "ëxtra"}, got)
	rest, _ := br.ReadString('\n')
	require.Equal(t, "1\t2\t3\n", rest)
	_, err = ReadHeader(bufio.NewReader(strings.NewReader("")))
	require.Error(t, err)
}

func TestNames(t *testing.T) {
	for _, n := range []string{"shop", "odd table `name", "a/b", "100%", ".", "..", ".hidden", "ürün", "a.b", "nul\x00"} {
		e := EncodeName(n)
		require.NotContains(t, e, "/")
		require.NotEqual(t, ".", e)
		require.NotEqual(t, "..", e)
		require.False(t, strings.HasPrefix(e, "."), e)
		d, err := DecodeName(e)
		require.NoError(t, err)
		require.Equal(t, n, d)
		for _, s := range []string{SuffixData, SuffixSchema, SuffixView, SuffixTrigger, SuffixProcedure, SuffixFunction, SuffixEvent} {
			name, suffix, err := ParseEntryName(e + s)
			require.NoError(t, err)
			require.Equal(t, n, name)
			require.Equal(t, s, suffix)
		}
	}
	_, suffix, err := ParseEntryName(DatabaseFile)
	require.NoError(t, err)
	require.Equal(t, DatabaseFile, suffix)
	_, _, err = ParseEntryName("x.txt")
	require.Error(t, err)
	// Entries of a database sort as the snapshot needs: data before
	// schema of one table, and ComparePaths agrees with byte order.
	require.Negative(t, snapshot.ComparePaths("shop/t.data", "shop/t.schema.sql"))
}

func TestObjectFormat(t *testing.T) {
	o := &Object{Kind: "trigger", Name: "tr`g", Setup: []string{"SET NAMES utf8mb4", "SET SESSION sql_mode = 'STRICT_TRANS_TABLES'"},
		Stmt: "CREATE TRIGGER x BEFORE UPDATE ON t FOR EACH ROW BEGIN\n  SET NEW.a = ';;';\nEND"}
	got, err := ParseObject(o.Format())
	require.NoError(t, err)
	require.Equal(t, o, got)
	_, err = ParseObject([]byte("CREATE TABLE t (a int);"))
	require.Error(t, err)
}

func TestCreateDatabaseAs(t *testing.T) {
	stored := func(stmt string) []byte { return (&Object{Kind: "database", Name: "shop", Stmt: stmt}).Format() }
	for _, tc := range []struct {
		name   string
		stored []byte
		want   string
	}{
		{"charset and collation", stored("CREATE DATABASE `shop` /*!40100 DEFAULT CHARACTER SET latin1 COLLATE latin1_swedish_ci */"),
			"CREATE DATABASE IF NOT EXISTS `new``db` CHARACTER SET latin1 COLLATE latin1_swedish_ci"},
		{"charset only", stored("CREATE DATABASE `shop` /*!40100 DEFAULT CHARACTER SET utf8mb4 */"),
			"CREATE DATABASE IF NOT EXISTS `new``db` CHARACTER SET utf8mb4"},
		{"neither", stored("CREATE DATABASE `shop`"), "CREATE DATABASE IF NOT EXISTS `new``db`"},
		{"unreadable file: server defaults", []byte("CREATE DATABASE `shop` CHARACTER SET latin1"), "CREATE DATABASE IF NOT EXISTS `new``db`"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, CreateDatabaseAs("new`db", tc.stored))
		})
	}
}

func TestParseDSN(t *testing.T) {
	cfg, err := ParseDSN("mysql://bob:pw@db.example:3307/ignored", "")
	require.NoError(t, err)
	require.Equal(t, "bob", cfg.User)
	require.Equal(t, "pw", cfg.Passwd)
	require.Equal(t, "db.example:3307", cfg.Addr)
	require.Equal(t, "", cfg.DBName)
	cfg, err = ParseDSN("mysql://bob@db.example/", "from-file")
	require.NoError(t, err)
	require.Equal(t, "db.example:3306", cfg.Addr)
	require.Equal(t, "from-file", cfg.Passwd)
	cfg, err = ParseDSN("alice:secret@tcp(127.0.0.1:3306)/", "")
	require.NoError(t, err)
	require.Equal(t, "alice", cfg.User)
	require.Equal(t, "secret", cfg.Passwd)

	require.Equal(t, "mysql://alice@127.0.0.1:3306/", Redact("alice:secret@tcp(127.0.0.1:3306)/"))
	require.Equal(t, "mysql://bob@db.example:3307/", Redact("mysql://bob:pw@db.example:3307/"))
	_, err = ParseDSN("alice:secret@tcp(127.0.0.1:3306", "")
	require.Error(t, err)
	require.NotContains(t, err.Error(), "secret")
	_, err = ParseDSN("mysql://bob:s3cret@[::1", "")
	require.Error(t, err)
	require.NotContains(t, err.Error(), "s3cret")

	src, err := New(Options{DSN: "mysql://bob:pw@h:1/", Databases: []string{"b", "a"}})
	require.NoError(t, err)
	require.Equal(t, []string{"mysql://bob@h:1/a", "mysql://bob@h:1/b"}, src.Paths())
	_, err = New(Options{DSN: "mysql://h/", LockMode: "bogus"})
	require.Error(t, err)
}

// BenchmarkAppendField: values the way a shop's rows have them (numbers,
// dates, names, e-mails, addresses, the odd tab or newline).
func BenchmarkAppendField(b *testing.B) {
	vals := [][]byte{[]byte("1234567"), []byte("2024-02-29 23:59:59"), []byte("complete"), []byte("129.9500"),
		[]byte("jane.doe.1234@example.com"), []byte("Main Street 1234, Apartment 56"), []byte("Doe"),
		[]byte("line one\nline two"), []byte("EUR"), []byte("0"), []byte("a much longer free text comment field of a quote\twith a tab")}
	n := 0
	for _, v := range vals {
		n += len(v)
	}
	b.SetBytes(int64(n))
	var dst []byte
	for b.Loop() {
		dst = dst[:0]
		for _, v := range vals {
			dst = AppendField(dst, v)
		}
	}
}

func TestLockStatements(t *testing.T) {
	sqlOf := func(ls []lockStatement) (out []string) {
		for _, l := range ls {
			out = append(out, l.sql)
		}
		return out
	}
	for _, tc := range []struct {
		name    string
		mode    LockMode
		mariadb bool
		lock    []string
		unlock  string
	}{
		{"ftwrl, MariaDB", LockFTWRL, true, []string{"FLUSH TABLES WITH READ LOCK"}, "UNLOCK TABLES"},
		{"ftwrl, MySQL", LockFTWRL, false, []string{"FLUSH TABLES WITH READ LOCK"}, "UNLOCK TABLES"},
		{"backup lock, MariaDB", LockBackup, true, []string{"BACKUP STAGE START", "BACKUP STAGE BLOCK_COMMIT"}, "BACKUP STAGE END"},
		// The instance lock stays until the control connection closes.
		{"backup lock, MySQL 8", LockBackup, false, []string{"LOCK INSTANCE FOR BACKUP", "FLUSH TABLES WITH READ LOCK"}, "UNLOCK TABLES"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lock, unlock := lockStatements(tc.mode, tc.mariadb)
			require.Equal(t, tc.lock, sqlOf(lock))
			require.Equal(t, tc.unlock, unlock)
			for _, l := range lock {
				require.NotEmpty(t, l.needs, l.sql)
			}
		})
	}
}
