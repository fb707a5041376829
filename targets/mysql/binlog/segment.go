package binlog

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// StreamName is the name of the binlog stream in a log archive.
const StreamName = "binlog"

// Pos is a position in the server's binary log: file name and byte offset.
type Pos struct {
	File   string
	Offset uint64
}

func (p Pos) String() string { return p.File + ":" + strconv.FormatUint(p.Offset, 10) }

// IsZero tells an unset position.
func (p Pos) IsZero() bool { return p.File == "" }

// ParsePos parses FILE:POS.
func ParsePos(s string) (Pos, error) {
	i := strings.LastIndexByte(s, ':')
	if i <= 0 {
		return Pos{}, fmt.Errorf("binlog position %q: want FILE:POS", s)
	}
	n, err := strconv.ParseUint(s[i+1:], 10, 64)
	if err != nil {
		return Pos{}, fmt.Errorf("binlog position %q: %w", s, err)
	}
	if err := validFile(s[:i]); err != nil {
		return Pos{}, err
	}
	return Pos{File: s[:i], Offset: n}, nil
}

func validFile(f string) error {
	if f == "" || f == "." || f == ".." || strings.ContainsAny(f, "/\\\x00:") || strings.HasPrefix(f, "-") {
		return fmt.Errorf("invalid binlog file name %q", f)
	}
	return nil
}

// fileSeq splits a binlog file name into its base and sequence number
// (binlog.000042 -> "binlog", 42).
func fileSeq(f string) (string, uint64, bool) {
	i := strings.LastIndexByte(f, '.')
	if i < 0 {
		return "", 0, false
	}
	n, err := strconv.ParseUint(f[i+1:], 10, 64)
	return f[:i], n, err == nil
}

// Compare orders positions in log order (files by base, then sequence
// number; then offsets).
func (p Pos) Compare(q Pos) int {
	if p.File != q.File {
		pb, pn, ok1 := fileSeq(p.File)
		qb, qn, ok2 := fileSeq(q.File)
		if ok1 && ok2 && pb == qb {
			if pn < qn {
				return -1
			}
			return 1
		}
		return strings.Compare(p.File, q.File)
	}
	switch {
	case p.Offset < q.Offset:
		return -1
	case p.Offset > q.Offset:
		return 1
	}
	return 0
}

// Segment is one archived piece of the binary log: the events of one
// file from Start to End, stored as a standalone binlog file (magic,
// the file's format description, the events).
type Segment struct {
	Name      string    // sorts in log order
	Start     Pos       // the first event's position
	End       Pos       // where the next event starts
	FirstTime time.Time // first event
	LastTime  time.Time // last event
	GTID      string    // the last GTID in it (or before it), domain-server-seq
	Events    int
	// Closed: the segment ends its file (a rotate or stop event); the
	// next one starts at offset 4 of the next file.
	Closed string
	// Gap, on the first segment after a break in the archive, says why
	// the events before it are missing.
	Gap  string
	Size int64 // bytes of the stored file
}

// SegmentName is the name of the segment that starts at p: it sorts in
// log order for file names of one width.
func SegmentName(p Pos) string { return fmt.Sprintf("%s-%012d", p.File, p.Offset) }

// Follows tells whether next continues prev with nothing missing.
func Follows(prev, next Segment) bool {
	if next.Gap != "" {
		return false
	}
	if prev.End == next.Start {
		return true
	}
	if prev.Closed == "" || next.Start.Offset != 4 {
		return false
	}
	pb, pn, ok1 := fileSeq(prev.End.File)
	nb, nn, ok2 := fileSeq(next.Start.File)
	return ok1 && ok2 && pb == nb && nn == pn+1
}

// Store keeps segments (a log archive of a repository, for one target).
type Store interface {
	// Put stores a segment; storing the same one again is no error.
	Put(ctx context.Context, s Segment, data []byte) error
	// List returns the segments in log order.
	List(ctx context.Context) ([]Segment, error)
}

// Fetcher reads a stored segment (owner key).
type Fetcher interface {
	Fetch(ctx context.Context, s Segment) ([]byte, error)
}

// Break is a place where the archive is not contiguous.
type Break struct {
	After, Before Segment
}

func (b Break) String() string {
	why := b.Before.Gap
	if why == "" {
		why = "events missing"
	}
	return fmt.Sprintf("gap between %s (ends %s, %s) and %s (starts %s, %s): %s", b.After.Name, b.After.End,
		b.After.LastTime.Format(time.RFC3339), b.Before.Name, b.Before.Start, b.Before.FirstTime.Format(time.RFC3339), why)
}

// Breaks lists the gaps of segs (in log order).
func Breaks(segs []Segment) []Break {
	var out []Break
	for i := 1; i < len(segs); i++ {
		if !Follows(segs[i-1], segs[i]) {
			out = append(out, Break{After: segs[i-1], Before: segs[i]})
		}
	}
	return out
}
