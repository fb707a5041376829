// Package gentree generates deterministic test file trees: mixed
// compressible (SQL-like) and incompressible content, many small and a few
// large files, sparse files, hard and symbolic links, special files, odd
// names, modes, owners, mtimes and xattrs. Mutate changes a tree in place.
package gentree

import (
	"bufio"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Options configure Generate.
type Options struct {
	// Size is the approximate number of content bytes to write (holes of
	// sparse files not counted). Zero means 64 MiB.
	Size int64
	// Seed selects the tree; same Seed and options give a byte-identical
	// tree (content, names, modes, mtimes, links, xattrs).
	Seed int64
	// SmallFiles is the number of 1-16 KiB files; zero derives it from
	// Size (about a fifth of Size goes to small files).
	SmallFiles int
	// NoSpecial leaves out what needs privileges or file-system support:
	// the FIFO, the character device, xattrs and owner changes.
	NoSpecial bool
	// Socket adds a Unix socket (off by default: sockets are not
	// restored, so a restored tree would differ).
	Socket bool
}

// Stats describe a generated tree. Counts exclude the top directory.
type Stats struct {
	Files     int   // regular files (first link of each inode)
	Dirs      int   // directories
	Symlinks  int   // symbolic links
	Hardlinks int   // additional names of already counted files
	Special   int   // FIFOs, devices, sockets
	Bytes     int64 // content bytes written (data, not holes)
	Apparent  int64 // sum of regular file sizes (once per inode)
}

func (s Stats) String() string {
	return fmt.Sprintf("files %d, dirs %d, symlinks %d, hardlinks %d, special %d, bytes %d (apparent %d)",
		s.Files, s.Dirs, s.Symlinks, s.Hardlinks, s.Special, s.Bytes, s.Apparent)
}

// Base time for generated mtimes; every path gets base + hash(seed, path).
var baseTime = time.Date(2021, 3, 14, 15, 9, 26, 0, time.UTC)

const (
	smallMin = 1 << 10
	smallMax = 16 << 10
)

type gen struct {
	root    string
	opts    Options
	r       *rand.Rand
	st      Stats
	dirs    []string // directories that receive small files
	small   []string // small files
	large   []string
	all     []string // every created path, for mtimes
	modes   map[string]os.FileMode
	mu      sync.Mutex
	jobSeed uint64
}

// Generate creates a tree under dir (created if missing; it must be
// empty). It is deterministic: the same options give the same tree.
func Generate(dir string, opts Options) (Stats, error) {
	if opts.Size <= 0 {
		opts.Size = 64 << 20
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return Stats{}, err
	}
	if names, err := readNames(dir); err != nil {
		return Stats{}, err
	} else if len(names) > 0 {
		return Stats{}, fmt.Errorf("gentree: %s is not empty", dir)
	}
	g := &gen{
		root:  dir,
		opts:  opts,
		r:     rand.New(rand.NewPCG(uint64(opts.Seed), 0x6c696665626f6174)),
		modes: map[string]os.FileMode{},
	}
	steps := []func() error{g.skeleton, g.content, g.oddNames, g.sparse, g.links, g.special, g.owners, g.applyModes, g.applyTimes}
	for _, step := range steps {
		if err := step(); err != nil {
			return g.st, fmt.Errorf("gentree: %w", err)
		}
	}
	return g.st, nil
}

func (g *gen) path(rel string) string { return filepath.Join(g.root, rel) }

func (g *gen) mkdir(rel string) error {
	if err := os.Mkdir(g.path(rel), 0o755); err != nil {
		return err
	}
	g.st.Dirs++
	g.all = append(g.all, rel)
	return nil
}

var skeleton = []string{
	"www", "www/pub", "www/pub/media", "www/pub/media/catalog", "www/pub/media/catalog/product",
	"www/pub/media/catalog/product/cache", "www/pub/media/catalog/product/cache/a1",
	"www/pub/static", "www/var", "www/var/log", "www/var/cache", "www/var/cache/mage--0",
	"www/node_modules", "www/node_modules/left-pad",
	"home", "home/alice", "home/alice/Documents", "home/bob",
	"backup", "var", "var/lib", "var/lib/vm", "run", "bin", "odd",
	"shared", "tmp", "ro-dir", "empty", "empty-nested", "empty-nested/a", "empty-nested/a/b",
}

var fileParents = []string{"www/pub/media/catalog/product", "www/pub/static", "www/var/log", "home/alice/Documents", "home/bob", "backup"}

func (g *gen) skeleton() error {
	for _, d := range skeleton {
		if err := g.mkdir(d); err != nil {
			return err
		}
	}
	g.modes["shared"] = 0o775 | os.ModeSetgid
	g.modes["tmp"] = 0o777 | os.ModeSticky
	g.modes["ro-dir"] = 0o555
	g.modes["home/alice"] = 0o700
	nSmall := g.smallCount()
	nDirs := max(4, nSmall/60)
	g.dirs = append(g.dirs, fileParents...)
	for i := range nDirs {
		parent := g.dirs[g.r.IntN(len(g.dirs))]
		if strings.Count(parent, "/") >= 7 {
			parent = fileParents[g.r.IntN(len(fileParents))]
		}
		rel := fmt.Sprintf("%s/%s%d", parent, pick(g.r, words), i)
		if err := g.mkdir(rel); err != nil {
			return err
		}
		g.dirs = append(g.dirs, rel)
	}
	return nil
}

func (g *gen) smallCount() int {
	if g.opts.SmallFiles > 0 {
		return g.opts.SmallFiles
	}
	return max(8, int(g.opts.Size/5/((smallMin+smallMax)/2)))
}

// job writes one file; jobs run in parallel, each with its own generator
// seeded from (Seed, job number), so the result does not depend on
// scheduling.
type job struct {
	rel  string
	size int64
	sql  bool
	seq  uint64
}

func (g *gen) content() error {
	var jobs []job
	add := func(rel string, size int64, sql bool) {
		g.jobSeed++
		jobs = append(jobs, job{rel: rel, size: size, sql: sql, seq: g.jobSeed})
		g.all = append(g.all, rel)
		g.st.Files++
		g.st.Bytes += size
		g.st.Apparent += size
	}
	nSmall := g.smallCount()
	var smallBytes int64
	for i := range nSmall {
		dir := g.dirs[g.r.IntN(len(g.dirs))]
		sql := g.r.IntN(2) == 0
		ext := [...]string{"jpg", "bin", "webp", "gz"}[g.r.IntN(4)]
		if sql {
			ext = [...]string{"sql", "csv", "log", "txt"}[g.r.IntN(4)]
		}
		rel := fmt.Sprintf("%s/%s-%05d.%s", dir, pick(g.r, words), i, ext)
		size := int64(smallMin + g.r.IntN(smallMax-smallMin+1))
		add(rel, size, sql)
		g.small = append(g.small, rel)
		smallBytes += size
	}
	// Files in the cache directories (for exclude tests) and node_modules.
	for i, d := range []string{"www/pub/media/catalog/product/cache/a1", "www/pub/media/catalog/product/cache", "www/var/cache/mage--0", "www/node_modules/left-pad"} {
		add(fmt.Sprintf("%s/cached-%d.bin", d, i), int64(512+g.r.IntN(2048)), i%2 == 0)
		add(fmt.Sprintf("%s/cached-%d.tmp", d, i), int64(100+g.r.IntN(100)), true)
	}
	add("bin/run.sh", 300, true)
	g.modes["bin/run.sh"] = 0o755
	add("bin/suid-helper", 2000, false)
	g.modes["bin/suid-helper"] = 0o755 | os.ModeSetuid
	add("home/alice/.secret", 1500, true)
	g.modes["home/alice/.secret"] = 0o600
	add("ro-dir/readonly.txt", 1234, true)
	g.modes["ro-dir/readonly.txt"] = 0o444
	add("www/var/log/app.tmp", 4096, true)

	// Large files in pairs of equal size: one SQL dump, one random blob.
	const sparseData = 6 * 64 << 10
	largeBudget := g.opts.Size - smallBytes - sparseData
	if largeBudget < 2<<10 {
		largeBudget = 2 << 10
	}
	pairs := int(min(max(largeBudget/(192<<20), 1), 4))
	var largeUsed int64
	for p := range pairs {
		size := largeBudget / 2 / int64(pairs)
		if p < pairs-1 {
			size = size * int64(70+g.r.IntN(61)) / 100
		} else {
			size = (largeBudget - largeUsed) / 2
		}
		largeUsed += 2 * size
		size = max(size, 1024)
		sqlRel := fmt.Sprintf("backup/dump-%02d.sql", p)
		binRel := fmt.Sprintf("var/lib/blob-%02d.bin", p)
		add(sqlRel, size, true)
		add(binRel, size, false)
		g.large = append(g.large, sqlRel, binRel)
	}

	workers := runtime.GOMAXPROCS(0)
	ch := make(chan job)
	errs := make(chan error, workers)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, bufSize)
			var firstErr error
			for j := range ch {
				if firstErr == nil {
					firstErr = g.writeFile(j, buf)
				}
			}
			errs <- firstErr
		}()
	}
	for _, j := range jobs {
		ch <- j
	}
	close(ch)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

func (g *gen) writeFile(j job, buf []byte) error {
	f, err := os.OpenFile(g.path(j.rel), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	var w io.Writer = f
	var bw *bufio.Writer
	if j.size < bufSize {
		bw = bufio.NewWriterSize(f, int(j.size))
		w = bw
	}
	seed := uint64(g.opts.Seed)
	if j.sql {
		r := rand.New(rand.NewPCG(seed, j.seq<<1))
		err = writeSQL(w, r, j.size, buf)
	} else {
		err = writeRandom(w, rand.NewPCG(seed, j.seq<<1|1), j.size, buf)
	}
	if err == nil && bw != nil {
		err = bw.Flush()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

var oddNames = []string{
	"with space.txt",
	"new\nline.txt",
	"Zürich – 東京.txt",
	`back\slash.txt`,
	"-leading-dash",
	"tab\tname",
	"\xff\xfe-invalid-utf8.bin",
	"*star?[x].txt",
	"'quote\"",
	" leading space",
	"trailing space ",
	"a.b", // with the directory "a": "a" < "a/x" < "a-" < "a.b" in ComparePaths order
	strings.Repeat("long", 60),
}

func (g *gen) oddNames() error {
	if err := g.mkdir("odd/a"); err != nil {
		return err
	}
	names := append([]string{"a/x", "a-"}, oddNames...)
	for i, name := range names {
		rel := "odd/" + name
		data := fmt.Appendf(nil, "odd file %d: %q\n", i, name)
		if err := os.WriteFile(g.path(rel), data, 0o644); err != nil {
			return err
		}
		g.all = append(g.all, rel)
		g.st.Files++
		g.st.Bytes += int64(len(data))
		g.st.Apparent += int64(len(data))
	}
	for _, rel := range []string{"empty.txt", ".hidden-empty", "www/var/log/empty.log"} {
		if err := os.WriteFile(g.path(rel), nil, 0o644); err != nil {
			return err
		}
		g.all = append(g.all, rel)
		g.st.Files++
	}
	return nil
}

func (g *gen) sparse() error {
	apparent := min(max(g.opts.Size/4, 4<<20), 1<<30)
	apparent -= apparent % 4096
	const region = 64 << 10
	src := rand.NewPCG(uint64(g.opts.Seed), 0x5ba55e)
	buf := make([]byte, region)
	for _, s := range []struct {
		rel  string
		offs []int64
	}{
		{"var/lib/vm/disk.img", []int64{0, apparent/3 - 1000, apparent - region}},
		{"var/lib/vm/trailing-hole.img", []int64{8192, apparent / 2, apparent/2 + 3*region}},
	} {
		f, err := os.OpenFile(g.path(s.rel), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o640)
		if err != nil {
			return err
		}
		if err := f.Truncate(apparent); err != nil {
			f.Close()
			return err
		}
		for _, off := range s.offs {
			fillRandom(src, buf)
			if _, err := f.WriteAt(buf, off); err != nil {
				f.Close()
				return err
			}
			g.st.Bytes += region
		}
		if err := f.Close(); err != nil {
			return err
		}
		g.all = append(g.all, s.rel)
		g.st.Files++
		g.st.Apparent += apparent
	}
	return nil
}

func (g *gen) links() error {
	link := func(target, rel string) error {
		if err := os.Link(g.path(target), g.path(rel)); err != nil {
			return err
		}
		g.st.Hardlinks++
		g.all = append(g.all, rel)
		return nil
	}
	// Hardlinks: same directory, another directory, three names, a large file.
	for i := 0; i < 3 && i < len(g.small); i++ {
		t := g.small[g.r.IntN(len(g.small))]
		if err := link(t, fmt.Sprintf("%s.link%d", t, i)); err != nil {
			return err
		}
		if i == 0 {
			if err := link(t, fmt.Sprintf("backup/hardlink-%d", i)); err != nil {
				return err
			}
		}
	}
	if err := link("backup/dump-00.sql", "backup/dump-latest.sql"); err != nil {
		return err
	}
	if err := link("odd/with space.txt", "home/bob/link to space"); err != nil {
		return err
	}
	symlink := func(target, rel string) error {
		if err := os.Symlink(target, g.path(rel)); err != nil {
			return err
		}
		g.st.Symlinks++
		g.all = append(g.all, rel)
		return nil
	}
	t := g.small[0]
	relTarget, err := filepath.Rel("home/bob", t)
	if err != nil {
		return err
	}
	for _, s := range [][2]string{
		{relTarget, "home/bob/relative-link"},
		{"../www/pub/media", "home/media-dir-link"},
		{"/etc/hostname", "home/absolute-link"},
		{"does/not/exist", "home/dangling-relative"},
		{"/nonexistent/lifeboat/dangling", "home/dangling-absolute"},
		{"loop-b", "home/loop-a"},
		{"loop-a", "home/loop-b"},
		{"Zürich – 東京.txt", "odd/utf8-link"},
		{"/etc", "backup/etc-link"},
	} {
		if err := symlink(s[0], s[1]); err != nil {
			return err
		}
	}
	return nil
}

func (g *gen) special() error {
	if !g.opts.NoSpecial {
		if err := unix.Mkfifo(g.path("run/app.fifo"), 0o620); err != nil {
			return fmt.Errorf("mkfifo: %w", err)
		}
		g.st.Special++
		g.all = append(g.all, "run/app.fifo")
		if os.Geteuid() == 0 {
			err := unix.Mknod(g.path("run/null"), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3)))
			if err == nil {
				g.st.Special++
				g.all = append(g.all, "run/null")
			} else if !errors.Is(err, unix.EPERM) {
				return fmt.Errorf("mknod: %w", err)
			}
		}
		xattrs := []struct {
			rel, name string
			value     []byte
		}{
			{"home/alice/.secret", "user.lifeboat", []byte("secret-label")},
			{g.small[len(g.small)/2], "user.lifeboat", []byte{0, 1, 2, 255, '\n'}},
			{g.small[len(g.small)/2], "user.mime_type", []byte("application/octet-stream")},
			{"www/pub/media", "user.lifeboat", []byte(strings.Repeat("x", 300))},
			{"odd/with space.txt", "user.empty", nil},
		}
		for _, x := range xattrs {
			err := unix.Lsetxattr(g.path(x.rel), x.name, x.value, 0)
			if errors.Is(err, unix.ENOTSUP) {
				break
			}
			if err != nil {
				return fmt.Errorf("setxattr %s: %w", x.rel, err)
			}
		}
	}
	if g.opts.Socket {
		p := g.path("run/app.sock")
		if len(p) < 100 {
			l, err := net.ListenUnix("unix", &net.UnixAddr{Name: p, Net: "unix"})
			if err != nil {
				return err
			}
			l.SetUnlinkOnClose(false)
			l.Close()
			g.st.Special++
			g.all = append(g.all, "run/app.sock")
		}
	}
	return nil
}

func (g *gen) owners() error {
	if g.opts.NoSpecial || os.Geteuid() != 0 {
		return nil
	}
	for _, o := range []struct {
		rel      string
		uid, gid int
	}{
		{"home/alice", 1000, 1000},
		{"home/alice/Documents", 1000, 1000},
		{"home/alice/.secret", 1000, 100},
		{"www/pub/media", 33, 33},
		{"backup/dump-00.sql", 4242, 4343},
		{"home/bob/relative-link", 1001, 1001},
	} {
		if err := os.Lchown(g.path(o.rel), o.uid, o.gid); err != nil {
			return err
		}
	}
	return nil
}

func (g *gen) applyModes() error {
	for rel, m := range g.modes {
		if err := os.Chmod(g.path(rel), m); err != nil {
			return err
		}
	}
	return nil
}

// mtimeFor returns the deterministic mtime of rel (nanosecond precision).
func mtimeFor(seed int64, rel string, base time.Time) time.Time {
	h := fnv.New64a()
	fmt.Fprintf(h, "%d\x00%s", seed, rel)
	v := h.Sum64()
	return base.Add(time.Duration(v%(3*365*86400)) * time.Second).Add(time.Duration((v >> 32) % 1e9))
}

func setMtime(path string, t time.Time) error {
	ts := []unix.Timespec{{Sec: t.Unix(), Nsec: int64(t.Nanosecond())}, {Sec: t.Unix(), Nsec: int64(t.Nanosecond())}}
	return unix.UtimesNanoAt(unix.AT_FDCWD, path, ts, unix.AT_SYMLINK_NOFOLLOW)
}

// applyTimes sets every mtime (and atime), deepest paths first so that
// setting a child never happens after its directory.
func (g *gen) applyTimes() error {
	all := slices.Clone(g.all)
	slices.SortFunc(all, func(a, b string) int {
		if c := strings.Count(b, "/") - strings.Count(a, "/"); c != 0 {
			return c
		}
		return strings.Compare(a, b)
	})
	for _, rel := range all {
		if err := setMtime(g.path(rel), mtimeFor(g.opts.Seed, rel, baseTime)); err != nil {
			return err
		}
	}
	return setMtime(g.root, mtimeFor(g.opts.Seed, ".", baseTime))
}

func readNames(dir string) ([]string, error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return f.Readdirnames(-1)
}
