package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/lifeboat-backup/lifeboat/engine/logarchive"
	"github.com/lifeboat-backup/lifeboat/engine/repo"
	"github.com/lifeboat-backup/lifeboat/engine/storage"
	"github.com/lifeboat-backup/lifeboat/targets/postgres/wal"
)

// walReceiver is a running `lifeboat wal receive` with its output.
type walReceiver struct {
	cmd  *exec.Cmd
	out  *bytes.Buffer
	done chan struct{}
	code int
	cpu  time.Duration // user + system of the lifeboat process
	ran  time.Duration
}

func (p *pitrPG) startReceiver(spool string) *walReceiver {
	cmd := exec.Command(p.bin, "wal", "receive", "--policy", p.policy, "--target", "pg", "--spool", spool)
	w := &walReceiver{cmd: cmd, out: &bytes.Buffer{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = w.out, w.out
	require.NoError(p.t, cmd.Start())
	begin := time.Now()
	go func() {
		defer close(w.done)
		err := cmd.Wait()
		w.ran = time.Since(begin)
		if ps := cmd.ProcessState; ps != nil {
			w.cpu = ps.UserTime() + ps.SystemTime()
		}
		if ee, ok := err.(*exec.ExitError); ok {
			w.code = ee.ExitCode()
		}
	}()
	return w
}

// stop ends the receiver with sig and returns its output (read only
// after the process ended).
func (w *walReceiver) stop(sig syscall.Signal) string {
	_ = w.cmd.Process.Signal(sig)
	select {
	case <-w.done:
	case <-time.After(60 * time.Second):
		_ = w.cmd.Process.Kill()
		<-w.done
	}
	return w.out.String()
}

// newestWAL is the last write of the newest WAL in the archive
// (complete segments and streamed partials), from the headers (host key).
func newestWAL(t *testing.T, la *logarchive.Archive) (time.Time, string) {
	segs, _, err := la.List(context.Background(), "pg", wal.Stream)
	require.NoError(t, err)
	var newest time.Time
	var name string
	for _, s := range segs {
		if _, _, partial := wal.ParsePartial(s.Name); (partial || wal.IsSegment(s.Name)) && s.EndTime().After(newest) {
			newest, name = s.EndTime(), s.Name
		}
	}
	return newest, name
}

// Streaming WAL (lifeboat wal receive): under the commit-logged load the
// oldest commit the archive does not hold is never older than max_delay
// + 5 s, without any segment switch (wal push runs as archive_command
// too, and the two agree on every completed segment); the receiver
// resumes after a SIGKILL of itself and a server restart; the cluster
// destroyed, a PITR to the last archived second gives exactly the rows
// committed up to it, recovered from a streamed partial segment.
// Short form (make test): max_delay 2s, 8 s of measuring. The must-show
// form, LIFEBOAT_PITR_RPO=1: max_delay 10s, PITR_RPO_SECONDS (default
// 30) of measuring, worst RPO <= 15 s.
func TestPITRPGStreamRPO(t *testing.T) {
	if testing.Short() {
		t.Skip("starts MinIO and PostgreSQL")
	}
	secs, maxDelay := 8, 2*time.Second
	if os.Getenv("LIFEBOAT_PITR_RPO") == "1" {
		secs, maxDelay = 30, 10*time.Second
		if s := os.Getenv("PITR_RPO_SECONDS"); s != "" {
			secs, _ = strconv.Atoi(s)
		}
	}
	p := newPITRPG(t)
	pol, err := os.ReadFile(p.policy)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(p.policy, []byte(strings.Replace(string(pol), "    method: physical\n",
		"    method: physical\n    archive:\n      max_delay: "+maxDelay.String()+"\n", 1)), 0o644))

	ctx := context.Background()
	b, err := storage.Open(ctx, p.minio.URL("pitr", ""))
	require.NoError(t, err)
	defer b.Close()
	creds, err := repo.ReadKeyFile(p.host)
	require.NoError(t, err)
	r, err := repo.OpenUnindexed(ctx, b, creds)
	require.NoError(t, err)
	la := logarchive.New(r)

	spool := filepath.Join(p.dir, "spool")
	rc := p.startReceiver(spool)
	var outs []string
	stopped := sync.OnceFunc(func() { outs = append(outs, rc.stop(syscall.SIGTERM)) })
	defer func() {
		stopped()
		if t.Failed() {
			t.Logf("wal receive:\n%s", strings.Join(outs, "\n---\n"))
		}
	}()

	l := newPGLoad(p)
	l.run(time.Second)
	_, _, code := p.c.run("run", p.policy, "--target", "pg", "--journal", t.TempDir())
	require.Equal(t, 0, code)
	startLSN := p.sql("SELECT pg_current_wal_lsn()")

	// Steady load: sample the RPO, the age of the oldest commit the
	// archive does not hold yet.
	start := time.Now()
	var worst time.Duration
	samples := 0
	for time.Since(start) < time.Duration(secs)*time.Second {
		l.run(250 * time.Millisecond)
		newest, _ := newestWAL(t, la)
		now := time.Now()
		var rpo time.Duration
		for _, c := range l.log {
			if c.At.After(newest) {
				rpo = now.Sub(c.At)
				break
			}
		}
		worst = max(worst, rpo)
		samples++
	}
	t.Logf("stream RPO over %s (archive.max_delay %s): worst %s over %d samples, %d commits, WAL %s..%s; load %s",
		time.Since(start).Round(time.Second), maxDelay, worst.Round(100*time.Millisecond), samples, len(l.log), startLSN,
		p.sql("SELECT pg_current_wal_lsn()"), loadavg())
	require.LessOrEqual(t, worst, maxDelay+5*time.Second)
	require.Contains(t, p.sql("SELECT string_agg(slot_name || ':' || active, ',') FROM pg_replication_slots"), "lifeboat_pitr_pg:t")

	// The receiver killed and started again, a forced switch (pg_receivewal
	// completes that segment) and a server restart: nothing is lost.
	outs = append(outs, rc.stop(syscall.SIGKILL))
	t.Logf("receiver CPU %s in %s (the lifeboat process: reading, compressing, encrypting, uploading; pg_receivewal not counted)", rc.cpu.Round(10*time.Millisecond), rc.ran.Round(time.Second))
	rc = p.startReceiver(spool)
	stopped = sync.OnceFunc(func() { outs = append(outs, rc.stop(syscall.SIGTERM)) })
	l.run(2 * time.Second)
	switched := p.switchWAL()
	l.run(time.Second)
	require.NoError(t, p.pg.Restart(ctx))
	l.run(3 * time.Second)

	// The last archived second: a quiet point, then load until the archive
	// holds WAL written after it (a partial version: no switch after it).
	pt := l.mark()
	deadline := time.Now().Add(40 * time.Second)
	for {
		l.run(500 * time.Millisecond)
		newest, name := newestWAL(t, la)
		if newest.After(pt.At.Add(time.Second)) {
			_, _, partial := wal.ParsePartial(name)
			require.True(t, partial, "newest archived %s", name)
			t.Logf("point %s archived in %s (%s after it)", pt.At.Format(time.RFC3339Nano), name, newest.Sub(pt.At).Round(time.Millisecond))
			break
		}
		require.True(t, time.Now().Before(deadline), "nothing archived after %s", pt.At)
	}
	p.pg.Kill()
	require.NoError(t, os.RemoveAll(p.pg.DataDir))
	stopped()
	require.Contains(t, outs[0], "starting log streaming")
	for _, o := range outs {
		require.NotContains(t, o, "archiving streamed WAL", "no failed upload (wal push stored the same segments)")
	}
	require.Equal(t, 0, rc.code, "wal receive exit")
	has, err := la.Head(ctx, "pg", wal.Stream, switched)
	require.NoError(t, err, "the segment closed by the switch, archived by the receiver or wal push")
	require.Equal(t, switched, has.Name)

	out, port, stop := p.restoreAt(pt.At.UTC().Format(time.RFC3339Nano), "--no-archive")
	got := rowsOf(t, p.pg.BinDir(), port)
	stop()
	require.Equal(t, pt.Rows, got, "the last archived second %s\n%s", pt.At, out)
	require.Contains(t, out, "recovery stopping before")
	logs, _ := filepath.Glob(filepath.Join(p.dir, "restore-*", "data", "log", "lifeboat-recovery.log"))
	require.Len(t, logs, 1)
	rlog, err := os.ReadFile(logs[0])
	require.NoError(t, err)
	require.Contains(t, string(rlog), "served its streamed version", "recovery ended in a streamed partial segment")
	t.Logf("last archived second: %d rows exactly; %s", len(got), strings.TrimSpace(out[strings.Index(out, "recovery finished"):]))
}
