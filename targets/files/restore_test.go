package files

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/lifeboat-backup/lifeboat/engine/snapshot"
	"github.com/lifeboat-backup/lifeboat/internal/testutil/treecmp"
)

// restoreTree does what the engine does: walk src, and for each entry
// create it, copy content in uneven "chunks" with WriteAtSparse from two
// workers, Finish, and Close at the end.
func restoreTree(t *testing.T, src, dst string, opts snapshot.EntryOptions) {
	t.Helper()
	r, err := NewRestorer(dst, opts)
	require.NoError(t, err)
	type job struct {
		e   snapshot.Entry
		f   *File
		src string
	}
	jobs := make(chan job)
	errs := make(chan error, 2)
	var wg sync.WaitGroup
	for w := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 1))
			var first error
			for j := range jobs {
				if first != nil {
					j.f.Abort()
					continue
				}
				if first = copyChunks(j.f, j.src, rng); first != nil {
					j.f.Abort()
					continue
				}
				first = j.f.Commit()
			}
			errs <- first
		}()
	}
	// Hard links wait until their files are committed, as in restore.Files.
	var links []snapshot.Entry
	err = Walk(context.Background(), []string{src}, Options{}, func(e snapshot.Entry, srcPath string) error {
		switch e.Type {
		case snapshot.TypeHardlink:
			links = append(links, e)
			return nil
		case snapshot.TypeDir:
			if err := r.Dir(e); err != nil {
				return err
			}
		case snapshot.TypeFile:
			f, err := r.File(e)
			if err != nil {
				return err
			}
			jobs <- job{e, f, srcPath}
			return nil
		default:
			if err := r.Other(e); err != nil {
				return err
			}
		}
		return r.Finish(e)
	})
	close(jobs)
	wg.Wait()
	close(errs)
	require.NoError(t, err)
	for err := range errs {
		require.NoError(t, err)
	}
	for _, e := range links {
		require.NoError(t, r.Other(e))
	}
	require.NoError(t, r.Close())
}

// copyChunks copies src into f in pieces of random length (not aligned to
// blocks, like content-defined chunks), in order.
func copyChunks(f io.WriterAt, src string, rng *rand.Rand) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	buf := make([]byte, 300<<10)
	var off int64
	for {
		n, err := io.ReadFull(in, buf[:1+rng.IntN(len(buf)-1)])
		if n > 0 {
			if werr := WriteAtSparse(f, buf[:n], off); werr != nil {
				return werr
			}
			off += int64(n)
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// everything restores all metadata, as the tree was.
var everything = snapshot.EntryOptions{Xattrs: snapshot.XattrsAll, KeepSetuid: true, Devices: true}

func TestRestoreRoundTrip(t *testing.T) {
	src := genSmall(t, false)
	dst := t.TempDir()
	restoreTree(t, src, dst, everything)
	diffs, err := treecmp.Compare(src, filepath.Join(dst, "tree"), treecmp.Options{Sparse: true, CompareRoot: true})
	require.NoError(t, err)
	assert.Empty(t, diffs)

	// The sparse image really stayed sparse.
	var st unix.Stat_t
	require.NoError(t, unix.Lstat(filepath.Join(dst, "tree/var/lib/vm/disk.img"), &st))
	assert.Less(t, st.Blocks*512, st.Size/4)

	if xattrsSupported(t, dst) {
		xs, err := treecmp.Xattrs(filepath.Join(dst, "tree/home/alice/.secret"))
		require.NoError(t, err)
		assert.Equal(t, []treecmp.Xattr{{Name: "user.lifeboat", Value: []byte("secret-label")}}, xs)
	}

	// Restoring again over the result overwrites and ends up identical.
	require.NoError(t, os.WriteFile(filepath.Join(dst, "tree/odd/a.b"), []byte("changed"), 0o600))
	require.NoError(t, os.Remove(filepath.Join(dst, "tree/home/bob/relative-link")))
	require.NoError(t, os.WriteFile(filepath.Join(dst, "tree/home/bob/relative-link"), []byte("now a file"), 0o600))
	restoreTree(t, src, dst, everything)
	diffs, err = treecmp.Compare(src, filepath.Join(dst, "tree"), treecmp.Options{Sparse: true, CompareRoot: true})
	require.NoError(t, err)
	assert.Empty(t, diffs)
}

func TestRestoreNoOwnerNoXattrs(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to see the difference")
	}
	src := genSmall(t, false)
	dst := t.TempDir()
	restoreTree(t, src, dst, snapshot.EntryOptions{Owner: snapshot.OwnerOff, Xattrs: snapshot.XattrsNone, KeepSetuid: true, Devices: true})
	diffs, err := treecmp.Compare(src, filepath.Join(dst, "tree"), treecmp.Options{})
	require.NoError(t, err)
	fields := map[string]bool{}
	for _, d := range diffs {
		fields[d.Field] = true
	}
	assert.True(t, fields["uid"])
	diffs, err = treecmp.Compare(src, filepath.Join(dst, "tree"), treecmp.Options{IgnoreOwner: true, IgnoreXattrs: true})
	require.NoError(t, err)
	assert.Empty(t, diffs)
}

func TestRestoreUnsafePaths(t *testing.T) {
	for _, p := range []string{"", "/etc/passwd", "../x", "a/../../x", "a/..", "a//b", "./a", "a/./b", "a/", "a\x00b"} {
		t.Run(p, func(t *testing.T) {
			dst := t.TempDir()
			r, err := NewRestorer(dst, snapshot.EntryOptions{})
			require.NoError(t, err)
			defer r.Close()
			assert.ErrorIs(t, r.Dir(snapshot.Entry{Path: p, Type: snapshot.TypeDir}), ErrUnsafePath)
			_, err = r.File(snapshot.Entry{Path: p, Type: snapshot.TypeFile})
			assert.ErrorIs(t, err, ErrUnsafePath)
			assert.ErrorIs(t, r.Other(snapshot.Entry{Path: p, Type: snapshot.TypeSymlink, LinkTarget: "x"}), ErrUnsafePath)
			assert.ErrorIs(t, r.Other(snapshot.Entry{Path: "ok", Type: snapshot.TypeHardlink, HardlinkTo: p}), ErrUnsafePath)
			assert.ErrorIs(t, r.Finish(snapshot.Entry{Path: p, Type: snapshot.TypeFIFO}), ErrUnsafePath)
		})
	}

	t.Run("through a restored symlink", func(t *testing.T) {
		outside := t.TempDir()
		require.NoError(t, os.WriteFile(filepath.Join(outside, "passwd"), []byte("original"), 0o644))
		dst := t.TempDir()
		r, err := NewRestorer(dst, snapshot.EntryOptions{})
		require.NoError(t, err)
		defer r.Close()
		require.NoError(t, r.Other(snapshot.Entry{Path: "a", Type: snapshot.TypeSymlink, LinkTarget: outside}))
		require.NoError(t, r.Other(snapshot.Entry{Path: "dot", Type: snapshot.TypeSymlink, LinkTarget: "."}))

		_, err = r.File(snapshot.Entry{Path: "a/passwd", Type: snapshot.TypeFile, Size: 3})
		assert.ErrorIs(t, err, ErrUnsafePath)
		assert.ErrorContains(t, err, `"a/passwd"`)
		assert.ErrorIs(t, r.Dir(snapshot.Entry{Path: "a/sub", Type: snapshot.TypeDir}), ErrUnsafePath)
		assert.ErrorIs(t, r.Other(snapshot.Entry{Path: "a/evil", Type: snapshot.TypeSymlink, LinkTarget: "/"}), ErrUnsafePath)
		assert.ErrorIs(t, r.Other(snapshot.Entry{Path: "hl", Type: snapshot.TypeHardlink, HardlinkTo: "a/passwd"}), ErrHardlinkTarget)
		assert.ErrorIs(t, r.Other(snapshot.Entry{Path: "a/fifo", Type: snapshot.TypeFIFO}), ErrUnsafePath)
		assert.ErrorIs(t, r.Finish(snapshot.Entry{Path: "a/passwd", Type: snapshot.TypeFIFO, Mode: 0o777}), ErrUnsafePath)
		assert.ErrorIs(t, r.Dir(snapshot.Entry{Path: "dot/x", Type: snapshot.TypeDir}), ErrUnsafePath)
		assert.ErrorIs(t, r.Dir(snapshot.Entry{Path: "a/b/c", Type: snapshot.TypeDir}), ErrUnsafePath)

		// Finish on the symlink itself changes the link, not its target.
		require.NoError(t, r.Finish(snapshot.Entry{Path: "a", Type: snapshot.TypeSymlink, Mode: 0o700, ModTime: time.Unix(1e9, 5)}))

		entries, err := os.ReadDir(outside)
		require.NoError(t, err)
		assert.Len(t, entries, 1)
		data, err := os.ReadFile(filepath.Join(outside, "passwd"))
		require.NoError(t, err)
		assert.Equal(t, "original", string(data))
		fi, err := os.Stat(outside)
		require.NoError(t, err)
		assert.NotEqual(t, int64(1e9), fi.ModTime().Unix())
	})

	t.Run("pre-existing symlinks are replaced, not followed", func(t *testing.T) {
		outside := t.TempDir()
		target := filepath.Join(outside, "target")
		require.NoError(t, os.WriteFile(target, []byte("original"), 0o644))
		dst := t.TempDir()
		require.NoError(t, os.Symlink(target, filepath.Join(dst, "f")))
		require.NoError(t, os.Symlink(outside, filepath.Join(dst, "d")))
		require.NoError(t, os.Symlink(outside, filepath.Join(dst, "x")))
		r, err := NewRestorer(dst, snapshot.EntryOptions{})
		require.NoError(t, err)
		f, err := r.File(snapshot.Entry{Path: "f", Type: snapshot.TypeFile, Size: 3})
		require.NoError(t, err)
		_, err = f.WriteAt([]byte("new"), 0)
		require.NoError(t, err)
		require.NoError(t, f.Commit())
		require.NoError(t, r.Dir(snapshot.Entry{Path: "d", Type: snapshot.TypeDir}))
		require.NoError(t, r.Dir(snapshot.Entry{Path: "d/sub", Type: snapshot.TypeDir}))
		_, err = r.File(snapshot.Entry{Path: "x/target", Type: snapshot.TypeFile})
		assert.ErrorIs(t, err, ErrUnsafePath)
		require.NoError(t, r.Close())

		data, err := os.ReadFile(target)
		require.NoError(t, err)
		assert.Equal(t, "original", string(data))
		data, err = os.ReadFile(filepath.Join(dst, "f"))
		require.NoError(t, err)
		assert.Equal(t, "new", string(data))
		fi, err := os.Lstat(filepath.Join(dst, "d/sub"))
		require.NoError(t, err)
		assert.True(t, fi.IsDir())
		entries, err := os.ReadDir(outside)
		require.NoError(t, err)
		assert.Len(t, entries, 1)
	})
}

func TestRestoreMisc(t *testing.T) {
	dst := t.TempDir()
	r, err := NewRestorer(dst, snapshot.EntryOptions{})
	require.NoError(t, err)

	// Parents are created on demand (partial restore).
	f, err := r.File(snapshot.Entry{Path: "p/q/r.txt", Type: snapshot.TypeFile, Size: 10, Mode: 0o640})
	require.NoError(t, err)
	require.NoError(t, f.Commit())
	fi, err := os.Stat(filepath.Join(dst, "p/q/r.txt"))
	require.NoError(t, err)
	assert.Equal(t, int64(10), fi.Size())

	// A missing hardlink target is reported as such.
	err = r.Other(snapshot.Entry{Path: "p/link", Type: snapshot.TypeHardlink, HardlinkTo: "p/missing"})
	assert.ErrorIs(t, err, ErrHardlinkTarget)
	err = r.Other(snapshot.Entry{Path: "p/link", Type: snapshot.TypeHardlink, HardlinkTo: "nodir/missing"})
	assert.ErrorIs(t, err, ErrHardlinkTarget)

	// Sockets are skipped.
	require.NoError(t, r.Other(snapshot.Entry{Path: "p/sock", Type: snapshot.TypeSocket}))
	require.NoError(t, r.Finish(snapshot.Entry{Path: "p/sock", Type: snapshot.TypeSocket}))
	_, err = os.Lstat(filepath.Join(dst, "p/sock"))
	assert.ErrorIs(t, err, os.ErrNotExist)

	// A file over an existing directory is an error, wrong methods too.
	f, err = r.File(snapshot.Entry{Path: "p/q", Type: snapshot.TypeFile})
	require.NoError(t, err)
	assert.ErrorContains(t, f.Commit(), "exists as a directory")
	names, err := os.ReadDir(filepath.Join(dst, "p"))
	require.NoError(t, err)
	assert.Len(t, names, 1, "the temporary file is gone")
	_, err = r.File(snapshot.Entry{Path: "x", Type: snapshot.TypeDir})
	assert.Error(t, err)
	assert.Error(t, r.Other(snapshot.Entry{Path: "x", Type: snapshot.TypeFile}))
	assert.Error(t, r.Dir(snapshot.Entry{Path: "x", Type: snapshot.TypeFile}))

	// Finish checks the type on disk.
	assert.ErrorContains(t, r.Finish(snapshot.Entry{Path: "p/q/r.txt", Type: snapshot.TypeSymlink}), "restored object is a file")
	require.NoError(t, r.Close())
	require.NoError(t, r.Close())
	assert.Error(t, r.Dir(snapshot.Entry{Path: "y", Type: snapshot.TypeDir}))
}

func TestWriteAtSparse(t *testing.T) {
	data := func(spec ...int) []byte { // alternating zero/non-zero run lengths
		var b []byte
		for i, n := range spec {
			c := byte(0)
			if i%2 == 1 {
				c = 0xa5
			}
			b = append(b, bytes.Repeat([]byte{c}, n)...)
		}
		return b
	}
	tests := []struct {
		name      string
		p         []byte
		off       int64
		maxBlocks int64 // 512-byte blocks allowed
	}{
		{"all zero", data(1 << 20), 0, 0},
		{"all zero unaligned", data(100_000), 1234, 0},
		{"data only", data(0, 10_000), 0, 32},
		{"zero middle", data(0, 4096, 1<<20, 4096), 0, 32},
		{"unaligned runs", data(5000, 3, 9000, 1, 70_000, 8192), 777, 64},
		{"empty", nil, 100, 0},
		{"single byte", []byte{1}, 1 << 20, 8},
		{"zero block with one byte", data(4095, 1, 4096*10), 0, 8},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "f")
			f, err := os.Create(p)
			require.NoError(t, err)
			size := tt.off + int64(len(tt.p)) + 4096
			require.NoError(t, f.Truncate(size))
			require.NoError(t, WriteAtSparse(f, tt.p, tt.off))
			require.NoError(t, f.Sync())
			var st unix.Stat_t
			require.NoError(t, unix.Fstat(int(f.Fd()), &st))
			require.NoError(t, f.Close())
			got, err := os.ReadFile(p)
			require.NoError(t, err)
			want := make([]byte, size)
			copy(want[tt.off:], tt.p)
			assert.True(t, bytes.Equal(want, got), "content")
			assert.LessOrEqual(t, st.Blocks, tt.maxBlocks)
		})
	}
}

func BenchmarkWriteAtSparse(b *testing.B) {
	f, err := os.Create(filepath.Join(b.TempDir(), "f"))
	require.NoError(b, err)
	defer f.Close()
	zero := make([]byte, 8<<20)
	b.SetBytes(int64(len(zero)))
	for b.Loop() {
		if err := WriteAtSparse(f, zero, 0); err != nil {
			b.Fatal(err)
		}
	}
}

// A file being restored has no name until Commit: O_TMPFILE where the file
// system has it, else an unpredictable ".lifeboat-" name; Abort leaves
// nothing.
func TestRestoreFileUnnamedUntilCommit(t *testing.T) {
	for _, named := range []bool{false, true} {
		t.Run(map[bool]string{false: "O_TMPFILE", true: "temporary name"}[named], func(t *testing.T) {
			dst := t.TempDir()
			r, err := NewRestorer(dst, snapshot.EntryOptions{})
			require.NoError(t, err)
			r.noTmpfile = named
			names := func() []string {
				entries, err := os.ReadDir(dst)
				require.NoError(t, err)
				var out []string
				for _, e := range entries {
					out = append(out, e.Name())
				}
				return out
			}
			f, err := r.File(snapshot.Entry{Path: "f", Type: snapshot.TypeFile, Size: 3, Mode: 0o640})
			require.NoError(t, err)
			_, err = f.WriteAt([]byte("new"), 0)
			require.NoError(t, err)
			if named {
				require.Len(t, names(), 1)
				assert.Regexp(t, `^\.lifeboat-[0-9a-f]{16}$`, names()[0])
			} else {
				assert.Empty(t, names())
			}
			require.NoError(t, f.Commit())
			assert.Equal(t, []string{"f"}, names())
			got, err := os.ReadFile(filepath.Join(dst, "f"))
			require.NoError(t, err)
			assert.Equal(t, "new", string(got))
			fi, err := os.Lstat(filepath.Join(dst, "f"))
			require.NoError(t, err)
			assert.Equal(t, os.FileMode(0o640), fi.Mode())

			// Over an existing file: replaced; aborted: the old one stays.
			f, err = r.File(snapshot.Entry{Path: "f", Type: snapshot.TypeFile, Size: 5, Mode: 0o600})
			require.NoError(t, err)
			f.Abort()
			f.Abort()
			assert.Equal(t, []string{"f"}, names())
			f, err = r.File(snapshot.Entry{Path: "f", Type: snapshot.TypeFile, Size: 5, Mode: 0o600})
			require.NoError(t, err)
			_, err = f.WriteAt([]byte("newer"), 0)
			require.NoError(t, err)
			require.NoError(t, f.Commit())
			f.Abort()
			got, err = os.ReadFile(filepath.Join(dst, "f"))
			require.NoError(t, err)
			assert.Equal(t, "newer", string(got))
			assert.Equal(t, []string{"f"}, names())
			require.NoError(t, r.Close())
		})
	}
}

// PrepareFile resolves a file's directory while the Restorer walks on;
// Create, run later and from other goroutines (as restore.Files' workers
// do), still creates each file in its own directory, after the
// Restorer's directory stack has moved elsewhere and closed those
// directories. A prepared file that is aborted leaves nothing.
func TestRestorePrepareFileCreateLater(t *testing.T) {
	for _, named := range []bool{false, true} {
		t.Run(map[bool]string{false: "O_TMPFILE", true: "temporary name"}[named], func(t *testing.T) {
			dst := t.TempDir()
			r, err := NewRestorer(dst, snapshot.EntryOptions{})
			require.NoError(t, err)
			r.noTmpfile = named
			var prepared []*File
			for d := range 4 {
				for s := range 3 {
					dir := fmt.Sprintf("d%d/s%d", d, s)
					require.NoError(t, r.Dir(snapshot.Entry{Path: fmt.Sprintf("d%d", d), Type: snapshot.TypeDir, Mode: 0o755}))
					require.NoError(t, r.Dir(snapshot.Entry{Path: dir, Type: snapshot.TypeDir, Mode: 0o755}))
					for i := range 5 {
						e := snapshot.Entry{Path: fmt.Sprintf("%s/f%d", dir, i), Type: snapshot.TypeFile, Size: int64(len(dir) + 3), Mode: 0o644}
						f, err := r.PrepareFile(e)
						require.NoError(t, err)
						prepared = append(prepared, f)
					}
				}
			}
			abort, err := r.PrepareFile(snapshot.Entry{Path: "d0/s0/aborted", Type: snapshot.TypeFile, Size: 1, Mode: 0o644})
			require.NoError(t, err)
			abort.Abort()
			abort.Abort()
			var wg sync.WaitGroup
			errs := make(chan error, len(prepared))
			for w := range 3 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := w; i < len(prepared); i += 3 {
						f := prepared[i]
						if err := f.Create(); err != nil {
							errs <- err
							continue
						}
						if _, err := f.WriteAt([]byte(f.e.Path[:len(f.e.Path)-3]+"end"), 0); err != nil {
							f.Abort()
							errs <- err
							continue
						}
						errs <- f.Commit()
					}
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				require.NoError(t, err)
			}
			require.NoError(t, r.Close())
			for _, f := range prepared {
				got, err := os.ReadFile(filepath.Join(dst, f.e.Path))
				require.NoError(t, err)
				assert.Equal(t, f.e.Path[:len(f.e.Path)-3]+"end", string(got))
			}
			entries, err := os.ReadDir(filepath.Join(dst, "d0/s0"))
			require.NoError(t, err)
			assert.Len(t, entries, 5, "only the committed files, no temporary or aborted one")
		})
	}
}

// Commit gives a file its size: whether File.WriteAt reached it or not
// (zero tail left as a hole, nothing written at all, or written through
// the embedded *os.File, which File.WriteAt does not see).
func TestRestoreFileSize(t *testing.T) {
	dst := t.TempDir()
	r, err := NewRestorer(dst, snapshot.EntryOptions{})
	require.NoError(t, err)
	data := append(bytes.Repeat([]byte{7}, 5000), make([]byte, 3*SparseBlock)...)
	for _, tt := range []struct {
		name  string
		size  int64
		write func(f *File) error
	}{
		{"full", 5000, func(f *File) error { return WriteAtSparse(f, data[:5000], 0) }},
		{"zero-tail", int64(len(data)), func(f *File) error { return WriteAtSparse(f, data, 0) }},
		{"holes-only", 1 << 20, func(f *File) error { return WriteAtSparse(f, data[5000:], 0) }},
		{"empty", 0, func(f *File) error { return nil }},
		{"os-file", int64(len(data)), func(f *File) error { _, err := f.File.WriteAt(data[:100], 0); return err }},
		{"segments", 3 * 8192, func(f *File) error {
			var wg sync.WaitGroup
			for i := 2; i >= 0; i-- {
				wg.Go(func() { f.WriteAt(bytes.Repeat([]byte{byte(i + 1)}, 8192), int64(i)*8192) })
			}
			wg.Wait()
			return nil
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f, err := r.File(snapshot.Entry{Path: tt.name, Type: snapshot.TypeFile, Size: tt.size, Mode: 0o644})
			require.NoError(t, err)
			require.NoError(t, tt.write(f))
			require.NoError(t, f.Commit())
			fi, err := os.Stat(filepath.Join(dst, tt.name))
			require.NoError(t, err)
			assert.Equal(t, tt.size, fi.Size())
		})
	}
	require.NoError(t, r.Close())
	got, err := os.ReadFile(filepath.Join(dst, "zero-tail"))
	require.NoError(t, err)
	assert.Equal(t, data, got)
}

// Commit leaves out the chown only where a file has its entry's owner
// already: in a setgid directory new files get the directory's group, not
// the restoring process's, and those that should not keep it are chowned.
func TestRestoreFileOwnerSetgidDir(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to restore owners")
	}
	dst := t.TempDir()
	require.NoError(t, os.Mkdir(filepath.Join(dst, "sg"), 0o755))
	require.NoError(t, os.Chown(filepath.Join(dst, "sg"), 0, 4321))
	require.NoError(t, unix.Chmod(filepath.Join(dst, "sg"), 0o2775))
	r, err := NewRestorer(dst, snapshot.EntryOptions{Owner: snapshot.OwnerOn, NumericOwner: true})
	require.NoError(t, err)
	for _, d := range []snapshot.Entry{
		{Path: "plain", Type: snapshot.TypeDir, Mode: 0o755},
		{Path: "sg", Type: snapshot.TypeDir, Mode: uint32(os.ModeSetgid | 0o775), GID: 4321},
	} {
		require.NoError(t, r.Dir(d))
		require.NoError(t, r.Finish(d))
	}
	type owner struct{ uid, gid uint32 }
	want := map[string]owner{}
	var files []*File
	for _, dir := range []string{"plain", "sg"} {
		for i, o := range []owner{{0, 4321}, {0, 0}, {0, 0}, {1234, 4321}, {0, 4321}, {0, 0}} {
			e := snapshot.Entry{Path: fmt.Sprintf("%s/f%d", dir, i), Type: snapshot.TypeFile, Size: 1, Mode: 0o644, UID: o.uid, GID: o.gid}
			f, err := r.File(e)
			require.NoError(t, err)
			_, err = f.WriteAt([]byte{1}, 0)
			require.NoError(t, err)
			files = append(files, f)
			want[e.Path] = o
		}
	}
	// The first Commit in a directory learns the owner; commit in order.
	for _, f := range files {
		require.NoError(t, f.Commit())
	}
	require.NoError(t, r.Close())
	for p, o := range want {
		var st unix.Stat_t
		require.NoError(t, unix.Stat(filepath.Join(dst, p), &st))
		assert.Equal(t, o, owner{st.Uid, st.Gid}, p)
	}
}

// BenchmarkRestoreSmallFile is the restorer's cost per small file (create,
// write 4 KiB, Commit), 100 files per directory; on tmpfs it is what the
// descriptor-based metadata and the unnamed-until-complete files cost.
func BenchmarkRestoreSmallFile(b *testing.B) {
	r, err := NewRestorer(b.TempDir(), snapshot.EntryOptions{})
	require.NoError(b, err)
	data := bytes.Repeat([]byte{0xa5}, 4096)
	i := 0
	for b.Loop() {
		if i%100 == 0 {
			d := snapshot.Entry{Path: fmt.Sprintf("d%05d", i/100), Type: snapshot.TypeDir, Mode: 0o755}
			require.NoError(b, r.Dir(d))
			require.NoError(b, r.Finish(d))
		}
		e := snapshot.Entry{Path: fmt.Sprintf("d%05d/f%07d", i/100, i), Type: snapshot.TypeFile, Size: 4096, Mode: 0o644, ModTime: time.Unix(1e9, 0)}
		f, err := r.File(e)
		if err != nil {
			b.Fatal(err)
		}
		if err := WriteAtSparse(f.File, data, 0); err != nil {
			b.Fatal(err)
		}
		if err := f.Commit(); err != nil {
			b.Fatal(err)
		}
		i++
	}
	require.NoError(b, r.Close())
}
