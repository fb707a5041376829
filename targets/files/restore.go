package files

import (
	"errors"
	"fmt"
	"os"
	"os/user"
	"slices"
	"strconv"
	"strings"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/lifeboat-backup/lifeboat/targets"
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

// OwnerMode says whether a Restorer restores owners.
type OwnerMode int

const (
	// OwnerAuto restores owners when the process runs as root (euid 0).
	OwnerAuto OwnerMode = iota
	// OwnerOn always restores owners; lchown failures are errors.
	OwnerOn
	// OwnerOff never restores owners: restored objects belong to the
	// restoring user.
	OwnerOff
)

// RestoreOptions configure a Restorer. The zero value is the usual
// choice: owners restored when running as root, mapped by user/group name
// where the name exists on this host (like tar), xattrs restored.
type RestoreOptions struct {
	Owner OwnerMode
	// NumericOwner restores the stored UID/GID as they are, ignoring the
	// User/Group names.
	NumericOwner bool
	// NoXattrs skips extended attributes. Otherwise they are restored;
	// a file system that does not support them (ENOTSUP) is not an error.
	NoXattrs bool
}

// Restorer recreates entries under a root directory. Use it in snapshot
// order: for each entry call Dir, File (then write the content and close
// the file) or Other, and afterwards Finish; finally Close, which applies
// the mode and mtime of directories, deepest first. Finish of different
// entries may come in any order as long as it follows the entry's own
// creation and content writes.
//
// Entry paths are resolved one element at a time with openat(O_NOFOLLOW)
// from the root, so no path can escape the root: a symlink in a parent
// position is an error (ErrUnsafePath), never followed. Parents missing
// below the root are created (mode 0755, no metadata), so a subset of a
// snapshot can be restored.
//
// Restoring into a non-empty directory overwrites: an existing
// non-directory of the same name is removed and created anew (a hard link
// to it elsewhere keeps the old content); an existing directory is kept
// and gets the entry's metadata; a file, link or special entry whose name
// exists as a directory is an error.
//
// A Restorer is safe for concurrent use; the *os.File values it returns
// may be written concurrently (each by one writer).
type Restorer struct {
	mu     sync.Mutex
	root   string
	rootFD int
	opts   RestoreOptions
	chown  bool
	stack  []openDir // open directories on the current path; stack[0] is the root
	dirs   []deferredDir
	idMu   sync.Mutex // guards uids and gids (FinishFile runs without mu)
	uids   map[string]int
	gids   map[string]int
	closed bool
}

type openDir struct {
	rel string
	fd  int
}

type deferredDir struct {
	path string
	mode uint32
	mtim unix.Timespec
}

// NewRestorer returns a Restorer that restores under root, creating root
// (and its parents) if missing.
func NewRestorer(root string, opts RestoreOptions) (*Restorer, error) {
	if err := os.MkdirAll(root, 0o755); err != nil {
		return nil, fmt.Errorf("restore root: %w", err)
	}
	fd, err := unix.Open(root, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("restore root %s: %w", root, err)
	}
	r := &Restorer{
		root:   strings.TrimRight(root, "/"),
		rootFD: fd,
		opts:   opts,
		uids:   map[string]int{},
		gids:   map[string]int{},
	}
	if r.root == "" {
		r.root = "/"
	}
	switch opts.Owner {
	case OwnerAuto:
		r.chown = os.Geteuid() == 0
	case OwnerOn:
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

// lookupParent is parent for a second path needed at the same time (a
// hardlink's target): it does not use the stack. The caller closes fd.
func (r *Restorer) lookupParent(p string) (int, string, error) {
	if err := CheckPath(p); err != nil {
		return -1, "", err
	}
	dir, name := splitPath(p)
	fd, err := unix.Dup(r.rootFD)
	if err != nil {
		return -1, "", err
	}
	if dir == "" {
		return fd, name, nil
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
func (r *Restorer) Dir(e targets.Entry) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if e.Type != targets.TypeDir {
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

// File creates (replacing whatever non-directory was there) the regular
// file for e, sized e.Size with ftruncate so that ranges never written
// stay holes, and returns it open for writing. The caller writes the
// content with WriteAt (WriteAtSparse keeps zero blocks as holes), closes
// the file and then calls Finish.
func (r *Restorer) File(e targets.Entry) (*os.File, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if e.Type != targets.TypeFile {
		return nil, fmt.Errorf("entry %q: File called for type %s", e.Path, e.Type)
	}
	if e.Size < 0 {
		return nil, fmt.Errorf("entry %q: negative size %d", e.Path, e.Size)
	}
	dirfd, name, err := r.parent(e.Path, true)
	if err != nil {
		return nil, err
	}
	if err := r.remove(dirfd, name, e.Path); err != nil {
		return nil, err
	}
	fd, err := unix.Openat(dirfd, name, unix.O_RDWR|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("entry %q: create: %w", e.Path, err)
	}
	if e.Size > 0 {
		if err := unix.Ftruncate(fd, e.Size); err != nil {
			unix.Close(fd)
			return nil, fmt.Errorf("entry %q: truncate: %w", e.Path, err)
		}
	}
	return os.NewFile(uintptr(fd), r.root+"/"+e.Path), nil
}

// Other creates a symlink, hardlink, block or character device or FIFO
// (replacing whatever non-directory was there). Sockets are skipped: they
// belong to the process that created them, and nil is returned. A
// hardlink's HardlinkTo must already be restored (else ErrHardlinkTarget).
func (r *Restorer) Other(e targets.Entry) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	var mode uint32
	switch e.Type {
	case targets.TypeSocket:
		return CheckPath(e.Path)
	case targets.TypeSymlink, targets.TypeHardlink:
	case targets.TypeDevice:
		mode = unix.S_IFBLK
	case targets.TypeCharDev:
		mode = unix.S_IFCHR
	case targets.TypeFIFO:
		mode = unix.S_IFIFO
	default:
		return fmt.Errorf("entry %q: Other called for type %s", e.Path, e.Type)
	}
	fd, name, err := r.parent(e.Path, true)
	if err != nil {
		return err
	}
	if err := r.remove(fd, name, e.Path); err != nil {
		return err
	}
	switch e.Type {
	case targets.TypeSymlink:
		if err := unix.Symlinkat(e.LinkTarget, fd, name); err != nil {
			return fmt.Errorf("entry %q: symlink: %w", e.Path, err)
		}
	case targets.TypeHardlink:
		if e.HardlinkTo == e.Path {
			return fmt.Errorf("entry %q: hardlink to itself", e.Path)
		}
		tfd, tname, err := r.lookupParent(e.HardlinkTo)
		if err != nil {
			if errors.Is(err, unix.ENOENT) {
				return fmt.Errorf("entry %q: link to %q: %w", e.Path, e.HardlinkTo, ErrHardlinkTarget)
			}
			return fmt.Errorf("entry %q: link to %w", e.Path, err)
		}
		err = unix.Linkat(tfd, tname, fd, name, 0)
		unix.Close(tfd)
		if err == unix.ENOENT {
			return fmt.Errorf("entry %q: link to %q: %w", e.Path, e.HardlinkTo, ErrHardlinkTarget)
		}
		if err != nil {
			return fmt.Errorf("entry %q: link to %q: %w", e.Path, e.HardlinkTo, err)
		}
	default:
		if err := unix.Mknodat(fd, name, mode|0o600, int(e.Rdev)); err != nil {
			return fmt.Errorf("entry %q: mknod: %w", e.Path, err)
		}
	}
	return nil
}

// Finish applies e's metadata to the restored object: owner (lchown; see
// RestoreOptions), xattrs, mode (not for symlinks) and mtime (utimensat
// with AT_SYMLINK_NOFOLLOW; atime is left alone). For a directory, owner
// and xattrs are applied now; mode and mtime are recorded and applied by
// Close, so creating children does not disturb them and a read-only
// directory can still be filled. Sockets are ignored. ChangeTime cannot
// be restored.
func (r *Restorer) Finish(e targets.Entry) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if e.Type == targets.TypeSocket {
		return nil
	}
	fd, name, err := r.parent(e.Path, false)
	if err != nil {
		return err
	}
	var st unix.Stat_t
	if err := unix.Fstatat(fd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("entry %q: %w", e.Path, err)
	}
	got := typeOf(st.Mode)
	want := e.Type
	if want == targets.TypeHardlink {
		want = targets.TypeFile
	}
	if got != want {
		return fmt.Errorf("entry %q: restored object is a %s, entry is a %s", e.Path, got, e.Type)
	}
	if r.chown {
		uid, gid := r.owner(e)
		if err := unix.Fchownat(fd, name, uid, gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return fmt.Errorf("entry %q: lchown: %w", e.Path, err)
		}
	}
	if !r.opts.NoXattrs && len(e.Xattrs) > 0 {
		// The parent chain was just verified to hold no symlinks, and
		// lsetxattr does not follow the last element.
		full := r.root + "/" + e.Path
	xattrs:
		for _, x := range e.Xattrs {
			switch err := unix.Lsetxattr(full, x.Name, x.Value, 0); err {
			case nil:
			case unix.ENOTSUP:
				break xattrs
			default:
				return fmt.Errorf("entry %q: setxattr %s: %w", e.Path, x.Name, err)
			}
		}
	}
	mtim := unix.Timespec{Sec: e.ModTime.Unix(), Nsec: int64(e.ModTime.Nanosecond())}
	if got == targets.TypeDir {
		r.dirs = append(r.dirs, deferredDir{path: e.Path, mode: UnixMode(e.Mode), mtim: mtim})
		return nil
	}
	if got != targets.TypeSymlink {
		if err := unix.Fchmodat(fd, name, UnixMode(e.Mode), 0); err != nil {
			return fmt.Errorf("entry %q: chmod: %w", e.Path, err)
		}
	}
	ts := []unix.Timespec{{Nsec: unix.UTIME_OMIT}, mtim}
	if err := unix.UtimesNanoAt(fd, name, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("entry %q: utimensat: %w", e.Path, err)
	}
	return nil
}

// FinishFile is Finish for a regular file still open from File: it applies
// owner, xattrs, mode and mtime through the descriptor, without resolving
// the path again and without the Restorer's lock, so workers finish files
// in parallel. Call it after the last write, before closing f.
func (r *Restorer) FinishFile(f *os.File, e targets.Entry) error {
	fd := int(f.Fd())
	if r.chown {
		uid, gid := r.owner(e)
		if err := unix.Fchown(fd, uid, gid); err != nil {
			return fmt.Errorf("entry %q: chown: %w", e.Path, err)
		}
	}
	if !r.opts.NoXattrs {
	xattrs:
		for _, x := range e.Xattrs {
			switch err := unix.Fsetxattr(fd, x.Name, x.Value, 0); err {
			case nil:
			case unix.ENOTSUP:
				break xattrs
			default:
				return fmt.Errorf("entry %q: setxattr %s: %w", e.Path, x.Name, err)
			}
		}
	}
	if err := unix.Fchmod(fd, UnixMode(e.Mode)); err != nil {
		return fmt.Errorf("entry %q: chmod: %w", e.Path, err)
	}
	ts := [2]unix.Timespec{{Nsec: unix.UTIME_OMIT}, {Sec: e.ModTime.Unix(), Nsec: int64(e.ModTime.Nanosecond())}}
	if err := futimens(fd, &ts); err != nil {
		return fmt.Errorf("entry %q: futimens: %w", e.Path, err)
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
// deepest first, and releases the Restorer. It returns the errors of all
// directories that failed.
func (r *Restorer) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil
	}
	// Reverse ComparePaths order puts every directory before its parent.
	slices.SortFunc(r.dirs, func(a, b deferredDir) int { return targets.ComparePaths(b.path, a.path) })
	var errs []error
	for _, d := range r.dirs {
		fd, name, err := r.parent(d.path, false)
		if err == nil {
			err = unix.Fchmodat(fd, name, d.mode, 0)
		}
		if err == nil {
			ts := []unix.Timespec{{Nsec: unix.UTIME_OMIT}, d.mtim}
			err = unix.UtimesNanoAt(fd, name, ts, unix.AT_SYMLINK_NOFOLLOW)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("directory %q: %w", d.path, err))
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
func (r *Restorer) owner(e targets.Entry) (int, int) {
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
