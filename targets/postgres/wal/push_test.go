package wal

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
	"gocloud.dev/blob/memblob"

	"github.com/lifeboat-backup/lifeboat/engine/logarchive"
	"github.com/lifeboat-backup/lifeboat/engine/repo/chunker"
	"github.com/lifeboat-backup/lifeboat/engine/repo/repotest"
)

func TestPushAheadAndFetch(t *testing.T) {
	ctx := context.Background()
	b := memblob.OpenBucket(nil)
	rt := repotest.Init(t, b, chunker.Params{}, 0)
	host := logarchive.New(rt.Open(t, rt.Host))
	owner := logarchive.New(rt.Open(t, rt.Owner))

	walDir := filepath.Join(t.TempDir(), "pg_wal")
	require.NoError(t, os.MkdirAll(filepath.Join(walDir, "archive_status"), 0o700))
	names := []string{"000000010000000000000001", "000000010000000000000002", "000000010000000000000003", "000000010000000000000004"}
	for i, n := range names {
		require.NoError(t, os.WriteFile(filepath.Join(walDir, n), bytes.Repeat([]byte{byte(i)}, 1<<20), 0o600))
		require.NoError(t, os.WriteFile(filepath.Join(walDir, "archive_status", n+".ready"), nil, 0o600))
	}
	res, err := Push(ctx, host, "db", filepath.Join(walDir, names[0]), 3)
	require.NoError(t, err)
	require.False(t, res.Existed)
	require.Equal(t, names[1:3], res.Ahead)
	res, err = Push(ctx, host, "db", filepath.Join(walDir, names[1]), 1)
	require.NoError(t, err)
	require.True(t, res.Existed, "pushed ahead before")

	segs, _, err := host.List(ctx, "db", Stream)
	require.NoError(t, err)
	require.Len(t, segs, 3)
	require.Equal(t, "0/200000", segs[0].End)
	require.Equal(t, "0/200000", segs[1].Start)
	require.Empty(t, Chain(segs, ""))

	dest := filepath.Join(t.TempDir(), "RECOVERYXLOG")
	served, n, err := Fetch(ctx, owner, "db", names[2], dest)
	require.NoError(t, err)
	require.Equal(t, names[2], served)
	require.Equal(t, int64(1<<20), n)
	got, _ := os.ReadFile(dest)
	require.Equal(t, bytes.Repeat([]byte{2}, 1<<20), got)
	_, _, err = Fetch(ctx, owner, "db", names[3], dest)
	require.ErrorIs(t, err, ErrNotFound)

	// A segment streamed but not archived whole: the partial version
	// with the most bytes received is served, until the whole one is.
	for i, got := range []int64{0x100, 0x3000, 0x2000} {
		data := bytes.Repeat([]byte{byte(0x40 + i)}, 1<<20)
		_, err := host.Put(ctx, logarchive.Segment{Target: "db", Stream: Stream, Name: PartialName(names[3], got)}, data)
		require.NoError(t, err)
	}
	served, _, err = Fetch(ctx, owner, "db", names[3], dest)
	require.NoError(t, err)
	require.Equal(t, "000000010000000000000004.00003000.partial", served)
	got, _ = os.ReadFile(dest)
	require.Equal(t, byte(0x41), got[0])
	seg, rcv, ok := ParsePartial(served)
	require.True(t, ok)
	require.Equal(t, names[3], seg)
	require.Equal(t, int64(0x3000), rcv)
	_, err = Push(ctx, host, "db", filepath.Join(walDir, names[3]), 1)
	require.NoError(t, err)
	served, _, err = Fetch(ctx, owner, "db", names[3], dest)
	require.NoError(t, err)
	require.Equal(t, names[3], served)
	got, _ = os.ReadFile(dest)
	require.Equal(t, byte(3), got[0])
	// Other files never fall back to partials.
	_, _, err = Fetch(ctx, owner, "db", "00000002.history", dest)
	require.ErrorIs(t, err, ErrNotFound)

	_, err = Push(ctx, host, "db", filepath.Join(walDir, "RECOVERYXLOG"), 1)
	require.Error(t, err)
}
