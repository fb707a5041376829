package repo

import (
	"sync"

	"github.com/zeebo/blake3"

	"github.com/lifeboat-backup/lifeboat/engine/snapshot"
)

// hasher computes blob IDs: BLAKE3 in keyed mode, so IDs reveal nothing about
// content to whoever can list the bucket.
type hasher struct{ pool sync.Pool }

func newHasher(key []byte) *hasher {
	tmpl, err := blake3.NewKeyed(key)
	if err != nil {
		panic(err) // key length is validated when the key file is loaded
	}
	h := &hasher{}
	h.pool.New = func() any { return tmpl.Clone() }
	return h
}

func (h *hasher) sum(data []byte) snapshot.ID {
	x := h.pool.Get().(*blake3.Hasher)
	x.Reset()
	_, _ = x.Write(data)
	var id snapshot.ID
	x.Sum(id[:0])
	h.pool.Put(x)
	return id
}
