package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/lifeboat-backup/lifeboat/engine/logarchive"
	"github.com/lifeboat-backup/lifeboat/engine/repo"
	"github.com/lifeboat-backup/lifeboat/engine/storage"
	"github.com/lifeboat-backup/lifeboat/targets/postgres/wal"
)

// The log archive beside snapshots: forget removes segments older than
// the oldest snapshot kept of their target (--dry-run shows the PITR
// window), check and status find a gap in the chain, replicate copies
// segments.
func TestArchiveRetentionCheckStatusReplicate(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	require.NoError(t, os.MkdirAll(src, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(src, "f"), []byte("data"), 0o644))
	primary := "file://" + filepath.Join(dir, "primary")
	secondary := "file://" + filepath.Join(dir, "secondary")
	c := &cli{t: t, env: map[string]string{}}
	c.ok("init", "--repo", primary, "--owner-key-out", filepath.Join(dir, "owner.key"), "--host-key-out", filepath.Join(dir, "host.key"))
	policy := filepath.Join(dir, "policy.yaml")
	require.NoError(t, os.WriteFile(policy, []byte(`version: 1
name: arch
repositories:
  primary:
    url: `+primary+`
    key_file: `+filepath.Join(dir, "host.key")+`
  secondaries:
    - name: dr
      url: `+secondary+`
targets:
  - name: db
    kind: files
    paths: [`+src+`]
`), 0o600))
	journal := filepath.Join(dir, "journal")
	c.ok("run", policy, "--journal", journal)
	c.ok("run", policy, "--journal", journal)

	// Segments: two that ended hours before the snapshots, two recent.
	b, err := storage.Open(ctx, primary)
	require.NoError(t, err)
	defer b.Close()
	creds, err := repo.ReadKeyFile(filepath.Join(dir, "host.key"))
	require.NoError(t, err)
	r, err := repo.Open(ctx, b, creds)
	require.NoError(t, err)
	la := logarchive.New(r)
	now := time.Now()
	for i, age := range []time.Duration{3 * time.Hour, 150 * time.Minute, 10 * time.Minute, time.Minute} {
		name := wal.SegmentOf(1, uint64(i+1)<<24, 16<<20)
		_, err := la.Put(ctx, logarchive.Segment{Target: "db", Stream: wal.Stream, Name: name, LastTime: now.Add(-age),
			Details: map[string]string{"wal_segment_size": "16777216"}}, []byte(name))
		require.NoError(t, err)
	}

	out := c.ok("forget", "--policy", policy, "--keep-last", "1", "--dry-run")
	require.Contains(t, out, "archive db/wal: restorable to any point from")
	require.Contains(t, out, "2 segments kept, would remove 2")
	out = c.ok("forget", "--policy", policy, "--keep-last", "1")
	require.Contains(t, out, "removed 2")
	segs, _, err := la.List(ctx, "db", wal.Stream)
	require.NoError(t, err)
	require.Len(t, segs, 2)
	require.Equal(t, "000000010000000000000003", segs[0].Name)

	c.env["LIFEBOAT_KEY_FILE"] = filepath.Join(dir, "owner.key")
	out = c.ok("check", "--policy", policy, "--read-data")
	require.Contains(t, out, "2 archived log segments checked")
	out = c.ok("replicate", policy)
	c.ok("check", "--repo", secondary, "--read-data")
	_, err = os.Stat(filepath.Join(dir, "secondary", "archive", "db", "wal", "000000010000000000000004"))
	require.NoError(t, err, out)

	// A gap: a segment between two archived ones is missing.
	name := wal.SegmentOf(1, 6<<24, 16<<20)
	_, err = la.Put(ctx, logarchive.Segment{Target: "db", Stream: wal.Stream, Name: name, LastTime: now,
		Details: map[string]string{"wal_segment_size": "16777216"}}, []byte(name))
	require.NoError(t, err)
	_, errs, code := c.run("check", "--policy", policy)
	require.Equal(t, 1, code, errs)
	require.Contains(t, errs, "gap in db/wal between 000000010000000000000004")
	out, _, code = c.run("status", policy, "--journal", journal)
	require.NotEqual(t, 0, code)
	require.Contains(t, out, "archive db/wal: 3 segments")
	require.True(t, strings.Contains(out, "PROBLEM: log archive: gap in db/wal"), out)
}

// run's retention removes segments older than the oldest snapshot it
// keeps, as forget does.
func TestRunRetentionRemovesOldSegments(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	require.NoError(t, os.MkdirAll(src, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(src, "f"), []byte("data"), 0o644))
	url := "file://" + filepath.Join(dir, "repo")
	c := &cli{t: t, env: map[string]string{}}
	c.ok("init", "--repo", url, "--owner-key-out", filepath.Join(dir, "owner.key"), "--host-key-out", filepath.Join(dir, "host.key"))
	policy := filepath.Join(dir, "policy.yaml")
	require.NoError(t, os.WriteFile(policy, []byte(`version: 1
name: ret
repositories:
  primary:
    url: `+url+`
    key_file: `+filepath.Join(dir, "host.key")+`
targets:
  - name: db
    kind: files
    paths: [`+src+`]
retention:
  keep_last: 1
`), 0o600))
	journal := filepath.Join(dir, "journal")
	c.ok("run", policy, "--journal", journal)

	b, err := storage.Open(ctx, url)
	require.NoError(t, err)
	defer b.Close()
	creds, err := repo.ReadKeyFile(filepath.Join(dir, "host.key"))
	require.NoError(t, err)
	r, err := repo.Open(ctx, b, creds)
	require.NoError(t, err)
	la := logarchive.New(r)
	now := time.Now()
	for i, age := range []time.Duration{5 * time.Hour, 4 * time.Hour, 0} {
		name := wal.SegmentOf(1, uint64(i+1)<<24, 16<<20)
		_, err := la.Put(ctx, logarchive.Segment{Target: "db", Stream: wal.Stream, Name: name, LastTime: now.Add(-age)}, []byte(name))
		require.NoError(t, err)
	}
	c.ok("run", policy, "--journal", journal) // forgets the first snapshot
	segs, _, err := la.List(ctx, "db", wal.Stream)
	require.NoError(t, err)
	require.Len(t, segs, 1, "the two segments from before the kept snapshot went")
}
