package mount

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/lifeboat-backup/lifeboat/engine/snapshot"
	"github.com/lifeboat-backup/lifeboat/restore/browse"
	"github.com/lifeboat-backup/lifeboat/targets/files"
)

// Layout of the mounted file system, read once at mount time:
//
//	ids/SHORTID/...            each snapshot's tree
//	snapshots/TIME             -> ../ids/SHORTID (UTC, RFC 3339)
//	targets/TARGET/TIME        -> ../../ids/SHORTID
//	targets/TARGET/latest      the newest trusted snapshot of the target
//	latest                     the newest trusted snapshot
//
// A snapshot's tree is read when it is first entered. Suspect snapshots
// (dated in the future) are listed under ids/ and snapshots/, never as latest.
const timeLayout = "2006-01-02T15:04:05Z"

// FS is a mounted repository.
type FS struct {
	srv  *fuse.Server
	root *rootDir
}

// Mount serves r's snapshots at dir until Unmount (as root it mounts by
// itself, else through fusermount). ctx bounds the reads of contents.
func Mount(ctx context.Context, r browse.Repo, dir string) (*FS, error) {
	sns, err := r.Snapshots(ctx)
	if err != nil {
		return nil, err
	}
	root := &rootDir{r: r, sns: sns, ctx: ctx}
	ttl := time.Hour // the file system never changes
	srv, err := fs.Mount(dir, root, &fs.Options{
		EntryTimeout: &ttl, AttrTimeout: &ttl,
		MountOptions: fuse.MountOptions{FsName: "lifeboat", Name: "lifeboat", DirectMount: os.Geteuid() == 0,
			Options: []string{"ro", "nodev", "nosuid"}, MaxReadAhead: 1 << 20},
	})
	if err != nil {
		return nil, fmt.Errorf("mount %s: %w", dir, err)
	}
	return &FS{srv: srv, root: root}, nil
}

// Wait returns when the file system is unmounted (by Unmount or umount).
func (f *FS) Wait() { f.srv.Wait() }

// Unmount unmounts the file system and closes the snapshots read.
func (f *FS) Unmount() error {
	err := f.srv.Unmount()
	f.root.mu.Lock()
	defer f.root.mu.Unlock()
	for _, s := range f.root.open {
		if cerr := s.close(); err == nil {
			err = cerr
		}
	}
	f.root.open = nil
	return err
}

type rootDir struct {
	fs.Inode
	ctx context.Context
	r   browse.Repo
	sns []*snapshot.Snapshot

	mu   sync.Mutex
	open []*snapDir // snapshots whose contents were read
}

var _ fs.NodeOnAdder = (*rootDir)(nil)

// safeName makes a name a host wrote (a target) fit for one path element.
func safeName(s string) string {
	s = strings.ReplaceAll(s, "/", "_")
	if s == "" || s == "." || s == ".." {
		return "_" + s
	}
	return s
}

func (d *rootDir) OnAdd(ctx context.Context) {
	dir := func(parent *fs.Inode, name string) *fs.Inode {
		if ch := parent.GetChild(name); ch != nil {
			return ch
		}
		ch := parent.NewPersistentInode(ctx, &fs.Inode{}, fs.StableAttr{Mode: syscall.S_IFDIR})
		parent.AddChild(name, ch, false)
		return ch
	}
	link := func(parent *fs.Inode, name, short, target string) {
		l := parent.NewPersistentInode(ctx, &fs.MemSymlink{Data: []byte(target)}, fs.StableAttr{Mode: syscall.S_IFLNK})
		if !parent.AddChild(name, l, false) { // two snapshots of the same second
			parent.AddChild(name+"-"+short, l, false)
		}
	}
	ids, snaps, targets := dir(&d.Inode, "ids"), dir(&d.Inode, "snapshots"), dir(&d.Inode, "targets")
	latest := map[string]string{}
	var newest string
	for _, sn := range d.sns {
		short := sn.ID.Short()
		ids.AddChild(short, ids.NewPersistentInode(ctx, &snapDir{root: d, sn: sn}, fs.StableAttr{Mode: syscall.S_IFDIR}), false)
		when := sn.Time.UTC().Format(timeLayout)
		link(snaps, when, short, "../ids/"+short)
		link(dir(targets, safeName(sn.Target)), when, short, "../../ids/"+short)
		if sn.Suspect == "" { // oldest first: the last one wins
			latest[safeName(sn.Target)] = short
			newest = short
		}
	}
	for t, short := range latest {
		link(dir(targets, t), "latest", short, "../../ids/"+short)
	}
	if newest != "" {
		link(&d.Inode, "latest", newest, "ids/"+newest)
	}
}

// snapDir is a snapshot's root; its tree is loaded when first entered.
type snapDir struct {
	fs.Inode
	root *rootDir
	sn   *snapshot.Snapshot

	once   sync.Once
	err    syscall.Errno
	mu     sync.Mutex
	reader snapshot.Reader // contents, opened at the first read
	files  map[string]*snapshot.Node
}

var (
	_ fs.NodeLookuper  = (*snapDir)(nil)
	_ fs.NodeReaddirer = (*snapDir)(nil)
	_ fs.NodeGetattrer = (*snapDir)(nil)
)

func (s *snapDir) Getattr(_ context.Context, _ fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	out.Mode = syscall.S_IFDIR | 0o555
	t := s.sn.Time
	out.SetTimes(&t, &t, &t)
	return 0
}

// load adds the snapshot's entries as inodes below s.
func (s *snapDir) load(ctx context.Context) syscall.Errno {
	s.once.Do(func() {
		tr, err := s.root.r.Tree(s.root.ctx, s.sn)
		if err == nil {
			err = s.add(ctx, tr)
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "lifeboat mount: snapshot %s: %v\n", s.sn.ID.Short(), err)
			s.err = syscall.EIO
		}
	})
	return s.err
}

func (s *snapDir) add(ctx context.Context, tr snapshot.TreeReader) error {
	dirs := map[string]*fs.Inode{"": &s.Inode}
	s.files = map[string]*snapshot.Node{}
	for {
		n, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		parent, name := path.Split(n.Path)
		p := dirs[strings.TrimSuffix(parent, "/")]
		if p == nil {
			return fmt.Errorf("/%s: its directory is not in the snapshot", n.Path)
		}
		var ch *fs.Inode
		switch n.Type {
		case snapshot.TypeDir:
			ch = p.NewPersistentInode(ctx, &entry{n: n}, fs.StableAttr{Mode: syscall.S_IFDIR})
			dirs[n.Path] = ch
		case snapshot.TypeSymlink:
			ch = p.NewPersistentInode(ctx, &entry{n: n}, fs.StableAttr{Mode: syscall.S_IFLNK})
		case snapshot.TypeFile, snapshot.TypeHardlink:
			target := n
			if n.Type == snapshot.TypeHardlink {
				if target = s.files[n.HardlinkTo]; target == nil {
					return fmt.Errorf("/%s: hard link to /%s, which is not in the snapshot", n.Path, n.HardlinkTo)
				}
			} else {
				s.files[n.Path] = n
			}
			ch = p.NewPersistentInode(ctx, &file{entry: entry{n: n}, content: target, snap: s}, fs.StableAttr{Mode: syscall.S_IFREG})
		default: // devices, FIFOs, sockets: their metadata (mounted nodev)
			ch = p.NewPersistentInode(ctx, &entry{n: n}, fs.StableAttr{Mode: typeBits(n.Type)})
		}
		p.AddChild(name, ch, true)
	}
}

func (s *snapDir) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	if errno := s.load(ctx); errno != 0 {
		return nil, errno
	}
	ch := s.GetChild(name)
	if ch == nil {
		return nil, syscall.ENOENT
	}
	if g, ok := ch.Operations().(fs.NodeGetattrer); ok {
		var a fuse.AttrOut
		g.Getattr(ctx, nil, &a)
		out.Attr = a.Attr
	}
	return ch, 0
}

func (s *snapDir) Readdir(ctx context.Context) (fs.DirStream, syscall.Errno) {
	if errno := s.load(ctx); errno != 0 {
		return nil, errno
	}
	var list []fuse.DirEntry
	for name, ch := range s.Children() {
		list = append(list, fuse.DirEntry{Name: name, Mode: ch.Mode(), Ino: ch.StableAttr().Ino})
	}
	return fs.NewListDirStream(list), 0
}

// open gives the snapshot's content reader (the owner key).
func (s *snapDir) open() (snapshot.Reader, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.reader == nil {
		if !s.root.r.CanReadData() {
			return nil, errNoKey
		}
		rd, err := s.root.r.Open(s.root.ctx, s.sn)
		if err != nil {
			return nil, err
		}
		s.reader = rd
		s.root.mu.Lock()
		s.root.open = append(s.root.open, s)
		s.root.mu.Unlock()
	}
	return s.reader, nil
}

func (s *snapDir) close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.reader == nil {
		return nil
	}
	err := s.reader.Close()
	s.reader = nil
	return err
}

var errNoKey = errors.New("no owner key")

func typeBits(t snapshot.EntryType) uint32 {
	switch t {
	case snapshot.TypeDir:
		return syscall.S_IFDIR
	case snapshot.TypeSymlink:
		return syscall.S_IFLNK
	case snapshot.TypeDevice:
		return syscall.S_IFBLK
	case snapshot.TypeCharDev:
		return syscall.S_IFCHR
	case snapshot.TypeFIFO:
		return syscall.S_IFIFO
	case snapshot.TypeSocket:
		return syscall.S_IFSOCK
	}
	return syscall.S_IFREG
}

// entry is a node of a snapshot's tree: its attributes, and for a
// symlink its target.
type entry struct {
	fs.Inode
	n *snapshot.Node
}

var (
	_ fs.NodeGetattrer  = (*entry)(nil)
	_ fs.NodeReadlinker = (*entry)(nil)
)

func (e *entry) attr(out *fuse.Attr, size int64) {
	out.Mode = typeBits(e.n.Type) | files.UnixMode(e.n.Mode)
	out.Size = uint64(size)
	out.Blocks = (out.Size + 511) / 512
	out.Uid, out.Gid = e.n.UID, e.n.GID
	out.Nlink = 1
	if e.n.Links > 1 {
		out.Nlink = uint32(e.n.Links)
	}
	out.Rdev = uint32(e.n.Rdev)
	t := e.n.ModTime
	out.SetTimes(&t, &t, &t)
}

func (e *entry) Getattr(_ context.Context, _ fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	size := e.n.Size
	if e.n.Type == snapshot.TypeSymlink {
		size = int64(len(e.n.LinkTarget))
	}
	e.attr(&out.Attr, size)
	return 0
}

func (e *entry) Readlink(context.Context) ([]byte, syscall.Errno) {
	if e.n.Type != snapshot.TypeSymlink {
		return nil, syscall.EINVAL
	}
	return []byte(e.n.LinkTarget), 0
}

// file is a regular file (or a hard link: content is the file it links to).
type file struct {
	entry
	content *snapshot.Node
	snap    *snapDir
}

var (
	_ fs.NodeOpener    = (*file)(nil)
	_ fs.NodeGetattrer = (*file)(nil)
)

func (f *file) Getattr(_ context.Context, _ fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	f.attr(&out.Attr, f.content.Size)
	return 0
}

// Open refuses writes, and reads without the owner key (EACCES).
func (f *file) Open(_ context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	if flags&(syscall.O_WRONLY|syscall.O_RDWR|syscall.O_TRUNC|syscall.O_APPEND) != 0 {
		return nil, 0, syscall.EROFS
	}
	rd, err := f.snap.open()
	if errors.Is(err, errNoKey) {
		return nil, 0, syscall.EACCES
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "lifeboat mount: snapshot %s: %v\n", f.snap.sn.ID.Short(), err)
		return nil, 0, syscall.EIO
	}
	return &handle{f: f, rd: rd}, fuse.FOPEN_KEEP_CACHE, 0
}

// handle reads a file's content as a stream: sequential reads continue
// it; a read elsewhere restarts it at the blob holding the offset (the
// native engine's index gives blob sizes) and skips within it.
type handle struct {
	f  *file
	rd snapshot.Reader

	mu  sync.Mutex
	rc  io.ReadCloser
	pos int64
}

var (
	_ fs.FileReader   = (*handle)(nil)
	_ fs.FileReleaser = (*handle)(nil)
)

func (h *handle) Read(_ context.Context, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	h.mu.Lock()
	defer h.mu.Unlock()
	size := h.f.content.Size
	if off >= size {
		return fuse.ReadResultData(nil), 0
	}
	if h.rc == nil || off != h.pos {
		if err := h.seek(off); err != nil {
			return nil, h.fail(err)
		}
	}
	if rest := size - off; int64(len(dest)) > rest {
		dest = dest[:rest]
	}
	n, err := io.ReadFull(h.rc, dest)
	h.pos += int64(n)
	if err != nil {
		return nil, h.fail(err)
	}
	return fuse.ReadResultData(dest[:n]), 0
}

func (h *handle) fail(err error) syscall.Errno {
	fmt.Fprintf(os.Stderr, "lifeboat mount: /%s: %v\n", h.f.content.Path, err)
	h.close()
	return syscall.EIO
}

func (h *handle) seek(off int64) error {
	h.close()
	n := *h.f.content
	start := int64(0)
	if sizer, ok := h.f.snap.root.r.(browse.BlobSizer); ok {
		for len(n.Content) > 1 {
			_, raw, ok := sizer.BlobSize(n.Content[0])
			if !ok || start+raw > off {
				break
			}
			start += raw
			n.Content = n.Content[1:]
		}
	}
	h.rc = h.rd.Open(h.f.snap.root.ctx, &n)
	h.pos = start
	if _, err := io.CopyN(io.Discard, h.rc, off-start); err != nil {
		return err
	}
	h.pos = off
	return nil
}

func (h *handle) close() {
	if h.rc != nil {
		h.rc.Close()
		h.rc = nil
	}
}

func (h *handle) Release(context.Context) syscall.Errno {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.close()
	return 0
}
