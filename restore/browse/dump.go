package browse

import (
	"archive/tar"
	"context"
	"fmt"
	"io"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/lifeboat-backup/lifeboat/engine/repo"
	"github.com/lifeboat-backup/lifeboat/engine/snapshot"
	"github.com/lifeboat-backup/lifeboat/targets/files"
)

// Clean turns a user's path ("/a/b/", "a/b", "/") into a snapshot path
// ("a/b"; "" is the root).
func Clean(p string) string { return strings.Trim(p, "/") }

// under reports whether p is at or below dir ("" is the root).
func under(p, dir string) bool {
	return dir == "" || p == dir || strings.HasPrefix(p, dir+"/")
}

// Lookup finds the node at p in sn (nil, repo.ErrNotFound when absent;
// the root "" has no node).
func Lookup(ctx context.Context, r Repo, sn *snapshot.Snapshot, p string) (*snapshot.Node, error) {
	tr, err := r.Tree(ctx, sn)
	if err != nil {
		return nil, err
	}
	for {
		n, err := next(tr)
		if err != nil {
			return nil, err
		}
		if n == nil {
			return nil, fmt.Errorf("/%s: %w in snapshot %s", p, repo.ErrNotFound, sn.ID.Short())
		}
		if n.Path == p {
			return n, nil
		}
	}
}

// Dump writes the file at p to w, or, when p is a directory (or the
// root), a tar archive of everything below it (paths relative to the
// snapshot root). It needs the owner key.
func Dump(ctx context.Context, r Repo, sn *snapshot.Snapshot, p string, w io.Writer) error {
	p = Clean(p)
	if !r.CanReadData() {
		return fmt.Errorf("dump snapshot %s: %w", sn.ID.Short(), repo.ErrNoDataKey)
	}
	if p != "" {
		n, err := Lookup(ctx, r, sn, p)
		if err != nil {
			return err
		}
		if n.Type != snapshot.TypeDir {
			if n.Type != snapshot.TypeFile {
				return fmt.Errorf("/%s is a %s, not a file or directory", p, n.Type)
			}
			return withReader(ctx, r, sn, func(s snapshot.Reader) error {
				return copyContent(ctx, s, n, w)
			})
		}
	}
	tw := tar.NewWriter(w)
	if err := WriteTar(ctx, r, sn, p, tw); err != nil {
		return err
	}
	return tw.Close()
}

func copyContent(ctx context.Context, s snapshot.Reader, n *snapshot.Node, w io.Writer) error {
	rc := s.Open(ctx, n)
	defer rc.Close()
	if _, err := io.Copy(w, rc); err != nil {
		return fmt.Errorf("read /%s: %w", n.Path, err)
	}
	return nil
}

// WriteTar adds the entries at and below dir ("" the whole snapshot) to
// tw with their contents (the owner key): files, directories, symlinks,
// hard links (as links when their target is in the archive), devices and
// FIFOs; sockets are left out, as tar cannot hold them.
func WriteTar(ctx context.Context, r Repo, sn *snapshot.Snapshot, dir string, tw *tar.Writer) error {
	return withReader(ctx, r, sn, func(s snapshot.Reader) error {
		tr := s.Tree(ctx)
		linked := map[string]*snapshot.Node{} // files with several links, for links to outside dir
		for {
			n, err := next(tr)
			if err != nil || n == nil {
				return err
			}
			if n.Type == snapshot.TypeFile && n.Links > 1 {
				linked[n.Path] = n
			}
			if !under(n.Path, dir) || n.Type == snapshot.TypeSocket {
				continue
			}
			hdr := &tar.Header{Name: n.Path, Mode: int64(files.UnixMode(n.Mode)), Uid: int(n.UID), Gid: int(n.GID),
				Uname: n.User, Gname: n.Group, ModTime: n.ModTime, Format: tar.FormatPAX}
			content := n
			switch n.Type {
			case snapshot.TypeFile:
				hdr.Typeflag, hdr.Size = tar.TypeReg, n.Size
			case snapshot.TypeDir:
				hdr.Typeflag, hdr.Name = tar.TypeDir, n.Path+"/"
			case snapshot.TypeSymlink:
				hdr.Typeflag, hdr.Linkname = tar.TypeSymlink, n.LinkTarget
			case snapshot.TypeHardlink:
				if under(n.HardlinkTo, dir) {
					hdr.Typeflag, hdr.Linkname = tar.TypeLink, n.HardlinkTo
					break
				}
				t, ok := linked[n.HardlinkTo]
				if !ok {
					return fmt.Errorf("/%s: hard link to /%s, which is not in snapshot %s", n.Path, n.HardlinkTo, sn.ID.Short())
				}
				hdr.Typeflag, hdr.Size, content = tar.TypeReg, t.Size, t
			case snapshot.TypeDevice, snapshot.TypeCharDev:
				hdr.Typeflag = tar.TypeBlock
				if n.Type == snapshot.TypeCharDev {
					hdr.Typeflag = tar.TypeChar
				}
				hdr.Devmajor, hdr.Devminor = int64(unix.Major(n.Rdev)), int64(unix.Minor(n.Rdev))
			case snapshot.TypeFIFO:
				hdr.Typeflag = tar.TypeFifo
			}
			if err := tw.WriteHeader(hdr); err != nil {
				return fmt.Errorf("tar /%s: %w", n.Path, err)
			}
			if hdr.Typeflag == tar.TypeReg && hdr.Size > 0 {
				if err := copyContent(ctx, s, content, tw); err != nil {
					return err
				}
			}
		}
	})
}
