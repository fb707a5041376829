package repo

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"filippo.io/age"
	"gocloud.dev/blob"

	"github.com/lifeboat-backup/lifeboat/engine/snapshot"
	"github.com/lifeboat-backup/lifeboat/engine/storage"
)

// keyFile is the secret material of a repository, stored as keys/<id>,
// age-encrypted. Format 2 (docs/repository.md, "Keys"): an owner key file,
// encrypted to one owner recipient, holds the MAC and gear keys, the
// repository's data identity (packs are encrypted to it) and the
// repository signing key; the host key file, encrypted to the host
// recipient, holds the MAC and gear keys only; the config lists both by
// SHA-256 and carries the recipients. Format 1: one key file, encrypted to
// owner + host recipients, holds the keys and the recipient lists.
type keyFile struct {
	Version        int         `json:"version"`
	Created        time.Time   `json:"created"`
	RepoID         snapshot.ID `json:"repo_id,omitzero"`
	MACKey         []byte      `json:"mac_key"`                   // 32 bytes: keyed BLAKE3 for blob IDs
	GearKey        []byte      `json:"gear_key"`                  // 32 bytes: seeds the chunker's gear table
	PackRecipients []string    `json:"pack_recipients,omitempty"` // format 1; format 2: in the config
	MetaRecipients []string    `json:"meta_recipients,omitempty"` // format 1; format 2: in the config
	// Identity is the repository's own identity: the data identity packs
	// are encrypted to (format 2 owner and passphrase key files), or the
	// passphrase-mode identity (format 1).
	Identity string `json:"identity,omitempty"`
	// SigningKey is the Ed25519 seed of the repository signing key (format
	// 2 owner and passphrase key files).
	SigningKey []byte `json:"signing_key,omitempty"`
	// HostIdentities are host identities (format 2): in owner key files
	// every host identity the repository had, the current one last, so
	// that a key rotation can hand the earlier ones on; in a host key file
	// the ones before it, so that a new host reads the metadata its
	// predecessors wrote.
	HostIdentities []string `json:"host_identities,omitempty"`

	object string // the keys/ object it was read from
}

// Credentials open a repository: age identities (owner or host), or a
// passphrase.
type Credentials struct {
	Identities []age.Identity
	Passphrase string
	// Pins name the repository signing keys the holder trusts (from the
	// identity file's comments, or --pin); see Pin.
	Pins []Pin
}

// ReadKeyFile reads an age identity file (X25519 or hybrid post-quantum
// identities, one per line; # comments allowed, pins among them).
func ReadKeyFile(path string) (Credentials, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Credentials{}, fmt.Errorf("key file: %w", err)
	}
	c, err := ParseCredentials(data)
	if err != nil {
		return c, fmt.Errorf("key file %s: %w", path, err)
	}
	return c, nil
}

// ParseIdentities parses age identities from an identity file's content.
func ParseIdentities(data []byte) ([]age.Identity, error) {
	ids, err := age.ParseIdentities(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("identities: %w", err)
	}
	return ids, nil
}

// ParseRecipients parses age recipient strings (age1... or hybrid age1pq1...).
func ParseRecipients(ss []string) ([]age.Recipient, error) {
	if len(ss) == 0 {
		return nil, nil
	}
	rs, err := age.ParseRecipients(strings.NewReader(strings.Join(ss, "\n")))
	if err != nil {
		return nil, fmt.Errorf("recipients: %w", err)
	}
	return rs, nil
}

// recipientOf returns the public recipient string of an identity, or "".
func recipientOf(id age.Identity) string {
	switch i := id.(type) {
	case *age.X25519Identity:
		return i.Recipient().String()
	case *age.HybridIdentity:
		return i.Recipient().String()
	}
	return ""
}

// IdentityString returns the secret text of an identity (AGE-SECRET-KEY-...),
// or "" for identities that have none (passphrases).
func IdentityString(id age.Identity) string {
	switch i := id.(type) {
	case *age.X25519Identity:
		return i.String()
	case *age.HybridIdentity:
		return i.String()
	}
	return ""
}

func isHybrid(r string) bool { return strings.HasPrefix(r, "age1pq1") }

// newIdentity generates an identity of the same family as the recipients it
// will be used with: age refuses to mix hybrid post-quantum and classic
// recipients in one file.
func newIdentity(hybrid bool) (age.Identity, string, string, error) {
	if hybrid {
		id, err := age.GenerateHybridIdentity()
		if err != nil {
			return nil, "", "", err
		}
		return id, id.String(), id.Recipient().String(), nil
	}
	id, err := age.GenerateX25519Identity()
	if err != nil {
		return nil, "", "", err
	}
	return id, id.String(), id.Recipient().String(), nil
}

func (k *keyFile) validate(format int) error {
	if len(k.MACKey) != 32 || len(k.GearKey) != 32 {
		return errors.New("key material has wrong length")
	}
	if format == formatUnsigned && (len(k.PackRecipients) == 0 || len(k.MetaRecipients) == 0) {
		return errors.New("key file lists no recipients")
	}
	if k.SigningKey != nil && len(k.SigningKey) != ed25519.SeedSize {
		return errors.New("signing key has wrong length")
	}
	return nil
}

// signingKey returns the repository signing key, or nil when this key
// file has none (a host key file).
func (k *keyFile) signingKey() ed25519.PrivateKey {
	if k.SigningKey == nil {
		return nil
	}
	return ed25519.NewKeyFromSeed(k.SigningKey)
}

// scryptWorkFactor is log2 of scrypt's N for passphrase key files: age's
// default, 18 (about a second and 256 MiB per derivation). The tests of
// this package lower it (as restic's TestUseLowSecurityKDFParameters
// does): under the race detector one derivation at 18 takes over a minute
// on a loaded 2-core machine. Opening reads the factor from the file.
var scryptWorkFactor = 18

// scryptRecipient seals passphrase key files.
func scryptRecipient(passphrase string) (*age.ScryptRecipient, error) {
	sr, err := age.NewScryptRecipient(passphrase)
	if err != nil {
		return nil, err
	}
	sr.SetWorkFactor(scryptWorkFactor)
	return sr, nil
}

// identities returns the identities to try on key files.
func (c Credentials) identities() ([]age.Identity, error) {
	ids := c.Identities
	if c.Passphrase != "" {
		sid, err := age.NewScryptIdentity(c.Passphrase)
		if err != nil {
			return nil, err
		}
		ids = append([]age.Identity{sid}, ids...)
	}
	if len(ids) == 0 {
		return nil, fmt.Errorf("%w (no identity or passphrase given: set --key-file/LIFEBOAT_KEY_FILE or LIFEBOAT_PASSPHRASE_FILE)", ErrWrongKey)
	}
	return ids, nil
}

// errNoMatch: none of the identities opens a key file.
var errNoMatch = errors.New("no identity matches")

// openKeyFile decrypts and decodes a stored key file; errNoMatch when the
// identities do not open it.
func openKeyFile(data []byte, ids []age.Identity, format int) (*keyFile, error) {
	rd, err := age.Decrypt(bytes.NewReader(data), ids...)
	if err != nil {
		var nm *age.NoIdentityMatchError
		if errors.As(err, &nm) || strings.Contains(err.Error(), "incorrect passphrase") {
			return nil, errNoMatch
		}
		return nil, err
	}
	plain, err := io.ReadAll(rd)
	if err != nil {
		return nil, err
	}
	var k keyFile
	if err := json.Unmarshal(plain, &k); err != nil {
		return nil, err
	}
	if err := k.validate(format); err != nil {
		return nil, err
	}
	return &k, nil
}

// withIdentity returns ids with the key file's own identities first.
func (k *keyFile) withIdentity(ids []age.Identity) ([]age.Identity, error) {
	own := append([]string{k.Identity}, k.HostIdentities...)
	if k.Identity == "" {
		own = own[1:]
	}
	if len(own) == 0 {
		return ids, nil
	}
	pid, err := age.ParseIdentities(strings.NewReader(strings.Join(own, "\n")))
	if err != nil {
		return nil, err
	}
	return append(pid, ids...), nil
}

// listKeyObjects lists keys/, sorted.
func listKeyObjects(ctx context.Context, b *blob.Bucket) ([]string, error) {
	var keys []string
	it := b.List(&blob.ListOptions{Prefix: "keys/"})
	for {
		obj, err := it.Next(ctx)
		if err == io.EOF {
			slices.Sort(keys)
			return keys, nil
		}
		if err != nil {
			return nil, fmt.Errorf("list keys/: %w", err)
		}
		if !obj.IsDir && !storage.IsTempKey(obj.Key) {
			keys = append(keys, obj.Key)
		}
	}
}

func sha256Hex(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

// loadKey finds the key file that the credentials open. In format 2 only
// the key files the (verified) config lists count, each checked against
// its SHA-256; anything else under keys/ is reported in the warnings and
// never used. In format 1 every key file the credentials open must agree,
// so a planted one is detected. Objects that cannot be read or decoded are
// skipped with a warning.
func loadKey(ctx context.Context, b *blob.Bucket, cfg Config, creds Credentials) (_ *keyFile, _ []age.Identity, warns []string, _ error) {
	ids, err := creds.identities()
	if err != nil {
		return nil, nil, nil, err
	}
	objects, err := listKeyObjects(ctx, b)
	if err != nil {
		return nil, nil, nil, err
	}
	if cfg.Signed() {
		return loadSignedKey(ctx, b, cfg, creds, ids, objects)
	}
	if len(objects) == 0 {
		return nil, nil, nil, fmt.Errorf("%w: keys/ is empty", ErrNoRepository)
	}
	warns = append(warns, "repository format 1: its config and key files are not signed by the owner, so a backup host could plant key material; upgrade it with `lifeboat key migrate` and the owner key (docs/security.md)")
	var found *keyFile
	var foundAt string
	for _, obj := range objects {
		data, err := b.ReadAll(ctx, obj)
		if err != nil {
			warns = append(warns, fmt.Sprintf("%s: skipped: %v", obj, err))
			continue
		}
		k, err := openKeyFile(data, ids, formatUnsigned)
		if errors.Is(err, errNoMatch) {
			continue
		}
		if err != nil {
			warns = append(warns, fmt.Sprintf("%s: skipped, not a key file: %v", obj, err))
			continue
		}
		if found == nil {
			found, foundAt, k.object = k, obj, obj
			continue
		}
		if !bytes.Equal(k.MACKey, found.MACKey) || !bytes.Equal(k.GearKey, found.GearKey) ||
			!slices.Equal(k.PackRecipients, found.PackRecipients) || !slices.Equal(k.MetaRecipients, found.MetaRecipients) {
			return nil, nil, warns, fmt.Errorf("%w: key files %s and %s both open with this key but disagree on keys or recipients: one of them was planted by someone who can write the bucket; an unsigned (format 1) repository cannot tell which (docs/security.md)",
				ErrNotOwnerSigned, foundAt, obj)
		}
	}
	if found == nil {
		return nil, nil, warns, fmt.Errorf("%w (tried %d key files)", ErrWrongKey, len(objects))
	}
	ids, err = found.withIdentity(ids)
	if err != nil {
		return nil, nil, warns, &CorruptError{Object: foundAt, Err: err}
	}
	return found, ids, warns, nil
}

func loadSignedKey(ctx context.Context, b *blob.Bucket, cfg Config, creds Credentials, ids []age.Identity, objects []string) (_ *keyFile, _ []age.Identity, warns []string, _ error) {
	if len(creds.Pins) == 0 {
		warns = append(warns, fmt.Sprintf("no pin for repository %s: trusting its config's signer %s; put the line `# %s` into your key file (or pass --pin) so that a config signed by anyone else is refused",
			cfg.ID.Short(), cfg.Signer, Pin{Repo: cfg.ID, Signer: mustSigner(cfg.Signer), Generation: cfg.Generation}))
	}
	listed := map[string]bool{}
	var found *keyFile
	for _, ref := range cfg.Keys {
		listed[ref.Object] = true
		if found != nil {
			continue
		}
		data, err := b.ReadAll(ctx, ref.Object)
		if err != nil {
			warns = append(warns, fmt.Sprintf("%s: key file of the config unreadable: %v", ref.Object, err))
			continue
		}
		if sha256Hex(data) != ref.SHA256 {
			warns = append(warns, fmt.Sprintf("%s: skipped: its content is not what the owner signed (SHA-256 differs from the config's)", ref.Object))
			continue
		}
		k, err := openKeyFile(data, ids, FormatVersion)
		if errors.Is(err, errNoMatch) {
			continue
		}
		if err != nil {
			warns = append(warns, fmt.Sprintf("%s: skipped: %v", ref.Object, err))
			continue
		}
		if k.RepoID != cfg.ID {
			warns = append(warns, fmt.Sprintf("%s: skipped: a key file of repository %s", ref.Object, k.RepoID.Short()))
			continue
		}
		found, k.object = k, ref.Object
	}
	var stray []string
	for _, obj := range objects {
		if !listed[obj] {
			stray = append(stray, obj)
			warns = append(warns, fmt.Sprintf("%s: not a key file of this repository (the owner-signed config, generation %d, does not list it): planted, or left over from a key change; ignored (`lifeboat key list`)", obj, cfg.Generation))
		}
	}
	if found == nil {
		for _, obj := range stray {
			if data, err := b.ReadAll(ctx, obj); err == nil {
				if _, err := openKeyFile(data, ids, FormatVersion); err == nil {
					return nil, nil, warns, fmt.Errorf("%w: this key opens only %s, which is not a current key file of the repository (revoked by a key rotation or removal, or planted)", ErrWrongKey, obj)
				}
			}
		}
		return nil, nil, warns, fmt.Errorf("%w (tried the %d key files the config lists)", ErrWrongKey, len(cfg.Keys))
	}
	found.PackRecipients, found.MetaRecipients = cfg.PackRecipients, cfg.MetaRecipients
	ids, err := found.withIdentity(ids)
	if err != nil {
		return nil, nil, warns, err
	}
	return found, ids, warns, nil
}
