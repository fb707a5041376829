package engine

import (
	"context"
	"io"
	"time"

	"github.com/lifeboat-backup/lifeboat/engine/snapshot"
)

// Opener opens the content of a file entry. It is an alias, so targets
// implement Source without importing engine.
type Opener = func() (io.ReadCloser, error)

// Source is what a target offers to back up: its entries in
// targets.ComparePaths order, with a way to read each file's content.
// A Source reports entries it cannot read through warn and goes on; an
// error it returns aborts the backup.
type Source interface {
	Kind() string
	Paths() []string
	Walk(ctx context.Context, warn func(path string, err error), fn func(e snapshot.Entry, open Opener) error) error
}

// RecoveryPointer is implemented by sources whose data is consistent with
// a moment of their own (a database's consistent snapshot) rather than the
// backup's start. Backup calls it after Walk returns and records the time
// and details (binlog file/position, GTID set, LSN) in the snapshot.
// Details must hold no secret.
type RecoveryPointer interface {
	RecoveryPoint() (time.Time, map[string]string)
}

// AllOrNothing is implemented by sources whose entries form one consistent
// whole, such as a database dump: every entry is read each time (no reuse
// of the parent snapshot's content by metadata), and an entry that cannot
// be read fails the backup instead of being skipped with a warning.
type AllOrNothing interface {
	AllOrNothing() bool
}
