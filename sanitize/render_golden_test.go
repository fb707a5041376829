package sanitize

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/lifeboat-backup/lifeboat/policies"
	"github.com/lifeboat-backup/lifeboat/targets/mysql"
)

// goldenKey is the key of the pinned outputs.
var goldenKey = []byte("0123456789abcdef0123456789abcdef")

// goldenCol is one column of the synthetic table: its type, rule and
// value of row i.
type goldenCol struct {
	name, typ string
	max       int
	rule      string // "" unruled
	val       func(i int) []byte
}

// lcg is a fixed pseudo-random sequence (stable across Go versions).
func lcg(i, salt int) uint64 {
	x := uint64(i)*6364136223846793005 + uint64(salt)*1442695040888963407 + 1
	x ^= x >> 29
	x *= 0xbf58476d1ce4e5b9
	return x ^ x>>32
}

var goldenNames = []string{"Anna", "Jürgen", "O'Brien", "Zoë", "Li", "Mary-Jane", "Back\\slash", "Tab\tbed", "New\nline",
	"Null\x00byte", "Ctrl\x1aZ", "Łukasz", "Ève", "Smith", "Nguyễn", "Carriage\rreturn"}

// goldenCols cover every fake kind, the other rules, NULL, empty,
// escapes, non-UTF-8 bytes, values over the cache's 256 bytes, repeating
// values (cache hits) and unique ones (the cache turning off), and the
// unruled literal kinds.
func goldenCols() []goldenCol {
	str := func(f func(i int) string) func(i int) []byte { return func(i int) []byte { return []byte(f(i)) } }
	pick := func(salt int, list []string) func(i int) []byte {
		return func(i int) []byte {
			r := lcg(i, salt)
			switch r % 23 {
			case 0:
				return nil
			case 1:
				return []byte{}
			case 2:
				return []byte(strings.Repeat("long ", 60) + strconv.Itoa(i)) // not cached
			case 3:
				return []byte{0xff, 'x', 0xc3} // not UTF-8
			}
			if r%5 == 4 { // unique
				return []byte(fmt.Sprintf("%s %d", list[r%uint64(len(list))], i))
			}
			return []byte(list[r%uint64(len(list))])
		}
	}
	email := func(i int) []byte {
		r := lcg(i, 1)
		if r%17 == 0 {
			return nil
		}
		if r%3 == 0 {
			return []byte(fmt.Sprintf("cust%d@shop.example", r%300))
		}
		return []byte(fmt.Sprintf("user.%d@mail.example", i))
	}
	cols := []goldenCol{
		{name: "id", typ: "int", val: str(func(i int) string { return strconv.Itoa(i + 1) })},
		{name: "email", typ: "varchar", max: 255, rule: "fake:email", val: email},
		{name: "email_short", typ: "varchar", max: 20, rule: "fake:email", val: email},
		{name: "email_tiny", typ: "varchar", max: 14, rule: "fake:email", val: email},
	}
	for j, kind := range policies.FakeKinds {
		if kind == "email" {
			continue
		}
		max := 0
		if j%3 == 1 {
			max = 9
		} else if j%3 == 2 {
			max = 255
		}
		typ := "varchar"
		if max == 0 {
			typ = "text"
		}
		cols = append(cols, goldenCol{name: "f_" + kind, typ: typ, max: max, rule: "fake:" + kind, val: pick(10+j, goldenNames)})
	}
	cols = append(cols,
		goldenCol{name: "h", typ: "varchar", max: 255, rule: "hash", val: pick(40, goldenNames)},
		goldenCol{name: "h_short", typ: "varchar", max: 10, rule: "hash", val: pick(41, goldenNames)},
		goldenCol{name: "m", typ: "varchar", max: 255, rule: "mask:keep_last=4", val: pick(42, goldenNames)},
		goldenCol{name: "m_short", typ: "varchar", max: 6, rule: "mask:keep_last=2", val: pick(43, goldenNames)},
		goldenCol{name: "tmpl", typ: "varchar", max: 40, rule: "fixed:{first_name}.{last_name}@example.com", val: email},
		goldenCol{name: "fx", typ: "varchar", max: 255, rule: "fixed:x'y\\z", val: pick(44, goldenNames)},
		goldenCol{name: "fx_empty", typ: "varchar", max: 255, rule: "fixed:", val: pick(45, goldenNames)},
		goldenCol{name: "nul", typ: "varchar", max: 255, rule: "null", val: pick(46, goldenNames)},
		goldenCol{name: "kept", typ: "varchar", max: 255, rule: "keep", val: pick(47, goldenNames)},
		goldenCol{name: "price", typ: "decimal", val: str(func(i int) string {
			return []string{"12.5000", "-3", "1e5", "-2.5E-3", "abc", "", ".", "0x1F", "1.2.3"}[lcg(i, 50)%9]
		})},
		goldenCol{name: "note", typ: "text", val: pick(51, goldenNames)},
		goldenCol{name: "created", typ: "timestamp", val: str(func(i int) string {
			return time.Unix(1700000000+int64(lcg(i, 52)%1e8), 0).UTC().Format(time.DateTime)
		})},
		goldenCol{name: "blob", typ: "blob", val: func(i int) []byte {
			r := lcg(i, 53)
			if r%7 == 0 {
				return nil
			}
			b := make([]byte, r%11)
			for k := range b {
				b[k] = byte(lcg(i, 54+k))
			}
			return b
		}},
		goldenCol{name: "flags", typ: "bit", val: func(i int) []byte {
			r := lcg(i, 70)
			if r%9 == 0 {
				return nil
			}
			return []byte{byte(r >> 8), byte(r >> 16)}[:1+r%2]
		}},
		goldenCol{name: "js", typ: "json", val: str(func(i int) string { return fmt.Sprintf(`{"a": "q'uote\\\"%d", "ü": [%d]}`, i, i%7) })},
	)
	return cols
}

// goldenInput is the table data (mysql text format, no header) of n rows.
func goldenInput(cols []goldenCol, n int) []byte {
	var in []byte
	row := make([][]byte, len(cols))
	for i := range n {
		for j, c := range cols {
			row[j] = c.val(i)
		}
		in = mysql.AppendRow(in, row)
	}
	return in
}

func goldenColumns(t testing.TB, gc []goldenCol) ([]*column, []*Rule) {
	cols, rules := make([]*column, len(gc)), make([]*Rule, len(gc))
	for i, c := range gc {
		cols[i] = &column{name: c.name, typ: c.typ, max: c.max, nullable: true}
		if c.rule != "" {
			r, err := ParseRule(c.rule)
			require.NoError(t, err, c.rule)
			rules[i] = &r
		}
	}
	return cols, rules
}

func goldenInsertRenderer(t testing.TB, gc []goldenCol, batch int) *insertRenderer {
	cols, rules := goldenColumns(t, gc)
	rd := &insertRenderer{prefix: "INSERT INTO `t` VALUES\n", ncols: len(gc), cols: cols, lits: make([]litKind, len(gc)), rules: rules,
		idx: map[string]int{}, batch: batch}
	for i, c := range cols {
		rd.lits[i] = c.litKind()
		rd.idx[c.name] = i
	}
	return rd
}

// renderAll renders in through the pipeline with jobs workers.
func renderAll(t testing.TB, rd renderer, in []byte, jobs, chunk int) []byte {
	var out bytes.Buffer
	err := runPipeline(context.Background(), jobs, chunk, goldenKey, &out, func(p *pipeline) error {
		return p.data(bytes.NewReader(in), rd, &TableStats{}, "t")
	})
	require.NoError(t, err)
	return out.Bytes()
}

// The pinned outputs of TestRenderGolden: the SHA-256 of the whole
// rendering, and its first rows in testdata.
const (
	goldenRows       = 6000
	goldenInsertHash = "f7acdd59af48c045e868cb742cd6e2d37f40aaa2248e3f9c37cbd42ba447d240"
	goldenCopyHash   = "58e4f43ba88c831191bd12b3f1d09190b8e745aec2656f3ff0dd3fe75c43d9e8"
)

// TestRenderGolden pins the bytes of a sanitized export's rows (INSERT
// and COPY) for a fixed key: fakes are promised stable for a key
// (docs/sanitize.md), and no speed-up may change a byte. The output is
// the same for any number of workers.
// LIFEBOAT_UPDATE_GOLDEN=1 rewrites testdata/render.golden and prints the
// hashes to pin.
func TestRenderGolden(t *testing.T) {
	gc := goldenCols()
	in := goldenInput(gc, goldenRows)
	ins := goldenInsertRenderer(t, gc, 16<<10)
	cols, rules := goldenColumns(t, gc)
	cp := &copyRenderer{ncols: len(gc), cols: cols, rules: rules, idx: map[string]int{}}

	insOut := renderAll(t, ins, in, 1, 1<<20)
	// COPY fields are the text format's (pgDecode reads the octal and
	// hex escapes the mysql format does not write: same bytes otherwise).
	copyOut := renderAll(t, cp, in, 1, 1<<20)
	require.True(t, bytes.Equal(insOut, renderAll(t, ins, in, 2, 1<<20)), "INSERT, 2 jobs")
	// A chunk ends its INSERT statement: the output depends on the chunk
	// size (bytes only), never on the workers. COPY has no statements.
	for _, chunk := range []int{4 << 10, 777, 64 << 10} {
		one := renderAll(t, ins, in, 1, chunk)
		for _, jobs := range []int{2, 3} {
			require.True(t, bytes.Equal(one, renderAll(t, ins, in, jobs, chunk)), "INSERT, %d jobs, chunk %d", jobs, chunk)
			require.True(t, bytes.Equal(copyOut, renderAll(t, cp, in, jobs, chunk)), "COPY, %d jobs, chunk %d", jobs, chunk)
		}
	}
	sum := func(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }
	// The first rows in readable form.
	head := func(b []byte, n int) []byte {
		for i, k := 0, 0; i < len(b); i++ {
			if b[i] == '\n' {
				if k++; k == n {
					return b[:i+1]
				}
			}
		}
		return b
	}
	text := append(append(append([]byte("-- INSERT\n"), head(insOut, 20)...), "-- COPY\n"...), head(copyOut, 20)...)
	const path = "testdata/render.golden"
	if os.Getenv("LIFEBOAT_UPDATE_GOLDEN") == "1" {
		require.NoError(t, os.WriteFile(path, text, 0o644))
		t.Logf("goldenInsertHash = %q\ngoldenCopyHash = %q", sum(insOut), sum(copyOut))
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Equal(t, string(want), string(text))
	require.Equal(t, goldenInsertHash, sum(insOut), "INSERT output of %d rows", goldenRows)
	require.Equal(t, goldenCopyHash, sum(copyOut), "COPY output of %d rows", goldenRows)
}
