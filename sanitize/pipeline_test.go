package sanitize

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/stretchr/testify/require"
)

// echo renders a chunk as [rows], counting rows; a row "bad" fails.
type echo struct{}

func (echo) render(_ *faker, in []byte, first int64, out []byte) ([]byte, int64, int64, error) {
	n := int64(bytes.Count(in, []byte{'\n'}))
	if i := bytes.Index(in, []byte("bad\n")); i >= 0 {
		return out, 0, 0, fmt.Errorf("row %d is bad", first+int64(bytes.Count(in[:i], []byte{'\n'})))
	}
	out = append(out, '[')
	out = append(out, in...)
	return append(out, ']'), n, n, nil
}

func runEcho(t *testing.T, jobs, size int, r io.Reader) (string, *TableStats, error) {
	t.Helper()
	var out bytes.Buffer
	st := &TableStats{}
	err := runPipeline(context.Background(), jobs, size, []byte("k"), &out, func(p *pipeline) error {
		p.WriteString("head\n")
		if err := p.data(r, echo{}, st, "table t"); err != nil {
			return err
		}
		p.WriteString("tail\n")
		return nil
	})
	return out.String(), st, err
}

func TestPipelineChunks(t *testing.T) {
	long := strings.Repeat("x", 40)
	for _, tc := range []struct {
		name, in, want string
		rows           int64
	}{
		{"empty", "", "head\ntail\n", 0},
		{"one short row", "a\n", "head\n[a\n]tail\n", 1},
		{"no final newline", "a\nb", "head\n[a\nb\n]tail\n", 2},
		{"cut after the size", "aaaa\nbb\ncccccc\nd\n", "head\n[aaaa\nbb\n][cccccc\n][d\n]tail\n", 4},
		{"a row longer than a chunk", long + "\nz\n", "head\n[" + long + "\n][z\n]tail\n", 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Chunks depend on the bytes only: not on how the reader
			// splits them, nor on the number of workers.
			for _, jobs := range []int{1, 3} {
				for _, r := range []io.Reader{strings.NewReader(tc.in), iotest.OneByteReader(strings.NewReader(tc.in)), iotest.HalfReader(strings.NewReader(tc.in))} {
					got, st, err := runEcho(t, jobs, 6, r)
					require.NoError(t, err)
					require.Equal(t, tc.want, got)
					require.Equal(t, tc.rows, st.Rows)
					require.Equal(t, tc.rows, st.RowsRead)
				}
			}
		})
	}
}

func TestPipelineErrors(t *testing.T) {
	in := strings.Repeat("row\n", 100) + "bad\n" + strings.Repeat("row\n", 100)
	_, _, err := runEcho(t, 2, 16, strings.NewReader(in))
	require.EqualError(t, err, "table t: row 101 is bad")

	boom := errors.New("disk on fire")
	_, _, err = runEcho(t, 2, 16, io.MultiReader(strings.NewReader(strings.Repeat("row\n", 50)), iotest.ErrReader(boom)))
	require.ErrorIs(t, err, boom)
}
