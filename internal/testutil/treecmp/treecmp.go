// Package treecmp compares two file trees in detail (paths, types, modes,
// owners, mtimes, sizes, content, link targets, hardlink structure,
// xattrs, sparseness) for backup/restore round-trip tests.
package treecmp

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Options select what Compare checks. The zero value compares everything
// except atime, the top directories' own metadata and sparseness.
type Options struct {
	IgnoreOwner    bool // uid/gid
	IgnoreMode     bool
	IgnoreMtime    bool // all mtimes
	IgnoreDirMtime bool // mtimes of directories only
	IgnoreXattrs   bool
	IgnoreContent  bool
	// CompareAtime also compares access times (usually pointless: reading
	// a file for the content comparison may change it).
	CompareAtime bool
	// CompareRoot compares the metadata of a and b themselves (path ".").
	CompareRoot bool
	// Sparse checks that each regular file of b does not occupy more
	// blocks than in a, plus SparseSlack bytes (default 64 KiB).
	Sparse      bool
	SparseSlack int64
	// MaxDifferences stops after this many differences (0: no limit).
	MaxDifferences int
}

// Difference is one way in which b differs from a.
type Difference struct {
	Path  string // slash-separated, relative to the tree roots; "." for the roots
	Field string // "missing" (only in a), "extra" (only in b), "type", "mode", "uid", "gid", "mtime", "atime", "size", "content", "rdev", "link", "hardlink", "xattrs", "sparse"
	A, B  string // the values in a and b
}

func (d Difference) String() string {
	switch d.Field {
	case "missing":
		return fmt.Sprintf("%q: only in a (%s)", d.Path, d.A)
	case "extra":
		return fmt.Sprintf("%q: only in b (%s)", d.Path, d.B)
	}
	return fmt.Sprintf("%q: %s differs: a=%s b=%s", d.Path, d.Field, d.A, d.B)
}

// errEnough stops the comparison at MaxDifferences.
var errEnough = errors.New("enough differences")

type cmp struct {
	opts  Options
	a, b  string
	diffs []Difference
	// hardlink groups: inode -> first common path with that inode.
	linksA, linksB map[[2]uint64]string
	bufA, bufB     []byte
}

// Compare walks a and b (without following symlinks) and returns their
// differences in path order. Errors are I/O errors other than the ones
// that make up a difference.
func Compare(a, b string, opts Options) ([]Difference, error) {
	if opts.SparseSlack == 0 {
		opts.SparseSlack = 64 << 10
	}
	c := &cmp{
		opts: opts, a: a, b: b,
		linksA: map[[2]uint64]string{}, linksB: map[[2]uint64]string{},
		bufA: make([]byte, 1<<20), bufB: make([]byte, 1<<20),
	}
	var sa, sb unix.Stat_t
	if err := unix.Lstat(a, &sa); err != nil {
		return nil, fmt.Errorf("treecmp: %s: %w", a, err)
	}
	if err := unix.Lstat(b, &sb); err != nil {
		return nil, fmt.Errorf("treecmp: %s: %w", b, err)
	}
	err := c.entry(".", a, b, &sa, &sb, opts.CompareRoot)
	if errors.Is(err, errEnough) {
		err = nil
	}
	return c.diffs, err
}

func (c *cmp) add(path, field, a, b string) error {
	c.diffs = append(c.diffs, Difference{Path: path, Field: field, A: a, B: b})
	if c.opts.MaxDifferences > 0 && len(c.diffs) >= c.opts.MaxDifferences {
		return errEnough
	}
	return nil
}

func typeName(m uint32) string {
	switch m & unix.S_IFMT {
	case unix.S_IFREG:
		return "file"
	case unix.S_IFDIR:
		return "dir"
	case unix.S_IFLNK:
		return "symlink"
	case unix.S_IFBLK:
		return "dev"
	case unix.S_IFCHR:
		return "chardev"
	case unix.S_IFIFO:
		return "fifo"
	case unix.S_IFSOCK:
		return "socket"
	}
	return fmt.Sprintf("type %o", m&unix.S_IFMT)
}

func ts(t unix.Timespec) string {
	return time.Unix(t.Unix()).UTC().Format(time.RFC3339Nano)
}

// entry compares one path present in both trees; meta says whether to
// compare its own metadata (false for the roots unless CompareRoot).
func (c *cmp) entry(rel, pa, pb string, sa, sb *unix.Stat_t, meta bool) error {
	ta, tb := sa.Mode&unix.S_IFMT, sb.Mode&unix.S_IFMT
	if ta != tb {
		return c.add(rel, "type", typeName(sa.Mode), typeName(sb.Mode))
	}
	if meta {
		if err := c.meta(rel, pa, pb, sa, sb); err != nil {
			return err
		}
	}
	switch ta {
	case unix.S_IFDIR:
		return c.dir(rel, pa, pb)
	case unix.S_IFREG:
		return c.file(rel, pa, pb, sa, sb)
	case unix.S_IFLNK:
		la, err := os.Readlink(pa)
		if err != nil {
			return err
		}
		lb, err := os.Readlink(pb)
		if err != nil {
			return err
		}
		if la != lb {
			return c.add(rel, "link", fmt.Sprintf("%q", la), fmt.Sprintf("%q", lb))
		}
	case unix.S_IFBLK, unix.S_IFCHR:
		if sa.Rdev != sb.Rdev {
			return c.add(rel, "rdev", fmt.Sprint(sa.Rdev), fmt.Sprint(sb.Rdev))
		}
	}
	return nil
}

func (c *cmp) meta(rel, pa, pb string, sa, sb *unix.Stat_t) error {
	isLink := sa.Mode&unix.S_IFMT == unix.S_IFLNK
	isDir := sa.Mode&unix.S_IFMT == unix.S_IFDIR
	if !c.opts.IgnoreMode && !isLink && sa.Mode&0o7777 != sb.Mode&0o7777 {
		if err := c.add(rel, "mode", fmt.Sprintf("%04o", sa.Mode&0o7777), fmt.Sprintf("%04o", sb.Mode&0o7777)); err != nil {
			return err
		}
	}
	if !c.opts.IgnoreOwner {
		if sa.Uid != sb.Uid {
			if err := c.add(rel, "uid", fmt.Sprint(sa.Uid), fmt.Sprint(sb.Uid)); err != nil {
				return err
			}
		}
		if sa.Gid != sb.Gid {
			if err := c.add(rel, "gid", fmt.Sprint(sa.Gid), fmt.Sprint(sb.Gid)); err != nil {
				return err
			}
		}
	}
	if !c.opts.IgnoreMtime && !(isDir && c.opts.IgnoreDirMtime) && sa.Mtim != sb.Mtim {
		if err := c.add(rel, "mtime", ts(sa.Mtim), ts(sb.Mtim)); err != nil {
			return err
		}
	}
	if c.opts.CompareAtime && sa.Atim != sb.Atim {
		if err := c.add(rel, "atime", ts(sa.Atim), ts(sb.Atim)); err != nil {
			return err
		}
	}
	if !c.opts.IgnoreXattrs {
		xa, err := Xattrs(pa)
		if err != nil {
			return err
		}
		xb, err := Xattrs(pb)
		if err != nil {
			return err
		}
		if fa, fb := formatXattrs(xa), formatXattrs(xb); fa != fb {
			if err := c.add(rel, "xattrs", fa, fb); err != nil {
				return err
			}
		}
	}
	return nil
}

func (c *cmp) dir(rel, pa, pb string) error {
	na, err := readNames(pa)
	if err != nil {
		return err
	}
	nb, err := readNames(pb)
	if err != nil {
		return err
	}
	i, j := 0, 0
	for i < len(na) || j < len(nb) {
		var name string
		var inA, inB bool
		switch {
		case j >= len(nb) || (i < len(na) && na[i] < nb[j]):
			name, inA = na[i], true
			i++
		case i >= len(na) || nb[j] < na[i]:
			name, inB = nb[j], true
			j++
		default:
			name, inA, inB = na[i], true, true
			i++
			j++
		}
		crel := name
		if rel != "." {
			crel = rel + "/" + name
		}
		ca, cb := filepath.Join(pa, name), filepath.Join(pb, name)
		var sa, sb unix.Stat_t
		if inA {
			if err := unix.Lstat(ca, &sa); err != nil {
				return err
			}
		}
		if inB {
			if err := unix.Lstat(cb, &sb); err != nil {
				return err
			}
		}
		switch {
		case !inB:
			err = c.add(crel, "missing", typeName(sa.Mode), "")
		case !inA:
			err = c.add(crel, "extra", "", typeName(sb.Mode))
		default:
			err = c.entry(crel, ca, cb, &sa, &sb, true)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func (c *cmp) file(rel, pa, pb string, sa, sb *unix.Stat_t) error {
	// Hardlink structure: the first common path sharing the inode must be
	// the same on both sides.
	firstA, firstB := rel, rel
	if sa.Nlink > 1 {
		k := [2]uint64{uint64(sa.Dev), sa.Ino}
		if f, ok := c.linksA[k]; ok {
			firstA = f
		} else {
			c.linksA[k] = rel
		}
	}
	if sb.Nlink > 1 {
		k := [2]uint64{uint64(sb.Dev), sb.Ino}
		if f, ok := c.linksB[k]; ok {
			firstB = f
		} else {
			c.linksB[k] = rel
		}
	}
	if firstA != firstB {
		desc := func(first string) string {
			if first == rel {
				return "not linked to an earlier path"
			}
			return fmt.Sprintf("linked to %q", first)
		}
		if err := c.add(rel, "hardlink", desc(firstA), desc(firstB)); err != nil {
			return err
		}
	} else if firstA != rel {
		return nil // same inode as an already compared path
	}
	if sa.Size != sb.Size {
		return c.add(rel, "size", fmt.Sprint(sa.Size), fmt.Sprint(sb.Size))
	}
	if c.opts.Sparse && sb.Blocks*512 > sa.Blocks*512+c.opts.SparseSlack {
		if err := c.add(rel, "sparse", fmt.Sprintf("%d bytes allocated", sa.Blocks*512), fmt.Sprintf("%d bytes allocated", sb.Blocks*512)); err != nil {
			return err
		}
	}
	if c.opts.IgnoreContent {
		return nil
	}
	off, err := c.firstDiff(pa, pb)
	if err != nil {
		return err
	}
	if off >= 0 {
		return c.add(rel, "content", fmt.Sprintf("first difference at offset %d", off), fmt.Sprintf("first difference at offset %d", off))
	}
	return nil
}

// firstDiff returns the offset of the first differing byte, or -1.
func (c *cmp) firstDiff(pa, pb string) (int64, error) {
	fa, err := os.Open(pa)
	if err != nil {
		return 0, err
	}
	defer fa.Close()
	fb, err := os.Open(pb)
	if err != nil {
		return 0, err
	}
	defer fb.Close()
	var off int64
	for {
		na, erra := io.ReadFull(fa, c.bufA)
		nb, errb := io.ReadFull(fb, c.bufB)
		if erra != nil && erra != io.EOF && erra != io.ErrUnexpectedEOF {
			return 0, erra
		}
		if errb != nil && errb != io.EOF && errb != io.ErrUnexpectedEOF {
			return 0, errb
		}
		if na != nb || !bytes.Equal(c.bufA[:na], c.bufB[:nb]) {
			n := min(na, nb)
			for i := range n {
				if c.bufA[i] != c.bufB[i] {
					return off + int64(i), nil
				}
			}
			return off + int64(n), nil
		}
		if na < len(c.bufA) {
			return -1, nil
		}
		off += int64(na)
	}
}

// Xattr is one extended attribute.
type Xattr struct {
	Name  string
	Value []byte
}

// Xattrs lists the extended attributes of path (not following a symlink),
// sorted by name; none where the file system has no xattr support.
func Xattrs(path string) ([]Xattr, error) {
	sz, err := unix.Llistxattr(path, nil)
	if err == unix.ENOTSUP {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("listxattr %s: %w", path, err)
	}
	if sz == 0 {
		return nil, nil
	}
	buf := make([]byte, sz*2)
	n, err := unix.Llistxattr(path, buf)
	if err != nil {
		return nil, fmt.Errorf("listxattr %s: %w", path, err)
	}
	var xs []Xattr
	for name := range strings.SplitSeq(string(buf[:n]), "\x00") {
		if name == "" {
			continue
		}
		vs, err := unix.Lgetxattr(path, name, nil)
		if err != nil {
			return nil, fmt.Errorf("getxattr %s %s: %w", path, name, err)
		}
		v := make([]byte, vs)
		vn, err := unix.Lgetxattr(path, name, v)
		if err != nil {
			return nil, fmt.Errorf("getxattr %s %s: %w", path, name, err)
		}
		xs = append(xs, Xattr{name, v[:vn]})
	}
	slices.SortFunc(xs, func(a, b Xattr) int { return strings.Compare(a.Name, b.Name) })
	return xs, nil
}

func formatXattrs(xs []Xattr) string {
	if len(xs) == 0 {
		return "none"
	}
	var sb strings.Builder
	for i, x := range xs {
		if i > 0 {
			sb.WriteByte(' ')
		}
		fmt.Fprintf(&sb, "%s=%q", x.Name, x.Value)
	}
	return sb.String()
}

func readNames(dir string) ([]string, error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	names, err := f.Readdirnames(-1)
	if err != nil {
		return nil, err
	}
	slices.Sort(names)
	return names, nil
}
