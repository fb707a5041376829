package main

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/lifeboat-backup/lifeboat/engine"
	"github.com/lifeboat-backup/lifeboat/engine/logarchive"
	"github.com/lifeboat-backup/lifeboat/engine/repo"
	"github.com/lifeboat-backup/lifeboat/engine/schedule"
	"github.com/lifeboat-backup/lifeboat/engine/snapshot"
)

// The log archive (engine/logarchive) beside snapshots: retention, check
// and status work out PITR windows from the snapshots that stay.

// printWindows prints each archived stream's PITR window.
func (a *app) printWindows(ws []logarchive.Window, verb string) {
	if a.json || a.quiet {
		return
	}
	for _, w := range ws {
		from := "no base: nothing to recover from yet"
		if !w.From.IsZero() {
			from = fmt.Sprintf("restorable to any point from %s to %s", w.From.Local().Format(time.RFC3339), w.To.Local().Format(time.RFC3339))
		}
		fmt.Fprintf(a.stdout, "archive %s/%s: %s; %d segments kept, %s %d\n", termSafe(w.Target), termSafe(w.Stream), from, w.Segments, verb, len(w.Remove))
		for _, g := range w.Gaps {
			fmt.Fprintf(a.stdout, "  GAP: %s\n", termSafe(g.String()))
		}
	}
}

// forgetArchive plans the archive's retention for a forget that removes
// ids: segments that end before the oldest snapshot left of their target
// go (native repositories; nil otherwise).
func forgetArchive(ctx context.Context, e engine.Engine, ids []snapshot.ID) ([]logarchive.Window, error) {
	n, ok := e.(engine.Native)
	if !ok {
		return nil, nil
	}
	sns, err := e.Snapshots(ctx)
	if err != nil {
		return nil, err
	}
	var kept []*snapshot.Snapshot
	for _, sn := range sns {
		if !slices.Contains(ids, sn.ID) {
			kept = append(kept, sn)
		}
	}
	return schedule.ArchiveWindows(ctx, n.R, kept)
}

// applyArchive removes the segments the windows drop.
func applyArchive(ctx context.Context, e engine.Engine, ws []logarchive.Window) (int, error) {
	n, ok := e.(engine.Native)
	if !ok {
		return 0, nil
	}
	return logarchive.New(n.R).Apply(ctx, ws)
}

// checkArchive verifies the log archive (check): every segment's header,
// with readData (and the owner key) its content, and each stream's chain
// from its oldest base; problems go to res.Errors. It returns the number
// of segments checked.
func checkArchive(ctx context.Context, r *repo.Repository, readData bool, res *repo.CheckResult) (int, error) {
	la := logarchive.New(r)
	n, problems, err := la.Check(ctx, readData && r.CanReadData())
	if err != nil || n == 0 {
		return n, err
	}
	for _, p := range problems {
		res.Errors = append(res.Errors, p.Error())
	}
	sns, err := r.Snapshots(ctx)
	if err != nil {
		return n, err
	}
	ws, err := schedule.ArchiveWindows(ctx, r, sns)
	if err != nil {
		return n, err
	}
	for _, w := range ws {
		for _, g := range w.Gaps {
			res.Errors = append(res.Errors, g.String())
		}
	}
	return n, nil
}

// archiveState is a log archive stream in status.
type archiveState struct {
	Target     string    `json:"target"`
	Stream     string    `json:"stream"`
	Segments   int       `json:"segments"`
	Newest     time.Time `json:"newest"`      // end of the newest segment
	LagSeconds float64   `json:"lag_seconds"` // now - Newest
	PITRFrom   time.Time `json:"pitr_from,omitzero"`
	Gaps       []string  `json:"gaps,omitempty"`
	Problems   []string  `json:"-"`
}

// archiveStates is status's view of the log archive: lag, PITR window
// and gaps per stream (the host key suffices).
func archiveStates(ctx context.Context, r *repo.Repository) ([]archiveState, error) {
	sns, err := r.Snapshots(ctx)
	if err != nil {
		return nil, err
	}
	ws, err := schedule.ArchiveWindows(ctx, r, sns)
	if err != nil {
		return nil, err
	}
	var out []archiveState
	for _, w := range ws {
		as := archiveState{Target: w.Target, Stream: w.Stream, Segments: w.Segments + len(w.Remove), Newest: w.To,
			LagSeconds: time.Since(w.To).Seconds(), PITRFrom: w.From}
		for _, g := range w.Gaps {
			as.Gaps = append(as.Gaps, g.String())
			as.Problems = append(as.Problems, "log archive: "+g.String())
		}
		out = append(out, as)
	}
	return out, nil
}

func (a *app) printArchiveStates(as []archiveState) {
	for _, s := range as {
		fmt.Fprintf(a.stdout, "  archive %s/%s: %d segments, newest %s (lag %s)", termSafe(s.Target), termSafe(s.Stream), s.Segments,
			s.Newest.Local().Format(time.RFC3339), time.Duration(s.LagSeconds*float64(time.Second)).Round(time.Second))
		if !s.PITRFrom.IsZero() {
			fmt.Fprintf(a.stdout, "; PITR from %s", s.PITRFrom.Local().Format(time.RFC3339))
		}
		fmt.Fprintln(a.stdout)
	}
}
