package repo

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"gocloud.dev/blob"
	"gocloud.dev/gcerrors"

	"github.com/lifeboat-backup/lifeboat/engine/repo/chunker"
	"github.com/lifeboat-backup/lifeboat/engine/snapshot"
)

// FormatVersion is the repository format this code writes. It reads
// format 1 too (unsigned config and key files; docs/security.md,
// "Format 1 repositories").
const FormatVersion = 2

const formatUnsigned = 1

// Config is the repository configuration: nothing secret in it. In format
// 2 it is signed by the owner's repository signing key and also says whom
// to encrypt to and which key files are genuine.
type Config struct {
	Version     int            `json:"version"`
	ID          snapshot.ID    `json:"id"`
	Created     time.Time      `json:"created"`
	Chunker     chunker.Params `json:"chunker"`
	Compression string         `json:"compression"` // zstd level name: fastest, default, better, off
	PackSize    int            `json:"pack_size"`   // target pack size in bytes

	// Format 2.
	Generation     int      `json:"generation,omitempty"` // +1 on every key change; pins refuse older ones
	Signer         string   `json:"signer,omitempty"`     // ed25519:<base64>, the repository signing key
	PackRecipients []string `json:"pack_recipients,omitempty"`
	MetaRecipients []string `json:"meta_recipients,omitempty"`
	Keys           []KeyRef `json:"keys,omitempty"` // the genuine key files
}

// KeyRef names a genuine key file in a format 2 config: the object, the
// SHA-256 of its stored bytes, what it is for and whom it is encrypted to.
type KeyRef struct {
	Object    string    `json:"object"`
	SHA256    string    `json:"sha256"`
	Role      string    `json:"role"`                // owner, host or passphrase
	Recipient string    `json:"recipient,omitempty"` // the age recipient it is encrypted to (none in passphrase mode)
	Created   time.Time `json:"created"`
}

// Key file roles.
const (
	RoleOwner      = "owner"      // data identity and signing key, encrypted to one owner recipient
	RoleHost       = "host"       // MAC and gear keys only, encrypted to the host recipient
	RolePassphrase = "passphrase" // owner and host in one, encrypted to a passphrase
)

// Signed reports whether the config is owner-signed (format 2).
func (c Config) Signed() bool { return c.Version >= 2 }

// signedConfig is the stored form of a format 2 config: the config's JSON
// exactly as signed, and the signature over it.
type signedConfig struct {
	Version   int             `json:"version"`
	Config    json.RawMessage `json:"config"`
	Signature []byte          `json:"signature"`
}

const (
	configKey       = "config"
	defaultPackSize = 16 << 20
)

// loadConfig reads and, in format 2, verifies the config against the pins.
// A format 1 (unsigned) config is refused when a pin names it: a host can
// write one to strip the signature (downgrade).
func loadConfig(ctx context.Context, b *blob.Bucket, pins []Pin) (Config, error) {
	var cfg Config
	data, err := b.ReadAll(ctx, configKey)
	if err != nil {
		if gcerrors.Code(err) == gcerrors.NotFound {
			return cfg, ErrNoRepository
		}
		return cfg, fmt.Errorf("read config: %w", err)
	}
	var head struct {
		Version int `json:"version"`
	}
	if err := json.Unmarshal(data, &head); err != nil {
		return cfg, corrupt(configKey, "%v", err)
	}
	switch head.Version {
	case formatUnsigned:
		if err := json.Unmarshal(data, &cfg); err != nil {
			return cfg, corrupt(configKey, "%v", err)
		}
	case FormatVersion:
		var sc signedConfig
		if err := json.Unmarshal(data, &sc); err != nil {
			return cfg, corrupt(configKey, "%v", err)
		}
		if err := json.Unmarshal(sc.Config, &cfg); err != nil {
			return cfg, corrupt(configKey, "%v", err)
		}
		if cfg.Version != FormatVersion {
			return cfg, corrupt(configKey, "signed version %d in a version %d config", cfg.Version, head.Version)
		}
		pub, err := parseSigner(cfg.Signer)
		if err != nil {
			return cfg, corrupt(configKey, "%v", err)
		}
		if !verifyConfig(pub, sc.Config, sc.Signature) {
			return cfg, fmt.Errorf("%s: %w: the signature does not verify against its own signer %s", configKey, ErrNotOwnerSigned, cfg.Signer)
		}
	default:
		return cfg, fmt.Errorf("repository format version %d is not supported (this lifeboat reads versions 1 and %d)", head.Version, FormatVersion)
	}
	if err := checkPin(cfg, pins); err != nil {
		return cfg, err
	}
	if err := cfg.Chunker.Validate(); err != nil {
		return cfg, corrupt(configKey, "chunker: %v", err)
	}
	if _, err := compressionLevel(cfg.Compression); err != nil {
		return cfg, corrupt(configKey, "%v", err)
	}
	if cfg.Signed() {
		if len(cfg.PackRecipients) == 0 || len(cfg.MetaRecipients) == 0 || len(cfg.Keys) == 0 || cfg.Generation < 1 || cfg.PackSize <= 0 {
			return cfg, corrupt(configKey, "signed config lacks recipients, key files, generation or pack size")
		}
	}
	if cfg.PackSize <= 0 {
		cfg.PackSize = defaultPackSize
	}
	return cfg, nil
}

// checkPin verifies cfg against the pins the credentials carry. Without
// any pin it accepts a self-consistent config (Open then warns).
func checkPin(cfg Config, pins []Pin) error {
	if len(pins) == 0 {
		return nil
	}
	p, ok := pinFor(pins, cfg.ID)
	if !ok {
		ids := make([]string, len(pins))
		for i, p := range pins {
			ids[i] = p.Repo.Short()
		}
		return fmt.Errorf("%s: %w: it names repository %s, the key is pinned to repository %v (a config written by someone else, or %w)",
			configKey, ErrNotOwnerSigned, cfg.ID.Short(), ids, ErrWrongKey)
	}
	if !cfg.Signed() {
		return fmt.Errorf("%s: %w: the config is unsigned (format 1) but the key pins signer %s: a signed config was replaced",
			configKey, ErrNotOwnerSigned, signerString(p.Signer))
	}
	if want := signerString(p.Signer); cfg.Signer != want {
		return fmt.Errorf("%s: %w: signed by %s, the key pins %s", configKey, ErrNotOwnerSigned, cfg.Signer, want)
	}
	if cfg.Generation < p.Generation {
		return fmt.Errorf("%s: %w: generation %d is older than the pinned generation %d (an old config was put back)",
			configKey, ErrNotOwnerSigned, cfg.Generation, p.Generation)
	}
	return nil
}

// encodeConfig signs cfg (format 2) and returns the stored form.
func encodeConfig(cfg Config, priv ed25519.PrivateKey) ([]byte, error) {
	if !slices.Equal(priv.Public().(ed25519.PublicKey), mustSigner(cfg.Signer)) {
		return nil, errors.New("config signer does not match the signing key")
	}
	raw, err := json.Marshal(cfg)
	if err != nil {
		return nil, err
	}
	sig, err := signConfig(priv, raw)
	if err != nil {
		return nil, err
	}
	return json.MarshalIndent(signedConfig{Version: cfg.Version, Config: raw, Signature: sig}, "", "  ")
}

func mustSigner(s string) ed25519.PublicKey {
	pub, _ := parseSigner(s)
	return pub
}
