package engine_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"gocloud.dev/blob"

	"github.com/lifeboat-backup/lifeboat/engine"
	"github.com/lifeboat-backup/lifeboat/engine/replicate"
	"github.com/lifeboat-backup/lifeboat/engine/repo"
	"github.com/lifeboat-backup/lifeboat/engine/repo/repotest"
	"github.com/lifeboat-backup/lifeboat/engine/snapshot"
	"github.com/lifeboat-backup/lifeboat/engine/storage"
	"github.com/lifeboat-backup/lifeboat/engine/storage/miniotest"
	"github.com/lifeboat-backup/lifeboat/targets/files"
)

// cluster is a scripts/minio-cluster of 4 nodes x 2 drives with its own
// state directory (so it does not meet another test's cluster).
type cluster struct {
	t        *testing.T
	env      []string
	endpoint string
}

func startCluster(t *testing.T, buckets ...string) *cluster {
	t.Helper()
	bin, err := miniotest.Binary()
	if err != nil {
		t.Skip(err)
	}
	c := &cluster{t: t, env: append(os.Environ(), "LIFEBOAT_CACHE="+t.TempDir(), "LIFEBOAT_MINIO="+bin)}
	args := []string{"start", "--nodes", "4", "--drives", "2"}
	for _, b := range buckets {
		args = append(args, "--bucket", b)
	}
	out := c.run(args...)
	t.Cleanup(func() { c.run("stop") })
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		k, v, ok := strings.Cut(strings.TrimPrefix(sc.Text(), "export "), "=")
		if !ok {
			continue
		}
		if k == "MINIO_ENDPOINT" {
			c.endpoint = v
		}
		if strings.HasPrefix(k, "AWS_") {
			t.Setenv(k, v)
		}
	}
	require.NotEmpty(t, c.endpoint, "minio-cluster start printed no endpoint:\n%s", out)
	return c
}

func (c *cluster) run(args ...string) string {
	c.t.Helper()
	cmd := exec.Command("../scripts/minio-cluster", args...)
	cmd.Env = c.env
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	require.NoError(c.t, err, "minio-cluster %s: %s", strings.Join(args, " "), stderr.String())
	c.t.Logf("minio-cluster %s: %s", strings.Join(args, " "), strings.TrimSpace(stderr.String()))
	return string(out)
}

// TestClusterNodeKilled is #26's "kill one MinIO node mid-backup" on a
// distributed, erasure-coded MinIO (scripts/minio-cluster, 4 nodes x 2
// drives), with a secondary repository on a MinIO of its own:
//
//  1. node 3 is killed (SIGKILL) while a backup uploads: the backup
//     finishes; check --read-data is clean, the restore exact, and
//     replication to the secondary works, all with the node down;
//  2. node 3 comes back: another backup, check, every restore and the
//     replication stay clean;
//  3. node 1, the endpoint the client talks to, is killed mid-backup: the
//     backup fails with a clear error in bounded time; the node comes back
//     and the next backup succeeds; check clean, restore exact.
//
// Minutes of work: set LIFEBOAT_CLUSTER_KILL=1. LIFEBOAT_CLUSTER_PARAMS
// adds URL parameters (e.g. "&idle_timeout=20s"); the defaults are what an
// operator gets.
func TestClusterNodeKilled(t *testing.T) {
	if os.Getenv("LIFEBOAT_CLUSTER_KILL") != "1" {
		t.Skip("set LIFEBOAT_CLUSTER_KILL=1: a 4-node MinIO cluster whose nodes are killed, several minutes")
	}
	ctx := context.Background()
	began := time.Now()
	cl := startCluster(t, "primary")
	sec := miniotest.Start(t)
	sec.CreateBucket(t, "secondary")

	logs := &miniotest.Log{}
	url := "s3://primary?endpoint=" + cl.endpoint + "&region=us-east-1&use_path_style=true" + os.Getenv("LIFEBOAT_CLUSTER_PARAMS")
	b, err := storage.OpenWith(ctx, url, storage.OpenOptions{Ping: true, Logger: slog.New(slog.NewTextHandler(logs, nil))})
	require.NoError(t, err)
	t.Cleanup(func() { b.Close() })
	dst, err := storage.OpenWith(ctx, sec.URL("secondary", ""), storage.OpenOptions{Ping: true})
	require.NoError(t, err)
	t.Cleanup(func() { dst.Close() })

	tr := repotest.Init(t, b, repotest.SmallChunks, 4<<20)
	trees := map[snapshot.ID]string{}
	backupLocked := func(src string) (snapshot.ID, error) {
		r, err := repo.Open(ctx, b, tr.Host)
		if err != nil {
			return snapshot.ID{}, err
		}
		lk, err := r.Lock(ctx, false, "backup", time.Minute)
		if err != nil {
			return snapshot.ID{}, err
		}
		res, err := engine.Backup(ctx, r, &files.Source{Roots: []string{src}}, engine.BackupOptions{Host: "node-kill"})
		if uerr := lk.Unlock(ctx); err == nil && uerr != nil {
			t.Logf("unlock: %v", uerr)
		}
		if err != nil {
			return snapshot.ID{}, err
		}
		trees[res.Snapshot.ID] = src
		return res.Snapshot.ID, nil
	}
	// killDuring starts a backup of src, kills node once the backup has
	// written a few packs, and returns the backup's result.
	killDuring := func(src string, node int) (snapshot.ID, time.Duration, error) {
		before := countObjects(t, b, "data/")
		type result struct {
			id  snapshot.ID
			err error
		}
		done := make(chan result, 1)
		start := time.Now()
		go func() {
			id, err := backupLocked(src)
			done <- result{id, err}
		}()
		for countObjects(t, b, "data/") < before+3 {
			select {
			case r := <-done:
				t.Fatalf("the backup ended (%v) before node %d could be killed in its middle", r.err, node)
			case <-time.After(100 * time.Millisecond):
			}
		}
		cl.run("kill-node", fmt.Sprint(node))
		killedAt := time.Since(start)
		r := <-done
		took := time.Since(start)
		t.Logf("node %d killed %v into a backup that ended after %v: %v", node, killedAt.Round(time.Millisecond), took.Round(time.Millisecond), r.err)
		return r.id, took, r.err
	}
	verify := func(what string, bk *blob.Bucket) {
		t.Helper()
		start := time.Now()
		rr := &repotest.Repo{Bucket: bk, Owner: tr.Owner, Host: tr.Host}
		r := rr.Open(t, rr.Owner)
		res, err := r.Check(ctx, repo.CheckOptions{ReadDataPercent: 100})
		require.NoError(t, err, "%s: check --read-data", what)
		require.Empty(t, res.Errors, "%s: check --read-data", what)
		require.Equal(t, res.Packs, res.PacksRead)
		for id, src := range trees {
			sn, err := r.LoadSnapshot(ctx, id)
			require.NoError(t, err, "%s: snapshot %s", what, id.Short())
			restoreAndCompare(t, r, sn, src)
		}
		t.Logf("%s: check --read-data clean (%d packs, %d warnings), %d snapshots restored exactly (%v)",
			what, res.PacksRead, len(res.Warnings), len(trees), time.Since(start).Round(time.Millisecond))
	}
	replicateTo := func(what string) {
		t.Helper()
		r := tr.Open(t, tr.Host)
		res, err := replicate.Replicate(ctx, r, dst, replicate.Options{})
		require.NoError(t, err, "%s: replicate", what)
		t.Logf("%s: replicated %d objects (%d bytes)", what, res.Copied, res.Bytes)
	}

	small := genTree(t, 16<<20, 261)
	_, err = backupLocked(small)
	require.NoError(t, err)
	replicateTo("before the kill")

	// 1. A node that is not the endpoint dies in the middle of a backup.
	big := genTree(t, 96<<20, 262)
	_, _, err = killDuring(big, 3)
	require.NoError(t, err, "the backup survives node 3's death")
	verify("node 3 down", b)
	replicateTo("node 3 down")
	verify("secondary, node 3 down", dst)

	// 2. It comes back.
	cl.run("start-node", "3")
	_, err = backupLocked(genTree(t, 16<<20, 264))
	require.NoError(t, err)
	verify("node 3 back", b)
	replicateTo("node 3 back")
	verify("secondary, node 3 back", dst)

	// 3. The endpoint itself dies mid-backup: a clear failure, and the next
	// run succeeds once it is back.
	big2 := genTree(t, 96<<20, 263)
	_, took, err := killDuring(big2, 1)
	if err != nil {
		t.Logf("backup with its endpoint dead failed after %v: %v", took.Round(time.Millisecond), err)
		require.Contains(t, err.Error(), "connection refused")
	}
	cl.run("start-node", "1")
	_, err = backupLocked(big2)
	require.NoError(t, err, "the next backup, with node 1 back")
	verify("node 1 back", b)
	replicateTo("node 1 back")
	verify("secondary, node 1 back", dst)

	retries := strings.Count(logs.String(), "storage: retrying")
	var sample []string
	for _, l := range strings.Split(logs.String(), "\n") {
		if len(sample) < 6 && l != "" {
			sample = append(sample, l)
		}
	}
	t.Logf("%d retries logged in all; the first:\n%s", retries, strings.Join(sample, "\n"))
	t.Logf("whole test: %v", time.Since(began).Round(time.Second))
}

func countObjects(t *testing.T, b *blob.Bucket, prefix string) int {
	n := 0
	it := b.List(&blob.ListOptions{Prefix: prefix})
	for {
		_, err := it.Next(context.Background())
		if err != nil {
			return n
		}
		n++
	}
}
