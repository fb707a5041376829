package torture

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"

	"golang.org/x/sys/unix"
)

// Entry is the recorded state of one path of a tree.
type Entry struct {
	Type   string // "file", "dir", "symlink", "fifo", "char", "block", "socket"
	Mode   uint32 // permission bits with setuid, setgid and sticky (not for symlinks)
	Size   int64  // regular files
	SHA256 string // regular files
	Link   string // symlinks: the target
}

// Manifest maps slash-separated paths relative to a tree's root to their
// state. The root itself is not recorded.
type Manifest map[string]Entry

// Scan records the tree at root. It never opens anything but regular
// files, and those without following links.
func Scan(root string) (Manifest, error) {
	m := Manifest{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, p)
		if err != nil || rel == "." {
			return err
		}
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return fmt.Errorf("lstat %s: %w", p, err)
		}
		e := Entry{Mode: st.Mode & 0o7777}
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFREG:
			e.Type, e.Size = "file", st.Size
			if e.SHA256, err = hashFile(p); err != nil {
				return err
			}
		case unix.S_IFDIR:
			e.Type = "dir"
		case unix.S_IFLNK:
			e.Type, e.Mode = "symlink", 0
			if e.Link, err = os.Readlink(p); err != nil {
				return err
			}
		case unix.S_IFIFO:
			e.Type = "fifo"
		case unix.S_IFCHR:
			e.Type = "char"
		case unix.S_IFBLK:
			e.Type = "block"
		case unix.S_IFSOCK:
			e.Type = "socket"
		}
		m[filepath.ToSlash(rel)] = e
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("scan %s: %w", root, err)
	}
	return m, nil
}

func hashFile(p string) (string, error) {
	f, err := os.OpenFile(p, os.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK, 0)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("read %s: %w", p, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// Diff lists how got differs from m (the expected state), at most max
// lines (0: all), sorted by path.
func (m Manifest) Diff(got Manifest, max int) []string {
	var out []string
	for p, want := range m {
		g, ok := got[p]
		switch {
		case !ok:
			out = append(out, fmt.Sprintf("%s: missing (%s)", p, want.Type))
		case g != want:
			out = append(out, fmt.Sprintf("%s: want %s, got %s", p, want, g))
		}
	}
	for p, g := range got {
		if _, ok := m[p]; !ok {
			out = append(out, fmt.Sprintf("%s: extra (%s)", p, g.Type))
		}
	}
	slices.Sort(out)
	if max > 0 && len(out) > max {
		out = append(out[:max], fmt.Sprintf("... %d more", len(out)-max))
	}
	return out
}

func (e Entry) String() string {
	switch e.Type {
	case "file":
		sum := e.SHA256
		if len(sum) > 12 {
			sum = sum[:12]
		}
		return fmt.Sprintf("file %04o %d bytes sha256 %s", e.Mode, e.Size, sum)
	case "symlink":
		return "symlink -> " + e.Link
	}
	return fmt.Sprintf("%s %04o", e.Type, e.Mode)
}
