package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/lifeboat-backup/lifeboat/engine/replicate"
	"github.com/lifeboat-backup/lifeboat/engine/repo"
	"github.com/lifeboat-backup/lifeboat/engine/repo/storage"
	"github.com/lifeboat-backup/lifeboat/policies"
)

// Engine is a repository engine as a policy run sees it: the native
// repository (Native) or a restic repository (engine/restic). Snapshots of
// both are *repo.Snapshot records, so listing, retention and restore
// selection treat them alike.
type Engine interface {
	// Name is "native" or "restic".
	Name() string
	// Backup stores one snapshot of src.
	Backup(ctx context.Context, src Source, opts BackupOptions) (*BackupResult, error)
	// Snapshots lists all snapshots, oldest first.
	Snapshots(ctx context.Context) ([]*repo.Snapshot, error)
	// Forget removes snapshots by ID; their data goes at the next Prune.
	Forget(ctx context.Context, ids []repo.ID) error
	// Prune removes data no snapshot references.
	Prune(ctx context.Context) (*repo.PruneResult, error)
	// Replicate copies every snapshot the secondary lacks there.
	Replicate(ctx context.Context, sec policies.Secondary) (*ReplicaStats, error)
	// Size is the bytes the repository stores (for the run record).
	Size(ctx context.Context) (int64, error)
	// SaveRunRecord keeps a copy of a run's record in the repository, where
	// the engine has a place for it (native: records/runs/POLICY).
	SaveRunRecord(ctx context.Context, policy string, t time.Time, res *RunResult) error
}

// ReplicaStats is what one replication copied.
type ReplicaStats struct {
	Copied int           // objects (native) or snapshots (restic) copied
	Bytes  int64         // bytes copied, where the engine reports them
	Lag    time.Duration // age of the newest snapshot the secondary lacked
}

// Native is the native repository as an Engine.
type Native struct{ R *repo.Repository }

// Name implements Engine.
func (Native) Name() string { return "native" }

// Backup implements Engine.
func (n Native) Backup(ctx context.Context, src Source, opts BackupOptions) (*BackupResult, error) {
	return Backup(ctx, n.R, src, opts)
}

// Snapshots implements Engine.
func (n Native) Snapshots(ctx context.Context) ([]*repo.Snapshot, error) { return n.R.Snapshots(ctx) }

// Forget implements Engine.
func (n Native) Forget(ctx context.Context, ids []repo.ID) error {
	for _, id := range ids {
		if err := n.R.DeleteSnapshot(ctx, id); err != nil {
			return err
		}
	}
	return nil
}

// Prune implements Engine.
func (n Native) Prune(ctx context.Context) (*repo.PruneResult, error) {
	return n.R.Prune(ctx, repo.PruneOptions{})
}

// Replicate implements Engine: the secondary is opened (created if
// missing) and receives every object it lacks. It is a byte copy, opened
// with the primary's keys.
func (n Native) Replicate(ctx context.Context, sec policies.Secondary) (*ReplicaStats, error) {
	dst, err := storage.OpenWith(ctx, sec.URL, storage.OpenOptions{Create: true, Ping: true})
	if err != nil {
		return nil, err
	}
	defer dst.Close()
	res, err := replicate.Replicate(ctx, n.R, dst, ReplicateOptions(sec))
	if err != nil {
		return nil, err
	}
	return &ReplicaStats{Copied: res.Copied, Bytes: res.Bytes, Lag: res.Lag}, nil
}

// ReplicateOptions are the replication settings of a policy's secondary.
func ReplicateOptions(sec policies.Secondary) replicate.Options {
	return replicate.Options{DeleteAfter: sec.Replication.DeleteAfter.D(), MaxDeletePercent: sec.Replication.MaxDeletePercent}
}

// Size implements Engine: the bytes of all packs.
func (n Native) Size(context.Context) (int64, error) {
	var total int64
	for _, pk := range n.R.Index().Packs() {
		total += pk.Size
	}
	return total, nil
}

// SaveRunRecord implements Engine.
func (n Native) SaveRunRecord(ctx context.Context, policy string, t time.Time, res *RunResult) error {
	data, err := json.Marshal(res)
	if err != nil {
		return err
	}
	_, err = n.R.SaveRecord(ctx, "runs/"+policy, t, data)
	return err
}

// FindSnapshot picks ref among sns (oldest first): "latest" is the newest
// that filter keeps (nil: any) and that is not suspect, anything else a unique ID prefix. It is
// repo.Repository.FindSnapshot for engines that list all snapshots at once.
func FindSnapshot(sns []*repo.Snapshot, ref string, filter func(*repo.Snapshot) bool) (*repo.Snapshot, error) {
	if ref == "latest" {
		for i := len(sns) - 1; i >= 0; i-- {
			if sns[i].Suspect == "" && (filter == nil || filter(sns[i])) {
				return sns[i], nil
			}
		}
		return nil, fmt.Errorf("latest snapshot: %w (repository has no matching snapshot)", repo.ErrNotFound)
	}
	var match []*repo.Snapshot
	for _, s := range sns {
		if ref != "" && strings.HasPrefix(s.ID.String(), strings.ToLower(ref)) {
			match = append(match, s)
		}
	}
	switch {
	case len(match) == 0:
		return nil, fmt.Errorf("snapshot %q: %w", ref, repo.ErrNotFound)
	case len(match) > 1:
		return nil, fmt.Errorf("snapshot prefix %q is ambiguous: %d snapshots match", ref, len(match))
	}
	return match[0], nil
}
