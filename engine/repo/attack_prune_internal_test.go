package repo

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gocloud.dev/blob/memblob"

	"github.com/lifeboat-backup/lifeboat/engine/snapshot"
)

// A host (host key and bucket credentials) writes an index that claims the
// blobs of a genuine pack in a pack of garbage. The owner's prune kept
// whichever copy it met first and deleted the genuine pack in 5 of 12
// runs. Now copies are read back and only a verified one is kept (the
// owner); a host that cannot verify data keeps them all.
func TestAttackShadowIndexPrune(t *testing.T) {
	ctx := context.Background()
	for _, pruner := range []string{"owner", "host"} {
		t.Run(pruner, func(t *testing.T) {
			b := memblob.OpenBucket(nil)
			res, err := Init(ctx, b, InitOptions{PackSize: 256 << 10})
			require.NoError(t, err)
			owner, err := ParseCredentials([]byte(res.OwnerIdentity))
			require.NoError(t, err)
			host, err := ParseCredentials([]byte(res.HostIdentity))
			require.NoError(t, err)

			// A genuine snapshot of three blobs in one data pack.
			r, err := Open(ctx, b, owner)
			require.NoError(t, err)
			var ids []snapshot.ID
			var data [][]byte
			for range 3 {
				d := make([]byte, 40<<10)
				_, _ = rand.Read(d)
				id := r.BlobID(d)
				_, err := r.SaveBlob(ctx, DataBlob, id, d)
				require.NoError(t, err)
				ids, data = append(ids, id), append(data, d)
			}
			tw := r.NewTreeWriter(ctx)
			require.NoError(t, tw.Add(&snapshot.Node{Entry: snapshot.Entry{Path: "f", Type: snapshot.TypeFile}, Content: ids}))
			tree, err := tw.Close()
			require.NoError(t, err)
			require.NoError(t, r.Flush(ctx))
			_, err = r.SaveSnapshot(ctx, &snapshot.Snapshot{Time: time.Now(), Tree: tree, Target: "t", Kind: "files"})
			require.NoError(t, err)
			genuine, ok := r.Index().Lookup(ids[0])
			require.True(t, ok)

			// The host's shadow: garbage under a pack name, indexed with the
			// genuine pack's blob list.
			h, err := Open(ctx, b, host)
			require.NoError(t, err)
			for round := range 12 {
				garbage := make([]byte, genuine.PackSize)
				_, _ = rand.Read(garbage)
				gid := snapshot.NewRandomID()
				require.NoError(t, b.WriteAll(ctx, packKey(gid), garbage, nil))
				var blobs []BlobInfo
				h.Index().Each(func(l Location) {
					if l.Pack == genuine.Pack {
						blobs = append(blobs, l.BlobInfo)
					}
				})
				require.NoError(t, h.writeIndex(ctx, []PackInfo{{ID: gid, Size: genuine.PackSize, Hash: sha256.Sum256(garbage), Blobs: blobs}}))

				creds := owner
				if pruner == "host" {
					creds = host
				}
				p, err := Open(ctx, b, creds)
				require.NoError(t, err)
				_, err = p.Prune(ctx, PruneOptions{Grace: -1})
				require.NoError(t, err, "round %d", round)
				ok, err := b.Exists(ctx, packKey(genuine.Pack))
				require.NoError(t, err)
				require.True(t, ok, "round %d: the genuine pack was deleted", round)

				o, err := Open(ctx, b, owner)
				require.NoError(t, err)
				for i, id := range ids {
					got, err := o.LoadBlob(ctx, id, nil)
					require.NoError(t, err, "round %d", round)
					assert.True(t, bytes.Equal(data[i], got))
				}
			}
		})
	}
}
