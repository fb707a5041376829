package mysql

import (
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"

	"github.com/lifeboat-backup/lifeboat/engine/snapshot"
)

// DB is one database of a mysql snapshot, as Source lays it out: a
// directory (EncodeName of the database) holding DatabaseFile, one
// SuffixSchema and (unless excluded) one SuffixData entry per table, and
// the views, triggers, routines and events.
type DB struct {
	Name    string
	Create  *snapshot.Node              // DatabaseFile: CREATE DATABASE
	Tables  []string                    // in tree order
	Schema  map[string]*snapshot.Node   // table -> CREATE TABLE
	Data    map[string]*snapshot.Node   // table -> rows
	Objects map[string][]*snapshot.Node // suffix -> views, triggers, routines, events
}

// ErrLayout: a snapshot's tree is not what Source writes.
var ErrLayout = errors.New("not a mysql snapshot layout")

// Layout is a whole mysql snapshot: its databases and, when it was taken
// with Options.Users, its UsersFile.
type Layout struct {
	DBs   []*DB
	Users *snapshot.Node // nil: no user accounts in the snapshot
}

// ReadLayout sorts a snapshot's nodes (next yields them in tree order
// until io.EOF) into databases, in tree order, and checks each: its
// DatabaseFile present, a schema for every data entry, nothing else. The
// only top-level file allowed is UsersFile.
func ReadLayout(next func() (*snapshot.Node, error)) (*Layout, error) {
	var dbs []*DB
	l := &Layout{}
	byDir := map[string]*DB{}
	for {
		n, err := next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		dir, base, nested := strings.Cut(n.Path, "/")
		if !nested {
			if n.Path == UsersFile && n.Type == snapshot.TypeFile && l.Users == nil {
				l.Users = n
				continue
			}
			if n.Type != snapshot.TypeDir {
				return nil, fmt.Errorf("%w: unexpected top-level entry %q", ErrLayout, n.Path)
			}
			name, err := DecodeName(dir)
			if err != nil {
				return nil, fmt.Errorf("%w: %q: %v", ErrLayout, n.Path, err)
			}
			d := &DB{Name: name, Schema: map[string]*snapshot.Node{}, Data: map[string]*snapshot.Node{}, Objects: map[string][]*snapshot.Node{}}
			byDir[dir] = d
			dbs = append(dbs, d)
			continue
		}
		d := byDir[dir]
		if d == nil || strings.Contains(base, "/") || n.Type != snapshot.TypeFile {
			return nil, fmt.Errorf("%w: unexpected entry %q", ErrLayout, n.Path)
		}
		name, suffix, err := ParseEntryName(base)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %v", ErrLayout, n.Path, err)
		}
		switch suffix {
		case DatabaseFile:
			d.Create = n
		case SuffixSchema:
			d.Schema[name] = n
			d.Tables = append(d.Tables, name)
		case SuffixData:
			d.Data[name] = n
		default:
			d.Objects[suffix] = append(d.Objects[suffix], n)
		}
	}
	for _, d := range dbs {
		if d.Create == nil {
			return nil, fmt.Errorf("%w: database %q has no %s", ErrLayout, d.Name, DatabaseFile)
		}
		for _, t := range slices.Sorted(maps.Keys(d.Data)) {
			if d.Schema[t] == nil {
				return nil, fmt.Errorf("%w: table %q of %q has data but no schema", ErrLayout, t, d.Name)
			}
		}
	}
	if len(dbs) == 0 {
		return nil, fmt.Errorf("%w: no databases", ErrLayout)
	}
	l.DBs = dbs
	return l, nil
}
