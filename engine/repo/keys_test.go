package repo_test

import (
	"strings"
	"testing"

	"filippo.io/age"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gocloud.dev/blob"

	"github.com/lifeboat-backup/lifeboat/engine/repo"
	"github.com/lifeboat-backup/lifeboat/engine/repo/repotest"
)

func TestInitTwice(t *testing.T) {
	for _, bk := range []struct {
		name string
		url  func(t *testing.T) string
	}{
		{"mem", func(*testing.T) string { return "mem://" }},
		{"file", func(t *testing.T) string { return "file://" + t.TempDir() }},
	} {
		t.Run(bk.name, func(t *testing.T) {
			b := openBucket(t, bk.url(t))
			_, err := repo.Init(ctx, b, repo.InitOptions{})
			require.NoError(t, err)
			_, err = repo.Init(ctx, b, repo.InitOptions{})
			require.ErrorIs(t, err, repo.ErrAlreadyInitialized)
			_, err = repo.Init(ctx, b, repo.InitOptions{Passphrase: "x"})
			require.ErrorIs(t, err, repo.ErrAlreadyInitialized)
		})
	}
}

func TestOpenErrors(t *testing.T) {
	foreign, err := age.GenerateX25519Identity()
	require.NoError(t, err)
	foreignPQ, err := age.GenerateHybridIdentity()
	require.NoError(t, err)
	tr := repotest.Init(t, memBucket(t), repotest.SmallChunks, 0)
	tests := []struct {
		name   string
		bucket func(t *testing.T) *blob.Bucket
		creds  repo.Credentials
		want   error
	}{
		{"foreign identity", nil, repo.Credentials{Identities: []age.Identity{foreign}}, repo.ErrWrongKey},
		{"foreign hybrid identity", nil, repo.Credentials{Identities: []age.Identity{foreignPQ}}, repo.ErrWrongKey},
		{"no credentials", nil, repo.Credentials{}, repo.ErrWrongKey},
		{"empty mem bucket", memBucket, tr.Owner, repo.ErrNoRepository},
		{"empty file bucket", fileBucket, tr.Owner, repo.ErrNoRepository},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := tr.Bucket
			if tc.bucket != nil {
				b = tc.bucket(t)
			}
			_, err := repo.Open(ctx, b, tc.creds)
			require.ErrorIs(t, err, tc.want)
		})
	}
}

func TestPassphraseMode(t *testing.T) {
	if testing.Short() {
		t.Skip("scrypt is slow")
	}
	b := memBucket(t)
	res, err := repo.Init(ctx, b, repo.InitOptions{Passphrase: "correct horse", Chunker: repotest.SmallChunks, PackSize: 1 << 20})
	require.NoError(t, err)
	assert.Empty(t, res.OwnerIdentity)
	assert.Empty(t, res.HostIdentity)

	_, err = repo.Open(ctx, b, repo.Credentials{Passphrase: "battery staple"})
	require.ErrorIs(t, err, repo.ErrWrongKey)

	r, err := repo.Open(ctx, b, repo.Credentials{Passphrase: "correct horse"})
	require.NoError(t, err)
	assert.True(t, r.CanReadData())
	src := makeTree(t, 2<<20, 11)
	sn := backupDir(t, r, src)
	restoreSame(t, r, sn, src)

	warns, err := r.ChangePassphrase(ctx, "battery staple")
	require.NoError(t, err)
	assert.Empty(t, warns)
	_, err = repo.Open(ctx, b, repo.Credentials{Passphrase: "correct horse"})
	require.ErrorIs(t, err, repo.ErrWrongKey, "the old passphrase after the change")
	r, err = repo.Open(ctx, b, repo.Credentials{Passphrase: "battery staple"})
	require.NoError(t, err)
	restoreSame(t, r, sn, src)
	_, _, _, err = r.RotateHost(ctx)
	require.ErrorContains(t, err, "no host key")
}

func TestOwnerAsRecipientOnly(t *testing.T) {
	owner, err := age.GenerateX25519Identity()
	require.NoError(t, err)
	b := memBucket(t)
	res, err := repo.Init(ctx, b, repo.InitOptions{OwnerRecipients: []string{owner.Recipient().String()},
		Chunker: repotest.SmallChunks, PackSize: 1 << 20})
	require.NoError(t, err)
	assert.Empty(t, res.OwnerIdentity, "the owner key is the caller's: nothing generated")
	require.NotEmpty(t, res.HostIdentity)

	host, err := repo.Open(ctx, b, credsOf(t, res.HostIdentity))
	require.NoError(t, err)
	assert.False(t, host.CanReadData())
	src := makeTree(t, 2<<20, 12)
	sn := backupDir(t, host, src)
	require.ErrorIs(t, restoreErr(host, sn, t.TempDir()), repo.ErrNoDataKey)

	own, err := repo.Open(ctx, b, repo.Credentials{Identities: []age.Identity{owner}})
	require.NoError(t, err)
	assert.True(t, own.CanReadData())
	sn, err = own.FindSnapshot(ctx, "latest", nil)
	require.NoError(t, err)
	restoreSame(t, own, sn, src)
}

func TestHybridRecipients(t *testing.T) {
	owner, err := age.GenerateHybridIdentity()
	require.NoError(t, err)
	owner2, err := age.GenerateHybridIdentity()
	require.NoError(t, err)
	classic, err := age.GenerateX25519Identity()
	require.NoError(t, err)

	t.Run("mixed is rejected", func(t *testing.T) {
		for _, recips := range [][]string{
			{owner.Recipient().String(), classic.Recipient().String()},
			{classic.Recipient().String(), owner.Recipient().String()},
		} {
			b := memBucket(t)
			_, err := repo.Init(ctx, b, repo.InitOptions{OwnerRecipients: recips})
			require.ErrorContains(t, err, "hybrid")
			ok, err := b.Exists(ctx, "config")
			require.NoError(t, err)
			assert.False(t, ok, "a rejected init must not leave a repository")
		}
	})

	t.Run("end to end", func(t *testing.T) {
		b := memBucket(t)
		res, err := repo.Init(ctx, b, repo.InitOptions{
			OwnerRecipients: []string{owner.Recipient().String(), owner2.Recipient().String()},
			Chunker:         repotest.SmallChunks, PackSize: 1 << 20})
		require.NoError(t, err)
		require.Contains(t, res.HostIdentity, "AGE-SECRET-KEY-PQ-", "the host key of a hybrid repository is hybrid too")

		host, err := repo.Open(ctx, b, credsOf(t, res.HostIdentity))
		require.NoError(t, err)
		assert.False(t, host.CanReadData())
		src := makeTree(t, 2<<20, 13)
		backupDir(t, host, src)
		again := backupDir(t, host, src)
		assert.Zero(t, again.Stats.BytesAdded, "the host deduplicates against the hybrid-encrypted index")
		require.ErrorIs(t, restoreErr(host, again, t.TempDir()), repo.ErrNoDataKey)

		for i, id := range []*age.HybridIdentity{owner, owner2} {
			own, err := repo.Open(ctx, b, repo.Credentials{Identities: []age.Identity{id}})
			require.NoError(t, err, "owner %d", i)
			assert.True(t, own.CanReadData())
			sn, err := own.FindSnapshot(ctx, "latest", nil)
			require.NoError(t, err)
			restoreSame(t, own, sn, src)
			chk, err := own.Check(ctx, repo.CheckOptions{ReadDataPercent: 100})
			require.NoError(t, err)
			assert.Empty(t, chk.Errors)
		}
	})
}

// TestFormat1Migrate: a format 1 repository keeps opening (with a warning),
// and `key migrate` with the owner key makes it format 2: the host key
// keeps backing up, now pinned, and the owner restores what was written
// before and after.
func TestFormat1Migrate(t *testing.T) {
	b := memBucket(t)
	ownerSecret, hostSecret, err := repo.InitFormat1(ctx, b, repotest.SmallChunks, 1<<20)
	require.NoError(t, err)
	host, err := repo.Open(ctx, b, credsOf(t, hostSecret))
	require.NoError(t, err)
	assert.Contains(t, strings.Join(host.Warnings(), "\n"), "format 1")
	src := makeTree(t, 1<<20, 41)
	before := backupDir(t, host, src)

	own, err := repo.Open(ctx, b, credsOf(t, ownerSecret))
	require.NoError(t, err)
	_, _, err = own.AddOwner(ctx, "age1x")
	require.ErrorContains(t, err, "key migrate")
	_, _, err = own.Migrate(ctx, "", []string{ownerSecret})
	require.ErrorContains(t, err, "not a host key")
	pin, warns, err := own.Migrate(ctx, "", nil)
	require.NoError(t, err)
	assert.Empty(t, warns)
	assert.Equal(t, 2, own.Config().Version)

	hostCreds := credsOf(t, hostSecret)
	hostCreds.Pins = []repo.Pin{pin}
	host, err = repo.Open(ctx, b, hostCreds)
	require.NoError(t, err)
	assert.Empty(t, host.Warnings())
	src2 := makeTree(t, 1<<20, 42)
	after := backupDir(t, host, src2)

	ownCreds := credsOf(t, ownerSecret)
	ownCreds.Pins = []repo.Pin{pin}
	own, err = repo.Open(ctx, b, ownCreds)
	require.NoError(t, err)
	restoreSame(t, own, before, src)
	restoreSame(t, own, after, src2)
	keys, err := own.KeyFiles(ctx)
	require.NoError(t, err)
	for _, k := range keys {
		assert.Equal(t, repo.KeyCurrent, k.Status, k.Object)
	}
	_, _, _, err = own.RotateHost(ctx)
	require.ErrorContains(t, err, "migrated from format 1")

	t.Run("with the host key", func(t *testing.T) {
		b := memBucket(t)
		ownerSecret, hostSecret, err := repo.InitFormat1(ctx, b, repotest.SmallChunks, 1<<20)
		require.NoError(t, err)
		host, err := repo.Open(ctx, b, credsOf(t, hostSecret))
		require.NoError(t, err)
		src := makeTree(t, 1<<20, 43)
		before := backupDir(t, host, src)
		own, err := repo.Open(ctx, b, credsOf(t, ownerSecret))
		require.NoError(t, err)
		_, _, err = own.Migrate(ctx, "", []string{hostSecret})
		require.NoError(t, err)
		newHost, pin, _, err := own.RotateHost(ctx)
		require.NoError(t, err)
		hc := credsOf(t, newHost)
		hc.Pins = []repo.Pin{pin}
		host, err = repo.Open(ctx, b, hc)
		require.NoError(t, err)
		after := backupDir(t, host, src)
		assert.Equal(t, &before.ID, after.Parent, "the new host reads the format 1 host's snapshots")
		_, err = repo.Open(ctx, b, credsOf(t, hostSecret))
		require.ErrorIs(t, err, repo.ErrWrongKey)
	})
}
