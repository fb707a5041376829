package repo_test

// Attacks on the key model by a stolen backup host: the host identity (as
// init wrote it, pin included) and bucket credentials that can write and
// delete. Each must fail or be detected and reported (docs/security.md).

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"io"
	"strings"
	"testing"

	"filippo.io/age"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gocloud.dev/blob"

	"github.com/lifeboat-backup/lifeboat/engine/repo"
	"github.com/lifeboat-backup/lifeboat/engine/repo/repotest"
)

// attacker is a stolen backup host: its key and the bucket.
type attacker struct {
	t    *testing.T
	b    *blob.Bucket
	host repo.Credentials
	own  *age.X25519Identity // the attacker's own key, to receive content
}

func newAttacker(t *testing.T, tr *repotest.Repo) *attacker {
	own, err := age.GenerateX25519Identity()
	require.NoError(t, err)
	return &attacker{t: t, b: tr.Bucket, host: tr.Host, own: own}
}

func (a *attacker) read(key string) []byte {
	data, err := a.b.ReadAll(ctx, key)
	require.NoError(a.t, err)
	return data
}

// put writes an object, replacing one that exists (delete rights).
func (a *attacker) put(key string, data []byte) {
	_ = a.b.Delete(ctx, key)
	require.NoError(a.t, a.b.WriteAll(ctx, key, data, nil))
}

// config returns the stored config's envelope and its signed part.
func (a *attacker) config() (env, cfg map[string]any) {
	require.NoError(a.t, json.Unmarshal(a.read("config"), &env))
	return env, env["config"].(map[string]any)
}

// hostKeyFile decrypts the host key file the config lists: what the host
// knows (MAC and gear keys).
func (a *attacker) hostKeyFile() (object string, secrets map[string]any) {
	_, cfg := a.config()
	for _, k := range cfg["keys"].([]any) {
		ref := k.(map[string]any)
		if ref["role"] != "host" {
			continue
		}
		rd, err := age.Decrypt(bytes.NewReader(a.read(ref["object"].(string))), a.host.Identities...)
		require.NoError(a.t, err)
		plain, err := io.ReadAll(rd)
		require.NoError(a.t, err)
		require.NoError(a.t, json.Unmarshal(plain, &secrets))
		return ref["object"].(string), secrets
	}
	a.t.Fatal("no host key file in the config")
	return "", nil
}

// ownerRecipients are the public owner recipients, from the config.
func (a *attacker) ownerRecipients() []string {
	_, cfg := a.config()
	var out []string
	for _, k := range cfg["keys"].([]any) {
		if ref := k.(map[string]any); ref["role"] == "owner" {
			out = append(out, ref["recipient"].(string))
		}
	}
	return out
}

func (a *attacker) hostRecipient() string {
	_, cfg := a.config()
	m := cfg["meta_recipients"].([]any)
	return m[len(m)-1].(string)
}

func seal(t *testing.T, v any, recips ...string) []byte {
	t.Helper()
	plain, err := json.Marshal(v)
	require.NoError(t, err)
	rs, err := repo.ParseRecipients(recips)
	require.NoError(t, err)
	var buf bytes.Buffer
	w, err := age.Encrypt(&buf, rs...)
	require.NoError(t, err)
	_, err = w.Write(plain)
	require.NoError(t, err)
	require.NoError(t, w.Close())
	return buf.Bytes()
}

func sha256Hex(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

func jsonOf(t *testing.T, v any) []byte {
	data, err := json.Marshal(v)
	require.NoError(t, err)
	return data
}

const plantedKey = "keys/0000000000000000000000000000000000000000000000000000000000000000"

// requireRefused: opening with c fails as not owner-signed.
func requireRefused(t *testing.T, b *blob.Bucket, c repo.Credentials, who string) {
	t.Helper()
	_, err := repo.Open(ctx, b, c)
	require.ErrorIs(t, err, repo.ErrNotOwnerSigned, who)
}

// requireNotReadable: the attacker's key opens no data pack.
func requireNotReadable(t *testing.T, b *blob.Bucket, r *repo.Repository, own *age.X25519Identity) {
	t.Helper()
	packs := dataPacks(r)
	require.NotEmpty(t, packs)
	for _, p := range packs {
		data, err := b.ReadAll(ctx, packKey(p.ID))
		require.NoError(t, err)
		_, err = age.Decrypt(bytes.NewReader(data), own)
		require.Error(t, err, "pack %s readable by the attacker", p.ID.Short())
	}
}

// TestAttackPlantedKeyFile: the host plants a key file that lists the
// attacker as a pack recipient (the first finding of issue 19), alone, with
// the config edited to match, with a config signed by the attacker's own
// key, and with a format 1 config put in place of the signed one.
func TestAttackPlantedKeyFile(t *testing.T) {
	t.Run("key file only: ignored and reported", func(t *testing.T) {
		tr := repotest.Init(t, memBucket(t), repotest.SmallChunks, 0)
		a := newAttacker(t, tr)
		_, secrets := a.hostKeyFile()
		secrets["pack_recipients"] = []string{a.own.Recipient().String()}
		secrets["meta_recipients"] = []string{a.own.Recipient().String(), a.hostRecipient()}
		a.put(plantedKey, seal(t, secrets, append(a.ownerRecipients(), a.hostRecipient())...))

		for who, c := range map[string]repo.Credentials{"owner": tr.Owner, "host": tr.Host} {
			r := tr.Open(t, c)
			assert.Contains(t, strings.Join(r.Warnings(), "\n"), plantedKey, who)
		}
		src := makeTree(t, 1<<20, 31)
		host := tr.Open(t, tr.Host)
		backupDir(t, host, src)
		own := tr.Open(t, tr.Owner)
		requireNotReadable(t, tr.Bucket, own, a.own)
		sn, err := own.FindSnapshot(ctx, "latest", nil)
		require.NoError(t, err)
		restoreSame(t, own, sn, src)
		keys, err := own.KeyFiles(ctx)
		require.NoError(t, err)
		var planted []repo.KeyInfo
		for _, k := range keys {
			if k.Status != repo.KeyCurrent {
				planted = append(planted, k)
			}
		}
		require.Len(t, planted, 1)
		assert.Equal(t, plantedKey, planted[0].Object)
		assert.Equal(t, repo.KeyUnexpected, planted[0].Status)
		chk, err := own.Check(ctx, repo.CheckOptions{})
		require.NoError(t, err)
		require.Len(t, chk.Errors, 1)
		assert.Contains(t, chk.Errors[0], plantedKey+": unexpected key file")
	})

	t.Run("config edited to the attacker's recipients: refused", func(t *testing.T) {
		tr := repotest.Init(t, memBucket(t), repotest.SmallChunks, 0)
		a := newAttacker(t, tr)
		env, cfg := a.config()
		cfg["pack_recipients"] = []string{a.own.Recipient().String()}
		env["config"] = cfg
		a.put("config", jsonOf(t, env))
		requireRefused(t, tr.Bucket, tr.Owner, "owner")
		requireRefused(t, tr.Bucket, tr.Host, "host")
		requireRefused(t, tr.Bucket, repo.Credentials{Identities: tr.Host.Identities}, "host without pin")
	})

	t.Run("config signed by the attacker: refused by the pin", func(t *testing.T) {
		tr := repotest.Init(t, memBucket(t), repotest.SmallChunks, 0)
		a := newAttacker(t, tr)
		_, secrets := a.hostKeyFile()
		planted := seal(t, secrets, a.hostRecipient())
		a.put(plantedKey, planted)
		pub, priv, err := ed25519.GenerateKey(rand.Reader)
		require.NoError(t, err)
		_, cfg := a.config()
		cfg["signer"] = "ed25519:" + base64.StdEncoding.EncodeToString(pub)
		cfg["pack_recipients"] = []string{a.own.Recipient().String()}
		cfg["meta_recipients"] = []string{a.own.Recipient().String(), a.hostRecipient()}
		cfg["keys"] = []map[string]any{{"object": plantedKey, "sha256": sha256Hex(planted), "role": "host"}}
		raw := jsonOf(t, cfg)
		a.put("config", jsonOf(t, map[string]any{"version": 2, "config": json.RawMessage(raw),
			"signature": ed25519.Sign(priv, append([]byte("lifeboat config signature v2\x00"), raw...))}))

		requireRefused(t, tr.Bucket, tr.Owner, "owner")
		requireRefused(t, tr.Bucket, tr.Host, "host")
		// Without a pin the forged config is self-consistent: only a
		// warning tells (docs/security.md: keep the pin).
		r, err := repo.Open(ctx, tr.Bucket, repo.Credentials{Identities: tr.Host.Identities})
		require.NoError(t, err)
		assert.Contains(t, strings.Join(r.Warnings(), "\n"), "no pin")
	})

	t.Run("format 1 config put back (downgrade): refused by the pin", func(t *testing.T) {
		tr := repotest.Init(t, memBucket(t), repotest.SmallChunks, 0)
		a := newAttacker(t, tr)
		_, cfg := a.config()
		_, secrets := a.hostKeyFile()
		secrets["version"] = 1
		secrets["pack_recipients"] = []string{a.own.Recipient().String()}
		secrets["meta_recipients"] = append(a.ownerRecipients(), a.hostRecipient())
		a.put(plantedKey, seal(t, secrets, append(a.ownerRecipients(), a.hostRecipient())...))
		cfg["version"] = 1
		a.put("config", jsonOf(t, cfg))
		requireRefused(t, tr.Bucket, tr.Owner, "owner")
		requireRefused(t, tr.Bucket, tr.Host, "host")
	})
}

// TestAttackPlantedHostOnlyKey: a key file encrypted to the host only,
// with pack_recipients=[attacker], so that backups become unreadable by the
// owner. Format 2 never uses it; in a format 1 repository the host sees two
// key files that disagree and refuses.
func TestAttackPlantedHostOnlyKey(t *testing.T) {
	t.Run("format 2", func(t *testing.T) {
		tr := repotest.Init(t, memBucket(t), repotest.SmallChunks, 0)
		a := newAttacker(t, tr)
		_, secrets := a.hostKeyFile()
		secrets["pack_recipients"] = []string{a.own.Recipient().String()}
		secrets["meta_recipients"] = []string{a.own.Recipient().String(), a.hostRecipient()}
		a.put(plantedKey, seal(t, secrets, a.hostRecipient()))

		host := tr.Open(t, tr.Host)
		assert.Contains(t, strings.Join(host.Warnings(), "\n"), plantedKey)
		src := makeTree(t, 1<<20, 32)
		backupDir(t, host, src)
		own := tr.Open(t, tr.Owner)
		requireNotReadable(t, tr.Bucket, own, a.own)
		sn, err := own.FindSnapshot(ctx, "latest", nil)
		require.NoError(t, err)
		restoreSame(t, own, sn, src)
	})

	t.Run("format 1: detected", func(t *testing.T) {
		b := memBucket(t)
		_, hostSecret, err := repo.InitFormat1(ctx, b, repotest.SmallChunks, 1<<20)
		require.NoError(t, err)
		hostCreds := credsOf(t, hostSecret)
		own, err := age.GenerateX25519Identity()
		require.NoError(t, err)
		var genuine string
		for k := range listObjects(t, b, "keys/") {
			genuine = k
		}
		data, err := b.ReadAll(ctx, genuine)
		require.NoError(t, err)
		rd, err := age.Decrypt(bytes.NewReader(data), hostCreds.Identities...)
		require.NoError(t, err)
		var secrets map[string]any
		require.NoError(t, json.NewDecoder(rd).Decode(&secrets))
		meta := secrets["meta_recipients"].([]any)
		hostPub := meta[len(meta)-1].(string)
		secrets["pack_recipients"] = []string{own.Recipient().String()}
		require.NoError(t, b.WriteAll(ctx, plantedKey, seal(t, secrets, hostPub), nil))
		_, err = repo.Open(ctx, b, hostCreds)
		require.ErrorIs(t, err, repo.ErrNotOwnerSigned)
		assert.ErrorContains(t, err, plantedKey)
		assert.ErrorContains(t, err, genuine)
	})
}

// TestAttackConfigPackSize: `pack_size: 1` written by the host (13,842
// objects for a 2 MiB backup before) is refused, edited in place or as a
// format 1 config.
func TestAttackConfigPackSize(t *testing.T) {
	tr := repotest.Init(t, memBucket(t), repotest.SmallChunks, 0)
	a := newAttacker(t, tr)
	env, cfg := a.config()
	cfg["pack_size"] = 1
	env["config"] = cfg
	a.put("config", jsonOf(t, env))
	requireRefused(t, tr.Bucket, tr.Owner, "owner")
	requireRefused(t, tr.Bucket, tr.Host, "host")
	requireRefused(t, tr.Bucket, repo.Credentials{Identities: tr.Host.Identities}, "host without pin")

	cfg["version"] = 1
	a.put("config", jsonOf(t, cfg))
	requireRefused(t, tr.Bucket, tr.Host, "host, format 1 config")
}

// TestAttackGarbageKeyObject: one garbage object under keys/ stopped every
// command (issue 18); it is skipped and reported, in both formats.
func TestAttackGarbageKeyObject(t *testing.T) {
	const garbage = "keys/000garbage" // listed before the genuine key file
	t.Run("format 2", func(t *testing.T) {
		tr := repotest.Init(t, memBucket(t), repotest.SmallChunks, 0)
		require.NoError(t, tr.Bucket.WriteAll(ctx, garbage, []byte("not an age file"), nil))
		for who, c := range map[string]repo.Credentials{"owner": tr.Owner, "host": tr.Host} {
			r := tr.Open(t, c)
			assert.Contains(t, strings.Join(r.Warnings(), "\n"), garbage, who)
		}
	})
	t.Run("format 1", func(t *testing.T) {
		b := memBucket(t)
		owner, host, err := repo.InitFormat1(ctx, b, repotest.SmallChunks, 1<<20)
		require.NoError(t, err)
		require.NoError(t, b.WriteAll(ctx, garbage, []byte("not an age file"), nil))
		for who, secret := range map[string]string{"owner": owner, "host": host} {
			r, err := repo.Open(ctx, b, credsOf(t, secret))
			require.NoError(t, err, who)
			assert.Contains(t, strings.Join(r.Warnings(), "\n"), garbage, who)
		}
	})
}

// TestAttackReplayedKeyFile: after a host key rotation the old host puts
// its saved key file back, then the old config too.
func TestAttackReplayedKeyFile(t *testing.T) {
	tr := repotest.Init(t, memBucket(t), repotest.SmallChunks, 0)
	a := newAttacker(t, tr)
	oldObj, _ := a.hostKeyFile()
	oldKey, oldConfig := a.read(oldObj), a.read("config")
	backupDir(t, tr.Open(t, tr.Host), makeTree(t, 1<<20, 33))

	own := tr.Open(t, tr.Owner)
	secret, pin, warns, err := own.RotateHost(ctx)
	require.NoError(t, err)
	require.Empty(t, warns)
	newHost := credsOf(t, secret)
	newHost.Pins = []repo.Pin{pin}

	_, err = repo.Open(ctx, tr.Bucket, tr.Host)
	require.ErrorIs(t, err, repo.ErrWrongKey, "the old host key after rotation")

	a.put(oldObj, oldKey)
	_, err = repo.Open(ctx, tr.Bucket, tr.Host)
	require.ErrorIs(t, err, repo.ErrWrongKey, "the old host key with its key file put back")
	assert.ErrorContains(t, err, oldObj)
	r := tr.Open(t, newHost)
	assert.Contains(t, strings.Join(r.Warnings(), "\n"), oldObj)

	// The old config too: a rollback. Holders of a pin of the new
	// generation refuse it; a pin of generation 1 does not know better.
	a.put("config", oldConfig)
	requireRefused(t, tr.Bucket, newHost, "new host")
	ownerPinned := tr.Owner
	ownerPinned.Pins = []repo.Pin{pin}
	requireRefused(t, tr.Bucket, ownerPinned, "owner with the new pin")
}
