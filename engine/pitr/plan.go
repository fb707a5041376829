package pitr

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/lifeboat-backup/lifeboat/engine/snapshot"
	"github.com/lifeboat-backup/lifeboat/targets/mysql/binlog"
)

// Plan is a point-in-time restore: the base snapshot, and the archived
// segments replayed on top of it from its binlog position.
type Plan struct {
	Base  *snapshot.Snapshot
	From  binlog.Pos
	Chain []binlog.Segment
	Point binlog.Point
}

// SnapshotPos returns the binlog position a mysql snapshot recorded.
func SnapshotPos(sn *snapshot.Snapshot) (binlog.Pos, bool) {
	d := sn.RecoveryPoint.Details
	if d["binlog_file"] == "" || d["binlog_position"] == "" {
		return binlog.Pos{}, false
	}
	p, err := binlog.ParsePos(d["binlog_file"] + ":" + d["binlog_position"])
	return p, err == nil
}

// snapshotHas tells whether a snapshot already holds transaction g (its
// recorded GTID position is at or past it in g's domain).
func snapshotHas(sn *snapshot.Snapshot, g binlog.GTID) bool {
	for _, s := range strings.Split(sn.RecoveryPoint.Details["gtid_binlog_pos"], ",") {
		if h, err := binlog.ParseGTID(s); err == nil && h.Domain == g.Domain && h.Seq >= g.Seq {
			return true
		}
	}
	return false
}

// candidates are target's mysql snapshots with a binlog position that
// are not suspect, newest recovery point first.
func candidates(snaps []*snapshot.Snapshot, target string) []*snapshot.Snapshot {
	var out []*snapshot.Snapshot
	for _, sn := range snaps {
		if _, ok := SnapshotPos(sn); ok && sn.Target == target && sn.Kind == "mysql" && sn.Suspect == "" {
			out = append(out, sn)
		}
	}
	slices.SortFunc(out, func(a, b *snapshot.Snapshot) int { return b.RecoveryPoint.Time.Compare(a.RecoveryPoint.Time) })
	return out
}

// before tells whether sn's data is all at or before p.
func before(sn *snapshot.Snapshot, pos binlog.Pos, p binlog.Point) bool {
	switch {
	case p.Latest:
		return true
	case p.Pos != nil:
		return pos.Compare(*p.Pos) <= 0
	case p.GTID != nil:
		return !snapshotHas(sn, *p.GTID)
	}
	return !sn.RecoveryPoint.Time.Truncate(time.Second).After(p.Time)
}

// Choose picks the newest snapshot of target whose data lies before p
// and from whose binlog position the archive reaches p without a gap.
// It fails with a *binlog.RefusedError that says why no snapshot does.
func Choose(snaps []*snapshot.Snapshot, target string, segs []binlog.Segment, p binlog.Point) (*Plan, error) {
	cands := candidates(snaps, target)
	var first error
	tried := 0
	for _, sn := range cands {
		pos, _ := SnapshotPos(sn)
		if !before(sn, pos, p) {
			continue
		}
		tried++
		chain, err := binlog.Chain(segs, pos, p)
		if err == nil {
			return &Plan{Base: sn, From: pos, Chain: chain, Point: p}, nil
		}
		if first == nil {
			first = fmt.Errorf("from snapshot %s (%s, %s): %w", sn.ID.Short(), sn.RecoveryPoint.Time.Format(time.RFC3339), pos, err)
		}
	}
	if tried == 0 {
		return nil, &binlog.RefusedError{Reason: fmt.Sprintf("no snapshot of target %q with a binlog position lies before %s (%d with a position in all)", target, p, len(cands))}
	}
	reason := first.Error()
	if tried > 1 {
		reason += fmt.Sprintf(" (and from %d older snapshots)", tried-1)
	}
	if bs := binlog.Breaks(segs); len(bs) > 0 {
		last := bs[len(bs)-1]
		// The oldest snapshot after the newest gap: where PITR works again.
		var again *snapshot.Snapshot
		for _, sn := range cands {
			if pos, _ := SnapshotPos(sn); pos.Compare(last.Before.Start) >= 0 {
				again = sn
			}
		}
		if again != nil {
			reason += fmt.Sprintf("; point-in-time restores work again from snapshot %s (%s)", again.ID.Short(), again.RecoveryPoint.Time.Format(time.RFC3339))
		} else {
			reason += "; point-in-time restores work again after the next snapshot"
		}
	}
	return nil, &binlog.RefusedError{Reason: reason}
}

// Status is the state of a target's binlog archive.
type Status struct {
	Target   string
	Segments int
	Bytes    int64
	Events   int
	Newest   time.Time // the newest archived event
	Lag      time.Duration
	Gaps     []binlog.Break
	// Window: every second from From to Newest can be restored (base
	// snapshot FromSnapshot); zero From: none can (no snapshot before
	// the archive's end without a gap after it).
	From         time.Time
	FromSnapshot *snapshot.Snapshot
	// GapOpen: the newest gap comes after every snapshot: PITR is
	// impossible until the next snapshot.
	GapOpen bool
}

// Describe returns the status of target's archive at now.
func Describe(target string, snaps []*snapshot.Snapshot, segs []binlog.Segment, now time.Time) Status {
	st := Status{Target: target, Segments: len(segs), Gaps: binlog.Breaks(segs)}
	for _, s := range segs {
		st.Bytes += s.Size
		st.Events += s.Events
		if s.LastTime.After(st.Newest) {
			st.Newest = s.LastTime
		}
	}
	if !st.Newest.IsZero() {
		st.Lag = max(now.Sub(st.Newest), 0)
	}
	cands := candidates(snaps, target)
	for i := len(cands) - 1; i >= 0; i-- { // oldest first
		pos, _ := SnapshotPos(cands[i])
		if _, err := binlog.Chain(segs, pos, binlog.Point{Latest: true}); err == nil {
			st.From, st.FromSnapshot = cands[i].RecoveryPoint.Time, cands[i]
			break
		}
	}
	if n := len(st.Gaps); n > 0 && st.FromSnapshot == nil {
		st.GapOpen = true
	} else if n > 0 {
		pos, _ := SnapshotPos(st.FromSnapshot)
		st.GapOpen = pos.Compare(st.Gaps[n-1].Before.Start) < 0
	}
	return st
}

// Window says in words which points can be restored.
func (s Status) Window() string {
	switch {
	case s.Segments == 0:
		return "no binlog archived"
	case s.FromSnapshot == nil && len(s.Gaps) > 0:
		return fmt.Sprintf("not restorable to a point: %s; possible again after the next snapshot", s.Gaps[len(s.Gaps)-1])
	case s.FromSnapshot == nil:
		return "not restorable to a point yet: no snapshot with a binlog position inside the archive (take one)"
	}
	return fmt.Sprintf("restorable to any second from %s (snapshot %s) to %s", s.From.UTC().Format(time.RFC3339), s.FromSnapshot.ID.Short(), s.Newest.UTC().Format(time.RFC3339))
}

// ParsePoint reads --until (RFC 3339, "YYYY-MM-DD HH:MM:SS" in loc, or
// "latest"), --until-gtid and --until-position; exactly one is given.
func ParsePoint(until, gtid, pos string, loc *time.Location) (binlog.Point, error) {
	n := 0
	for _, s := range []string{until, gtid, pos} {
		if s != "" {
			n++
		}
	}
	if n != 1 {
		return binlog.Point{}, errors.New("give one of --until TIME|latest, --until-gtid or --until-position")
	}
	switch {
	case gtid != "":
		g, err := binlog.ParseGTID(gtid)
		if err != nil {
			return binlog.Point{}, err
		}
		return binlog.Point{GTID: &g}, nil
	case pos != "":
		p, err := binlog.ParsePos(pos)
		if err != nil {
			return binlog.Point{}, err
		}
		return binlog.Point{Pos: &p}, nil
	case until == "latest":
		return binlog.Point{Latest: true}, nil
	}
	if t, err := time.Parse(time.RFC3339, until); err == nil {
		if t.Nanosecond() != 0 {
			return binlog.Point{}, fmt.Errorf("--until %q: whole seconds only (the binary log's resolution)", until)
		}
		return binlog.Point{Time: t.UTC()}, nil
	}
	t, err := time.ParseInLocation(time.DateTime, until, cmp.Or(loc, time.UTC))
	if err != nil {
		return binlog.Point{}, fmt.Errorf("--until %q: want RFC 3339 (2026-12-07T10:14:59Z), \"YYYY-MM-DD HH:MM:SS\" in the policy's time zone, or latest", until)
	}
	return binlog.Point{Time: t.UTC()}, nil
}

// ServerID derives a replica server id from the policy and target names
// (policy archive.server_id overrides it): stable, and unlikely to clash
// with the small ids servers usually have.
func ServerID(policy, target string) uint32 {
	h := uint32(2166136261)
	for _, c := range []byte(policy + "\x00" + target) {
		h = (h ^ uint32(c)) * 16777619
	}
	return 1<<30 | h&(1<<30-1)
}
