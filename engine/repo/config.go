package repo

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/lifeboat-backup/lifeboat/engine/repo/chunker"
	"gocloud.dev/blob"
	"gocloud.dev/gcerrors"
)

// FormatVersion is the repository format this code reads and writes.
const FormatVersion = 1

// Config is the plain-JSON "config" object: nothing secret in it.
type Config struct {
	Version     int            `json:"version"`
	ID          ID             `json:"id"`
	Created     time.Time      `json:"created"`
	Chunker     chunker.Params `json:"chunker"`
	Compression string         `json:"compression"` // zstd level name: fastest, default, better, off
	PackSize    int            `json:"pack_size"`   // target pack size in bytes
}

const (
	configKey       = "config"
	defaultPackSize = 16 << 20
)

func loadConfig(ctx context.Context, b *blob.Bucket) (Config, error) {
	var cfg Config
	data, err := b.ReadAll(ctx, configKey)
	if err != nil {
		if gcerrors.Code(err) == gcerrors.NotFound {
			return cfg, ErrNoRepository
		}
		return cfg, fmt.Errorf("read config: %w", err)
	}
	if err := json.Unmarshal(data, &cfg); err != nil {
		return cfg, corrupt(configKey, "%v", err)
	}
	if cfg.Version != FormatVersion {
		return cfg, fmt.Errorf("repository format version %d is not supported (this lifeboat reads version %d)", cfg.Version, FormatVersion)
	}
	if err := cfg.Chunker.Validate(); err != nil {
		return cfg, corrupt(configKey, "chunker: %v", err)
	}
	if _, err := compressionLevel(cfg.Compression); err != nil {
		return cfg, corrupt(configKey, "%v", err)
	}
	if cfg.PackSize <= 0 {
		cfg.PackSize = defaultPackSize
	}
	return cfg, nil
}
