package wal

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"gocloud.dev/blob/memblob"

	"github.com/lifeboat-backup/lifeboat/engine/logarchive"
	"github.com/lifeboat-backup/lifeboat/engine/repo/chunker"
	"github.com/lifeboat-backup/lifeboat/engine/repo/repotest"
)

// fakeReceivewal writes a shell script standing in for pg_receivewal:
// --create-slot succeeds; a streaming run executes body in the -D
// directory ($D). The receiver's own logic is under test here; the real
// pg_receivewal runs in cmd/lifeboat's TestPITRPGStreamRPO.
func fakeReceivewal(t *testing.T, body string) string {
	path := filepath.Join(t.TempDir(), "pg_receivewal")
	script := `#!/bin/sh
D=
while [ $# -gt 0 ]; do
  case "$1" in
    --create-slot) exit 0 ;;
    -D) D="$2"; shift ;;
  esac
  shift
done
cd "$D" || exit 1
` + body + "\n"
	require.NoError(t, os.WriteFile(path, []byte(script), 0o755))
	return path
}

const seg1M = 1 << 20

func receiver(t *testing.T, bin string) (*Receiver, *logarchive.Archive, *logarchive.Archive) {
	rt := repotest.Init(t, memblob.OpenBucket(nil), chunker.Params{}, 0)
	host := logarchive.New(rt.Open(t, rt.Host))
	owner := logarchive.New(rt.Open(t, rt.Owner))
	return &Receiver{Archive: host, Target: "db", Binary: bin, Slot: "s", Spool: t.TempDir(),
		MaxDelay: 200 * time.Millisecond, Poll: 50 * time.Millisecond}, host, owner
}

// The receiver archives completed segments, stores the segment being
// written as partial versions that grow (the older one deleted), serves
// them to fetch, and keeps only the newest complete segment in its spool.
func TestReceiverSegmentsAndPartials(t *testing.T) {
	// Segment 2 complete, then segment 3 written in two steps.
	bin := fakeReceivewal(t, `
echo "pg_receivewal: starting log streaming at 0/200000 (timeline 1)" >&2
head -c 1048576 /dev/zero | tr '\0' 'a' > 000000010000000000000002.partial
mv 000000010000000000000002.partial 000000010000000000000002
head -c 1048576 /dev/zero > 000000010000000000000003.partial
printf 'first' | dd of=000000010000000000000003.partial conv=notrunc 2>/dev/null
sleep 1
printf 'first+second' | dd of=000000010000000000000003.partial conv=notrunc 2>/dev/null
exec sleep 30`)
	r, host, owner := receiver(t, bin)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()

	wantPartial := PartialName("000000010000000000000003", int64(len("first+second")))
	require.Eventually(t, func() bool {
		names, err := host.Names(ctx, "db", Stream, "")
		require.NoError(t, err)
		return strings.Join(names, " ") == "000000010000000000000002 "+wantPartial
	}, 20*time.Second, 50*time.Millisecond, "the first partial version is replaced by the second")
	st := r.Status()
	require.Equal(t, 1, st.Segments)
	require.GreaterOrEqual(t, st.Partials, 2)
	require.Equal(t, wantPartial, st.Newest)
	require.True(t, st.Streaming)
	cancel()
	require.NoError(t, <-done)

	dest := filepath.Join(t.TempDir(), "x")
	served, n, err := Fetch(context.Background(), owner, "db", "000000010000000000000003", dest)
	require.NoError(t, err)
	require.Equal(t, wantPartial, served)
	require.Equal(t, int64(seg1M), n, "served padded to the segment size")
	got, _ := os.ReadFile(dest)
	require.True(t, bytes.HasPrefix(got, []byte("first+second\x00")))
	ents, _ := os.ReadDir(filepath.Join(r.Spool, "wal"))
	var left []string
	for _, e := range ents {
		left = append(left, e.Name())
	}
	require.Contains(t, left, "000000010000000000000002", "kept: pg_receivewal resumes after it")

	path := filepath.Join(t.TempDir(), "m.prom")
	require.NoError(t, WriteReceiveMetrics(path, "p", "db", r.Status(), time.Now()))
	m, _ := os.ReadFile(path)
	require.Contains(t, string(m), `lifeboat_wal_archive_gap{policy="p",target="db"} 0`)
	require.Contains(t, string(m), `lifeboat_wal_receive_segments{policy="p",target="db"} 1`)
}

// Streaming that resumes past the end of the archive is a gap: reported
// in the status and metrics, and Run returns a *GapError (exit 13) once
// the first WAL past it is stored.
func TestReceiverGap(t *testing.T) {
	bin := fakeReceivewal(t, `
head -c 1048576 /dev/zero > 000000010000000000000005.partial
printf 'after the gap' | dd of=000000010000000000000005.partial conv=notrunc 2>/dev/null
exec sleep 30`)
	r, host, _ := receiver(t, bin)
	ctx := context.Background()
	_, err := host.Put(ctx, logarchive.Segment{Target: "db", Stream: Stream, Name: "000000010000000000000002"}, bytes.Repeat([]byte{1}, seg1M))
	require.NoError(t, err)
	errc := make(chan error, 1)
	go func() { errc <- r.Run(ctx) }()
	select {
	case err = <-errc:
	case <-time.After(20 * time.Second):
		t.Fatal("no gap reported")
	}
	var gap *GapError
	require.True(t, errors.As(err, &gap), "%v", err)
	require.Equal(t, "000000010000000000000002", gap.After)
	require.Equal(t, "000000010000000000000005", gap.Next)
	require.Contains(t, err.Error(), "2 segments missing")
	require.NotEmpty(t, r.Status().Gap)
	names, err := host.Names(ctx, "db", Stream, "000000010000000000000005")
	require.NoError(t, err)
	require.Len(t, names, 1, "what the server still has is stored before the gap is reported")
	path := filepath.Join(t.TempDir(), "m.prom")
	require.NoError(t, WriteReceiveMetrics(path, "p", "db", r.Status(), time.Now()))
	m, _ := os.ReadFile(path)
	require.Contains(t, string(m), `lifeboat_wal_archive_gap{policy="p",target="db"} 1`)

	// A second receiver on the same spool is refused.
	unlock, err := lockSpool(r.Spool)
	require.NoError(t, err)
	defer unlock()
	r2, _, _ := receiver(t, bin)
	r2.Spool = r.Spool
	require.ErrorIs(t, r2.Run(ctx), ErrReceiverRunning)
}

// A server that removed the WAL the spool continues from: the spool's
// partial segment is stored, set aside, and streaming starts again.
func TestReceiverWALRemoved(t *testing.T) {
	bin := fakeReceivewal(t, `
if [ -e 000000010000000000000003.partial ]; then
  echo "pg_receivewal: error: unexpected termination of replication stream: ERROR:  requested WAL segment 000000010000000000000003 has already been removed" >&2
  exit 1
fi
head -c 1048576 /dev/zero > 000000010000000000000009.partial
printf 'new' | dd of=000000010000000000000009.partial conv=notrunc 2>/dev/null
exec sleep 30`)
	r, host, _ := receiver(t, bin)
	require.NoError(t, os.MkdirAll(filepath.Join(r.Spool, "wal"), 0o700))
	old := append([]byte("old"), make([]byte, seg1M-3)...)
	require.NoError(t, os.WriteFile(filepath.Join(r.Spool, "wal", "000000010000000000000003.partial"), old, 0o600))
	ctx := context.Background()
	_, err := host.Put(ctx, logarchive.Segment{Target: "db", Stream: Stream, Name: "000000010000000000000002"}, bytes.Repeat([]byte{1}, seg1M))
	require.NoError(t, err)
	var gap *GapError
	require.ErrorAs(t, r.Run(ctx), &gap)
	require.Equal(t, "000000010000000000000002", gap.After)
	require.Equal(t, "000000010000000000000009", gap.Next)
	names, err := host.Names(ctx, "db", Stream, "")
	require.NoError(t, err)
	require.Equal(t, []string{"000000010000000000000002", PartialName("000000010000000000000003", 3), PartialName("000000010000000000000009", 3)}, names)
	_, err = os.Stat(filepath.Join(r.Spool, "gap-000000010000000000000003.partial"))
	require.NoError(t, err, "set aside")
}
