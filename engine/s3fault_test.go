package engine_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/lifeboat-backup/lifeboat/engine/repo"
	"github.com/lifeboat-backup/lifeboat/engine/repo/repotest"
	"github.com/lifeboat-backup/lifeboat/engine/snapshot"
	"github.com/lifeboat-backup/lifeboat/engine/storage/miniotest"
)

// flaky runs a cycle of network faults on px until stop is closed: the
// endpoint resets connections, goes silent for longer than the idle
// timeout, cuts a response in the middle, and works in between.
func flaky(px *miniotest.Proxy, stop <-chan struct{}) {
	steps := []struct {
		f    miniotest.Fault
		for_ time.Duration
	}{
		{miniotest.Pass, 400 * time.Millisecond},
		{miniotest.Reset, 150 * time.Millisecond},
		{miniotest.Pass, 400 * time.Millisecond},
		{miniotest.Blackhole, 1500 * time.Millisecond},
		{miniotest.Pass, 400 * time.Millisecond},
	}
	for i := 0; ; i++ {
		s := steps[i%len(steps)]
		if s.f == miniotest.Pass && i%len(steps) == 2 {
			px.CutAfter(300 << 10)
		}
		px.Set(s.f)
		select {
		case <-stop:
			px.Set(miniotest.Pass)
			return
		case <-time.After(s.for_):
		}
	}
}

// TestBackupThroughFaultyStore: backup, check --read-data and restore of a
// repository on MinIO reached through an endpoint that keeps failing (TCP
// resets, silence longer than the idle timeout, responses cut in the
// middle) and through a proxy that answers every fourth request with 503
// SlowDown: all finish, check is clean, the restore is exact, and the
// retries were logged.
func TestBackupThroughFaultyStore(t *testing.T) {
	t.Parallel()
	srv := miniotest.Shared(t)
	th := miniotest.StartThrottle(t, srv.Endpoint, func(n int, _ *http.Request) bool { return n%4 == 1 })
	px := miniotest.StartProxy(t, strings.TrimPrefix(th.Endpoint(), "http://"))
	b, logs := srv.OpenVia(t, px.Endpoint(), "faulty-store", url.Values{"idle_timeout": {"1s"}, "connect_timeout": {"1s"}, "response_timeout": {"20s"}})

	tr := repotest.Init(t, b, repotest.SmallChunks, 512<<10)
	src := genTree(t, 6<<20, 26)

	phase := func(name string, f func()) {
		stop := make(chan struct{})
		done := make(chan struct{})
		go func() { flaky(px, stop); close(done) }()
		start := time.Now()
		f()
		close(stop)
		<-done
		t.Logf("%s through the faults: %v", name, time.Since(start).Round(time.Millisecond))
	}
	r := tr.Open(t, tr.Host)
	var id snapshot.ID
	phase("backup", func() { id = backup(t, r, src).Snapshot.ID })
	phase("check --read-data", func() {
		res, err := tr.Open(t, tr.Owner).Check(context.Background(), repo.CheckOptions{ReadDataPercent: 100})
		require.NoError(t, err)
		require.Empty(t, res.Errors)
		require.Equal(t, res.Packs, res.PacksRead)
	})
	phase("restore", func() {
		ro := tr.Open(t, tr.Owner)
		sn, err := ro.LoadSnapshot(context.Background(), id)
		require.NoError(t, err)
		restoreAndCompare(t, ro, sn, src)
	})
	retries := strings.Count(logs.String(), "storage: retrying")
	t.Logf("%d requests through the throttle, %d refused with SlowDown; %d retries logged", th.Requests(), th.Injected(), retries)
	require.Positive(t, th.Injected())
	require.GreaterOrEqual(t, retries, th.Injected(), "every SlowDown retried")
	for _, reason := range []string{"SlowDown", "i/o timeout", "reset"} {
		require.Contains(t, logs.String(), reason)
	}
	require.NotContains(t, logs.String(), miniotest.SecretKey)
}
