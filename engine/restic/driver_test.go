package restic

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lifeboat-backup/lifeboat/engine"
	"github.com/lifeboat-backup/lifeboat/engine/restic/restictest"
	"github.com/lifeboat-backup/lifeboat/targets/files"
)

func TestLocation(t *testing.T) {
	tests := []struct {
		url, loc string
		env      []string
		err      string
	}{
		{url: "file:///srv/repo", loc: "/srv/repo"},
		{url: "file:///srv/repo/", loc: "/srv/repo"},
		{url: "/srv/repo", loc: "/srv/repo"},
		{url: "s3://bucket/shop?endpoint=http://127.0.0.1:9000&region=us-east-1&use_path_style=true",
			loc: "s3:http://127.0.0.1:9000/bucket/shop", env: []string{"AWS_DEFAULT_REGION=us-east-1"}},
		{url: "s3://bucket?prefix=shop/db&endpoint=https://s3.example.test/", loc: "s3:https://s3.example.test/bucket/shop/db"},
		{url: "s3://bucket/a?prefix=b", loc: "s3:s3.amazonaws.com/bucket/a/b"},
		{url: "s3://bucket", loc: "s3:s3.amazonaws.com/bucket"},
		{url: "s3:///x", err: "no bucket"},
		{url: "s3://b?endpoint=127.0.0.1:9000", err: "is not http(s)://host[:port]"},
		{url: "file://host/srv", err: "want file:///absolute/path"},
		{url: "gs://bucket", err: "supports file:// and s3://"},
		{url: "mem://", err: "supports file:// and s3://"},
		{url: "%zz", err: "invalid URL escape"},
		{url: "sftp:backup@host:/srv/restic-repo", loc: "sftp:backup@host:/srv/restic-repo"},
		{url: "sftp://backup@host:2222//srv/repo", loc: "sftp://backup@host:2222//srv/repo"},
		{url: "rest:https://host:8000/shop", loc: "rest:https://host:8000/shop"},
		{url: "s3:http://127.0.0.1:9000/bucket/shop", loc: "s3:http://127.0.0.1:9000/bucket/shop"},
		{url: "s3:s3.amazonaws.com/bucket", loc: "s3:s3.amazonaws.com/bucket"},
		{url: "b2:bucket:shop", loc: "b2:bucket:shop"},
		{url: "azure:container:/shop", loc: "azure:container:/shop"},
		{url: "gs:bucket:/shop", loc: "gs:bucket:/shop"},
		{url: "rclone:remote:shop", loc: "rclone:remote:shop"},
		{url: "local:/srv/repo", loc: "local:/srv/repo"},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			loc, env, err := Location(tt.url)
			if tt.err != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tt.err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.loc, loc)
			assert.Equal(t, tt.env, env)
		})
	}
}

// fakeRestic writes an executable script that prints out for `version`.
func fakeRestic(t *testing.T, out string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "restic")
	require.NoError(t, os.WriteFile(p, []byte("#!/bin/sh\necho '"+out+"'\n"), 0o755))
	return p
}

func TestNewChecksBinaryAndVersion(t *testing.T) {
	pw := []byte("secret")
	tests := []struct {
		name   string
		binary string
		pw     []byte
		url    string
		kind   error
		msg    string
	}{
		{name: "missing", binary: filepath.Join(t.TempDir(), "no-restic"), pw: pw, kind: ErrNotInstalled, msg: "restic executable not found"},
		{name: "too old", binary: fakeRestic(t, "restic 0.16.4 compiled with go1.21 on linux/amd64"), pw: pw, kind: ErrTooOld, msg: "is 0.16.4, lifeboat needs >= 0.17.0"},
		{name: "not restic", binary: fakeRestic(t, "hello"), pw: pw, msg: `printed "hello"`},
		{name: "no password", binary: fakeRestic(t, "restic 0.18.1 compiled"), pw: []byte(" \n"), msg: "a password is required"},
		{name: "bad url", binary: fakeRestic(t, "restic 0.18.1 compiled"), pw: pw, url: "gs://x", msg: "supports file:// and s3://"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			url := tt.url
			if url == "" {
				url = "file://" + t.TempDir()
			}
			_, err := New(context.Background(), Options{Binary: tt.binary, URL: url, Password: tt.pw})
			require.Error(t, err)
			if tt.kind != nil {
				assert.ErrorIs(t, err, tt.kind)
			}
			assert.Contains(t, err.Error(), tt.msg)
		})
	}

	t.Run("PATH lookup and env", func(t *testing.T) {
		dir := filepath.Dir(fakeRestic(t, "restic 0.17.3 compiled with go1.22"))
		t.Setenv("PATH", dir)
		t.Setenv(EnvBinary, "")
		r, err := New(context.Background(), Options{URL: "/srv/x", Password: pw})
		require.NoError(t, err)
		assert.Equal(t, [3]int{0, 17, 3}, r.Version)
		t.Setenv(EnvBinary, fakeRestic(t, "restic 0.9.6 compiled"))
		_, err = New(context.Background(), Options{URL: "/srv/x", Password: pw})
		assert.ErrorIs(t, err, ErrTooOld)
	})
}

func TestClassify(t *testing.T) {
	tests := []struct {
		code   int
		stderr string
		want   error
	}{
		{10, "", ErrNoRepository},
		{1, "Fatal: repository does not exist: unable to open config file", ErrNoRepository},
		{11, "", ErrLocked},
		{1, "unable to create lock in backend: repository is already locked exclusively by PID 1", ErrLocked},
		{12, "", ErrWrongPassword},
		{1, "Fatal: wrong password or no key found", ErrWrongPassword},
		{1, "Fatal: something else", ErrFailed},
		{3, "", ErrFailed},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, classify(tt.code, tt.stderr), "%d %q", tt.code, tt.stderr)
	}
}

// newRepo initializes a restic repository at url (a fresh local one when
// empty) and returns its engine.
func newRepo(t *testing.T, url string, password string) *Engine {
	t.Helper()
	bin := restictest.BinaryOrSkip(t)
	t.Setenv("RESTIC_CACHE_DIR", t.TempDir())
	if url == "" {
		url = "file://" + filepath.Join(t.TempDir(), "repo")
	}
	r, err := New(context.Background(), Options{Binary: bin, URL: url, Password: []byte(password)})
	require.NoError(t, err)
	e := &Engine{R: r}
	require.NoError(t, e.Init(context.Background()))
	return e
}

func reopen(t *testing.T, e *Engine, password string) *Engine {
	t.Helper()
	r, err := New(context.Background(), Options{Binary: e.R.bin, URL: e.R.url, Password: []byte(password)})
	require.NoError(t, err)
	return &Engine{R: r}
}

func TestRealResticErrors(t *testing.T) {
	ctx := context.Background()
	e := newRepo(t, "", "right horse")

	t.Run("wrong password", func(t *testing.T) {
		wrong := reopen(t, e, "wrong horse")
		_, err := wrong.Snapshots(ctx)
		require.ErrorIs(t, err, ErrWrongPassword)
		assert.Contains(t, err.Error(), "restic snapshots on "+e.R.url+": wrong password for the restic repository: Fatal: wrong password")
		assert.NotContains(t, err.Error(), "message_type", "restic's JSON error read as text")
		assert.NotContains(t, err.Error(), "horse")
		// a stream backup reports restic's error, not the closed pipe
		_, err = wrong.Backup(ctx, &streamSource{entries: testEntries()}, engine.BackupOptions{Target: "db"})
		require.ErrorIs(t, err, ErrWrongPassword)
		assert.Contains(t, err.Error(), "restic backup")
		_, err = wrong.Backup(ctx, &files.Source{Roots: []string{t.TempDir()}}, engine.BackupOptions{})
		require.ErrorIs(t, err, ErrWrongPassword)
	})
	t.Run("no repository", func(t *testing.T) {
		r, err := New(ctx, Options{Binary: e.R.bin, URL: "file://" + filepath.Join(t.TempDir(), "none"), Password: []byte("x")})
		require.NoError(t, err)
		ok, err := (&Engine{R: r}).Exists(ctx)
		require.NoError(t, err)
		assert.False(t, ok)
		_, err = (&Engine{R: r}).Snapshots(ctx)
		require.ErrorIs(t, err, ErrNoRepository)
	})
	t.Run("init twice", func(t *testing.T) {
		err := e.Init(ctx)
		require.Error(t, err)
		assert.Contains(t, err.Error(), "restic init")
	})
	t.Run("locked by another restic", func(t *testing.T) {
		// A restic backup reading a stdin we keep open holds its lock.
		hold := exec.Command(e.R.bin, "--repo", e.R.repo, "backup", "--stdin", "--stdin-filename", "hold")
		hold.Env = append(cleanEnv(), "RESTIC_PASSWORD_FILE=/dev/fd/3")
		closers, err := passwordPipes(hold, e.R.password)
		require.NoError(t, err)
		var holdErr strings.Builder
		hold.Stderr = &holdErr
		stdin, err := hold.StdinPipe()
		require.NoError(t, err)
		require.NoError(t, hold.Start())
		for _, f := range closers {
			_ = f.Close()
		}
		defer func() {
			_ = stdin.Close()
			_ = hold.Wait()
		}()
		require.Eventually(t, func() bool {
			locks, _ := os.ReadDir(filepath.Join(e.R.repo, "locks"))
			return len(locks) > 0
		}, 20*time.Second, 50*time.Millisecond, "restic backup holding the lock: %s", &holdErr)
		_, ferr := e.Prune(ctx) // prune needs an exclusive lock
		require.ErrorIs(t, ferr, ErrLocked)
		assert.True(t, strings.Contains(ferr.Error(), "locked"), ferr.Error())
	})
	t.Run("no password leaks into argv or env", func(t *testing.T) {
		// The fake restic prints its arguments and environment.
		p := filepath.Join(t.TempDir(), "restic")
		require.NoError(t, os.WriteFile(p, []byte("#!/bin/sh\nif [ \"$1\" = version ]; then echo 'restic 0.18.1 compiled'; exit 0; fi\necho \"$@\" >&2; env >&2; cat \"$RESTIC_PASSWORD_FILE\" >/dev/null; exit 1\n"), 0o755))
		t.Setenv("RESTIC_PASSWORD", "from-env-must-go")
		r, err := New(ctx, Options{Binary: p, URL: "/srv/x", Password: []byte("s3cr3t-pw")})
		require.NoError(t, err)
		err = (&Engine{R: r}).Forget(ctx, nil)
		require.NoError(t, err) // nothing to forget: restic not run
		_, err = (&Engine{R: r}).Snapshots(ctx)
		var re *Error
		require.True(t, errors.As(err, &re))
		assert.NotContains(t, re.Stderr, "s3cr3t-pw")
		assert.NotContains(t, re.Stderr, "from-env-must-go")
		assert.Contains(t, re.Stderr, "RESTIC_PASSWORD_FILE=/dev/fd/3")
	})
}
