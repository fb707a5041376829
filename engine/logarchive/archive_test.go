package logarchive_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"gocloud.dev/blob/memblob"

	"github.com/lifeboat-backup/lifeboat/engine/logarchive"
	"github.com/lifeboat-backup/lifeboat/engine/repo"
	"github.com/lifeboat-backup/lifeboat/engine/repo/chunker"
	"github.com/lifeboat-backup/lifeboat/engine/repo/repotest"
)

func setup(t *testing.T) (*repotest.Repo, *logarchive.Archive, *logarchive.Archive) {
	b := memblob.OpenBucket(nil)
	t.Cleanup(func() { b.Close() })
	rt := repotest.Init(t, b, chunker.Params{}, 0)
	return rt, logarchive.New(rt.Open(t, rt.Owner)), logarchive.New(rt.Open(t, rt.Host))
}

func seg(name, start, end string) logarchive.Segment {
	return logarchive.Segment{Target: "db", Stream: "wal", Name: name, Start: start, End: end}
}

func TestPutFetchKeys(t *testing.T) {
	ctx := context.Background()
	_, owner, host := setup(t)
	data := bytes.Repeat([]byte("wal record "), 100000)

	existed, err := host.Put(ctx, seg("000000010000000000000001", "0/1000000", "0/2000000"), data)
	require.NoError(t, err)
	require.False(t, existed)

	// The host can write but never read the content back; it can read the header.
	_, _, err = host.Fetch(ctx, "db", "wal", "000000010000000000000001")
	require.ErrorIs(t, err, repo.ErrNoDataKey)
	h, err := host.Head(ctx, "db", "wal", "000000010000000000000001")
	require.NoError(t, err)
	require.Equal(t, int64(len(data)), h.Size)
	require.Equal(t, "0/2000000", h.End)

	got, s, err := owner.Fetch(ctx, "db", "wal", "000000010000000000000001")
	require.NoError(t, err)
	require.Equal(t, data, got)
	require.Less(t, s.Stored, int64(len(data))/10, "content is compressed")

	_, _, err = owner.Fetch(ctx, "db", "wal", "000000010000000000000009")
	require.ErrorIs(t, err, logarchive.ErrNotFound)
}

func TestPutIdempotentAndConflict(t *testing.T) {
	ctx := context.Background()
	_, _, host := setup(t)
	s := seg("000000010000000000000002", "", "")
	_, err := host.Put(ctx, s, []byte("one"))
	require.NoError(t, err)
	existed, err := host.Put(ctx, s, []byte("one"))
	require.NoError(t, err)
	require.True(t, existed)
	_, err = host.Put(ctx, s, []byte("two"))
	require.ErrorIs(t, err, logarchive.ErrConflict)
	require.Contains(t, err.Error(), "db/wal/000000010000000000000002")

	_, err = host.Put(ctx, seg("../x", "", ""), []byte("x"))
	require.Error(t, err)
}

func TestListGapsExpired(t *testing.T) {
	ctx := context.Background()
	rt, owner, host := setup(t)
	t0 := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	for i, s := range []logarchive.Segment{
		seg("c", "0/300", "0/400"), seg("a", "0/100", "0/200"), seg("b", "0/200", "0/300"), seg("e", "0/500", "0/600"),
	} {
		s.LastTime = t0.Add(time.Duration(s.Name[0]-'a') * time.Minute)
		_, err := host.Put(ctx, s, []byte{byte(i)})
		require.NoError(t, err)
	}
	segs, damaged, err := host.List(ctx, "db", "wal")
	require.NoError(t, err)
	require.Empty(t, damaged)
	var names []string
	for _, s := range segs {
		names = append(names, s.Name)
	}
	require.Equal(t, []string{"a", "b", "c", "e"}, names)
	gaps := logarchive.Gaps(segs, nil)
	require.Len(t, gaps, 1)
	require.Equal(t, "c", gaps[0].After.Name)
	require.Contains(t, gaps[0].String(), "between c (ends 0/400) and e (starts 0/500)")

	exp := logarchive.Expired(segs, t0.Add(90*time.Second))
	require.Len(t, exp, 2)
	require.Empty(t, logarchive.Expired(segs[3:], t0.Add(time.Hour)), "the newest segment stays")
	require.NoError(t, host.Delete(ctx, exp[0]))
	segs, _, err = owner.List(ctx, "db", "wal")
	require.NoError(t, err)
	require.Len(t, segs, 3)

	targets, err := host.Targets(ctx)
	require.NoError(t, err)
	require.Equal(t, []string{"db"}, targets)
	streams, err := host.Streams(ctx, "db")
	require.NoError(t, err)
	require.Equal(t, []string{"wal"}, streams)

	// Damage: a garbage object and a content swapped between segments.
	require.NoError(t, rt.Bucket.WriteAll(ctx, logarchive.Key("db", "wal", "zz"), []byte("garbage"), nil))
	n, problems, err := owner.Check(ctx, true)
	require.NoError(t, err)
	require.Equal(t, 4, n)
	require.Len(t, problems, 1)
	require.Contains(t, problems[0].Error(), "archive/db/wal/zz")

	b, err := rt.Bucket.ReadAll(ctx, logarchive.Key("db", "wal", "c"))
	require.NoError(t, err)
	require.NoError(t, rt.Bucket.WriteAll(ctx, logarchive.Key("db", "wal", "e"), b, nil))
	_, problems, err = host.Check(ctx, false)
	require.NoError(t, err)
	require.Len(t, problems, 2, "a header naming another segment is damage")
	var ce *repo.CorruptError
	require.True(t, errors.As(problems[1], &ce) || errors.As(problems[0], &ce))
}

func TestParseUntil(t *testing.T) {
	berlin, err := time.LoadLocation("Europe/Berlin")
	require.NoError(t, err)
	u := logarchive.ParseUntil("2026-12-07 10:14:59", berlin)
	require.Equal(t, time.Date(2026, 12, 7, 9, 14, 59, 999999000, time.UTC), u.Time.UTC(), "the whole second, in the policy's zone")
	u = logarchive.ParseUntil("2026-12-07T10:14:59.25Z", berlin)
	require.Equal(t, time.Date(2026, 12, 7, 10, 14, 59, 250000000, time.UTC), u.Time.UTC())
	require.True(t, logarchive.ParseUntil("latest", nil).Latest)
	u = logarchive.ParseUntil("0/3000060", nil)
	require.True(t, u.Time.IsZero())
	require.Equal(t, "0/3000060", u.Raw)
}

func TestPlanApply(t *testing.T) {
	ctx := context.Background()
	_, owner, host := setup(t)
	t0 := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	for i, n := range []string{"a", "b", "c", "d"} {
		s := seg(n, fmt.Sprint(i), fmt.Sprint(i+1))
		s.LastTime = t0.Add(time.Duration(i) * time.Hour)
		_, err := host.Put(ctx, s, []byte(n))
		require.NoError(t, err)
	}
	other := logarchive.Segment{Target: "other", Stream: "binlog", Name: "x", LastTime: t0}
	_, err := host.Put(ctx, other, []byte("x"))
	require.NoError(t, err)

	// The oldest kept base of db is at t0+2h30m: a ends 2h30m before it,
	// b 1h30m (both go), c 30m (within the margin: kept).
	ws, err := owner.Plan(ctx, map[string]time.Time{"db": t0.Add(150 * time.Minute)}, nil)
	require.NoError(t, err)
	require.Len(t, ws, 2)
	require.Equal(t, "db", ws[0].Target)
	require.Len(t, ws[0].Remove, 2)
	require.Equal(t, 2, ws[0].Segments)
	require.Equal(t, t0.Add(3*time.Hour), ws[0].To)
	require.Empty(t, ws[0].Gaps)
	require.Empty(t, ws[1].Remove, "no base of target other: everything kept")
	n, err := owner.Apply(ctx, ws)
	require.NoError(t, err)
	require.Equal(t, 2, n)
	segs, _, err := owner.List(ctx, "db", "wal")
	require.NoError(t, err)
	require.Equal(t, "c", segs[0].Name)
}
