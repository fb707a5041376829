package logarchive

import (
	"context"
	"time"
)

// Margin is how much older than the oldest kept base a segment must end
// before retention removes it: segment times are event or file times, a
// base's recovery point is when it became consistent, and a transaction
// that began before a base may end after it.
const Margin = time.Hour

// Window is a stream's PITR window after retention, and what retention
// removes from it.
type Window struct {
	Target, Stream string
	// From is the oldest kept base's recovery point: recovery to any point
	// from here to To is possible (gaps aside); zero without a base.
	From time.Time
	// To is the end of the newest archived segment.
	To       time.Time
	Segments int       // kept
	Remove   []Segment // segments retention removes
	Gaps     []Gap
}

// Plan works out the windows: oldestBase maps a target to the recovery
// point of its oldest kept snapshot (a target without one keeps every
// segment); rule gives a stream's chain check (nil, or a nil result: Gaps with Contiguous).
func (a *Archive) Plan(ctx context.Context, oldestBase map[string]time.Time, rule func(target, stream string) func(segs []Segment) []Gap) ([]Window, error) {
	targets, err := a.Targets(ctx)
	if err != nil {
		return nil, err
	}
	var out []Window
	for _, t := range targets {
		streams, err := a.Streams(ctx, t)
		if err != nil {
			return nil, err
		}
		for _, s := range streams {
			segs, _, err := a.List(ctx, t, s)
			if err != nil {
				return nil, err
			}
			if len(segs) == 0 {
				continue
			}
			w := Window{Target: t, Stream: s, From: oldestBase[t]}
			if !w.From.IsZero() {
				w.Remove = Expired(segs, w.From.Add(-Margin))
			}
			w.Segments = len(segs) - len(w.Remove)
			for _, seg := range segs {
				if seg.EndTime().After(w.To) {
					w.To = seg.EndTime()
				}
			}
			keep := without(segs, w.Remove)
			var r func([]Segment) []Gap
			if rule != nil {
				r = rule(t, s)
			}
			if r != nil {
				w.Gaps = r(keep)
			} else {
				w.Gaps = Gaps(keep, nil)
			}
			out = append(out, w)
		}
	}
	return out, nil
}

func without(segs, drop []Segment) []Segment {
	gone := map[string]bool{}
	for _, s := range drop {
		gone[s.Name] = true
	}
	var out []Segment
	for _, s := range segs {
		if !gone[s.Name] {
			out = append(out, s)
		}
	}
	return out
}

// Apply removes what the windows say; it returns how many segments went.
func (a *Archive) Apply(ctx context.Context, ws []Window) (int, error) {
	n := 0
	for _, w := range ws {
		for _, s := range w.Remove {
			if err := a.Delete(ctx, s); err != nil {
				return n, err
			}
			n++
		}
	}
	return n, nil
}
