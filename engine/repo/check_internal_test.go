package repo

import (
	"context"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gocloud.dev/blob"
	"gocloud.dev/blob/memblob"

	"github.com/lifeboat-backup/lifeboat/engine/snapshot"
)

// TestCheckPackHeaderAgainstIndex: check --read-data matches each pack's
// header with the index entries that name the pack (counted per pack, not
// held per blob) and names every index entry the header lacks or
// contradicts; a clean repository reports nothing.
func TestCheckPackHeaderAgainstIndex(t *testing.T) {
	ctx := context.Background()
	b := memblob.OpenBucket(nil)
	res, err := Init(ctx, b, InitOptions{})
	require.NoError(t, err)
	owner, err := ParseIdentities([]byte(res.OwnerIdentity))
	require.NoError(t, err)
	r, err := Open(ctx, b, Credentials{Identities: owner})
	require.NoError(t, err)
	for i := range 20 {
		data := []byte(strings.Repeat(fmt.Sprintf("blob %d ", i), 500))
		_, err := r.SaveBlob(ctx, DataBlob, r.BlobID(data), data)
		require.NoError(t, err)
	}
	require.NoError(t, r.Flush(ctx))

	cr, err := r.Check(ctx, CheckOptions{ReadDataPercent: 100})
	require.NoError(t, err)
	require.Empty(t, cr.Errors)
	require.Positive(t, cr.PacksRead)

	p := r.Index().Packs()[0]
	r.Index().EachCopy(func(l Location) {
		if l.Pack == p.ID {
			p.Blobs = append(p.Blobs, l.BlobInfo)
		}
	})
	require.NotEmpty(t, p.Blobs)
	real := p.Blobs[0]
	moved := real
	moved.Offset++
	ghost := BlobInfo{Type: DataBlob, ID: snapshot.ID{0xee}, Offset: 0, Length: 10, RawLength: 10}
	// The index files are replaced by one that lists the pack with every
	// real entry, one at a wrong offset and one the pack lacks.
	lying := p
	lying.Blobs = append(append([]BlobInfo{}, p.Blobs...), moved, ghost)
	it := b.List(&blob.ListOptions{Prefix: "index/"})
	for {
		obj, err := it.Next(ctx)
		if err == io.EOF {
			break
		}
		require.NoError(t, err)
		require.NoError(t, b.Delete(ctx, obj.Key))
	}
	require.NoError(t, r.writeIndex(ctx, []PackInfo{lying}))

	cr, err = r.Check(ctx, CheckOptions{ReadDataPercent: 100})
	require.NoError(t, err)
	key := packKey(p.ID)
	assert.ElementsMatch(t, []string{
		key + ": blob " + real.ID.String() + ": pack header disagrees with the index",
		key + ": blob " + ghost.ID.String() + ": pack header disagrees with the index",
	}, cr.Errors)
	assert.Equal(t, 1, cr.PacksFailed)
}
