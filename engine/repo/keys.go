package repo

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"filippo.io/age"
	"gocloud.dev/blob"
)

// keyFile is the secret material of a repository, stored as keys/<id>,
// age-encrypted to the owner and host recipients (or to a passphrase).
// It holds no content key: packs and metadata are encrypted to recipients,
// and whoever can decrypt a key file can decrypt metadata, not necessarily
// packs.
type keyFile struct {
	Version        int       `json:"version"`
	Created        time.Time `json:"created"`
	MACKey         []byte    `json:"mac_key"`  // 32 bytes: keyed BLAKE3 for blob IDs
	GearKey        []byte    `json:"gear_key"` // 32 bytes: seeds the chunker's gear table
	PackRecipients []string  `json:"pack_recipients"`
	MetaRecipients []string  `json:"meta_recipients"`
	// Identity is set in passphrase mode only: the repository's own identity,
	// used as both owner and host.
	Identity string `json:"identity,omitempty"`
}

// Credentials open a repository: age identities (owner or host), or a
// passphrase.
type Credentials struct {
	Identities []age.Identity
	Passphrase string
}

// ParseIdentityFile reads an age identity file (X25519 or hybrid
// post-quantum identities, one per line; # comments allowed).
func ParseIdentityFile(path string) ([]age.Identity, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("key file: %w", err)
	}
	ids, err := ParseIdentities(data)
	if err != nil {
		return nil, fmt.Errorf("key file %s: %w", path, err)
	}
	return ids, nil
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

func (k *keyFile) validate() error {
	if len(k.MACKey) != 32 || len(k.GearKey) != 32 {
		return errors.New("key material has wrong length")
	}
	if len(k.PackRecipients) == 0 || len(k.MetaRecipients) == 0 {
		return errors.New("key file lists no recipients")
	}
	return nil
}

// loadKey finds a key file that the credentials open.
func loadKey(ctx context.Context, b *blob.Bucket, creds Credentials) (*keyFile, []age.Identity, error) {
	ids := creds.Identities
	if creds.Passphrase != "" {
		sid, err := age.NewScryptIdentity(creds.Passphrase)
		if err != nil {
			return nil, nil, err
		}
		ids = append([]age.Identity{sid}, ids...)
	}
	if len(ids) == 0 {
		return nil, nil, fmt.Errorf("%w (no identity or passphrase given: set --key-file/LIFEBOAT_KEY_FILE or LIFEBOAT_PASSPHRASE_FILE)", ErrWrongKey)
	}
	it := b.List(&blob.ListOptions{Prefix: "keys/"})
	tried := 0
	for {
		obj, err := it.Next(ctx)
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, nil, fmt.Errorf("list keys: %w", err)
		}
		data, err := b.ReadAll(ctx, obj.Key)
		if err != nil {
			return nil, nil, fmt.Errorf("read %s: %w", obj.Key, err)
		}
		tried++
		rd, err := age.Decrypt(bytes.NewReader(data), ids...)
		if err != nil {
			var nm *age.NoIdentityMatchError
			if errors.As(err, &nm) || strings.Contains(err.Error(), "incorrect passphrase") {
				continue
			}
			return nil, nil, &CorruptError{Object: obj.Key, Err: err}
		}
		plain, err := io.ReadAll(rd)
		if err != nil {
			return nil, nil, &CorruptError{Object: obj.Key, Err: err}
		}
		var k keyFile
		if err := json.Unmarshal(plain, &k); err != nil {
			return nil, nil, &CorruptError{Object: obj.Key, Err: err}
		}
		if err := k.validate(); err != nil {
			return nil, nil, &CorruptError{Object: obj.Key, Err: err}
		}
		if k.Identity != "" {
			pid, err := age.ParseIdentities(strings.NewReader(k.Identity))
			if err != nil {
				return nil, nil, &CorruptError{Object: obj.Key, Err: err}
			}
			ids = append(pid, ids...)
		}
		return &k, ids, nil
	}
	if tried == 0 {
		return nil, nil, fmt.Errorf("%w: keys/ is empty", ErrNoRepository)
	}
	return nil, nil, fmt.Errorf("%w (tried %d key files)", ErrWrongKey, tried)
}
