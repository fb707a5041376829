package wal

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strconv"

	"github.com/lifeboat-backup/lifeboat/engine/logarchive"
)

// partialName is a streamed partial segment's object name:
// SEGMENT.RECEIVED.partial, RECEIVED being how many bytes of the segment
// had been received (8 hex digits, so names sort by it).
var partialName = regexp.MustCompile(`^([0-9A-F]{24})\.([0-9A-F]{8})\.partial$`)

// PartialName names the version of segment seg stored when received
// bytes of it had been streamed (wal receive). PostgreSQL never asks for
// such a name; Fetch serves the newest one for seg while seg itself is
// not archived.
func PartialName(seg string, received int64) string {
	return fmt.Sprintf("%s.%08X.partial", seg, received)
}

// ParsePartial splits a partial object name into its segment and the
// bytes received.
func ParsePartial(name string) (seg string, received int64, ok bool) {
	m := partialName.FindStringSubmatch(name)
	if m == nil {
		return "", 0, false
	}
	n, err := strconv.ParseInt(m[2], 16, 64)
	if err != nil {
		return "", 0, false
	}
	return m[1], n, true
}

// newestPartial is the name of the partial of seg with the most bytes
// received (logarchive.ErrNotFound when there is none).
func newestPartial(ctx context.Context, a Archive, target, seg string) (string, error) {
	names, err := a.Names(ctx, target, Stream, seg+".")
	if err != nil {
		return "", fmt.Errorf("wal fetch %s: %w", seg, err)
	}
	best, most := "", int64(-1)
	for _, n := range names {
		if s, got, ok := ParsePartial(n); ok && s == seg && got > most {
			best, most = n, got
		}
	}
	if best == "" {
		return "", fmt.Errorf("%s/%s/%s: %w", target, Stream, seg, logarchive.ErrNotFound)
	}
	return best, nil
}

// fetchSegment reads the archived file name, or for a segment archived
// only while it was written (wal receive), its newest partial version.
func fetchSegment(ctx context.Context, a Archive, target, name string) ([]byte, string, error) {
	data, _, err := a.Fetch(ctx, target, Stream, name)
	if err == nil || !errors.Is(err, logarchive.ErrNotFound) || !IsSegment(name) {
		return data, name, err
	}
	p, perr := newestPartial(ctx, a, target, name)
	if perr != nil {
		if errors.Is(perr, logarchive.ErrNotFound) {
			return nil, name, err
		}
		return nil, name, perr
	}
	data, _, err = a.Fetch(ctx, target, Stream, p)
	if errors.Is(err, logarchive.ErrNotFound) {
		// Superseded by the full segment under the listing.
		data, _, err = a.Fetch(ctx, target, Stream, name)
		return data, name, err
	}
	return data, p, err
}
