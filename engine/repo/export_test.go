package repo

import (
	"context"
	"encoding/json"

	"gocloud.dev/blob"

	"github.com/lifeboat-backup/lifeboat/engine/repo/chunker"
	"github.com/lifeboat-backup/lifeboat/engine/snapshot"
)

// The tests seal passphrase key files with a cheap scrypt (2^10, not
// 2^18); productionScryptWorkFactor keeps the real one for
// TestScryptWorkFactor (package variables are set before init runs).
var productionScryptWorkFactor = scryptWorkFactor

func init() { scryptWorkFactor = 10 }

// InitFormat1 creates a repository as lifeboat wrote them before format 2
// (unsigned config, one key file encrypted to owner + host) and returns
// the generated owner and host identities.
func InitFormat1(ctx context.Context, b *blob.Bucket, params chunker.Params, packSize int) (owner, host string, err error) {
	_, owner, ownerPub, err := newIdentity(false)
	if err != nil {
		return "", "", err
	}
	_, host, hostPub, err := newIdentity(false)
	if err != nil {
		return "", "", err
	}
	k := &keyFile{Version: 1, MACKey: randBytes(32), GearKey: randBytes(32),
		PackRecipients: []string{ownerPub}, MetaRecipients: []string{ownerPub, hostPub}}
	recips, err := ParseRecipients(k.MetaRecipients)
	if err != nil {
		return "", "", err
	}
	data, err := sealKeyFile(k, recips...)
	if err != nil {
		return "", "", err
	}
	if err := writeNew(ctx, b, "keys/"+snapshot.NewRandomID().String(), data); err != nil {
		return "", "", err
	}
	cj, err := json.Marshal(Config{Version: 1, ID: snapshot.NewRandomID(), Chunker: params, Compression: "fastest", PackSize: packSize})
	if err != nil {
		return "", "", err
	}
	return owner, host, writeNew(ctx, b, configKey, cj)
}

// SetPruneSpill makes the index spill to its temporary file beyond entries
// entries and prune repack batches of at most batch kept blobs; the
// returned func restores both.
func SetPruneSpill(entries, batch int) func() {
	oe, ob := maxMemEntries, repackBatchBlobs
	maxMemEntries, repackBatchBlobs = entries, batch
	return func() { maxMemEntries, repackBatchBlobs = oe, ob }
}

// ExpectedPrune says, by the map-based bookkeeping prune used before the
// compact index (pruneOracle), which of the packs the index files list now
// a prune deletes (no marks, no other lock, no grace: it deletes in its
// second pass what it repacked in the first) and which it keeps.
func ExpectedPrune(ctx context.Context, r *Repository, repackUnused float64) (deleted, kept map[snapshot.ID]bool, err error) {
	var packs []PackInfo
	seen := map[snapshot.ID]bool{}
	err = r.eachIndexFile(ctx, func(_ string, ps []PackInfo, err error) error {
		if err != nil {
			return err
		}
		for _, p := range ps {
			if !seen[p.ID] {
				seen[p.ID] = true
				packs = append(packs, p)
			}
		}
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	used := map[snapshot.ID]bool{}
	ids, err := r.SnapshotIDs(ctx)
	if err != nil {
		return nil, nil, err
	}
	for _, id := range ids {
		sn, err := r.LoadSnapshot(ctx, id)
		if err != nil {
			return nil, nil, err
		}
		for _, t := range sn.Tree {
			used[t] = true
		}
		err = r.EachNode(ctx, sn, func(n *snapshot.Node) error {
			for _, c := range n.Content {
				used[c] = true
			}
			return nil
		})
		if err != nil {
			return nil, nil, err
		}
	}
	plan := pruneOracle(packs, nil, used, r.readData, func(l Location) error {
		_, err := r.loadAt(ctx, l, nil)
		return err
	})
	deleted, kept = map[snapshot.ID]bool{}, map[snapshot.ID]bool{}
	for _, p := range packs {
		u := plan.used[p.ID]
		data := false
		for _, b := range u {
			data = data || b.Type == DataBlob
		}
		switch {
		case len(u) == len(p.Blobs):
			kept[p.ID] = true
		case len(u) == 0:
			deleted[p.ID] = true
		case float64(plan.unused[p.ID]) > repackUnused*float64(p.Size) && (r.readData || !data):
			deleted[p.ID] = true
		default:
			kept[p.ID] = true
		}
	}
	return deleted, kept, nil
}
