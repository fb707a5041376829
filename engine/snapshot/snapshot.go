package snapshot

import (
	"time"
)

// Node is one entry of a snapshot's metadata stream: the target's metadata
// plus the data blobs holding its content, in order.
type Node struct {
	Entry
	Content []ID `json:"content,omitempty"`
	// Digest, if set, is the digest of the content recorded at backup
	// (volumes), which a restore verifies.
	Digest *BlockDigest `json:"digest,omitempty"`
}

// BlockDigest is a content digest that skips zeros: SHA-256 over the
// SHA-256 of each BlockSize-byte block, runs of all-zero blocks recorded
// as counts (internal/blockdigest defines version 1). A restore that does
// not know the version verifies nothing with it.
type BlockDigest struct {
	Version   int    `json:"v"`
	BlockSize int    `json:"block"`
	SHA256    string `json:"sha256"`
}

// Snapshot is a snapshot manifest, stored as snapshots/<id> (encrypted to
// owner and host). Tree lists the tree blobs that, concatenated, form the
// snapshot's metadata stream (see Node).
type Snapshot struct {
	ID            ID            `json:"-"`
	Time          time.Time     `json:"time"`
	Host          string        `json:"host"`
	Username      string        `json:"username,omitempty"`
	Target        string        `json:"target"` // target name, e.g. "media"
	Kind          string        `json:"kind"`   // target kind: files, mysql, ...
	Paths         []string      `json:"paths,omitempty"`
	Tags          []string      `json:"tags,omitempty"`
	Parent        *ID           `json:"parent,omitempty"`
	Tree          []ID          `json:"tree"`
	RecoveryPoint RecoveryPoint `json:"recovery_point"`
	Stats         Stats         `json:"stats"`
	Program       string        `json:"program,omitempty"`

	// Suspect says why the snapshot is not to be trusted as the newest
	// (its time is further ahead of the storage's time of its manifest
	// than the allowed clock skew: a host can write any time); "" when
	// fine. Suspect snapshots are listed and flagged, never chosen as
	// "latest" or as a parent, and not counted by retention. Not stored.
	Suspect string `json:"-"`
}

// RecoveryPoint is the moment the snapshot's data is consistent with, plus
// target-specific details (binlog position, GTID set, LSN).
type RecoveryPoint struct {
	Time    time.Time         `json:"time"`
	Details map[string]string `json:"details,omitempty"`
}

// Stats summarizes a backup.
type Stats struct {
	Files       int64   `json:"files"`
	Dirs        int64   `json:"dirs"`
	Others      int64   `json:"others"`
	BytesIn     int64   `json:"bytes_in"`     // size of all file contents
	BytesRead   int64   `json:"bytes_read"`   // contents actually read (changed files)
	BytesAdded  int64   `json:"bytes_added"`  // new blob plaintext
	BytesStored int64   `json:"bytes_stored"` // new blob bytes after compression
	Blobs       int64   `json:"blobs_added"`
	Duration    float64 `json:"duration_seconds"`
}
