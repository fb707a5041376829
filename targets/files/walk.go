package files

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/lifeboat-backup/lifeboat/engine/snapshot"
)

// Options configure Walk.
type Options struct {
	// Excludes are glob patterns matched against each entry's relative
	// path as stored (root base name first, slash-separated); see
	// docs/files-target.md for the syntax. Excluded directories are not
	// descended.
	Excludes []string
	// IExcludes are Excludes matched without regard to case (restic's
	// --iexclude).
	IExcludes []string
	// ExcludeIfPresent leaves out the content of every directory that
	// holds an entry of one of these names, but for the directory itself
	// and those entries (restic's --exclude-if-present).
	ExcludeIfPresent []string
	// ExcludeCaches does the same for every directory holding a
	// CACHEDIR.TAG file that starts with the signature of the Cache Directory Tagging
	// Specification (restic's and borg's --exclude-caches).
	ExcludeCaches bool
	// OneFileSystem stops at mount points below a root: the mount point
	// directory itself is delivered, its content is not.
	OneFileSystem bool
	// OnError is called for an entry that cannot be read (lstat,
	// readdir, readlink or xattr failure: permission denied, vanished
	// since its directory was listed, ...) with the absolute source path.
	// Returning nil skips what could not be read and continues: an entry
	// whose lstat or readlink failed is left out; a directory that
	// cannot be listed is delivered without children; an entry whose
	// xattrs cannot be read is delivered without xattrs. Returning an
	// error stops the walk with it. Nil: stop with an *fs.PathError
	// naming the path.
	OnError func(path string, err error) error
}

// ErrDuplicateRoot is returned (wrapped) when two roots share a base name.
var ErrDuplicateRoot = errors.New("two roots with the same base name")

// Walk visits each root (an absolute or relative path to a directory, file
// or symlink; a symlink root is stored as the symlink, not followed) and
// everything below it, and calls fn for every entry that is not excluded.
//
// Each root becomes a top-level entry named by its base name (like
// `tar -C parent base`): /var/www/media/x is stored as "media/x". Two roots
// with the same base name are an error, and so is "/" (it has no name).
// Entries are delivered in targets.ComparePaths order: pre-order, a
// directory before its children, siblings sorted by the bytes of their
// names, roots sorted by base name.
//
// fn receives the entry and its absolute source path (to open the file).
// A regular file with more than one link whose (DeviceID, Inode) was
// already delivered in this walk is delivered as targets.TypeHardlink with
// HardlinkTo set to the first path; its content need not be read.
// An error returned by fn stops the walk and is returned as is.
//
// Memory is bounded by the names of the directories on the current path
// plus one record per hard-linked inode whose links have not all been seen.
func Walk(ctx context.Context, roots []string, opts Options, fn func(e snapshot.Entry, src string) error) error {
	ex, err := newFoldExcluder(opts.Excludes, opts.IExcludes)
	if err != nil {
		return err
	}
	type root struct{ abs, name string }
	rs := make([]root, 0, len(roots))
	seen := make(map[string]string, len(roots))
	for _, r := range roots {
		abs, err := filepath.Abs(r)
		if err != nil {
			return fmt.Errorf("root %q: %w", r, err)
		}
		name := filepath.Base(abs)
		if name == "/" || name == "." || name == "" {
			return fmt.Errorf("root %q: has no base name; back up the directories below it instead", r)
		}
		if prev, ok := seen[name]; ok {
			return fmt.Errorf("roots %q and %q: %w %q", prev, r, ErrDuplicateRoot, name)
		}
		seen[name] = r
		rs = append(rs, root{abs, name})
	}
	slices.SortFunc(rs, func(a, b root) int { return strings.Compare(a.name, b.name) })

	w := &walker{
		ctx:    ctx,
		opts:   opts,
		ex:     ex,
		fn:     fn,
		users:  map[uint32]string{},
		groups: map[uint32]string{},
		links:  map[devIno]*linkInfo{},
	}
	for _, r := range rs {
		if _, ok := ex.match(r.name, false); ok {
			continue
		}
		if err := w.visit(r.abs, r.name, 0, true); err != nil {
			return err
		}
	}
	return nil
}

type devIno struct{ dev, ino uint64 }

type linkInfo struct {
	path string
	left uint64 // links not yet seen
}

type walker struct {
	ctx    context.Context
	opts   Options
	ex     *excluder
	fn     func(snapshot.Entry, string) error
	users  map[uint32]string
	groups map[uint32]string
	links  map[devIno]*linkInfo
	xbuf   []byte
}

// fail reports err for src through OnError. A nil result means: skip and
// continue.
func (w *walker) fail(src, op string, err error) error {
	perr := &fs.PathError{Op: op, Path: src, Err: err}
	if w.opts.OnError == nil {
		return perr
	}
	return w.opts.OnError(src, perr)
}

func (w *walker) visit(src, rel string, rootDev uint64, isRoot bool) error {
	if err := w.ctx.Err(); err != nil {
		return err
	}
	var st unix.Stat_t
	if err := lstat(src, &st); err != nil {
		return w.fail(src, "lstat", err)
	}
	isDir := st.Mode&unix.S_IFMT == unix.S_IFDIR
	if isDir {
		if _, ok := w.ex.match(rel, true); ok {
			return nil
		}
	}
	var tags []string // a tagged directory keeps only its tag files
	if isDir {
		tags = w.tagged(src)
	}
	e := w.entry(rel, &st)
	if isRoot {
		rootDev = e.DeviceID
	}
	switch e.Type {
	case snapshot.TypeSymlink:
		target, err := os.Readlink(src)
		if err != nil {
			return w.fail(src, "readlink", err)
		}
		e.LinkTarget = target
	case snapshot.TypeFile:
		if e.Links > 1 {
			k := devIno{e.DeviceID, e.Inode}
			if li, ok := w.links[k]; ok {
				e.Type = snapshot.TypeHardlink
				e.HardlinkTo = li.path
				e.Size = 0
				if li.left--; li.left == 0 {
					delete(w.links, k)
				}
			}
		}
	}
	xs, err := w.xattrs(src)
	if err != nil {
		if err := w.fail(src, "listxattr", err); err != nil {
			return err
		}
	}
	e.Xattrs = xs
	if err := w.fn(e, src); err != nil {
		return err
	}
	if e.Type == snapshot.TypeFile && e.Links > 1 {
		w.links[devIno{e.DeviceID, e.Inode}] = &linkInfo{path: rel, left: e.Links - 1}
	}
	if !isDir {
		return nil
	}
	if w.opts.OneFileSystem && e.DeviceID != rootDev {
		return nil
	}
	names, err := readNames(src)
	if err != nil {
		return w.fail(src, "readdir", err)
	}
	if tags != nil {
		names = tags
	}
	slices.Sort(names) // byte order, as targets.ComparePaths
	for _, name := range names {
		crel := rel + "/" + name
		if _, ok := w.ex.match(crel, false); ok {
			continue
		}
		if err := w.visit(src+"/"+name, crel, rootDev, false); err != nil {
			return err
		}
	}
	return nil
}

// ErrChanged is returned (wrapped in an *fs.PathError naming the path) by
// Open when the object at a path is no longer the regular file that Walk
// reported: replaced by a symlink, a FIFO, a device, a directory or
// another file since it was listed.
var ErrChanged = errors.New("changed since it was listed")

// Open opens the regular file at src that Walk reported as e, for reading.
// It never follows a symlink (a file swapped for a symlink is not read
// through it), never blocks on open (a file swapped for a FIFO or a
// device), and checks with fstat that the descriptor is the object the
// walk's lstat saw: a regular file with the same device and inode.
// Anything else is ErrChanged and nothing is read. A file that changed in
// place (same inode, new size or mtime) is opened: its content is read as
// it is now, as restic does.
func Open(src string, e snapshot.Entry) (*os.File, error) {
	var fd int
	var err error
	for {
		fd, err = unix.Open(src, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
		if err != unix.EINTR {
			break
		}
	}
	if err == unix.ELOOP {
		return nil, &fs.PathError{Op: "open", Path: src, Err: fmt.Errorf("%w: now a symlink", ErrChanged)}
	}
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: src, Err: err}
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return nil, &fs.PathError{Op: "fstat", Path: src, Err: err}
	}
	switch t := typeOf(st.Mode); {
	case t != snapshot.TypeFile:
		err = fmt.Errorf("%w: now a %s", ErrChanged, t)
	case uint64(st.Dev) != e.DeviceID || st.Ino != e.Inode:
		err = fmt.Errorf("%w: replaced by another file (inode %d, listed as %d)", ErrChanged, st.Ino, e.Inode)
	default:
		err = unix.SetNonblock(fd, false)
	}
	if err != nil {
		unix.Close(fd)
		return nil, &fs.PathError{Op: "open", Path: src, Err: err}
	}
	return os.NewFile(uintptr(fd), src), nil
}

func lstat(path string, st *unix.Stat_t) error {
	for {
		err := unix.Lstat(path, st)
		if err != unix.EINTR {
			return err
		}
	}
}

func readNames(dir string) ([]string, error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, unwrapPathError(err)
	}
	defer f.Close()
	names, err := f.Readdirnames(-1)
	return names, unwrapPathError(err)
}

func unwrapPathError(err error) error {
	if pe, ok := err.(*fs.PathError); ok {
		return pe.Err
	}
	return err
}

// entry fills an Entry from lstat data (no link target, no xattrs).
func (w *walker) entry(rel string, st *unix.Stat_t) snapshot.Entry {
	e := snapshot.Entry{
		Path:       rel,
		Type:       typeOf(st.Mode),
		Mode:       uint32(ModeFromUnix(st.Mode)),
		UID:        st.Uid,
		GID:        st.Gid,
		User:       w.userName(st.Uid),
		Group:      w.groupName(st.Gid),
		ModTime:    time.Unix(st.Mtim.Unix()).UTC(),
		ChangeTime: time.Unix(st.Ctim.Unix()).UTC(),
		Inode:      st.Ino,
		DeviceID:   uint64(st.Dev),
		Links:      uint64(st.Nlink),
	}
	switch e.Type {
	case snapshot.TypeFile:
		e.Size = st.Size
	case snapshot.TypeDevice, snapshot.TypeCharDev:
		e.Rdev = uint64(st.Rdev)
	}
	return e
}

func typeOf(m uint32) snapshot.EntryType {
	switch m & unix.S_IFMT {
	case unix.S_IFDIR:
		return snapshot.TypeDir
	case unix.S_IFLNK:
		return snapshot.TypeSymlink
	case unix.S_IFBLK:
		return snapshot.TypeDevice
	case unix.S_IFCHR:
		return snapshot.TypeCharDev
	case unix.S_IFIFO:
		return snapshot.TypeFIFO
	case unix.S_IFSOCK:
		return snapshot.TypeSocket
	default:
		return snapshot.TypeFile
	}
}

// ModeFromUnix converts st_mode to the Entry.Mode representation: the
// permission bits plus fs.ModeSetuid, fs.ModeSetgid and fs.ModeSticky.
func ModeFromUnix(m uint32) fs.FileMode {
	fm := fs.FileMode(m & 0o777)
	if m&unix.S_ISUID != 0 {
		fm |= fs.ModeSetuid
	}
	if m&unix.S_ISGID != 0 {
		fm |= fs.ModeSetgid
	}
	if m&unix.S_ISVTX != 0 {
		fm |= fs.ModeSticky
	}
	return fm
}

// UnixMode converts an Entry.Mode back to st_mode permission bits
// (without the file type).
func UnixMode(m uint32) uint32 {
	fm := fs.FileMode(m)
	u := uint32(fm.Perm())
	if fm&fs.ModeSetuid != 0 {
		u |= unix.S_ISUID
	}
	if fm&fs.ModeSetgid != 0 {
		u |= unix.S_ISGID
	}
	if fm&fs.ModeSticky != 0 {
		u |= unix.S_ISVTX
	}
	return u
}

func (w *walker) userName(uid uint32) string {
	if n, ok := w.users[uid]; ok {
		return n
	}
	var n string
	if u, err := user.LookupId(strconv.FormatUint(uint64(uid), 10)); err == nil {
		n = u.Username
	}
	w.users[uid] = n
	return n
}

func (w *walker) groupName(gid uint32) string {
	if n, ok := w.groups[gid]; ok {
		return n
	}
	var n string
	if g, err := user.LookupGroupId(strconv.FormatUint(uint64(gid), 10)); err == nil {
		n = g.Name
	}
	w.groups[gid] = n
	return n
}

// xattrs reads the extended attributes of path (not following a symlink),
// sorted by name. File systems without xattr support yield none.
func (w *walker) xattrs(path string) ([]snapshot.Xattr, error) {
	if w.xbuf == nil {
		w.xbuf = make([]byte, 4096)
	}
	n, err := retryRange(&w.xbuf, func(b []byte) (int, error) { return unix.Llistxattr(path, b) },
		func() (int, error) { return unix.Llistxattr(path, nil) })
	if err != nil {
		if err == unix.ENOTSUP || err == unix.EOPNOTSUPP {
			return nil, nil
		}
		return nil, err
	}
	if n == 0 {
		return nil, nil
	}
	var names []string
	for _, name := range strings.Split(string(w.xbuf[:n]), "\x00") {
		if name != "" {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	xs := make([]snapshot.Xattr, 0, len(names))
	for _, name := range names {
		vn, err := retryRange(&w.xbuf, func(b []byte) (int, error) { return unix.Lgetxattr(path, name, b) },
			func() (int, error) { return unix.Lgetxattr(path, name, nil) })
		if err == unix.ENODATA {
			continue // removed since listed
		}
		if err != nil {
			return nil, fmt.Errorf("getxattr %s: %w", name, err)
		}
		xs = append(xs, snapshot.Xattr{Name: name, Value: slices.Clone(w.xbuf[:vn])})
	}
	if len(xs) == 0 {
		return nil, nil
	}
	return xs, nil
}

// retryRange calls get with *buf, growing *buf on ERANGE to the size
// reported by size.
func retryRange(buf *[]byte, get func([]byte) (int, error), size func() (int, error)) (int, error) {
	for range 8 {
		n, err := get(*buf)
		if err == unix.EINTR {
			continue
		}
		if err != unix.ERANGE {
			return n, err
		}
		need, err := size()
		if err != nil {
			return 0, err
		}
		if need <= len(*buf) {
			need = 2 * len(*buf)
		}
		*buf = make([]byte, need)
	}
	return 0, unix.ERANGE
}

// cacheDirSignature starts a CACHEDIR.TAG file
// (https://bford.info/cachedir/).
const cacheDirSignature = "Signature: 8a477f597d28d172789f06886806bc55"

// tagged returns, for a directory src that ExcludeIfPresent or
// ExcludeCaches leaves out, the tag files it holds (sorted): as restic
// does, the directory and its tag files are kept, nothing else in it. Nil:
// not tagged.
func (w *walker) tagged(src string) []string {
	var tags []string
	for _, name := range w.opts.ExcludeIfPresent {
		if _, err := os.Lstat(filepath.Join(src, name)); err == nil && !slices.Contains(tags, name) {
			tags = append(tags, name)
		}
	}
	if w.opts.ExcludeCaches && !slices.Contains(tags, "CACHEDIR.TAG") {
		f, err := os.OpenFile(filepath.Join(src, "CACHEDIR.TAG"), os.O_RDONLY|unix.O_NONBLOCK|unix.O_NOFOLLOW, 0)
		if err == nil {
			buf := make([]byte, len(cacheDirSignature))
			if _, err := io.ReadFull(f, buf); err == nil && string(buf) == cacheDirSignature {
				tags = append(tags, "CACHEDIR.TAG")
			}
			_ = f.Close()
		}
	}
	slices.Sort(tags)
	return tags
}
