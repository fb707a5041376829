package files

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/lifeboat-backup/lifeboat/engine/snapshot"
	"github.com/lifeboat-backup/lifeboat/internal/testutil/gentree"
)

type walked struct {
	e   snapshot.Entry
	src string
}

func walkAll(t testing.TB, roots []string, opts Options) []walked {
	t.Helper()
	var out []walked
	err := Walk(context.Background(), roots, opts, func(e snapshot.Entry, src string) error {
		out = append(out, walked{e, src})
		return nil
	})
	require.NoError(t, err)
	return out
}

func paths(ws []walked) []string {
	var ps []string
	for _, w := range ws {
		ps = append(ps, w.e.Path)
	}
	return ps
}

// mkTree creates files (content = name), dirs (trailing "/") and symlinks
// ("name -> target") under dir.
func mkTree(t testing.TB, dir string, specs ...string) {
	t.Helper()
	for _, s := range specs {
		p := filepath.Join(dir, s)
		switch {
		case strings.Contains(s, " -> "):
			name, target, _ := strings.Cut(s, " -> ")
			require.NoError(t, os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o755))
			require.NoError(t, os.Symlink(target, filepath.Join(dir, name)))
		case strings.HasSuffix(s, "/"):
			require.NoError(t, os.MkdirAll(p, 0o755))
		default:
			require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
			require.NoError(t, os.WriteFile(p, []byte(s), 0o644))
		}
	}
}

func genSmall(t testing.TB, socket bool) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "tree")
	_, err := gentree.Generate(dir, gentree.Options{Size: 2 << 20, Seed: 7, SmallFiles: 60, Socket: socket})
	require.NoError(t, err)
	return dir
}

func xattrsSupported(t testing.TB, dir string) bool {
	p := filepath.Join(dir, ".xattr-probe")
	require.NoError(t, os.WriteFile(p, nil, 0o644))
	defer os.Remove(p)
	return unix.Lsetxattr(p, "user.probe", []byte("1"), 0) == nil
}

func TestWalkGeneratedTree(t *testing.T) {
	dir := genSmall(t, true)
	ws := walkAll(t, []string{dir}, Options{})

	// Same set of paths as a plain walk.
	var want []string
	require.NoError(t, filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		require.NoError(t, err)
		rel, _ := filepath.Rel(filepath.Dir(dir), p)
		want = append(want, filepath.ToSlash(rel))
		return nil
	}))
	slices.SortFunc(want, snapshot.ComparePaths)
	require.Equal(t, want, paths(ws))

	// Strict ComparePaths order.
	for i := 1; i < len(ws); i++ {
		require.Negative(t, snapshot.ComparePaths(ws[i-1].e.Path, ws[i].e.Path), "order at %q, %q", ws[i-1].e.Path, ws[i].e.Path)
	}

	byPath := map[string]snapshot.Entry{}
	types := map[snapshot.EntryType]int{}
	for _, w := range ws {
		e := w.e
		byPath[e.Path] = e
		types[e.Type]++
		require.Equal(t, filepath.Join(filepath.Dir(dir), e.Path), w.src)
		var st unix.Stat_t
		require.NoError(t, unix.Lstat(w.src, &st))
		assert.Equal(t, time.Unix(st.Mtim.Unix()), e.ModTime.Local(), e.Path)
		assert.Equal(t, time.Unix(st.Ctim.Unix()), e.ChangeTime.Local(), e.Path)
		assert.Equal(t, st.Ino, e.Inode)
		assert.Equal(t, uint64(st.Dev), e.DeviceID)
		assert.Equal(t, uint64(st.Nlink), e.Links)
		assert.Equal(t, st.Uid, e.UID)
		assert.Equal(t, st.Gid, e.GID)
		assert.Equal(t, st.Mode&0o7777, UnixMode(e.Mode), e.Path)
		assert.Zero(t, e.Mode&^uint32(fs.ModePerm|fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky), e.Path)
		if e.Type == snapshot.TypeFile {
			assert.Equal(t, st.Size, e.Size, e.Path)
		} else {
			assert.Zero(t, e.Size, e.Path)
		}
		if e.Type == snapshot.TypeSymlink {
			target, err := os.Readlink(w.src)
			require.NoError(t, err)
			assert.Equal(t, target, e.LinkTarget)
		} else {
			assert.Empty(t, e.LinkTarget)
		}
		assert.True(t, slices.IsSortedFunc(e.Xattrs, func(a, b snapshot.Xattr) int { return strings.Compare(a.Name, b.Name) }))
	}
	for _, typ := range []snapshot.EntryType{snapshot.TypeFile, snapshot.TypeDir, snapshot.TypeSymlink, snapshot.TypeHardlink, snapshot.TypeFIFO, snapshot.TypeSocket} {
		assert.Positive(t, types[typ], "type %s", typ)
	}
	if os.Geteuid() == 0 {
		assert.Positive(t, types[snapshot.TypeCharDev])
		assert.Equal(t, uint64(unix.Mkdev(1, 3)), byPath["tree/run/null"].Rdev)
		assert.Equal(t, uint32(33), byPath["tree/www/pub/media"].UID)
		assert.Equal(t, "root", byPath["tree"].User)
		assert.Equal(t, "", byPath["tree/backup/dump-00.sql"].User, "uid 4242 has no name")
	}

	// Odd names arrive as they are.
	for _, name := range []string{"new\nline.txt", "Zürich – 東京.txt", `back\slash.txt`, "-leading-dash", "\xff\xfe-invalid-utf8.bin", "with space.txt"} {
		e, ok := byPath["tree/odd/"+name]
		if assert.True(t, ok, "%q", name) {
			assert.Contains(t, []snapshot.EntryType{snapshot.TypeFile, snapshot.TypeHardlink}, e.Type)
		}
	}
	assert.Equal(t, fs.FileMode(0o775)|fs.ModeSetgid, fs.FileMode(byPath["tree/shared"].Mode))
	assert.Equal(t, fs.FileMode(0o777)|fs.ModeSticky, fs.FileMode(byPath["tree/tmp"].Mode))
	assert.Equal(t, fs.FileMode(0o755)|fs.ModeSetuid, fs.FileMode(byPath["tree/bin/suid-helper"].Mode))
	assert.Equal(t, "/etc/hostname", byPath["tree/home/absolute-link"].LinkTarget)
	assert.Equal(t, "does/not/exist", byPath["tree/home/dangling-relative"].LinkTarget)

	// Hardlinks point at an earlier file with the same inode.
	index := map[string]int{}
	for i, w := range ws {
		index[w.e.Path] = i
	}
	for i, w := range ws {
		if w.e.Type != snapshot.TypeHardlink {
			continue
		}
		j, ok := index[w.e.HardlinkTo]
		require.True(t, ok, w.e.HardlinkTo)
		assert.Less(t, j, i)
		first := ws[j].e
		assert.Equal(t, snapshot.TypeFile, first.Type)
		assert.Equal(t, first.Inode, w.e.Inode)
		assert.Equal(t, first.DeviceID, w.e.DeviceID)
	}
	assert.Equal(t, "tree/backup/dump-00.sql", byPath["tree/backup/dump-latest.sql"].HardlinkTo)

	if xattrsSupported(t, dir) {
		assert.Equal(t, []snapshot.Xattr{{Name: "user.lifeboat", Value: []byte("secret-label")}}, byPath["tree/home/alice/.secret"].Xattrs)
		assert.Len(t, byPath["tree/odd/with space.txt"].Xattrs, 1)
		assert.Equal(t, strings.Repeat("x", 300), string(byPath["tree/www/pub/media"].Xattrs[0].Value))
	}
}

func TestWalkExcludes(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "r")
	mkTree(t, dir, "a.tmp", "keep.txt", "cache", "media/cache/x.jpg", "media/catalog/product/cache/y.jpg",
		"media/catalog/product/p.jpg", "node_modules/m.js", "sub/node_modules/n.js", "dir.tmp/inner.txt",
		"deep/a/b/c/cache/z", "link.tmp -> keep.txt")
	all := paths(walkAll(t, []string{dir}, Options{}))
	without := func(drop ...string) []string {
		var out []string
	next:
		for _, p := range all {
			for _, d := range drop {
				if p == d || strings.HasPrefix(p, d+"/") {
					continue next
				}
			}
			out = append(out, p)
		}
		return out
	}
	tests := []struct {
		name     string
		patterns []string
		want     []string
	}{
		{"none", nil, all},
		{"base name glob", []string{"*.tmp"}, without("r/a.tmp", "r/dir.tmp", "r/link.tmp")},
		{"base name", []string{"node_modules"}, without("r/node_modules", "r/sub/node_modules")},
		{"contents of cache dirs at any depth", []string{"*/cache/*"}, without("r/media/cache/x.jpg", "r/media/catalog/product/cache/y.jpg", "r/deep/a/b/c/cache/z")},
		{"anchored", []string{"/r/media/cache"}, without("r/media/cache")},
		{"anchored does not match deeper", []string{"/media"}, all},
		{"double star", []string{"/r/**/cache"}, without("r/cache", "r/media/cache", "r/media/catalog/product/cache", "r/deep/a/b/c/cache")},
		{"double star middle", []string{"media/**/y.jpg"}, without("r/media/catalog/product/cache/y.jpg")},
		{"dir only", []string{"cache/"}, without("r/media/cache", "r/media/catalog/product/cache", "r/deep/a/b/c/cache")},
		{"full relative path", []string{"r/keep.txt"}, without("r/keep.txt")},
		{"root excluded", []string{"r"}, nil},
		{"char class", []string{"[ab].tmp"}, without("r/a.tmp")},
		{"several", []string{"*.tmp", "node_modules", "deep"}, without("r/a.tmp", "r/dir.tmp", "r/link.tmp", "r/node_modules", "r/sub/node_modules", "r/deep")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := paths(walkAll(t, []string{dir}, Options{Excludes: tt.patterns}))
			assert.Equal(t, tt.want, got)
		})
	}
	err := Walk(context.Background(), []string{dir}, Options{Excludes: []string{"[x"}}, func(snapshot.Entry, string) error { return nil })
	assert.ErrorContains(t, err, `"[x"`)
}

func TestWalkHardlinks(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "r")
	mkTree(t, dir, "a/f", "single")
	require.NoError(t, os.Link(filepath.Join(dir, "a/f"), filepath.Join(dir, "a/g")))
	require.NoError(t, os.Link(filepath.Join(dir, "a/f"), filepath.Join(dir, "b")))

	ws := walkAll(t, []string{dir}, Options{})
	got := map[string]snapshot.Entry{}
	for _, w := range ws {
		got[w.e.Path] = w.e
	}
	assert.Equal(t, snapshot.TypeFile, got["r/a/f"].Type)
	assert.Equal(t, int64(3), got["r/a/f"].Size)
	for _, p := range []string{"r/a/g", "r/b"} {
		assert.Equal(t, snapshot.TypeHardlink, got[p].Type, p)
		assert.Equal(t, "r/a/f", got[p].HardlinkTo, p)
		assert.Zero(t, got[p].Size)
	}
	assert.Equal(t, snapshot.TypeFile, got["r/single"].Type)

	// When the first name is excluded, the next one carries the content.
	ws = walkAll(t, []string{dir}, Options{Excludes: []string{"/r/a/f"}})
	got = map[string]snapshot.Entry{}
	for _, w := range ws {
		got[w.e.Path] = w.e
	}
	assert.Equal(t, snapshot.TypeFile, got["r/a/g"].Type)
	assert.Equal(t, "r/a/g", got["r/b"].HardlinkTo)
}

func TestWalkRoots(t *testing.T) {
	base := t.TempDir()
	mkTree(t, base, "x/media/m.jpg", "y/media/n.jpg", "www/z.txt", "file.txt", "alink -> www")

	// Roots are sorted by base name, named by it, symlinks not followed.
	ws := walkAll(t, []string{filepath.Join(base, "www"), filepath.Join(base, "alink"), filepath.Join(base, "x/media"), filepath.Join(base, "file.txt")}, Options{})
	assert.Equal(t, []string{"alink", "file.txt", "media", "media/m.jpg", "www", "www/z.txt"}, paths(ws))
	assert.Equal(t, snapshot.TypeSymlink, ws[0].e.Type)
	assert.Equal(t, filepath.Join(base, "x/media/m.jpg"), ws[3].src)

	// Relative roots.
	wd, err := os.Getwd()
	require.NoError(t, err)
	require.NoError(t, os.Chdir(base))
	defer os.Chdir(wd)
	ws = walkAll(t, []string{"www/"}, Options{})
	assert.Equal(t, []string{"www", "www/z.txt"}, paths(ws))
	assert.Equal(t, filepath.Join(base, "www/z.txt"), ws[1].src)

	err = Walk(context.Background(), []string{"x/media", "y/media"}, Options{}, func(snapshot.Entry, string) error { return nil })
	assert.ErrorIs(t, err, ErrDuplicateRoot)
	err = Walk(context.Background(), []string{"/"}, Options{}, func(snapshot.Entry, string) error { return nil })
	assert.Error(t, err)
	err = Walk(context.Background(), []string{"does-not-exist"}, Options{}, func(snapshot.Entry, string) error { return nil })
	assert.ErrorIs(t, err, fs.ErrNotExist)
	assert.ErrorContains(t, err, filepath.Join(base, "does-not-exist"))
}

func TestWalkStops(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "r")
	mkTree(t, dir, "a", "b", "c")
	stop := errors.New("stop")
	n := 0
	err := Walk(context.Background(), []string{dir}, Options{}, func(e snapshot.Entry, _ string) error {
		n++
		if e.Path == "r/a" {
			return stop
		}
		return nil
	})
	assert.ErrorIs(t, err, stop)
	assert.Equal(t, 2, n)

	ctx, cancel := context.WithCancel(context.Background())
	n = 0
	err = Walk(ctx, []string{dir}, Options{}, func(e snapshot.Entry, _ string) error {
		n++
		cancel()
		return nil
	})
	assert.ErrorIs(t, err, context.Canceled)
	assert.Equal(t, 1, n)
}

func TestWalkVanished(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "r")
	mkTree(t, dir, "a", "b", "c")
	fn := func(e snapshot.Entry, src string) error {
		if e.Path == "r/a" {
			return os.Remove(filepath.Join(dir, "b")) // listed, then gone
		}
		return nil
	}
	err := Walk(context.Background(), []string{dir}, Options{}, fn)
	assert.ErrorIs(t, err, fs.ErrNotExist)
	assert.ErrorContains(t, err, filepath.Join(dir, "b"))

	require.NoError(t, os.WriteFile(filepath.Join(dir, "b"), nil, 0o644))
	var reported []string
	var got []string
	err = Walk(context.Background(), []string{dir}, Options{OnError: func(p string, err error) error {
		reported = append(reported, p)
		return nil
	}}, func(e snapshot.Entry, src string) error {
		got = append(got, e.Path)
		return fn(e, src)
	})
	require.NoError(t, err)
	assert.Equal(t, []string{filepath.Join(dir, "b")}, reported)
	assert.Equal(t, []string{"r", "r/a", "r/c"}, got)
}

// asNobody runs f with the effective uid of nobody when running as root,
// so that permission checks apply.
func asNobody(t *testing.T, f func()) {
	if os.Geteuid() != 0 {
		f()
		return
	}
	require.NoError(t, syscall.Setresuid(-1, 65534, -1))
	defer func() { require.NoError(t, syscall.Setresuid(-1, 0, -1)) }()
	f()
}

func TestWalkUnreadable(t *testing.T) {
	base, err := os.MkdirTemp("", "lifeboat-unreadable-")
	require.NoError(t, err)
	defer os.RemoveAll(base)
	require.NoError(t, os.Chmod(base, 0o755))
	dir := filepath.Join(base, "r")
	mkTree(t, dir, "a", "locked/secret", "noexec/f", "z")
	require.NoError(t, os.Chmod(filepath.Join(dir, "locked"), 0o000))
	require.NoError(t, os.Chmod(filepath.Join(dir, "noexec"), 0o644))
	defer os.Chmod(filepath.Join(dir, "locked"), 0o755)
	defer os.Chmod(filepath.Join(dir, "noexec"), 0o755)

	asNobody(t, func() {
		// Default: stop with an error naming the path.
		err := Walk(context.Background(), []string{dir}, Options{}, func(snapshot.Entry, string) error { return nil })
		assert.ErrorIs(t, err, fs.ErrPermission)
		assert.ErrorContains(t, err, filepath.Join(dir, "locked"))

		// OnError nil: skip and go on.
		reported := map[string]error{}
		var got []string
		err = Walk(context.Background(), []string{dir}, Options{OnError: func(p string, err error) error {
			reported[p] = err
			return nil
		}}, func(e snapshot.Entry, _ string) error {
			got = append(got, e.Path)
			return nil
		})
		require.NoError(t, err)
		assert.Equal(t, []string{"r", "r/a", "r/locked", "r/noexec", "r/z"}, got)
		assert.Len(t, reported, 2)
		assert.ErrorIs(t, reported[filepath.Join(dir, "locked")], fs.ErrPermission)
		assert.ErrorIs(t, reported[filepath.Join(dir, "noexec/f")], fs.ErrPermission)

		// OnError error: stop with it.
		stop := errors.New("stop")
		err = Walk(context.Background(), []string{dir}, Options{OnError: func(string, error) error { return stop }},
			func(snapshot.Entry, string) error { return nil })
		assert.ErrorIs(t, err, stop)
	})
}

func TestWalkOneFileSystem(t *testing.T) {
	t.Run("tmpfs mount", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "r")
		mkTree(t, dir, "a", "mnt/", "z")
		mnt := filepath.Join(dir, "mnt")
		if err := unix.Mount("tmpfs", mnt, "tmpfs", 0, "size=1m"); err != nil {
			t.Skipf("cannot mount tmpfs: %v", err)
		}
		defer unix.Unmount(mnt, unix.MNT_DETACH)
		require.NoError(t, os.WriteFile(filepath.Join(mnt, "inside"), []byte("x"), 0o644))

		assert.Equal(t, []string{"r", "r/a", "r/mnt", "r/mnt/inside", "r/z"}, paths(walkAll(t, []string{dir}, Options{})))
		ws := walkAll(t, []string{dir}, Options{OneFileSystem: true})
		assert.Equal(t, []string{"r", "r/a", "r/mnt", "r/z"}, paths(ws))
		// A mount point given as a root is walked.
		assert.Equal(t, []string{"mnt", "mnt/inside"}, paths(walkAll(t, []string{mnt}, Options{OneFileSystem: true})))
	})
	t.Run("dev", func(t *testing.T) {
		var dev, shm unix.Stat_t
		if unix.Lstat("/dev", &dev) != nil || unix.Lstat("/dev/shm", &shm) != nil || dev.Dev == shm.Dev {
			t.Skip("/dev/shm is not a mount point below /dev")
		}
		var sawShm bool
		err := Walk(context.Background(), []string{"/dev"}, Options{OneFileSystem: true, OnError: func(string, error) error { return nil }},
			func(e snapshot.Entry, _ string) error {
				sawShm = sawShm || e.Path == "dev/shm"
				assert.False(t, strings.HasPrefix(e.Path, "dev/shm/"), e.Path)
				return nil
			})
		require.NoError(t, err)
		assert.True(t, sawShm)
	})
}

func BenchmarkWalk(b *testing.B) {
	dir := filepath.Join(b.TempDir(), "tree")
	st, err := gentree.Generate(dir, gentree.Options{Size: 1 << 20, Seed: 1, SmallFiles: 20000, NoSpecial: true})
	require.NoError(b, err)
	b.ResetTimer()
	var n int
	for b.Loop() {
		n = 0
		err := Walk(context.Background(), []string{dir}, Options{}, func(snapshot.Entry, string) error {
			n++
			return nil
		})
		require.NoError(b, err)
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "entries/s")
	_ = st
}
