// Package repotest creates repositories for tests.
package repotest

import (
	"context"
	"strings"
	"testing"

	"filippo.io/age"
	"github.com/stretchr/testify/require"
	"gocloud.dev/blob"

	"github.com/lifeboat-backup/lifeboat/engine/repo"
	"github.com/lifeboat-backup/lifeboat/engine/repo/chunker"
	"github.com/lifeboat-backup/lifeboat/engine/storage"
)

// Repo is a freshly initialized repository with its two identities, each
// pinned to the repository's signing key as init's key files are.
type Repo struct {
	Bucket *blob.Bucket
	Owner  repo.Credentials
	Host   repo.Credentials
}

// SmallChunks are chunker params that give many chunks on small test data.
var SmallChunks = chunker.Params{Min: 16 << 10, Avg: 64 << 10, Max: 256 << 10}

// Init initializes a repository in b (owner and host identities generated).
// Zero params mean SmallChunks; packSize 0 means 1 MiB, so tests see many packs.
func Init(t testing.TB, b *blob.Bucket, params chunker.Params, packSize int) *Repo {
	t.Helper()
	if params == (chunker.Params{}) {
		params = SmallChunks
	}
	if packSize == 0 {
		packSize = 1 << 20
	}
	res, err := repo.Init(context.Background(), b, repo.InitOptions{Chunker: params, PackSize: packSize})
	require.NoError(t, err)
	return &Repo{Bucket: b, Owner: creds(t, res.OwnerIdentity, res.Pin), Host: creds(t, res.HostIdentity, res.Pin)}
}

// creds are the credentials of an identity file as init writes it: the
// identity and the repository's pin.
func creds(t testing.TB, secret string, pin repo.Pin) repo.Credentials {
	ids, err := age.ParseIdentities(strings.NewReader(secret))
	require.NoError(t, err)
	return repo.Credentials{Identities: ids, Pins: []repo.Pin{pin}}
}

// Open opens the repository with the given credentials.
func (r *Repo) Open(t testing.TB, c repo.Credentials) *repo.Repository {
	t.Helper()
	rp, err := repo.Open(context.Background(), r.Bucket, c)
	require.NoError(t, err)
	return rp
}

// Mem initializes a repository in memory (mem://, closed at the end of
// the test) and opens it with the owner key.
func Mem(t testing.TB) (*Repo, *repo.Repository) {
	t.Helper()
	b, err := storage.OpenWith(context.Background(), "mem://", storage.OpenOptions{Create: true})
	require.NoError(t, err)
	t.Cleanup(func() { b.Close() })
	tr := Init(t, b, SmallChunks, 0)
	return tr, tr.Open(t, tr.Owner)
}
