package browse

import (
	"context"
	"io"
	"slices"

	"github.com/lifeboat-backup/lifeboat/engine/snapshot"
)

// Change modifiers, as restic diff prints them.
const (
	Added    = "+" // only in the second snapshot
	Removed  = "-" // only in the first
	Modified = "M" // content differs
	TypeChg  = "T" // the entry's type differs
	MetaChg  = "U" // metadata only (mode, owner, time, link target, xattrs)
)

// Change is one entry that differs between two snapshots.
type Change struct {
	Path       string             `json:"path"` // with a leading "/"
	Modifier   string             `json:"modifier"`
	Type       snapshot.EntryType `json:"type"` // in the second snapshot (the first when removed)
	SizeBefore int64              `json:"size_before"`
	SizeAfter  int64              `json:"size_after"`
}

// DiffStat counts entries added or removed.
type DiffStat struct {
	Files  int64 `json:"files"`
	Dirs   int64 `json:"dirs"`
	Others int64 `json:"others"`
	Bytes  int64 `json:"bytes"`
}

// DiffStats sums up a diff (restic's "statistics" message).
type DiffStats struct {
	Source       string   `json:"source_snapshot"`
	Target       string   `json:"target_snapshot"`
	ChangedFiles int      `json:"changed_files"`
	Added        DiffStat `json:"added"`
	Removed      DiffStat `json:"removed"`
}

func (d *DiffStat) add(n *snapshot.Node) {
	switch n.Type {
	case snapshot.TypeFile:
		d.Files++
		d.Bytes += n.Size
	case snapshot.TypeDir:
		d.Dirs++
	default:
		d.Others++
	}
}

// Diff walks the trees of a and b side by side (memory independent of
// their size) and calls fn for every entry that differs, in tree order.
func Diff(ctx context.Context, r Repo, a, b *snapshot.Snapshot, fn func(Change) error) (*DiffStats, error) {
	ta, err := r.Tree(ctx, a)
	if err != nil {
		return nil, err
	}
	tb, err := r.Tree(ctx, b)
	if err != nil {
		return nil, err
	}
	st := &DiffStats{Source: a.ID.String(), Target: b.ID.String()}
	na, err := next(ta)
	if err != nil {
		return nil, err
	}
	nb, err := next(tb)
	if err != nil {
		return nil, err
	}
	for na != nil || nb != nil {
		var c Change
		cmp := 0
		switch {
		case na == nil:
			cmp = 1
		case nb == nil:
			cmp = -1
		default:
			cmp = snapshot.ComparePaths(na.Path, nb.Path)
		}
		switch {
		case cmp < 0:
			c = Change{Path: "/" + na.Path, Modifier: Removed, Type: na.Type, SizeBefore: na.Size}
			st.Removed.add(na)
		case cmp > 0:
			c = Change{Path: "/" + nb.Path, Modifier: Added, Type: nb.Type, SizeAfter: nb.Size}
			st.Added.add(nb)
		default:
			c = Change{Path: "/" + nb.Path, Modifier: compare(na, nb), Type: nb.Type, SizeBefore: na.Size, SizeAfter: nb.Size}
			if c.Modifier == Modified || c.Modifier == TypeChg {
				st.ChangedFiles++
			}
		}
		if c.Modifier != "" {
			if err := fn(c); err != nil {
				return nil, err
			}
		}
		if cmp <= 0 {
			if na, err = next(ta); err != nil {
				return nil, err
			}
		}
		if cmp >= 0 {
			if nb, err = next(tb); err != nil {
				return nil, err
			}
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
	}
	return st, nil
}

func next(tr snapshot.TreeReader) (*snapshot.Node, error) {
	n, err := tr.Next()
	if err == io.EOF {
		return nil, nil
	}
	return n, err
}

// compare says how two entries of the same path differ ("" not at all).
// Content is compared by blob IDs where both nodes carry them (the
// native engine), else by size and modification time.
func compare(a, b *snapshot.Node) string {
	switch {
	case a.Type != b.Type:
		return TypeChg
	case a.Type == snapshot.TypeFile && (a.Size != b.Size || !sameContent(a, b)):
		return Modified
	case a.HardlinkTo != b.HardlinkTo:
		return Modified
	case a.Mode != b.Mode || a.UID != b.UID || a.GID != b.GID || a.LinkTarget != b.LinkTarget ||
		a.Rdev != b.Rdev || !a.ModTime.Equal(b.ModTime) ||
		!slices.EqualFunc(a.Xattrs, b.Xattrs, func(x, y snapshot.Xattr) bool { return x.Name == y.Name && string(x.Value) == string(y.Value) }):
		return MetaChg
	}
	return ""
}

func sameContent(a, b *snapshot.Node) bool {
	if len(a.Content) > 0 || len(b.Content) > 0 {
		return slices.Equal(a.Content, b.Content)
	}
	return a.Size == 0 || a.ModTime.Equal(b.ModTime)
}
