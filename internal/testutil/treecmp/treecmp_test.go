package treecmp_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/lifeboat-backup/lifeboat/internal/testutil/gentree"
	"github.com/lifeboat-backup/lifeboat/internal/testutil/treecmp"
)

func gen(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "t")
	_, err := gentree.Generate(dir, gentree.Options{Size: 1 << 20, Seed: 5, SmallFiles: 20})
	require.NoError(t, err)
	return dir
}

func TestCompareDetects(t *testing.T) {
	xattrs := func() bool {
		p := filepath.Join(t.TempDir(), "probe")
		require.NoError(t, os.WriteFile(p, nil, 0o644))
		return unix.Setxattr(p, "user.x", []byte("1"), 0) == nil
	}()
	tests := []struct {
		name   string
		change func(t *testing.T, b string)
		opts   treecmp.Options
		path   string
		field  string
		skip   bool
	}{
		{"content", func(t *testing.T, b string) {
			f, err := os.OpenFile(filepath.Join(b, "backup/dump-00.sql"), os.O_WRONLY, 0)
			require.NoError(t, err)
			_, err = f.WriteAt([]byte("#"), 100)
			require.NoError(t, err)
			require.NoError(t, f.Close())
		}, treecmp.Options{IgnoreMtime: true}, "backup/dump-00.sql", "content", false},
		{"mode", func(t *testing.T, b string) {
			require.NoError(t, os.Chmod(filepath.Join(b, "bin/run.sh"), 0o744))
		}, treecmp.Options{}, "bin/run.sh", "mode", false},
		{"setgid", func(t *testing.T, b string) {
			require.NoError(t, os.Chmod(filepath.Join(b, "shared"), 0o775))
		}, treecmp.Options{}, "shared", "mode", false},
		{"mtime", func(t *testing.T, b string) {
			p := filepath.Join(b, "odd/a.b")
			fi, err := os.Stat(p)
			require.NoError(t, err)
			require.NoError(t, os.Chtimes(p, time.Time{}, fi.ModTime().Add(time.Nanosecond)))
		}, treecmp.Options{}, "odd/a.b", "mtime", false},
		{"dir mtime", func(t *testing.T, b string) {
			require.NoError(t, os.Chtimes(filepath.Join(b, "empty"), time.Time{}, time.Unix(1, 0)))
		}, treecmp.Options{}, "empty", "mtime", false},
		{"symlink mtime", func(t *testing.T, b string) {
			ts := []unix.Timespec{{Nsec: unix.UTIME_OMIT}, {Sec: 5}}
			require.NoError(t, unix.UtimesNanoAt(unix.AT_FDCWD, filepath.Join(b, "home/absolute-link"), ts, unix.AT_SYMLINK_NOFOLLOW))
		}, treecmp.Options{}, "home/absolute-link", "mtime", false},
		{"root mtime", func(t *testing.T, b string) {
			require.NoError(t, os.Chtimes(b, time.Time{}, time.Unix(1, 0)))
		}, treecmp.Options{CompareRoot: true}, ".", "mtime", false},
		{"symlink target", func(t *testing.T, b string) {
			p := filepath.Join(b, "home/dangling-relative")
			require.NoError(t, os.Remove(p))
			require.NoError(t, os.Symlink("does/not/exist2", p))
		}, treecmp.Options{IgnoreMtime: true}, "home/dangling-relative", "link", false},
		{"broken hardlink", func(t *testing.T, b string) {
			p := filepath.Join(b, "backup/dump-latest.sql")
			data, err := os.ReadFile(p)
			require.NoError(t, err)
			require.NoError(t, os.Remove(p))
			require.NoError(t, os.WriteFile(p, data, 0o644))
		}, treecmp.Options{IgnoreMtime: true}, "backup/dump-latest.sql", "hardlink", false},
		{"new hardlink", func(t *testing.T, b string) {
			p := filepath.Join(b, "odd/a.b")
			require.NoError(t, os.Remove(p))
			require.NoError(t, os.Link(filepath.Join(b, "odd/a-"), p))
		}, treecmp.Options{IgnoreMtime: true}, "odd/a.b", "hardlink", false},
		{"removed file", func(t *testing.T, b string) {
			require.NoError(t, os.Remove(filepath.Join(b, "empty.txt")))
		}, treecmp.Options{}, "empty.txt", "missing", false},
		{"added file", func(t *testing.T, b string) {
			require.NoError(t, os.WriteFile(filepath.Join(b, "empty/new"), nil, 0o644))
		}, treecmp.Options{IgnoreMtime: true}, "empty/new", "extra", false},
		{"type", func(t *testing.T, b string) {
			require.NoError(t, os.Remove(filepath.Join(b, "empty.txt")))
			require.NoError(t, os.Mkdir(filepath.Join(b, "empty.txt"), 0o755))
		}, treecmp.Options{IgnoreMtime: true}, "empty.txt", "type", false},
		{"size", func(t *testing.T, b string) {
			require.NoError(t, os.Truncate(filepath.Join(b, "bin/run.sh"), 10))
		}, treecmp.Options{IgnoreMtime: true}, "bin/run.sh", "size", false},
		{"xattr added", func(t *testing.T, b string) {
			require.NoError(t, unix.Lsetxattr(filepath.Join(b, "bin/run.sh"), "user.new", []byte("v"), 0))
		}, treecmp.Options{}, "bin/run.sh", "xattrs", !xattrs},
		{"xattr value", func(t *testing.T, b string) {
			require.NoError(t, unix.Lsetxattr(filepath.Join(b, "home/alice/.secret"), "user.lifeboat", []byte("other"), 0))
		}, treecmp.Options{}, "home/alice/.secret", "xattrs", !xattrs},
		{"owner", func(t *testing.T, b string) {
			require.NoError(t, os.Lchown(filepath.Join(b, "bin/run.sh"), 123, -1))
		}, treecmp.Options{}, "bin/run.sh", "uid", os.Geteuid() != 0},
		{"sparse", func(t *testing.T, b string) {
			p := filepath.Join(b, "var/lib/vm/trailing-hole.img")
			fi, err := os.Stat(p)
			require.NoError(t, err)
			f, err := os.OpenFile(p, os.O_WRONLY, 0)
			require.NoError(t, err)
			_, err = f.WriteAt(make([]byte, 1<<20), fi.Size()-(1<<20)) // zeros: same content, allocated
			require.NoError(t, err)
			require.NoError(t, f.Close())
		}, treecmp.Options{Sparse: true, IgnoreMtime: true}, "var/lib/vm/trailing-hole.img", "sparse", false},
	}
	a := gen(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.skip {
				t.Skip("not supported here")
			}
			b := gen(t)
			diffs, err := treecmp.Compare(a, b, tt.opts)
			require.NoError(t, err)
			require.Empty(t, diffs, "before the change")
			tt.change(t, b)
			diffs, err = treecmp.Compare(a, b, tt.opts)
			require.NoError(t, err)
			require.NotEmpty(t, diffs)
			found := false
			for _, d := range diffs {
				if d.Path == tt.path && d.Field == tt.field {
					found = true
					assert.NotEmpty(t, d.String())
				}
			}
			assert.True(t, found, "want %s of %q in %v", tt.field, tt.path, diffs)
		})
	}
}

func TestCompareContentOffset(t *testing.T) {
	a, b := t.TempDir(), t.TempDir()
	data := []byte(strings.Repeat("0123456789", 300_000))
	require.NoError(t, os.WriteFile(filepath.Join(a, "f"), data, 0o644))
	data[2_500_001] = 'x'
	require.NoError(t, os.WriteFile(filepath.Join(b, "f"), data, 0o644))
	diffs, err := treecmp.Compare(a, b, treecmp.Options{IgnoreMtime: true})
	require.NoError(t, err)
	require.Len(t, diffs, 1)
	assert.Equal(t, "content", diffs[0].Field)
	assert.Contains(t, diffs[0].A, "offset 2500001")

	diffs, err = treecmp.Compare(a, b, treecmp.Options{IgnoreMtime: true, IgnoreContent: true})
	require.NoError(t, err)
	assert.Empty(t, diffs)

	for i := range 5 {
		require.NoError(t, os.WriteFile(filepath.Join(b, "extra"+string(rune('a'+i))), nil, 0o644))
	}
	diffs, err = treecmp.Compare(a, b, treecmp.Options{MaxDifferences: 3})
	require.NoError(t, err)
	assert.Len(t, diffs, 3)
}
