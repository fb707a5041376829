package wal

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/lifeboat-backup/lifeboat/engine/logarchive"
)

// Stream is the logarchive stream of a target's WAL.
const Stream = "wal"

var (
	segmentName = regexp.MustCompile(`^[0-9A-F]{24}$`)
	fileName    = regexp.MustCompile(`^[0-9A-F]{8}(\.history|[0-9A-F]{16}(\.partial|\.[0-9A-F]{8}\.backup)?)$`)
)

// ValidName tells whether name is a file PostgreSQL archives: a WAL
// segment, a timeline history file, a backup history file or a partial
// segment.
func ValidName(name string) bool { return fileName.MatchString(name) }

// IsSegment tells whether name is a complete WAL segment's name.
func IsSegment(name string) bool { return segmentName.MatchString(name) }

// Parse splits a WAL segment name (also .partial and .backup names) into
// timeline and segment number for segments of segSize bytes.
func Parse(name string, segSize int64) (timeline uint32, segno uint64, err error) {
	if len(name) < 24 || !segmentName.MatchString(name[:24]) {
		return 0, 0, fmt.Errorf("not a WAL segment name: %q", name)
	}
	tl, _ := strconv.ParseUint(name[:8], 16, 32)
	log, _ := strconv.ParseUint(name[8:16], 16, 32)
	seg, _ := strconv.ParseUint(name[16:24], 16, 32)
	perLog := uint64(0x100000000) / uint64(segSize)
	return uint32(tl), log*perLog + seg, nil
}

// Timeline is the timeline of a WAL file name (segments and history files).
func Timeline(name string) uint32 {
	if len(name) < 8 {
		return 0
	}
	tl, err := strconv.ParseUint(name[:8], 16, 32)
	if err != nil {
		return 0
	}
	return uint32(tl)
}

// FormatLSN prints an LSN as PostgreSQL does (X/X).
func FormatLSN(lsn uint64) string { return fmt.Sprintf("%X/%X", lsn>>32, uint32(lsn)) }

// ParseLSN reads an LSN in PostgreSQL's X/X form.
func ParseLSN(s string) (uint64, error) {
	hi, lo, ok := strings.Cut(s, "/")
	if !ok {
		return 0, fmt.Errorf("not an LSN: %q", s)
	}
	h, err1 := strconv.ParseUint(hi, 16, 32)
	l, err2 := strconv.ParseUint(lo, 16, 32)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("not an LSN: %q", s)
	}
	return h<<32 | l, nil
}

// SegmentOf names the segment of timeline tl holding lsn.
func SegmentOf(tl uint32, lsn uint64, segSize int64) string {
	segno := lsn / uint64(segSize)
	perLog := uint64(0x100000000) / uint64(segSize)
	return fmt.Sprintf("%08X%08X%08X", tl, segno/perLog, segno%perLog)
}

// Follows is the chain rule for a target's WAL (logarchive.Gaps): only
// complete segments count (history, backup and partial files are
// skipped by Chain); on one timeline each segment follows the previous
// one; a new timeline starts inside or right after the last segment of
// the old one (the switch point).
func Follows(prev, next logarchive.Segment) bool {
	ps, err1 := segno(prev)
	ns, err2 := segno(next)
	if err1 != nil || err2 != nil {
		return false
	}
	if Timeline(next.Name) != Timeline(prev.Name) {
		return ns <= ps+1
	}
	return ns == ps+1
}

func segno(s logarchive.Segment) (uint64, error) {
	size := s.Size
	if v, ok := s.Details["wal_segment_size"]; ok {
		if n, err := strconv.ParseInt(v, 10, 64); err == nil {
			size = n
		}
	}
	if size <= 0 || size&(size-1) != 0 {
		return 0, fmt.Errorf("segment %s: size %d", s.Name, size)
	}
	_, n, err := Parse(s.Name, size)
	return n, err
}

// Chain returns the gaps in a target's archived WAL (segs as List returns
// them), counting from the segment named from (the oldest base's start
// segment; "" for the oldest archived one).
func Chain(segs []logarchive.Segment, from string) []logarchive.Gap {
	var only []logarchive.Segment
	for _, s := range segs {
		if IsSegment(s.Name) && s.Name[8:] >= fromSuffix(from) {
			only = append(only, s)
		}
	}
	return logarchive.Gaps(only, Follows)
}

// fromSuffix compares segments across timelines by log and segment number.
func fromSuffix(from string) string {
	if len(from) < 24 {
		return ""
	}
	return from[8:24]
}
