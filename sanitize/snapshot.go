package sanitize

import (
	"context"
	"fmt"
	"io"

	"github.com/lifeboat-backup/lifeboat/engine/repo"
	"github.com/lifeboat-backup/lifeboat/targets/mysql"
)

// ErrNotMySQL: the snapshot is not a mysql snapshot.
var ErrNotMySQL = fmt.Errorf("%w: not a mysql snapshot", ErrRules)

// readTree reads a mysql snapshot's databases, in the snapshot's (sorted)
// order.
func readTree(ctx context.Context, r *repo.Repository, sn *repo.Snapshot) ([]*mysql.DB, error) {
	if sn.Kind != "mysql" {
		return nil, fmt.Errorf("snapshot %s is a %s snapshot: %w", sn.ID.Short(), sn.Kind, ErrNotMySQL)
	}
	if !r.CanReadData() {
		return nil, fmt.Errorf("read snapshot %s: %w (sanitizing reads the table data: give the owner key, --key-file)", sn.ID.Short(), repo.ErrNoDataKey)
	}
	dbs, err := mysql.ReadLayout(r.NewTreeReader(ctx, sn).Next)
	if err != nil {
		return nil, fmt.Errorf("snapshot %s: %w", sn.ID.Short(), err)
	}
	return dbs, nil
}

func readNode(ctx context.Context, r *repo.Repository, n *repo.Node) ([]byte, error) {
	b, err := io.ReadAll(r.NewBlobReader(ctx, n.Content))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", n.Path, err)
	}
	return b, nil
}

// tableSchema reads and parses a table's CREATE TABLE.
func tableSchema(ctx context.Context, r *repo.Repository, n *repo.Node) (*mysql.Object, []*column, error) {
	text, err := readNode(ctx, r, n)
	if err != nil {
		return nil, nil, err
	}
	o, err := mysql.ParseObject(text)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", n.Path, err)
	}
	return o, parseColumns(o.Stmt), nil
}
