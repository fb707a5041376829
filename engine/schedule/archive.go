package schedule

import (
	"context"
	"time"

	"github.com/lifeboat-backup/lifeboat/engine"
	"github.com/lifeboat-backup/lifeboat/engine/logarchive"
	"github.com/lifeboat-backup/lifeboat/engine/repo"
	"github.com/lifeboat-backup/lifeboat/engine/snapshot"
	"github.com/lifeboat-backup/lifeboat/targets/postgres/physical"
	"github.com/lifeboat-backup/lifeboat/targets/postgres/wal"
)

// The log archive (engine/logarchive) beside snapshots: retention, check
// and status work out PITR windows from the snapshots that stay.

// IsPITRBase tells whether a snapshot can start a point-in-time recovery:
// a postgres snapshot only when physical, any other kind's snapshot.
func IsPITRBase(sn *snapshot.Snapshot) bool {
	if sn.Suspect != "" {
		return false
	}
	if sn.Kind == "postgres" {
		return sn.RecoveryPoint.Details["method"] == physical.Method
	}
	return true
}

func rpTime(sn *snapshot.Snapshot) time.Time {
	if !sn.RecoveryPoint.Time.IsZero() {
		return sn.RecoveryPoint.Time
	}
	return sn.Time
}

// ArchiveWindows plans the archive's windows for the snapshots kept.
func ArchiveWindows(ctx context.Context, r *repo.Repository, kept []*snapshot.Snapshot) ([]logarchive.Window, error) {
	oldest := map[string]time.Time{}
	startWAL := map[string]string{}
	for _, sn := range kept {
		if !IsPITRBase(sn) {
			continue
		}
		if t, ok := oldest[sn.Target]; !ok || rpTime(sn).Before(t) {
			oldest[sn.Target] = rpTime(sn)
			startWAL[sn.Target] = sn.RecoveryPoint.Details["start_wal"]
		}
	}
	rule := func(target, stream string) func([]logarchive.Segment) []logarchive.Gap {
		if stream != wal.Stream {
			return nil
		}
		from := startWAL[target]
		return func(segs []logarchive.Segment) []logarchive.Gap { return wal.Chain(segs, from) }
	}
	return logarchive.New(r).Plan(ctx, oldest, rule)
}

// forgetArchive removes, after a forget, the segments that end before the
// oldest snapshot left of their target (native repositories).
func forgetArchive(ctx context.Context, e engine.Engine) (int, error) {
	n, ok := e.(engine.Native)
	if !ok {
		return 0, nil
	}
	sns, err := e.Snapshots(ctx)
	if err != nil {
		return 0, err
	}
	ws, err := ArchiveWindows(ctx, n.R, sns)
	if err != nil {
		return 0, err
	}
	return logarchive.New(n.R).Apply(ctx, ws)
}
