package postgres

import (
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/lifeboat-backup/lifeboat/engine/snapshot"
)

// NodeReader yields a snapshot's nodes in tree order until io.EOF: the
// native repository's *repo.TreeReader and restore.Snapshot's Tree fit.
type NodeReader interface {
	Next() (*snapshot.Node, error)
}

// Layout is the checked content of a postgres snapshot.
type Layout struct {
	// Databases in the tree order of their first archive: restoring them
	// in this order opens the archives in tree order (what a sequential
	// reader needs; properties and globals are small and read apart).
	Databases []*Database
	// Globals is the pg_dumpall --globals-only entry (nil if none).
	Globals *snapshot.Node
}

// Database is one database of a snapshot: one whole archive, or pre-data,
// data-only, table and post-data archives (split, dumped with jobs > 1;
// snapshots from before table archives have none).
type Database struct {
	Name  string
	Props *snapshot.Node // nil in snapshots from before properties
	Whole *snapshot.Node
	Pre   *snapshot.Node
	Data  []*snapshot.Node // in index order, none missing
	// Tables are archives of one table's data and post-data each (in
	// index order, none missing); Post then holds the post-data of the
	// other tables only. Their items other than data, indexes and
	// constraints (SplitTOC) come after Post.
	Tables []*snapshot.Node
	Post   *snapshot.Node

	first int // tree position of the first archive
}

// Archives are the database's archives in tree order: the whole one, or
// pre-data, the data archives, the table archives, post-data.
func (d *Database) Archives() []*snapshot.Node {
	if d.Whole != nil {
		return []*snapshot.Node{d.Whole}
	}
	return slices.Concat([]*snapshot.Node{d.Pre}, d.Data, d.Tables, []*snapshot.Node{d.Post})
}

// ReadLayout reads a postgres snapshot's nodes and checks them: only
// regular files named as the source names them (SplitEntry, GlobalsFile),
// each at most once, and per database either one whole archive or a
// complete split set (pre-data, data 0..n-1, post-data), not both. The
// errors name the entry or database at fault.
func ReadLayout(nodes NodeReader) (*Layout, error) {
	l := &Layout{}
	byName := map[string]*Database{}
	data := map[string]map[int]*snapshot.Node{}
	tables := map[string]map[int]*snapshot.Node{}
	for pos := 0; ; pos++ {
		n, err := nodes.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		if n.Type != snapshot.TypeFile {
			return nil, fmt.Errorf("unexpected %s entry %q: a postgres snapshot holds files only", n.Type, n.Path)
		}
		if n.Path == GlobalsFile {
			if l.Globals != nil {
				return nil, fmt.Errorf("entry %q appears twice", n.Path)
			}
			l.Globals = n
			continue
		}
		name, part, i, ok := SplitEntry(n.Path)
		if !ok {
			return nil, fmt.Errorf("unexpected entry %q", n.Path)
		}
		d := byName[name]
		if d == nil {
			d = &Database{Name: name, first: -1}
			byName[name] = d
			data[name] = map[int]*snapshot.Node{}
			tables[name] = map[int]*snapshot.Node{}
			l.Databases = append(l.Databases, d)
		}
		if part != "props" && d.first < 0 {
			d.first = pos
		}
		var slot **snapshot.Node
		switch part {
		case "data":
			if data[name][i] != nil {
				return nil, fmt.Errorf("database %q: data archive %d appears twice (%q)", name, i, n.Path)
			}
			data[name][i] = n
			continue
		case "table":
			if tables[name][i] != nil {
				return nil, fmt.Errorf("database %q: table archive %d appears twice (%q)", name, i, n.Path)
			}
			tables[name][i] = n
			continue
		case "props":
			slot = &d.Props
		case "whole":
			slot = &d.Whole
		case "pre":
			slot = &d.Pre
		case "post":
			slot = &d.Post
		}
		if *slot != nil {
			return nil, fmt.Errorf("entry %q appears twice", n.Path)
		}
		*slot = n
	}
	for _, d := range l.Databases {
		if err := d.check(data[d.Name], tables[d.Name]); err != nil {
			return nil, err
		}
	}
	if len(l.Databases) == 0 {
		return nil, errors.New("no database in the snapshot")
	}
	slices.SortStableFunc(l.Databases, func(a, b *Database) int { return a.first - b.first })
	return l, nil
}

// check tells whether d's archives are complete and not mixed, and fills
// d.Data and d.Tables from data and tables (index -> node).
func (d *Database) check(data, tables map[int]*snapshot.Node) error {
	split := d.Pre != nil || d.Post != nil || len(data) > 0 || len(tables) > 0
	switch {
	case d.Whole != nil && split:
		return fmt.Errorf("database %q has a whole archive and split archives", d.Name)
	case d.Whole == nil && !split:
		return fmt.Errorf("database %q has properties but no archive", d.Name)
	case d.Whole == nil && (d.Pre == nil || d.Post == nil || len(data) == 0):
		return fmt.Errorf("database %q is incomplete: pre-data, data and post-data archives expected", d.Name)
	}
	for i := range len(data) {
		n := data[i]
		if n == nil {
			return fmt.Errorf("database %q: data archive %d of %d is missing", d.Name, i, len(data))
		}
		d.Data = append(d.Data, n)
	}
	for i := range len(tables) {
		n := tables[i]
		if n == nil {
			return fmt.Errorf("database %q: table archive %d of %d is missing", d.Name, i, len(tables))
		}
		d.Tables = append(d.Tables, n)
	}
	return nil
}
