package restic

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sync/errgroup"

	"github.com/lifeboat-backup/lifeboat/engine"
	"github.com/lifeboat-backup/lifeboat/engine/snapshot"
	"github.com/lifeboat-backup/lifeboat/engine/storage/miniotest"
	"github.com/lifeboat-backup/lifeboat/policies"
	"github.com/lifeboat-backup/lifeboat/targets/files"
)

func TestMain(m *testing.M) { os.Exit(miniotest.Main(m)) }

// streamSource is a database-like source: entries with content produced
// on the fly, a recovery point, and optionally a failure after n entries.
type streamSource struct {
	entries []archived
	failAt  int // fail when reaching this entry (0: never)
}

func (s *streamSource) Kind() string       { return "exec" }
func (s *streamSource) Paths() []string    { return []string{"dump"} }
func (s *streamSource) AllOrNothing() bool { return true }
func (s *streamSource) RecoveryPoint() (time.Time, map[string]string) {
	return time.Date(2026, 11, 25, 3, 0, 0, 0, time.UTC), map[string]string{"lsn": "0/16B3748"}
}

func (s *streamSource) Walk(ctx context.Context, _ func(string, error), fn func(snapshot.Entry, engine.Opener) error) error {
	for i, a := range s.entries {
		if s.failAt > 0 && i == s.failAt {
			return errors.New("server went away")
		}
		var open engine.Opener
		if a.content != nil {
			c := a.content
			open = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(c)), nil }
		}
		if err := fn(a.e, open); err != nil {
			return err
		}
	}
	return nil
}

func randomBytes(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, seed))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func testEntries() []archived {
	return []archived{
		{e: snapshot.Entry{Path: "db", Type: snapshot.TypeDir, Mode: 0o755}},
		{e: snapshot.Entry{Path: "db/a.sql", Type: snapshot.TypeFile}, content: []byte("CREATE TABLE a (id int)")},
		{e: snapshot.Entry{Path: "db/big1.tsv", Type: snapshot.TypeFile}, content: randomBytes(3<<20+17, 1)},
		{e: snapshot.Entry{Path: "db/empty.tsv", Type: snapshot.TypeFile}, content: []byte{}},
		{e: snapshot.Entry{Path: "db/big2.tsv", Type: snapshot.TypeFile}, content: randomBytes(smallEntry+1, 2)},
		{e: snapshot.Entry{Path: "db/z.sql", Type: snapshot.TypeFile}, content: []byte("CREATE VIEW z AS SELECT 1")},
	}
}

func TestStreamBackupRestore(t *testing.T) {
	for _, where := range []string{"local", "minio"} {
		t.Run(where, func(t *testing.T) {
			url := ""
			if where == "minio" {
				srv := miniotest.Shared(t)
				bucket := fmt.Sprintf("restic-stream-%d", time.Now().UnixNano())
				srv.CreateBucket(t, bucket)
				url = srv.URL(bucket, "shop")
			}
			testStreamBackupRestore(t, newRepo(t, url, "pw"))
		})
	}
}

func testStreamBackupRestore(t *testing.T, e *Engine) {
	ctx := context.Background()
	src := &streamSource{entries: testEntries()}
	res, err := e.Backup(ctx, src, engine.BackupOptions{Target: "shopdb", Host: "db1", Tags: []string{"policy:shop", "nightly"}})
	require.NoError(t, err)
	sn := res.Snapshot
	assert.Equal(t, "shopdb", sn.Target)
	assert.Equal(t, "exec", sn.Kind)
	assert.Equal(t, int64(5), sn.Stats.Files)
	assert.Equal(t, int64(1), sn.Stats.Dirs)
	assert.Equal(t, "0/16B3748", sn.RecoveryPoint.Details["lsn"])

	sns, err := e.Snapshots(ctx)
	require.NoError(t, err)
	require.Len(t, sns, 1)
	got := sns[0]
	assert.Equal(t, sn.ID, got.ID)
	assert.Equal(t, "shopdb", got.Target)
	assert.Equal(t, "exec", got.Kind)
	assert.Equal(t, "db1", got.Host)
	assert.Equal(t, []string{"policy:shop", "nightly"}, got.Tags)

	s, err := e.Open(ctx, got)
	require.NoError(t, err)
	var nodes []*snapshot.Node
	tr := s.Tree(ctx)
	for {
		n, err := tr.Next()
		if err == io.EOF {
			break
		}
		require.NoError(t, err)
		nodes = append(nodes, n)
	}
	require.Len(t, nodes, len(src.entries))
	assert.Equal(t, time.Date(2026, 11, 25, 3, 0, 0, 0, time.UTC), s.Info().RecoveryPoint.Time)
	read := func(n *snapshot.Node) []byte {
		rc := s.Open(ctx, n)
		defer rc.Close()
		b, err := io.ReadAll(rc)
		require.NoError(t, err, n.Path)
		return b
	}
	// in tree order, then out of order (restarts the dump pass)
	for _, order := range [][]int{{1, 2, 3, 4, 5}, {4, 2, 5, 1, 2}} {
		for _, i := range order {
			want := src.entries[i].content
			assert.Equal(t, int64(len(want)), nodes[i].Size, nodes[i].Path)
			assert.True(t, bytes.Equal(want, read(nodes[i])), "content of %s (order %v)", nodes[i].Path, order)
		}
	}
	// opening big1 and reading only part of it, then big2, works
	rc := s.Open(ctx, nodes[2])
	_, err = io.ReadFull(rc, make([]byte, 100))
	require.NoError(t, err)
	assert.True(t, bytes.Equal(src.entries[4].content, read(nodes[4])))
	require.NoError(t, rc.Close())
	// readers in parallel, out of tree order, more than maxPasses at once
	var g errgroup.Group
	for k := range 2 * maxPasses {
		i := []int{4, 2}[k%2]
		g.Go(func() error {
			rc := s.Open(ctx, nodes[i])
			defer rc.Close()
			b, err := io.ReadAll(rc)
			if err != nil {
				return err
			}
			if !bytes.Equal(src.entries[i].content, b) {
				return fmt.Errorf("content of %s differs", nodes[i].Path)
			}
			return nil
		})
	}
	require.NoError(t, g.Wait())
	// a reader left open is stopped by the snapshot's Close
	_ = s.Open(ctx, nodes[4])
	require.NoError(t, s.Close())

	// a node the tree does not have
	_, err = io.ReadAll(s.Open(ctx, &snapshot.Node{Entry: snapshot.Entry{Path: "db/nope"}}))
	require.ErrorContains(t, err, `no entry "db/nope"`)

	// A source failing halfway leaves no snapshot.
	_, err = e.Backup(ctx, &streamSource{entries: testEntries(), failAt: 3}, engine.BackupOptions{Target: "shopdb", Host: "db1"})
	require.ErrorContains(t, err, "server went away")
	sns, err = e.Snapshots(ctx)
	require.NoError(t, err)
	assert.Len(t, sns, 1)

	// Forget
	require.NoError(t, e.Forget(ctx, []snapshot.ID{got.ID}))
	sns, err = e.Snapshots(ctx)
	require.NoError(t, err)
	assert.Empty(t, sns)
	_, err = e.Prune(ctx)
	require.NoError(t, err)
	require.NoError(t, e.Check(ctx, 100))
}

func TestCutArchiveRefused(t *testing.T) {
	ctx := context.Background()
	e := newRepo(t, "", "pw")
	// Back up a cut archive by hand (as if lifeboat had died mid-stream).
	data := writeArchive(t, testEntries()[:3], false)
	var out bytes.Buffer
	require.NoError(t, e.R.run(ctx, cmd{args: []string{"backup", "--json", "--stdin", "--stdin-filename", "/cut" + ArchiveSuffix,
		"--tag", tagTarget + "cut", "--tag", tagKind + "mysql"}, stdin: bytes.NewReader(data), stdout: &out}))
	sns, err := e.Snapshots(ctx)
	require.NoError(t, err)
	require.Len(t, sns, 1)
	s0, err := e.Open(ctx, sns[0])
	require.NoError(t, err)
	_, err = s0.Tree(ctx).Next()
	require.ErrorContains(t, err, "cut short")

	// A snapshot of another target name has no such archive.
	other := *sns[0]
	other.Target = "other"
	s1, err := e.Open(ctx, &other)
	require.NoError(t, err)
	_, err = s1.Tree(ctx).Next()
	require.Error(t, err)
	assert.Contains(t, err.Error(), "restic dump")
}

func TestFilesBackupRestoreReplicate(t *testing.T) {
	ctx := context.Background()
	e := newRepo(t, "", "pw")
	root := filepath.Join(t.TempDir(), "media")
	require.NoError(t, os.MkdirAll(filepath.Join(root, "cache"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(root, "a.jpg"), randomBytes(100_000, 3), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(root, "cache", "x"), []byte("skip me"), 0o644))
	require.NoError(t, os.Symlink("a.jpg", filepath.Join(root, "link")))

	src := &files.Source{Roots: []string{root}}
	src.Options.Excludes = []string{root + "/cache/*"}
	res, err := e.Backup(ctx, src, engine.BackupOptions{Target: "media", Host: "web1", Tags: []string{"policy:shop"}})
	require.NoError(t, err)
	assert.Equal(t, "files", res.Snapshot.Kind)
	assert.Equal(t, int64(100_000), res.Snapshot.Stats.BytesIn)
	assert.Empty(t, res.Warnings)

	_, err = e.Backup(ctx, &files.Source{Roots: []string{filepath.Join(root, "missing")}}, engine.BackupOptions{})
	require.ErrorContains(t, err, "backup root")
	_, err = e.Backup(ctx, src, engine.BackupOptions{Tags: []string{"a,b"}})
	require.ErrorContains(t, err, `tag "a,b": restic tags cannot hold a comma`)

	sns, err := e.Snapshots(ctx)
	require.NoError(t, err)
	require.Len(t, sns, 1)
	assert.Equal(t, []string{root}, sns[0].Paths)
	dest := t.TempDir()
	st, err := e.RestoreFiles(ctx, sns[0], dest, snapshot.RestoreOptions{})
	require.NoError(t, err)
	assert.Equal(t, int64(100_000), st.Bytes)
	b, err := os.ReadFile(filepath.Join(dest, "media", "a.jpg"))
	require.NoError(t, err)
	assert.True(t, bytes.Equal(randomBytes(100_000, 3), b))
	link, err := os.Readlink(filepath.Join(dest, "media", "link"))
	require.NoError(t, err)
	assert.Equal(t, "a.jpg", link)
	assert.NoFileExists(t, filepath.Join(dest, "media", "cache", "x"))

	_, err = e.RestoreFiles(ctx, &snapshot.Snapshot{Kind: "mysql"}, dest, snapshot.RestoreOptions{})
	require.ErrorContains(t, err, "not files")

	// copy to a secondary restic repository (created on the first copy)
	_, err = e.Backup(ctx, &streamSource{entries: testEntries()}, engine.BackupOptions{Target: "db", Host: "web1"})
	require.NoError(t, err)
	// with its own password
	secDir := t.TempDir()
	secPass := filepath.Join(secDir, "pass")
	require.NoError(t, os.WriteFile(secPass, []byte("dr-pw\n"), 0o600))
	secURL := "file://" + filepath.Join(secDir, "secondary")
	dr := policies.Secondary{Name: "dr", URL: secURL, PasswordFile: policies.SecretRef(secPass)}
	rs, err := e.Replicate(ctx, dr)
	require.NoError(t, err)
	assert.Equal(t, 2, rs.Copied)
	assert.Greater(t, rs.Lag, time.Duration(0))
	rs, err = e.Replicate(ctx, dr)
	require.NoError(t, err)
	assert.Equal(t, 0, rs.Copied)
	drEngine, err := e.Secondary(dr)
	require.NoError(t, err)
	lag, err := e.Lag(ctx, drEngine)
	require.NoError(t, err)
	assert.Equal(t, 0, lag.SnapshotsMissing)
	assert.Zero(t, lag.Lag)
	assert.False(t, lag.NewestReplicated.IsZero())
	_, err = e.Backup(ctx, &streamSource{entries: testEntries()}, engine.BackupOptions{Target: "db", Host: "web1"})
	require.NoError(t, err)
	lag, err = e.Lag(ctx, drEngine)
	require.NoError(t, err)
	assert.Equal(t, 1, lag.SnapshotsMissing)
	assert.Greater(t, lag.Lag, time.Duration(0))
	withPrimaryPassword, err := e.Secondary(policies.Secondary{Name: "dr", URL: secURL})
	require.NoError(t, err)
	_, err = e.Lag(ctx, withPrimaryPassword) // the primary's password does not open it
	require.ErrorIs(t, err, ErrWrongPassword)
	_, err = e.Replicate(ctx, dr)
	require.NoError(t, err)
	sec := reopen(t, &Engine{R: &Restic{bin: e.R.bin, url: secURL}}, "dr-pw")
	secSns, err := sec.Snapshots(ctx)
	require.NoError(t, err)
	require.Len(t, secSns, 3)
	for _, s := range secSns {
		if s.Kind == "exec" {
			ss, err := sec.Open(ctx, s)
			require.NoError(t, err)
			n, err := ss.Tree(ctx).Next()
			require.NoError(t, err)
			require.NoError(t, ss.Close())
			assert.Equal(t, "db", n.Path)
		}
	}
	size, err := e.Size(ctx)
	require.NoError(t, err)
	assert.Greater(t, size, int64(3<<20))
}

// A change in the middle of a big entry costs restic about the chunks
// around it, not the rest of the entry: frame headers sit at content-defined
// places, so restic's own chunking finds the old chunks after the change.
func TestStreamDedupAfterInsert(t *testing.T) {
	ctx := context.Background()
	data := randomBytes(16<<20, 9)
	entries := func(b []byte) []archived {
		return []archived{{e: snapshot.Entry{Path: "db", Type: snapshot.TypeDir}}, {e: snapshot.Entry{Path: "db/t.tsv", Type: snapshot.TypeFile}, content: b}}
	}
	changed := append(append(bytes.Clone(data[:5<<20]), "a row inserted in the middle\n"...), data[5<<20:]...)
	// restic's chunker polynomial is random per repository, so the chunks
	// around the insert vary: 0.8-6.6 MB in 15 runs, once 11.5 MB (restic's
	// chunks reach 8 MiB). Fixed-size frames stored everything after the
	// insert again (11.2 MB = all of it), in every repository: the best of
	// three repositories tells the two apart without a polynomial's luck.
	best := int64(len(changed))
	for i := range 3 {
		e := newRepo(t, "", "pw")
		_, err := e.Backup(ctx, &streamSource{entries: entries(data)}, engine.BackupOptions{Target: "db", Host: "h"})
		require.NoError(t, err)
		res, err := e.Backup(ctx, &streamSource{entries: entries(changed)}, engine.BackupOptions{Target: "db", Host: "h"})
		require.NoError(t, err)
		t.Logf("repository %d: added %d of %d bytes after an insert", i, res.Snapshot.Stats.BytesAdded, len(changed))
		best = min(best, res.Snapshot.Stats.BytesAdded)
	}
	after := int64(len(changed) - 5<<20)
	assert.Less(t, best, after*3/4)
}
