package snapshot

import (
	"io/fs"
	"strings"
	"time"
)

// EntryType says what kind of object an Entry describes.
type EntryType string

// The entry types. A Hardlink entry points at an earlier File entry of the
// same snapshot (HardlinkTo) and carries no content of its own.
const (
	TypeFile     EntryType = "file"
	TypeDir      EntryType = "dir"
	TypeSymlink  EntryType = "symlink"
	TypeHardlink EntryType = "hardlink"
	TypeDevice   EntryType = "dev"
	TypeCharDev  EntryType = "chardev"
	TypeFIFO     EntryType = "fifo"
	TypeSocket   EntryType = "socket"
)

// Xattr is one extended attribute.
type Xattr struct {
	Name  string `json:"name"`
	Value []byte `json:"value"`
}

// Entry is the metadata of one backed-up object. Path is slash-separated and
// relative to the snapshot root (no leading slash, no "." or ".." elements).
// Entries of a snapshot are ordered by ComparePaths: a directory comes before
// its children, siblings by byte order of their names.
type Entry struct {
	Path       string    `json:"path"`
	Type       EntryType `json:"type"`
	Mode       uint32    `json:"mode"` // permission bits plus setuid/setgid/sticky, as in fs.FileMode
	UID        uint32    `json:"uid"`
	GID        uint32    `json:"gid"`
	User       string    `json:"user,omitempty"`
	Group      string    `json:"group,omitempty"`
	ModTime    time.Time `json:"mtime"`
	ChangeTime time.Time `json:"ctime,omitzero"` // change detection only; not restored
	Inode      uint64    `json:"inode,omitempty"`
	DeviceID   uint64    `json:"devid,omitempty"` // st_dev of the source file system
	Links      uint64    `json:"links,omitempty"`
	Rdev       uint64    `json:"rdev,omitempty"` // device number for TypeDevice/TypeCharDev
	Size       int64     `json:"size,omitempty"`
	LinkTarget string    `json:"link,omitempty"`     // symlink target
	HardlinkTo string    `json:"hardlink,omitempty"` // Path of the File entry this one is a hard link to
	Xattrs     []Xattr   `json:"xattrs,omitempty"`
}

// ComparePaths orders slash-separated paths component by component, so that
// a directory sorts directly before everything below it ("a" < "a/b" < "a.b").
func ComparePaths(a, b string) int {
	for {
		ai, bi := strings.IndexByte(a, '/'), strings.IndexByte(b, '/')
		ac, bc := a, b
		if ai >= 0 {
			ac = a[:ai]
		}
		if bi >= 0 {
			bc = b[:bi]
		}
		if c := strings.Compare(ac, bc); c != 0 {
			return c
		}
		switch {
		case ai < 0 && bi < 0:
			return 0
		case ai < 0:
			return -1
		case bi < 0:
			return 1
		}
		a, b = a[ai+1:], b[bi+1:]
	}
}

// FileMode is the entry's type and permission bits as an fs.FileMode
// (what ls -l shows).
func (e *Entry) FileMode() fs.FileMode {
	fm := fs.FileMode(e.Mode)
	switch e.Type {
	case TypeDir:
		fm |= fs.ModeDir
	case TypeSymlink:
		fm |= fs.ModeSymlink
	case TypeDevice:
		fm |= fs.ModeDevice
	case TypeCharDev:
		fm |= fs.ModeDevice | fs.ModeCharDevice
	case TypeFIFO:
		fm |= fs.ModeNamedPipe
	case TypeSocket:
		fm |= fs.ModeSocket
	}
	return fm
}
