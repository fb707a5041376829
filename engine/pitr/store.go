package pitr

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/lifeboat-backup/lifeboat/engine/logarchive"
	"github.com/lifeboat-backup/lifeboat/targets/mysql/binlog"
)

// Binlog is one target's binlog stream in a repository's log archive: a
// binlog.Store (host key) and binlog.Fetcher (owner key).
type Binlog struct {
	a      *logarchive.Archive
	target string
	// Damaged receives the segments List had to skip (undecodable).
	Damaged func(error)
}

// NewBinlog returns target's binlog stream in a.
func NewBinlog(a *logarchive.Archive, target string) *Binlog { return &Binlog{a: a, target: target} }

// Put implements binlog.Store.
func (b *Binlog) Put(ctx context.Context, s binlog.Segment, data []byte) error {
	_, err := b.a.Put(ctx, toArchive(b.target, s), data)
	return err
}

// List implements binlog.Store: the segments in log order; a segment
// whose header cannot be read is skipped (and passed to Damaged).
func (b *Binlog) List(ctx context.Context) ([]binlog.Segment, error) {
	segs, damaged, err := b.a.List(ctx, b.target, binlog.StreamName)
	if err != nil {
		return nil, err
	}
	for _, d := range damaged {
		if b.Damaged != nil {
			b.Damaged(d)
		}
	}
	out := make([]binlog.Segment, 0, len(segs))
	for _, s := range segs {
		bs, err := FromArchive(s)
		if err != nil {
			if b.Damaged != nil {
				b.Damaged(err)
			}
			continue
		}
		out = append(out, bs)
	}
	return out, nil
}

// Fetch implements binlog.Fetcher.
func (b *Binlog) Fetch(ctx context.Context, s binlog.Segment) ([]byte, error) {
	data, _, err := b.a.Fetch(ctx, b.target, binlog.StreamName, s.Name)
	return data, err
}

func toArchive(target string, s binlog.Segment) logarchive.Segment {
	d := map[string]string{"events": strconv.Itoa(s.Events)}
	if s.Closed != "" {
		d["closed"] = s.Closed
	}
	if s.Gap != "" {
		d["gap"] = s.Gap
	}
	return logarchive.Segment{Target: target, Stream: binlog.StreamName, Name: s.Name,
		FirstTime: s.FirstTime, LastTime: s.LastTime, Start: s.Start.String(), End: s.End.String(),
		GTID: s.GTID, Details: d}
}

// FromArchive reads a binlog segment's header.
func FromArchive(s logarchive.Segment) (binlog.Segment, error) {
	start, err1 := binlog.ParsePos(s.Start)
	end, err2 := binlog.ParsePos(s.End)
	if err := errors.Join(err1, err2); err != nil {
		return binlog.Segment{}, fmt.Errorf("binlog segment %s: %w", s.Ref(), err)
	}
	if binlog.SegmentName(start) != s.Name || end.Compare(start) <= 0 {
		return binlog.Segment{}, fmt.Errorf("binlog segment %s: its name and positions %s-%s disagree", s.Ref(), start, end)
	}
	n, _ := strconv.Atoi(s.Details["events"])
	return binlog.Segment{Name: s.Name, Start: start, End: end, FirstTime: s.FirstTime, LastTime: s.LastTime,
		GTID: s.GTID, Events: n, Closed: s.Details["closed"], Gap: s.Details["gap"], Size: s.Size}, nil
}

// Follows is binlog.Follows for logarchive.Gaps.
func Follows(prev, next logarchive.Segment) bool {
	p, err1 := FromArchive(prev)
	n, err2 := FromArchive(next)
	return err1 == nil && err2 == nil && binlog.Follows(p, n)
}
