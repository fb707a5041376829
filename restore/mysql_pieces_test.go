package restore

import (
	"bufio"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/stretchr/testify/require"
)

func TestShapeOf(t *testing.T) {
	for _, c := range []struct {
		name, create string
		want         tableShape
	}{
		{
			name:   "InnoDB, primary key, AUTO_INCREMENT",
			create: "CREATE TABLE `a` (\n  `id` int(11) NOT NULL AUTO_INCREMENT,\n  `v` text,\n  PRIMARY KEY (`id`)\n) ENGINE=InnoDB AUTO_INCREMENT=5",
			want:   tableShape{pk: true, autoInc: true},
		},
		{
			name:   "AUTO_INCREMENT on the last column, with a comment",
			create: "CREATE TABLE `a` (\n  `v` text,\n  `id` int(11) NOT NULL AUTO_INCREMENT COMMENT 'x',\n  PRIMARY KEY (`id`)\n) ENGINE=InnoDB",
			want:   tableShape{pk: true, autoInc: true},
		},
		{
			name:   "only the table option",
			create: "CREATE TABLE `a` (\n  `id` int(11) NOT NULL,\n  PRIMARY KEY (`id`)\n) ENGINE=InnoDB AUTO_INCREMENT=5",
			want:   tableShape{pk: true},
		},
		{
			name:   "a column named AUTO_INCREMENT",
			create: "CREATE TABLE `a` (\n  `id` int(11) NOT NULL,\n  `AUTO_INCREMENT` int(11),\n  PRIMARY KEY (`id`)\n) ENGINE=InnoDB",
			want:   tableShape{pk: true},
		},
		{
			name:   "MyISAM",
			create: "CREATE TABLE `a` (\n  `id` int(11) NOT NULL AUTO_INCREMENT,\n  PRIMARY KEY (`id`)\n) ENGINE=MyISAM",
			want:   tableShape{autoInc: true},
		},
		{
			name:   "no primary key",
			create: "CREATE TABLE `a` (\n  `id` int(11) NOT NULL,\n  UNIQUE KEY `id` (`id`)\n) ENGINE=InnoDB",
		},
		{name: "empty"},
	} {
		t.Run(c.name, func(t *testing.T) {
			require.Equal(t, c.want, shapeOf(c.create))
		})
	}
}

// readPieces cuts data with pieceReaders of size bytes, read a byte at a
// time.
func readPieces(data string, size int64) ([]string, error) {
	br := bufio.NewReaderSize(strings.NewReader(data), 16)
	var pieces []string
	for range 100 {
		pr := &pieceReader{br: br, left: size}
		b, err := io.ReadAll(iotest.OneByteReader(io.LimitReader(pr, 1<<20)))
		if err != nil {
			return pieces, err
		}
		pieces = append(pieces, string(b))
		if pr.ended() {
			if pr.err != io.EOF {
				return pieces, pr.err
			}
			return pieces, nil
		}
	}
	return pieces, errors.New("too many pieces")
}

func TestPieceReader(t *testing.T) {
	for _, c := range []struct {
		name string
		data string
		size int64
		want []string
	}{
		{name: "rows cut after size bytes", data: "a\tb\nccc\td\nee\tf\n", size: 3, want: []string{"a\tb\n", "ccc\td\n", "ee\tf\n"}},
		{name: "size on a row end takes one more row", data: "ab\ncd\nef\n", size: 3, want: []string{"ab\ncd\n", "ef\n"}},
		{name: "one piece", data: "ab\ncd\n", size: 100, want: []string{"ab\ncd\n"}},
		{name: "an escaped newline is not a row end", data: "a\\nb\nc\n", size: 1, want: []string{"a\\nb\n", "c\n"}},
		{name: "long row across buffers", data: strings.Repeat("x", 50) + "\n" + "y\n", size: 1, want: []string{strings.Repeat("x", 50) + "\n", "y\n"}},
		{name: "last row without newline", data: "ab\ncd", size: 1, want: []string{"ab\n", "cd"}},
		{name: "empty", data: "", size: 8, want: []string{""}},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := readPieces(c.data, c.size)
			require.NoError(t, err)
			require.Equal(t, c.want, got)
			require.Equal(t, c.data, strings.Join(got, ""))
		})
	}
}

func TestPieceReaderBigReads(t *testing.T) {
	data := strings.Repeat("row\tvalue\n", 1000)
	br := bufio.NewReaderSize(strings.NewReader(data), 64)
	var got []string
	for {
		pr := &pieceReader{br: br, left: 95}
		b, err := io.ReadAll(pr)
		require.NoError(t, err)
		require.True(t, strings.HasSuffix(string(b), "\n"), "piece %d ends inside a row", len(got))
		got = append(got, string(b))
		if pr.ended() {
			break
		}
	}
	_, err := br.Peek(1)
	require.ErrorIs(t, err, io.EOF)
	require.Equal(t, data, strings.Join(got, ""))
	require.Len(t, got, 100) // 95 bytes, then the rest of the 10th row
}

func TestPieceReaderError(t *testing.T) {
	boom := errors.New("blob 1234 does not match its hash")
	br := bufio.NewReaderSize(io.MultiReader(strings.NewReader("ab\ncd\n"), iotest.ErrReader(boom)), 16)
	pr := &pieceReader{br: br, left: 100}
	b, err := io.ReadAll(pr)
	require.ErrorIs(t, err, boom)
	require.Equal(t, "ab\ncd\n", string(b))
	require.True(t, pr.ended())
	require.ErrorIs(t, pr.err, boom)

	// The error in the middle of the rest of a row, after the size.
	br = bufio.NewReaderSize(io.MultiReader(strings.NewReader("abcdef"), iotest.ErrReader(boom)), 16)
	pr = &pieceReader{br: br, left: 2}
	_, err = io.ReadAll(pr)
	require.ErrorIs(t, err, boom)
}
