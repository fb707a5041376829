package sanitize

import (
	"context"
	"fmt"

	"github.com/lifeboat-backup/lifeboat/engine/snapshot"
	"github.com/lifeboat-backup/lifeboat/targets/mysql"
)

// Exports and lint read a snapshot through restore.Snapshot, so a native
// repository (repo.Repository.SnapshotReader) and a restic one (engine/restic's
// Engine.Open) are read alike. Every content reader is closed after use:
// another engine holds a process per reader.

// ErrNotMySQL: the snapshot is not a mysql snapshot.
var ErrNotMySQL = fmt.Errorf("%w: not a mysql snapshot", ErrRules)

// readTree reads a mysql snapshot's databases, in the snapshot's (sorted)
// order.
func readTree(ctx context.Context, s snapshot.Reader) ([]*mysql.DB, error) {
	sn := s.Info()
	if sn.Kind != "mysql" {
		return nil, fmt.Errorf("snapshot %s is a %s snapshot: %w", sn.ID.Short(), sn.Kind, ErrNotMySQL)
	}
	l, err := mysql.ReadLayout(s.Tree(ctx).Next)
	if err != nil {
		return nil, fmt.Errorf("snapshot %s: %w", sn.ID.Short(), err)
	}
	return l.DBs, nil
}

// tableSchema reads and parses a table's CREATE TABLE.
func tableSchema(ctx context.Context, s snapshot.Reader, n *snapshot.Node) (*mysql.Object, []*column, error) {
	text, err := snapshot.ReadNode(ctx, s, n)
	if err != nil {
		return nil, nil, err
	}
	o, err := mysql.ParseObject(text)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", n.Path, err)
	}
	return o, parseColumns(o.Stmt), nil
}
