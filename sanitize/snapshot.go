package sanitize

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/lifeboat-backup/lifeboat/engine/repo"
	"github.com/lifeboat-backup/lifeboat/targets"
	"github.com/lifeboat-backup/lifeboat/targets/mysql"
)

// ErrNotMySQL: the snapshot is not a mysql snapshot.
var ErrNotMySQL = fmt.Errorf("%w: not a mysql snapshot", ErrRules)

// snapDB is one database of a mysql snapshot.
type snapDB struct {
	name    string
	create  *repo.Node
	tables  []string
	schema  map[string]*repo.Node
	data    map[string]*repo.Node
	objects map[string][]*repo.Node // by suffix
}

// readTree sorts a mysql snapshot's entries into databases, in the
// snapshot's (sorted) order.
func readTree(ctx context.Context, r *repo.Repository, sn *repo.Snapshot) ([]*snapDB, error) {
	if sn.Kind != "mysql" {
		return nil, fmt.Errorf("snapshot %s is a %s snapshot: %w", sn.ID.Short(), sn.Kind, ErrNotMySQL)
	}
	if !r.CanReadData() {
		return nil, fmt.Errorf("read snapshot %s: %w (sanitizing reads the table data: give the owner key, --key-file)", sn.ID.Short(), repo.ErrNoDataKey)
	}
	tr := r.NewTreeReader(ctx, sn)
	var dbs []*snapDB
	byDir := map[string]*snapDB{}
	for {
		n, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		dir, base, nested := strings.Cut(n.Path, "/")
		if !nested {
			if n.Type != targets.TypeDir {
				return nil, fmt.Errorf("snapshot %s: unexpected top-level entry %q", sn.ID.Short(), n.Path)
			}
			name, err := mysql.DecodeName(dir)
			if err != nil {
				return nil, err
			}
			d := &snapDB{name: name, schema: map[string]*repo.Node{}, data: map[string]*repo.Node{}, objects: map[string][]*repo.Node{}}
			byDir[dir] = d
			dbs = append(dbs, d)
			continue
		}
		d := byDir[dir]
		if d == nil || strings.Contains(base, "/") || n.Type != targets.TypeFile {
			return nil, fmt.Errorf("snapshot %s: unexpected entry %q", sn.ID.Short(), n.Path)
		}
		name, suffix, err := mysql.ParseEntryName(base)
		if err != nil {
			return nil, fmt.Errorf("snapshot %s: %s: %w", sn.ID.Short(), n.Path, err)
		}
		switch suffix {
		case mysql.DatabaseFile:
			d.create = n
		case mysql.SuffixSchema:
			d.schema[name] = n
			d.tables = append(d.tables, name)
		case mysql.SuffixData:
			d.data[name] = n
		default:
			d.objects[suffix] = append(d.objects[suffix], n)
		}
	}
	for _, d := range dbs {
		if d.create == nil {
			return nil, fmt.Errorf("snapshot %s: database %q has no %s", sn.ID.Short(), d.name, mysql.DatabaseFile)
		}
	}
	if len(dbs) == 0 {
		return nil, fmt.Errorf("snapshot %s holds no databases", sn.ID.Short())
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
