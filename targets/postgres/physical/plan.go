package physical

import (
	"fmt"
	"regexp"

	"github.com/lifeboat-backup/lifeboat/engine/logarchive"
	"github.com/lifeboat-backup/lifeboat/engine/repo"
	"github.com/lifeboat-backup/lifeboat/engine/snapshot"
	"github.com/lifeboat-backup/lifeboat/targets/postgres/wal"
)

var lsnRE = regexp.MustCompile(`^[0-9A-Fa-f]{1,8}/[0-9A-Fa-f]{1,8}$`)

// Target is a recovery target: a time, an LSN, a restore point name or
// the end of the archive.
type Target struct {
	Until logarchive.Until
	LSN   string // set when Until.Raw is an LSN
	Name  string // set when Until.Raw is neither a time, an LSN nor latest
}

// ParseTarget reads --until for PostgreSQL.
func ParseTarget(u logarchive.Until) Target {
	t := Target{Until: u}
	switch {
	case u.Latest || !u.Time.IsZero():
	case lsnRE.MatchString(u.Raw):
		t.LSN = u.Raw
	default:
		t.Name = u.Raw
	}
	return t
}

// Recovery are the recovery settings for the target.
func (t Target) Recovery(restoreCommand string, noArchive bool) Recovery {
	return Recovery{RestoreCommand: restoreCommand, Time: t.Until.Time, LSN: t.LSN, Name: t.Name, NoArchive: noArchive}
}

// IsBase tells whether sn is a physical base of target.
func IsBase(sn *snapshot.Snapshot, target string) bool {
	return sn.Target == target && sn.RecoveryPoint.Details["method"] == Method && sn.Suspect == ""
}

// ChooseBase picks the newest physical base of target (snaps in any
// order) from before the point: for a time, a base that was consistent
// (its recovery point) at or before it; for an LSN, one whose end LSN is
// at or before it; for a name or latest, the newest.
func ChooseBase(snaps []*snapshot.Snapshot, target string, t Target) (*snapshot.Snapshot, error) {
	var lsn uint64
	if t.LSN != "" {
		var err error
		if lsn, err = wal.ParseLSN(t.LSN); err != nil {
			return nil, err
		}
	}
	var best *snapshot.Snapshot
	bases := 0
	for _, sn := range snaps {
		if !IsBase(sn, target) {
			continue
		}
		bases++
		switch {
		case !t.Until.Time.IsZero():
			if sn.RecoveryPoint.Time.After(t.Until.Time) {
				continue
			}
		case t.LSN != "":
			end, err := wal.ParseLSN(sn.RecoveryPoint.Details["end_lsn"])
			if err != nil || end > lsn {
				continue
			}
		}
		if best == nil || sn.RecoveryPoint.Time.After(best.RecoveryPoint.Time) {
			best = sn
		}
	}
	if best == nil {
		if bases == 0 {
			return nil, fmt.Errorf("target %s has no physical base (method: physical) to recover from: %w", target, repo.ErrNotFound)
		}
		return nil, fmt.Errorf("target %s: no physical base from before %s (the PITR window starts at the oldest base): %w", target, t.Until, repo.ErrNotFound)
	}
	return best, nil
}
