package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/lifeboat-backup/lifeboat/engine/replicate"
	"github.com/lifeboat-backup/lifeboat/engine/repo"
	"github.com/lifeboat-backup/lifeboat/engine/snapshot"
	"github.com/lifeboat-backup/lifeboat/engine/storage"
	"github.com/lifeboat-backup/lifeboat/policies"
	"github.com/lifeboat-backup/lifeboat/restore"
)

// Engine is a repository engine as a policy run sees it: the native
// repository (Native) or a restic repository (engine/restic). Snapshots of
// both are *repo.Snapshot records, so listing, retention and restore
// selection treat them alike.
type Engine interface {
	// Repository is how restores, drills, failovers and exports read it.
	snapshot.Repository
	// Name is "native" or "restic".
	Name() string
	// Backup stores one snapshot of src.
	Backup(ctx context.Context, src Source, opts BackupOptions) (*BackupResult, error)
	// Snapshots lists all snapshots, oldest first.
	Snapshots(ctx context.Context) ([]*snapshot.Snapshot, error)
	// Forget removes snapshots by ID; their data goes at the next Prune.
	Forget(ctx context.Context, ids []snapshot.ID) error
	// Prune removes data no snapshot references.
	Prune(ctx context.Context) (*repo.PruneResult, error)
	// Replicate copies every snapshot the secondary lacks there.
	Replicate(ctx context.Context, sec policies.Secondary) (*ReplicaStats, error)
	// Size is the bytes the repository stores (for the run record).
	Size(ctx context.Context) (int64, error)
	// SaveRecord keeps a copy of a run's or drill's record (v as JSON) in
	// the repository, where the engine has a place for it (native:
	// records/KIND, encrypted like metadata; restic has none).
	SaveRecord(ctx context.Context, kind string, t time.Time, v any) error
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

// FindSnapshot implements snapshot.Repository.
func (n Native) FindSnapshot(ctx context.Context, ref string, filter func(*snapshot.Snapshot) bool) (*snapshot.Snapshot, error) {
	return n.R.FindSnapshot(ctx, ref, filter)
}

// Open implements snapshot.Repository; it needs the owner key.
func (n Native) Open(ctx context.Context, sn *snapshot.Snapshot) (snapshot.Reader, error) {
	return n.R.OpenSnapshot(ctx, sn)
}

// RestoreFiles implements snapshot.Repository.
func (n Native) RestoreFiles(ctx context.Context, sn *snapshot.Snapshot, dest string, opts snapshot.RestoreOptions) (*snapshot.RestoreStats, error) {
	if !n.R.CanReadData() {
		return nil, fmt.Errorf("restore snapshot %s: %w", sn.ID.Short(), repo.ErrNoDataKey)
	}
	return restore.Files(ctx, n.R, sn, dest, opts)
}

// CanReadData implements snapshot.Repository.
func (n Native) CanReadData() bool { return n.R.CanReadData() }

// Snapshots implements Engine.
func (n Native) Snapshots(ctx context.Context) ([]*snapshot.Snapshot, error) {
	return n.R.Snapshots(ctx)
}

// Forget implements Engine.
func (n Native) Forget(ctx context.Context, ids []snapshot.ID) error {
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

// SaveRecord implements Engine.
func (n Native) SaveRecord(ctx context.Context, kind string, t time.Time, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = n.R.SaveRecord(ctx, kind, t, data)
	return err
}

// FindSnapshot picks ref among sns (oldest first): "latest" is the newest
// that filter keeps (nil: any) and that is not suspect, anything else a unique ID prefix. It is
// repo.Repository.FindSnapshot for engines that list all snapshots at once.
func FindSnapshot(sns []*snapshot.Snapshot, ref string, filter func(*snapshot.Snapshot) bool) (*snapshot.Snapshot, error) {
	if ref == "latest" {
		for i := len(sns) - 1; i >= 0; i-- {
			if sns[i].Suspect == "" && (filter == nil || filter(sns[i])) {
				return sns[i], nil
			}
		}
		return nil, fmt.Errorf("latest snapshot: %w (repository has no matching snapshot)", repo.ErrNotFound)
	}
	var match []*snapshot.Snapshot
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
