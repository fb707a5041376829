package storage_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"gocloud.dev/blob"

	"github.com/lifeboat-backup/lifeboat/engine/storage"
	"github.com/lifeboat-backup/lifeboat/engine/storage/miniotest"
	"github.com/lifeboat-backup/lifeboat/engine/storage/storagetest"
)

func TestMain(m *testing.M) { os.Exit(miniotest.Main(m)) }

func open(t *testing.T, url string, opts storage.OpenOptions) *blob.Bucket {
	t.Helper()
	b, err := storage.OpenWith(context.Background(), url, opts)
	require.NoError(t, err, "open %s", storage.Redact(url))
	t.Cleanup(func() { _ = b.Close() })
	return b
}

func TestConformanceMem(t *testing.T) {
	t.Parallel()
	storagetest.Run(t, func(t *testing.T) *blob.Bucket {
		return open(t, "mem://", storage.OpenOptions{})
	})
}

func TestConformanceFile(t *testing.T) {
	t.Parallel()
	storagetest.Run(t, func(t *testing.T) *blob.Bucket {
		dir := filepath.Join(t.TempDir(), "repo")
		return open(t, "file://"+dir, storage.OpenOptions{Create: true, Ping: true})
	})
}

func TestConformanceFilePrefixed(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	t.Parallel()
	storagetest.Run(t, func(t *testing.T) *blob.Bucket {
		dir := t.TempDir()
		return open(t, "file://"+dir+"?prefix=repos/one/", storage.OpenOptions{})
	})
}

var bucketSeq atomic.Int64

func newBucketName() string {
	return fmt.Sprintf("t%d-%d", time.Now().UnixNano()%1e9, bucketSeq.Add(1))
}

func TestConformanceMinIO(t *testing.T) {
	srv := miniotest.Shared(t)
	t.Parallel()
	storagetest.Run(t, func(t *testing.T) *blob.Bucket {
		name := newBucketName()
		srv.CreateBucket(t, name)
		return open(t, srv.URL(name, ""), storage.OpenOptions{Ping: true})
	})
}

func TestConformanceMinIOPrefixed(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	srv := miniotest.Shared(t)
	t.Parallel()
	storagetest.Run(t, func(t *testing.T) *blob.Bucket {
		name := newBucketName()
		srv.CreateBucket(t, name)
		return open(t, srv.URL(name, "repo/"), storage.OpenOptions{})
	})
}

func TestRedact(t *testing.T) {
	for in, want := range map[string]string{
		"s3://b?endpoint=http://127.0.0.1:9000":                "s3://b?endpoint=http://127.0.0.1:9000",
		"azblob://c?sig=abc&sv=2020":                           "azblob://c?sig=REDACTED&sv=2020",
		"s3://u:hunter2@b?region=x":                            "s3://u:REDACTED@b?region=x",
		"s3://b?secret_access_key=xyz&region=r":                "s3://b?secret_access_key=REDACTED&region=r",
		"file:///repo":                                         "file:///repo",
		"s3://b?token=t0k&region=eu%zz":                        "s3://b?token=REDACTED&region=eu%zz",
		"%%bad://user:pw@host/x?password=p1&a=1":               "%%bad://user:REDACTED@host/x?password=REDACTED&a=1",
		"gs://bucket?access_id=id&private_key_path=/k.pem&x=1": "gs://bucket?access_id=id&private_key_path=REDACTED&x=1",
		"mem://": "mem://",
		"azblob://c?storage_account=acc&sas_token=sv%3Dx%26sig%3D": "azblob://c?storage_account=acc&sas_token=REDACTED",
	} {
		got := storage.Redact(in)
		require.Equal(t, want, got, "Redact(%q)", in)
		require.NotContains(t, got, "hunter2")
	}
}

func TestOpenErrors(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct{ url, want string }{
		{"", "empty"},
		{"ftp://x/y?password=sekrit", "unsupported scheme"},
		{"repo-without-scheme", "no scheme"},
		{"file://relative/path", "take no host"},
		{"s3://?region=x", "no bucket"},
		{"s3://b/some/path", "?prefix="},
		{"s3://b?bogus=1&secret=sekrit", "bogus"},
		{"s3://b?region=x&key=k", "key= parameter"},
		{"file:///tmp/x?bogus=1&password=sekrit", "bogus"},
		{"s3://b\x7f?password=sekrit", "invalid"},
	} {
		_, err := storage.Open(ctx, c.url)
		require.Error(t, err, c.url)
		require.Contains(t, err.Error(), c.want, c.url)
		require.NotContains(t, err.Error(), "sekrit", c.url)
	}
}

func TestOpenFile(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "a", "repo")
	_, err := storage.Open(ctx, "file://"+dir)
	require.ErrorIs(t, err, storage.ErrNotExist)
	require.Contains(t, err.Error(), "does not exist")

	b, err := storage.OpenWith(ctx, "file://"+dir, storage.OpenOptions{Create: true, Ping: true})
	require.NoError(t, err)
	defer b.Close()
	fi, err := os.Stat(dir)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o700), fi.Mode().Perm())
	require.NoError(t, storage.WriteNew(ctx, b, "data/00/x", []byte("x")))
	w, err := b.NewWriter(ctx, "plain", nil)
	require.NoError(t, err)
	_, _ = w.Write([]byte("p"))
	require.NoError(t, w.Close())
	// No metadata sidecars, no leftover staging files.
	var files []string
	require.NoError(t, filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			rel, _ := filepath.Rel(dir, p)
			files = append(files, rel)
		}
		return err
	}))
	require.ElementsMatch(t, []string{"data/00/x", "plain"}, files)

	// A plain path works as well, relative ones too.
	b2, err := storage.Open(ctx, dir)
	require.NoError(t, err)
	defer b2.Close()
	got, err := storage.Read(ctx, b2, "data/00/x")
	require.NoError(t, err)
	require.Equal(t, "x", string(got))

	// Two buckets on one directory (two processes, in effect) still
	// refuse to overwrite.
	require.ErrorIs(t, storage.WriteNew(ctx, b2, "data/00/x", []byte("y")), storage.ErrExist)
}

func TestIsTempKey(t *testing.T) {
	require.True(t, storage.IsTempKey(".tmp/abc.tmp"))
	require.True(t, storage.IsTempKey("data/00/key.18a3f0c2b1.tmp"))
	require.False(t, storage.IsTempKey("data/00/0123abcd"))
	require.False(t, storage.IsTempKey("snapshots/x.tmp"))
}

func TestMinIOUnreachableAndRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	srv := miniotest.Start(t)
	srv.CreateBucket(t, "region2")
	ctx := context.Background()
	url := srv.URL("region2", "")

	b := open(t, url, storage.OpenOptions{Ping: true})
	require.NoError(t, storage.WriteNew(ctx, b, "config", []byte("cfg")))

	// A bucket that does not exist.
	_, err := storage.OpenWith(ctx, srv.URL("no-such-bucket", ""), storage.OpenOptions{Ping: true})
	require.Error(t, err)
	require.ErrorIs(t, err, storage.ErrUnreachable)
	require.ErrorIs(t, err, storage.ErrNotExist)
	require.Contains(t, err.Error(), "repository s3://no-such-bucket")
	require.Contains(t, err.Error(), "unreachable")
	require.Contains(t, err.Error(), "bucket does not exist")

	// The region goes down.
	srv.Kill()
	require.False(t, srv.Running())
	pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	err = storage.Ping(pctx, b)
	require.ErrorIs(t, err, storage.ErrUnreachable)
	_, err = storage.OpenWith(pctx, url, storage.OpenOptions{Ping: true})
	require.ErrorIs(t, err, storage.ErrUnreachable)
	require.Contains(t, err.Error(), "unreachable")
	t.Logf("unreachable error: %v", err)

	// And comes back with its data.
	require.NoError(t, srv.Restart())
	require.NoError(t, storage.Ping(ctx, b))
	got, err := storage.Read(ctx, b, "config")
	require.NoError(t, err)
	require.Equal(t, "cfg", string(got))
	srv.Stop()
	srv.Stop() // idempotent
}

// Bad credentials fail at Ping with a clear error.
func TestMinIOBadCredentials(t *testing.T) {
	srv := miniotest.Shared(t)
	name := newBucketName()
	srv.CreateBucket(t, name)
	t.Setenv("AWS_SECRET_ACCESS_KEY", "wrong-secret")
	_, err := storage.OpenWith(context.Background(), srv.URL(name, ""), storage.OpenOptions{Ping: true})
	require.ErrorIs(t, err, storage.ErrUnreachable)
	require.NotContains(t, err.Error(), "wrong-secret")
	t.Logf("bad credentials: %v", err)
}

// These machines set AWS_CA_BUNDLE. aws-sdk-go-v2 loads it when the
// config is built; a missing file fails every s3:// open, also for http
// endpoints. storage.Open reports that clearly.
func TestAWSCABundle(t *testing.T) {
	srv := miniotest.Shared(t)
	name := newBucketName()
	srv.CreateBucket(t, name)
	ctx := context.Background()
	for _, c := range []struct {
		bundle string
		ok     bool
	}{
		{"/etc/ssl/certs/ca-certificates.crt", true},
		{"", true},
		{filepath.Join(t.TempDir(), "missing.pem"), false},
	} {
		t.Run(strings.ReplaceAll(c.bundle, "/", "_"), func(t *testing.T) {
			if c.ok && c.bundle != "" {
				if _, err := os.Stat(c.bundle); err != nil {
					t.Skip("no system CA bundle")
				}
			}
			t.Setenv("AWS_CA_BUNDLE", c.bundle)
			b, err := storage.OpenWith(ctx, srv.URL(name, ""), storage.OpenOptions{Ping: true})
			if c.ok {
				require.NoError(t, err)
				require.NoError(t, b.Close())
				return
			}
			require.Error(t, err)
			t.Logf("AWS_CA_BUNDLE=%s: %v", c.bundle, err)
			require.Contains(t, err.Error(), "AWS_CA_BUNDLE")
		})
	}
	_ = errors.New
}
