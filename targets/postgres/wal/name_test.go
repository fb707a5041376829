package wal

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/lifeboat-backup/lifeboat/engine/logarchive"
)

const mb16 = 16 << 20

func TestNames(t *testing.T) {
	for name, ok := range map[string]bool{
		"000000010000000000000001":                 true,
		"00000002.history":                         true,
		"000000010000000000000003.partial":         true,
		"000000010000000000000002.00000028.backup": true,
		"00000001000000000000000g":                 false,
		"../00000001000000000000001":               false,
		"RECOVERYXLOG":                             false,
	} {
		require.Equal(t, ok, ValidName(name), name)
	}
	tl, n, err := Parse("0000000200000001000000FF", mb16)
	require.NoError(t, err)
	require.Equal(t, uint32(2), tl)
	require.Equal(t, uint64(0x1FF), n)
	require.Equal(t, "1/FF000000", FormatLSN(n*mb16))
	lsn, err := ParseLSN("1/FF000028")
	require.NoError(t, err)
	require.Equal(t, "0000000200000001000000FF", SegmentOf(2, lsn, mb16))
	_, err = ParseLSN("12")
	require.Error(t, err)
}

func TestChain(t *testing.T) {
	s := func(name string) logarchive.Segment { return logarchive.Segment{Name: name, Size: mb16} }
	segs := []logarchive.Segment{
		s("000000010000000000000001"), s("000000010000000000000002"), s("000000010000000000000003"),
		s("000000010000000000000003.partial"), s("00000002.history"),
		s("000000020000000000000003"), s("000000020000000000000004"), s("000000020000000000000006"),
	}
	gaps := Chain(segs, "")
	require.Len(t, gaps, 1)
	require.Equal(t, "000000020000000000000004", gaps[0].After.Name)
	require.Equal(t, "000000020000000000000006", gaps[0].Before.Name)
	require.Empty(t, Chain(segs[:7], "000000010000000000000002"))
	// A timeline that starts past the old one's end is a gap.
	require.Len(t, Chain([]logarchive.Segment{s("000000010000000000000001"), s("000000020000000000000003")}, ""), 1)
	// Counting from a later base skips older holes.
	require.Empty(t, Chain([]logarchive.Segment{s("000000010000000000000001"), s("000000010000000000000005"), s("000000010000000000000006")}, "000000010000000000000005"))
}
