package files

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/lifeboat-backup/lifeboat/engine/snapshot"
)

// ErrUnsafePath is returned (wrapped, naming the entry) for an entry path
// that is absolute, empty, contains "", "." or ".." elements or a NUL
// byte, or whose parent inside the restore root is not a real directory
// (for example a symlink restored earlier), so that following it could
// escape the root.
var ErrUnsafePath = errors.New("unsafe path")

// ErrHardlinkTarget is returned (wrapped) by Other for a hardlink entry
// whose HardlinkTo does not exist under the restore root (for example
// because it was not selected for restore). A caller may then restore the
// content as a regular file instead.
var ErrHardlinkTarget = errors.New("hardlink target missing")

// ErrDeviceSkipped is returned (wrapped, naming the entry) by Other for a
// block or character device entry when RestoreOptions.Devices is off:
// nothing was created.
var ErrDeviceSkipped = errors.New("device node not restored (restore with --devices)")

// Restorer recreates entries under a root directory. Use it in snapshot
// order: for each entry call Dir or Other and then Finish, or File (then
// write the content and Commit or Abort the File); finally Close, which
// applies the mode and mtime of directories, deepest first. Finish and
// Commit of different entries may come in any order as long as they follow
// the entry's own creation and content writes.
//
// Entry paths are resolved beneath the root without following any
// symlink (openat2 with RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS where the
// kernel has it, else one element at a time with openat(O_NOFOLLOW)), so
// no path can escape the root: a symlink in a parent position is an error
// (ErrUnsafePath), never followed. Metadata is applied through descriptors
// of the objects themselves (fchown, fchmod, fsetxattr, futimens, or their
// /proc/self/fd forms for O_PATH descriptors), never by a path that could
// have been swapped for a symlink. Parents missing below the root are
// created (mode 0755, no metadata), so a subset of a snapshot can be
// restored.
//
// A regular file is written under an unpredictable temporary name in its
// directory (".lifeboat-" and random hex, created O_EXCL|O_NOFOLLOW) and
// renamed over its final name by Commit, so a file that fails half way
// never appears under its name. A hardlink entry links only to a file this
// Restorer created, and changes nothing of it.
//
// Restoring into a non-empty directory overwrites: an existing
// non-directory of the same name is replaced (a hard link to it elsewhere
// keeps the old content); an existing directory is kept and gets the
// entry's metadata; a file, link or special entry whose name exists as a
// directory is an error.
//
// A Restorer is safe for concurrent use; the *os.File values it returns
// may be written concurrently (each by one writer).
type Restorer struct {
	mu     sync.Mutex
	root   string
	rootFD int
	opts   snapshot.EntryOptions
	chown  bool
	stack  []openDir // open directories on the current path; stack[0] is the root
	dirs   []deferredDir
	idMu   sync.Mutex // guards uids and gids (FinishFile runs without mu)
	uids   map[string]int
	gids   map[string]int
	// created holds the device and inode of the multiply linked files
	// this Restorer committed, by path: the only hardlink targets.
	created map[string]devIno
	// noTmpfile: the file system refused O_TMPFILE; use temporary names.
	noTmpfile bool
	// noEmptyPath: linkat(AT_EMPTY_PATH) is not allowed (not root).
	noEmptyPath atomic.Bool
	closed      bool
}

type openDir struct {
	rel string
	fd  int
	own *newOwner // owner of the files created in it; nil until the first File
}

// newOwner is the owner the kernel gives a file created in one directory
// of the stack (the process's fsuid, and its fsgid or the directory's
// group when the directory is setgid): learnt by fstat of the first file
// committed there, so that Commit leaves out the fchown of every later file
// whose entry has that owner (a root restore of files owned by root). The
// directory's own owner and mode must not change meanwhile: Finish applies
// a directory's owner before its files are created (snapshot order), and
// its mode (setgid) only at Close.
type newOwner struct {
	state    atomic.Int32 // ownerUnknown, ownerProbing or ownerKnown
	uid, gid uint32       // written before state becomes ownerKnown
}

const (
	ownerUnknown = iota
	ownerProbing // one Commit is learning it; the others chown
	ownerKnown
)

type deferredDir struct {
	path string
	mode uint32
	mtim unix.Timespec
}

// NewRestorer returns a Restorer that restores under root, creating root
// (and its parents) if missing.
func NewRestorer(root string, opts snapshot.EntryOptions) (*Restorer, error) {
	if err := os.MkdirAll(root, 0o755); err != nil {
		return nil, fmt.Errorf("restore root: %w", err)
	}
	fd, err := unix.Open(root, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("restore root %s: %w", root, err)
	}
	r := &Restorer{
		root:    strings.TrimRight(root, "/"),
		rootFD:  fd,
		opts:    opts,
		uids:    map[string]int{},
		gids:    map[string]int{},
		created: map[string]devIno{},
	}
	if r.root == "" {
		r.root = "/"
	}
	switch opts.Owner {
	case snapshot.OwnerAuto:
		r.chown = os.Geteuid() == 0
	case snapshot.OwnerOn:
		r.chown = true
	}
	r.stack = []openDir{{rel: "", fd: fd}}
	return r, nil
}

// CheckPath reports whether p is acceptable as an entry path: relative,
// slash-separated, without empty, "." or ".." elements and NUL bytes.
func CheckPath(p string) error {
	if p == "" {
		return fmt.Errorf("entry %q: %w: empty", p, ErrUnsafePath)
	}
	if strings.HasPrefix(p, "/") {
		return fmt.Errorf("entry %q: %w: absolute", p, ErrUnsafePath)
	}
	if strings.IndexByte(p, 0) >= 0 {
		return fmt.Errorf("entry %q: %w: NUL byte", p, ErrUnsafePath)
	}
	for elem := range strings.SplitSeq(p, "/") {
		switch elem {
		case "":
			return fmt.Errorf("entry %q: %w: empty element", p, ErrUnsafePath)
		case ".", "..":
			return fmt.Errorf("entry %q: %w: %q element", p, ErrUnsafePath, elem)
		}
	}
	return nil
}

func splitPath(p string) (dir, name string) {
	i := strings.LastIndexByte(p, '/')
	if i < 0 {
		return "", p
	}
	return p[:i], p[i+1:]
}

// parent returns an fd of the directory that holds entry path p (owned by
// the stack: do not close) and p's last element. Missing parents are
// created when create is set.
func (r *Restorer) parent(p string, create bool) (int, string, error) {
	if r.closed {
		return -1, "", errors.New("restorer closed")
	}
	if err := CheckPath(p); err != nil {
		return -1, "", err
	}
	dir, name := splitPath(p)
	// Pop until the top of the stack is dir or an ancestor of it.
	for len(r.stack) > 1 {
		top := r.stack[len(r.stack)-1].rel
		if top == dir || strings.HasPrefix(dir, top+"/") {
			break
		}
		unix.Close(r.stack[len(r.stack)-1].fd)
		r.stack = r.stack[:len(r.stack)-1]
	}
	top := r.stack[len(r.stack)-1]
	if top.rel == dir {
		return top.fd, name, nil
	}
	rest := dir
	if top.rel != "" {
		rest = dir[len(top.rel)+1:]
	}
	// Several elements at once where the kernel resolves them safely.
	if strings.IndexByte(rest, '/') >= 0 {
		fd, err := openBeneath(top.fd, rest)
		if err == nil {
			r.stack = append(r.stack, openDir{rel: dir, fd: fd})
			return fd, name, nil
		}
		if err != unix.ENOENT && err != errNoOpenat2 {
			return -1, "", fmt.Errorf("entry %q: parent %q: %w", p, dir, err)
		}
	}
	for elem := range strings.SplitSeq(rest, "/") {
		cur := r.stack[len(r.stack)-1]
		rel := elem
		if cur.rel != "" {
			rel = cur.rel + "/" + elem
		}
		fd, err := openDirAt(cur.fd, elem, create)
		if err != nil {
			return -1, "", fmt.Errorf("entry %q: parent %q: %w", p, rel, err)
		}
		r.stack = append(r.stack, openDir{rel: rel, fd: fd})
	}
	return r.stack[len(r.stack)-1].fd, name, nil
}

// errNoOpenat2 is openBeneath's answer where the kernel (or a seccomp
// filter) does not offer openat2: resolve element by element instead.
var errNoOpenat2 = errors.New("openat2 not available")

// openBeneath opens the directory rel (several elements) below dirfd with
// openat2, refusing symlinks, magic links and any escape from dirfd.
func openBeneath(dirfd int, rel string) (int, error) {
	how := unix.OpenHow{
		Flags:   unix.O_RDONLY | unix.O_DIRECTORY | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS,
	}
	for {
		fd, err := unix.Openat2(dirfd, rel, &how)
		switch err {
		case nil:
			return fd, nil
		case unix.EINTR, unix.EAGAIN:
			continue
		case unix.ENOSYS, unix.EPERM:
			return -1, errNoOpenat2
		case unix.ELOOP, unix.ENOTDIR, unix.EXDEV:
			return -1, fmt.Errorf("%w: not a directory (a symlink?)", ErrUnsafePath)
		default:
			return -1, err
		}
	}
}

// lookupParent is parent for a second path needed at the same time (a
// hardlink's target): it does not use the stack. The caller closes fd.
func (r *Restorer) lookupParent(p string) (int, string, error) {
	if err := CheckPath(p); err != nil {
		return -1, "", err
	}
	dir, name := splitPath(p)
	if dir == "" {
		fd, err := unix.Dup(r.rootFD)
		return fd, name, err
	}
	fd, err := openBeneath(r.rootFD, dir)
	if err == nil {
		return fd, name, nil
	}
	if err != errNoOpenat2 {
		return -1, "", fmt.Errorf("entry %q: %w", p, err)
	}
	if fd, err = unix.Dup(r.rootFD); err != nil {
		return -1, "", err
	}
	for elem := range strings.SplitSeq(dir, "/") {
		nfd, err := openDirAt(fd, elem, false)
		unix.Close(fd)
		if err != nil {
			return -1, "", fmt.Errorf("entry %q: %w", p, err)
		}
		fd = nfd
	}
	return fd, name, nil
}

func openDirAt(dirfd int, elem string, create bool) (int, error) {
	for {
		fd, err := unix.Openat(dirfd, elem, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		switch {
		case err == nil:
			return fd, nil
		case err == unix.EINTR:
			continue
		case err == unix.ENOENT && create:
			if err := unix.Mkdirat(dirfd, elem, 0o755); err != nil && err != unix.EEXIST {
				return -1, err
			}
			create = false
			continue
		case err == unix.ELOOP || err == unix.ENOTDIR:
			return -1, fmt.Errorf("%w: not a directory (a symlink?)", ErrUnsafePath)
		default:
			return -1, err
		}
	}
}

// forget drops cached directory fds at or below p after p was replaced.
func (r *Restorer) forget(p string) {
	for i := 1; i < len(r.stack); i++ {
		if rel := r.stack[i].rel; rel == p || strings.HasPrefix(rel, p+"/") {
			for _, d := range r.stack[i:] {
				unix.Close(d.fd)
			}
			r.stack = r.stack[:i]
			return
		}
	}
}

// remove removes a non-directory at name, if any.
func (r *Restorer) remove(dirfd int, name, p string) error {
	err := unix.Unlinkat(dirfd, name, 0)
	switch err {
	case nil, unix.ENOENT:
		return nil
	case unix.EISDIR:
		return fmt.Errorf("entry %q: exists as a directory", p)
	default:
		return fmt.Errorf("entry %q: remove existing: %w", p, err)
	}
}

// Dir creates the directory for e (and missing parents). An existing
// directory is kept; an existing non-directory is replaced. Its mode and
// mtime are applied by Close, after all children exist.
func (r *Restorer) Dir(e snapshot.Entry) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if e.Type != snapshot.TypeDir {
		return fmt.Errorf("entry %q: Dir called for type %s", e.Path, e.Type)
	}
	fd, name, err := r.parent(e.Path, true)
	if err != nil {
		return err
	}
	err = unix.Mkdirat(fd, name, 0o700)
	if err == unix.EEXIST {
		var st unix.Stat_t
		if err := unix.Fstatat(fd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return fmt.Errorf("entry %q: %w", e.Path, err)
		}
		if st.Mode&unix.S_IFMT == unix.S_IFDIR {
			return nil
		}
		r.forget(e.Path)
		if err := r.remove(fd, name, e.Path); err != nil {
			return err
		}
		err = unix.Mkdirat(fd, name, 0o700)
	}
	if err != nil {
		return fmt.Errorf("entry %q: mkdir: %w", e.Path, err)
	}
	return nil
}

// File is a regular file being restored: an *os.File open for writing
// that has no name yet (O_TMPFILE) or an unpredictable temporary one.
// Write the content with WriteAt (WriteAtSparse(f, ...) keeps zero blocks
// as holes), then Commit it, which gives it the entry's size (ranges never
// written stay holes), or Abort it.
type File struct {
	*os.File
	r     *Restorer
	e     snapshot.Entry
	dirfd int       // the directory, held for the link or rename; -1 when done
	own   *newOwner // the owner of files created in the directory
	tmp   string    // the temporary name; "" for an O_TMPFILE file
	// end is the end of the furthest File.WriteAt: where it reaches the
	// entry's size, Commit need not ftruncate (writes through the
	// embedded *os.File's other methods are not counted: Commit then
	// ftruncates, which changes nothing).
	end atomic.Int64
}

// WriteAt writes p at off like (*os.File).WriteAt and records how far the
// file's content reaches. Writes to different ranges may run in parallel.
func (f *File) WriteAt(p []byte, off int64) (int, error) {
	n, err := f.File.WriteAt(p, off)
	if n > 0 {
		end := off + int64(n)
		for {
			cur := f.end.Load()
			if end <= cur || f.end.CompareAndSwap(cur, end) {
				break
			}
		}
	}
	return n, err
}

// File creates the file for e, without a name where the file system
// offers O_TMPFILE, else under a temporary name, and returns it open for
// writing. Nothing under e's name changes before Commit. It is
// PrepareFile followed by Create.
func (r *Restorer) File(e snapshot.Entry) (*File, error) {
	f, err := r.PrepareFile(e)
	if err != nil {
		return nil, err
	}
	if err := f.Create(); err != nil {
		return nil, err
	}
	return f, nil
}

// PrepareFile does the part of File that follows the Restorer's current
// directory: it resolves (and creates) e's parent directory and holds it.
// The returned File is not open yet: Create creates it, and may run in
// another goroutine, in parallel with other Creates and the Restorer's
// other calls (creating an inode is most of a small file's cost in the
// kernel). Abort releases a File whose Create was not called.
func (r *Restorer) PrepareFile(e snapshot.Entry) (*File, error) {
	if e.Type != snapshot.TypeFile {
		return nil, fmt.Errorf("entry %q: File called for type %s", e.Path, e.Type)
	}
	if e.Size < 0 {
		return nil, fmt.Errorf("entry %q: negative size %d", e.Path, e.Size)
	}
	r.mu.Lock()
	pfd, _, err := r.parent(e.Path, true)
	var dirfd int
	var own *newOwner
	if err == nil {
		dirfd, err = unix.Dup(pfd)
		// parent leaves e's directory on top of the stack.
		top := &r.stack[len(r.stack)-1]
		if top.own == nil {
			top.own = &newOwner{}
		}
		own = top.own
	}
	r.mu.Unlock()
	if err != nil {
		return nil, err
	}
	return &File{r: r, e: e, dirfd: dirfd, own: own}, nil
}

// Create creates the file PrepareFile prepared and opens it for writing
// (empty: Commit gives it its size). On an error the File is released (as
// by Abort).
func (f *File) Create() error {
	r, e, dirfd := f.r, f.e, f.dirfd
	r.mu.Lock()
	noTmpfile := r.noTmpfile
	r.mu.Unlock()
	fd, tmp := -1, ""
	var err error
	tmpfile := !noTmpfile
	if tmpfile {
		fd, err = unix.Openat(dirfd, ".", unix.O_RDWR|unix.O_TMPFILE|unix.O_CLOEXEC, 0o600)
		if err == unix.EOPNOTSUPP || err == unix.EISDIR || err == unix.EINVAL {
			r.mu.Lock()
			r.noTmpfile = true
			r.mu.Unlock()
			tmpfile = false
		}
	}
	if !tmpfile {
		var rnd [8]byte
		for range 4 {
			rand.Read(rnd[:])
			tmp = ".lifeboat-" + hex.EncodeToString(rnd[:])
			fd, err = unix.Openat(dirfd, tmp, unix.O_RDWR|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
			if err != unix.EEXIST {
				break
			}
		}
	}
	if err != nil {
		f.Abort()
		return fmt.Errorf("entry %q: create: %w", e.Path, err)
	}
	f.File, f.tmp = os.NewFile(uintptr(fd), r.root+"/"+e.Path), tmp
	return nil
}

// Commit extends the file to the entry's size (ftruncate, unless its
// WriteAt calls reached it), applies the entry's owner (fchown, unless the
// file has it already), xattrs, mode and mtime through the descriptor,
// puts the file under its final name (linkat of the O_TMPFILE file, or
// rename of the temporary name; an existing non-directory there is
// replaced) and closes it. Commits of different files run in parallel. On
// an error nothing of the file remains and nothing under the final name
// changed.
func (f *File) Commit() error {
	r, e := f.r, f.e
	fd := int(f.Fd())
	var err error
	if f.end.Load() < e.Size {
		if err = unix.Ftruncate(fd, e.Size); err != nil {
			err = fmt.Errorf("entry %q: truncate: %w", e.Path, err)
		}
	}
	if err == nil {
		err = r.setMeta(fd, "", e, f.ownedAs)
	}
	var st unix.Stat_t
	if err == nil && e.Links > 1 {
		err = unix.Fstat(fd, &st)
	}
	_, name := splitPath(e.Path)
	if err == nil && f.tmp == "" {
		err = f.link(fd, name)
	}
	if cerr := f.File.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("entry %q: close: %w", e.Path, cerr)
	}
	if err == nil && f.tmp != "" {
		switch err = unix.Renameat(f.dirfd, f.tmp, f.dirfd, name); err {
		case nil:
		case unix.EISDIR, unix.ENOTEMPTY, unix.EEXIST:
			err = fmt.Errorf("entry %q: exists as a directory", e.Path)
		default:
			err = fmt.Errorf("entry %q: rename into place: %w", e.Path, err)
		}
	}
	if err != nil && f.tmp != "" {
		unix.Unlinkat(f.dirfd, f.tmp, 0)
	} else if err == nil && e.Links > 1 {
		r.mu.Lock()
		r.created[e.Path] = devIno{uint64(st.Dev), st.Ino}
		r.mu.Unlock()
	}
	unix.Close(f.dirfd)
	f.dirfd = -1
	return err
}

// ownedAs reports whether the file (open as fd) is owned by uid and gid
// already: it is when files created in its directory get that owner, which
// the first file committed there learns by fstat.
func (f *File) ownedAs(fd, uid, gid int) bool {
	o := f.own
	if o == nil {
		return false
	}
	switch o.state.Load() {
	case ownerKnown:
		return int(o.uid) == uid && int(o.gid) == gid
	case ownerUnknown:
		if !o.state.CompareAndSwap(ownerUnknown, ownerProbing) {
			return false
		}
		var st unix.Stat_t
		if unix.Fstat(fd, &st) != nil {
			o.state.Store(ownerUnknown)
			return false
		}
		o.uid, o.gid = st.Uid, st.Gid
		o.state.Store(ownerKnown)
		return int(st.Uid) == uid && int(st.Gid) == gid
	}
	return false
}

// link gives the O_TMPFILE file open as fd the name in f's directory,
// replacing a non-directory there. linkat with AT_EMPTY_PATH (needs
// CAP_DAC_READ_SEARCH: root) or through /proc/self/fd reaches exactly
// this file.
func (f *File) link(fd int, name string) error {
	for range 3 {
		var err error
		if !f.r.noEmptyPath.Load() {
			err = unix.Linkat(fd, "", f.dirfd, name, unix.AT_EMPTY_PATH)
			if err == unix.ENOENT || err == unix.EPERM {
				f.r.noEmptyPath.Store(true)
			}
		}
		if f.r.noEmptyPath.Load() {
			err = unix.Linkat(unix.AT_FDCWD, procFD(fd), f.dirfd, name, unix.AT_SYMLINK_FOLLOW)
		}
		switch err {
		case nil:
			return nil
		case unix.EEXIST:
			if err := f.r.remove(f.dirfd, name, f.e.Path); err != nil {
				return err
			}
		default:
			return fmt.Errorf("entry %q: link into place: %w", f.e.Path, err)
		}
	}
	return fmt.Errorf("entry %q: link into place: %w", f.e.Path, unix.EEXIST)
}

// Abort closes the file and removes it: nothing under the entry's name
// changed. After Commit (successful or not) it does nothing.
func (f *File) Abort() {
	if f.dirfd < 0 {
		return
	}
	if f.File != nil {
		f.File.Close()
	}
	if f.tmp != "" {
		unix.Unlinkat(f.dirfd, f.tmp, 0)
	}
	unix.Close(f.dirfd)
	f.dirfd = -1
}

// Other creates a symlink, hardlink, block or character device or FIFO
// (replacing whatever non-directory was there). Sockets are skipped: they
// belong to the process that created them, and nil is returned. Devices
// are ErrDeviceSkipped unless RestoreOptions.Devices. A hardlink's
// HardlinkTo must be a multiply linked file this Restorer committed, still
// in place (else ErrHardlinkTarget): a snapshot cannot link to, and so
// re-own or re-mode, a file that was in the destination before.
func (r *Restorer) Other(e snapshot.Entry) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	var mode uint32
	switch e.Type {
	case snapshot.TypeSocket:
		return CheckPath(e.Path)
	case snapshot.TypeSymlink, snapshot.TypeHardlink:
	case snapshot.TypeDevice:
		mode = unix.S_IFBLK
	case snapshot.TypeCharDev:
		mode = unix.S_IFCHR
	case snapshot.TypeFIFO:
		mode = unix.S_IFIFO
	default:
		return fmt.Errorf("entry %q: Other called for type %s", e.Path, e.Type)
	}
	if mode != 0 && mode != unix.S_IFIFO && !r.opts.Devices {
		if err := CheckPath(e.Path); err != nil {
			return err
		}
		return fmt.Errorf("entry %q: %w", e.Path, ErrDeviceSkipped)
	}
	fd, name, err := r.parent(e.Path, true)
	if err != nil {
		return err
	}
	if e.Type == snapshot.TypeHardlink {
		return r.link(fd, name, e)
	}
	if err := r.remove(fd, name, e.Path); err != nil {
		return err
	}
	switch e.Type {
	case snapshot.TypeSymlink:
		if err := unix.Symlinkat(e.LinkTarget, fd, name); err != nil {
			return fmt.Errorf("entry %q: symlink: %w", e.Path, err)
		}
	default:
		if err := unix.Mknodat(fd, name, mode|0o600, int(e.Rdev)); err != nil {
			return fmt.Errorf("entry %q: mknod: %w", e.Path, err)
		}
	}
	return nil
}

// link creates hardlink entry e as name in dirfd.
func (r *Restorer) link(dirfd int, name string, e snapshot.Entry) error {
	if e.HardlinkTo == e.Path {
		return fmt.Errorf("entry %q: hardlink to itself", e.Path)
	}
	if err := CheckPath(e.HardlinkTo); err != nil {
		return fmt.Errorf("entry %q: link to %w", e.Path, err)
	}
	want, ok := r.created[e.HardlinkTo]
	if !ok {
		return fmt.Errorf("entry %q: link to %q: %w (not a file this restore created)", e.Path, e.HardlinkTo, ErrHardlinkTarget)
	}
	tfd, tname, err := r.lookupParent(e.HardlinkTo)
	if err != nil {
		return fmt.Errorf("entry %q: link to %w", e.Path, err)
	}
	defer unix.Close(tfd)
	var st unix.Stat_t
	if err := unix.Fstatat(tfd, tname, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil ||
		st.Mode&unix.S_IFMT != unix.S_IFREG || (devIno{uint64(st.Dev), st.Ino}) != want {
		return fmt.Errorf("entry %q: link to %q: %w (replaced since restored)", e.Path, e.HardlinkTo, ErrHardlinkTarget)
	}
	if err := r.remove(dirfd, name, e.Path); err != nil {
		return err
	}
	// linkat without AT_SYMLINK_FOLLOW links the object at tname itself.
	if err := unix.Linkat(tfd, tname, dirfd, name, 0); err != nil {
		return fmt.Errorf("entry %q: link to %q: %w", e.Path, e.HardlinkTo, err)
	}
	if err := unix.Fstatat(dirfd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil || (devIno{uint64(st.Dev), st.Ino}) != want {
		unix.Unlinkat(dirfd, name, 0)
		return fmt.Errorf("entry %q: link to %q: %w (replaced while linking)", e.Path, e.HardlinkTo, ErrHardlinkTarget)
	}
	return nil
}

// Finish applies e's metadata to the restored object: owner, xattrs (see
// RestoreOptions), mode (not for symlinks) and mtime (atime is left
// alone). The object is opened with O_PATH|O_NOFOLLOW and checked to be
// of e's type; everything is applied through that descriptor. For a
// directory, owner and xattrs are applied now; mode and mtime are
// recorded and applied by Close, so creating children does not disturb
// them and a read-only directory can still be filled. A hardlink gets
// nothing: its file's metadata is its first path's. Sockets are ignored.
// Regular files are finished by File.Commit. ChangeTime cannot be
// restored.
func (r *Restorer) Finish(e snapshot.Entry) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch e.Type {
	case snapshot.TypeSocket:
		return nil
	case snapshot.TypeFile:
		return fmt.Errorf("entry %q: Finish called for a file (use File.Commit)", e.Path)
	}
	fd, name, err := r.parent(e.Path, false)
	if err != nil {
		return err
	}
	if e.Type == snapshot.TypeHardlink {
		return nil
	}
	if e.Type == snapshot.TypeSymlink {
		// Nothing follows the link: *at calls with AT_SYMLINK_NOFOLLOW on
		// a parent resolved without symlinks.
		var st unix.Stat_t
		if err := unix.Fstatat(fd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return fmt.Errorf("entry %q: %w", e.Path, err)
		}
		if got := typeOf(st.Mode); got != snapshot.TypeSymlink {
			return fmt.Errorf("entry %q: restored object is a %s, entry is a %s", e.Path, got, e.Type)
		}
		if r.chown {
			uid, gid := r.owner(e)
			if err := unix.Fchownat(fd, name, uid, gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
				return fmt.Errorf("entry %q: lchown: %w", e.Path, err)
			}
		}
		if err := r.setXattrs(e, func(n string, v []byte) error {
			return unix.Lsetxattr(procFD(fd)+"/"+name, n, v, 0)
		}); err != nil {
			return err
		}
		ts := []unix.Timespec{{Nsec: unix.UTIME_OMIT}, timespec(e)}
		if err := unix.UtimesNanoAt(fd, name, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return fmt.Errorf("entry %q: utimensat: %w", e.Path, err)
		}
		return nil
	}
	ofd, err := openPath(fd, name, e)
	if err != nil {
		return err
	}
	defer unix.Close(ofd)
	if e.Type == snapshot.TypeDir {
		if err := r.setOwnerXattrs(ofd, procFD(ofd), e, nil); err != nil {
			return err
		}
		// Files created in it from now on get its new group if it is
		// setgid: learn their owner anew.
		for i := range r.stack {
			if r.stack[i].rel == e.Path {
				r.stack[i].own = nil
			}
		}
		r.dirs = append(r.dirs, deferredDir{path: e.Path, mode: r.mode(e), mtim: timespec(e)})
		return nil
	}
	return r.setMeta(ofd, procFD(ofd), e, nil)
}

// openPath opens name in dirfd with O_PATH|O_NOFOLLOW and checks that it
// is an object of e's type (a symlink swapped in is not).
func openPath(dirfd int, name string, e snapshot.Entry) (int, error) {
	fd, err := unix.Openat(dirfd, name, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("entry %q: open: %w", e.Path, err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("entry %q: fstat: %w", e.Path, err)
	}
	if got := typeOf(st.Mode); got != e.Type {
		unix.Close(fd)
		return -1, fmt.Errorf("entry %q: restored object is a %s, entry is a %s", e.Path, got, e.Type)
	}
	return fd, nil
}

// procFD is the /proc path of descriptor fd: following it reaches exactly
// the object fd refers to (used for O_PATH descriptors, on which fchmod,
// fsetxattr and futimens do not work).
func procFD(fd int) string { return "/proc/self/fd/" + strconv.Itoa(fd) }

func timespec(e snapshot.Entry) unix.Timespec {
	return unix.Timespec{Sec: e.ModTime.Unix(), Nsec: int64(e.ModTime.Nanosecond())}
}

// mode is the permission bits to give e's object: setuid and setgid
// cleared unless KeepSetuid (a directory keeps setgid).
func (r *Restorer) mode(e snapshot.Entry) uint32 {
	m := UnixMode(e.Mode)
	if r.opts.KeepSetuid {
		return m
	}
	if e.Type == snapshot.TypeDir {
		return m &^ unix.S_ISUID
	}
	return m &^ (unix.S_ISUID | unix.S_ISGID)
}

// setMeta applies owner, xattrs, mode and mtime of e to the object open
// as fd: through fd itself when proc is "" (a regular descriptor), else
// through proc, fd's /proc path (an O_PATH descriptor).
func (r *Restorer) setMeta(fd int, proc string, e snapshot.Entry, owned ownedFunc) error {
	if err := r.setOwnerXattrs(fd, proc, e, owned); err != nil {
		return err
	}
	mode := r.mode(e)
	ts := [2]unix.Timespec{{Nsec: unix.UTIME_OMIT}, timespec(e)}
	if proc == "" {
		if err := unix.Fchmod(fd, mode); err != nil {
			return fmt.Errorf("entry %q: chmod: %w", e.Path, err)
		}
		if err := futimens(fd, &ts); err != nil {
			return fmt.Errorf("entry %q: futimens: %w", e.Path, err)
		}
		return nil
	}
	if err := unix.Chmod(proc, mode); err != nil {
		return fmt.Errorf("entry %q: chmod: %w", e.Path, err)
	}
	if err := unix.UtimesNanoAt(unix.AT_FDCWD, proc, ts[:], 0); err != nil {
		return fmt.Errorf("entry %q: utimensat: %w", e.Path, err)
	}
	return nil
}

// ownedFunc reports whether the object open as fd is owned by uid and gid
// already (so that chown would change nothing); nil: not known.
type ownedFunc func(fd, uid, gid int) bool

// setOwnerXattrs applies owner and xattrs of e to the object open as fd
// (see setMeta for proc; owned, if not nil, may tell that the owner is
// right already).
func (r *Restorer) setOwnerXattrs(fd int, proc string, e snapshot.Entry, owned ownedFunc) error {
	if r.chown {
		uid, gid := r.owner(e)
		// AT_EMPTY_PATH: the object fd refers to, O_PATH or not.
		if owned == nil || !owned(fd, uid, gid) {
			if err := unix.Fchownat(fd, "", uid, gid, unix.AT_EMPTY_PATH); err != nil {
				return fmt.Errorf("entry %q: chown: %w", e.Path, err)
			}
		}
	}
	return r.setXattrs(e, func(n string, v []byte) error {
		if proc == "" {
			return unix.Fsetxattr(fd, n, v, 0)
		}
		return unix.Setxattr(proc, n, v, 0)
	})
}

// setXattrs sets those xattrs of e that RestoreOptions.Xattrs selects.
func (r *Restorer) setXattrs(e snapshot.Entry, set func(name string, value []byte) error) error {
	if r.opts.Xattrs == snapshot.XattrsNone {
		return nil
	}
	for _, x := range e.Xattrs {
		if r.opts.Xattrs == snapshot.XattrsUser && !strings.HasPrefix(x.Name, "user.") {
			continue
		}
		switch err := set(x.Name, x.Value); err {
		case nil:
		case unix.ENOTSUP:
			return nil
		default:
			return fmt.Errorf("entry %q: setxattr %s: %w", e.Path, x.Name, err)
		}
	}
	return nil
}

// futimens sets the times of an open file with nanoseconds: utimensat with
// a NULL path acts on the descriptor (what libc's futimens does).
func futimens(fd int, ts *[2]unix.Timespec) error {
	if _, _, errno := unix.Syscall6(unix.SYS_UTIMENSAT, uintptr(fd), 0, uintptr(unsafe.Pointer(ts)), 0, 0, 0); errno != 0 {
		return errno
	}
	return nil
}

// Close applies the deferred mode and mtime of every finished directory,
// deepest first, and releases the Restorer. An error is an errors.Join of
// one *fs.PathError per failed directory, naming its entry path. Each directory is opened with
// O_PATH|O_NOFOLLOW and checked to still be a directory, so a symlink
// swapped in during the restore is not followed. It returns the errors of
// all directories that failed.
func (r *Restorer) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil
	}
	// Reverse ComparePaths order puts every directory before its parent.
	slices.SortFunc(r.dirs, func(a, b deferredDir) int { return snapshot.ComparePaths(b.path, a.path) })
	var errs []error
	for _, d := range r.dirs {
		e := snapshot.Entry{Path: d.path, Type: snapshot.TypeDir}
		fd, name, err := r.parent(d.path, false)
		if err == nil {
			var dfd int
			if dfd, err = openPath(fd, name, e); err == nil {
				proc := procFD(dfd)
				if err = unix.Chmod(proc, d.mode); err == nil {
					ts := []unix.Timespec{{Nsec: unix.UTIME_OMIT}, d.mtim}
					err = unix.UtimesNanoAt(unix.AT_FDCWD, proc, ts, 0)
				}
				unix.Close(dfd)
			}
		}
		if err != nil {
			errs = append(errs, &fs.PathError{Op: "directory metadata", Path: d.path, Err: err})
		}
	}
	r.dirs = nil
	for _, d := range r.stack[1:] {
		unix.Close(d.fd)
	}
	r.stack = nil
	unix.Close(r.rootFD)
	r.closed = true
	return errors.Join(errs...)
}

// owner maps e's owner to local ids: by name when the name exists here
// (unless NumericOwner), else the stored numbers.
func (r *Restorer) owner(e snapshot.Entry) (int, int) {
	uid, gid := int(e.UID), int(e.GID)
	if r.opts.NumericOwner {
		return uid, gid
	}
	r.idMu.Lock()
	defer r.idMu.Unlock()
	if e.User != "" {
		id, ok := r.uids[e.User]
		if !ok {
			id = -1
			if u, err := user.Lookup(e.User); err == nil {
				if n, err := strconv.Atoi(u.Uid); err == nil {
					id = n
				}
			}
			r.uids[e.User] = id
		}
		if id >= 0 {
			uid = id
		}
	}
	if e.Group != "" {
		id, ok := r.gids[e.Group]
		if !ok {
			id = -1
			if g, err := user.LookupGroup(e.Group); err == nil {
				if n, err := strconv.Atoi(g.Gid); err == nil {
					id = n
				}
			}
			r.gids[e.Group] = id
		}
		if id >= 0 {
			gid = id
		}
	}
	return uid, gid
}
