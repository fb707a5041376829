package postgres

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
)

// TableTOC is the table of contents of a table archive (TableSuffix),
// split for a restore in two steps: Now with the table's data, Later
// once every table's data, indexes and constraints are in.
type TableTOC struct {
	// Head is the archive's first bytes, its whole table of contents
	// among them: pg_restore reads the items of Later (no data) from it.
	Head []byte
	// Now and Later are pg_restore --use-list files. Now: the table's
	// rows, its sequences' values, indexes and constraints (primary key,
	// unique, exclusion), restored as soon as the archive is read. Later:
	// everything else in the archive's order: foreign keys (they need
	// the referenced table's data and key, maybe from another archive),
	// triggers, rules, policies, comments, attached partition indexes.
	Now, Later []byte
}

// tocHeadMax bounds how much of a table archive is held in memory to
// read its table of contents (one table's: kilobytes).
const tocHeadMax = 64 << 20

// ReadTableTOC reads the start of a table archive from r, until its
// table of contents can be read, and splits it (SplitTOC). Archives of
// the format versions ListTOC knows are listed in-process; others by
// pg_restore --list. The rest of the archive is what r still holds:
// restore io.MultiReader(bytes.NewReader(toc.Head), r).
func ReadTableTOC(ctx context.Context, pgRestore string, r io.Reader) (*TableTOC, error) {
	var head []byte
	for limit := 256 << 10; ; limit *= 4 {
		more := make([]byte, limit-len(head))
		n, err := io.ReadFull(r, more)
		head = append(head, more[:n]...)
		eof := errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
		if err != nil && !eof {
			return nil, err
		}
		list, ok, known := ListTOC(head)
		if known && !ok && !eof && limit < tocHeadMax {
			continue
		}
		var lerr error
		var stderr bytes.Buffer
		if !ok {
			cmd := exec.CommandContext(ctx, pgRestore, "--list")
			cmd.Stdin = bytes.NewReader(head)
			cmd.Stderr = &stderr
			list, lerr = cmd.Output()
		}
		if lerr == nil {
			toc := &TableTOC{Head: head}
			toc.Now, toc.Later = SplitTOC(list)
			return toc, nil
		}
		if eof || limit >= tocHeadMax {
			msg := strings.TrimSpace(stderr.String())
			if msg == "" {
				msg = lerr.Error()
			}
			return nil, fmt.Errorf("pg_restore --list: %s", msg)
		}
	}
}

// UseList writes list (pg_restore --list lines) to a temporary file in
// dir ("": the system's) and returns pg_restore's --use-list argument for
// it and a function that removes the file.
func UseList(dir string, list []byte) (arg string, remove func(), err error) {
	f, err := os.CreateTemp(dir, "lifeboat-pgrestore-*.list")
	if err != nil {
		return "", nil, fmt.Errorf("list file: %w", err)
	}
	remove = func() { _ = os.Remove(f.Name()) }
	_, err = f.Write(list)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		remove()
		return "", nil, fmt.Errorf("list file: %w", err)
	}
	return "--use-list=" + f.Name(), remove, nil
}

// nowKinds are the items restored with a table's data: pg_restore --list
// names an item "ID; CATALOG-OID OBJECT-OID KIND ...".
var nowKinds = []string{"TABLE DATA ", "SEQUENCE SET ", "INDEX ", "CONSTRAINT "}

// SplitTOC splits pg_restore --list output of a table archive into the
// list of items to restore with the table's data (Now) and the list of
// the others (Later). Comment lines are left out.
func SplitTOC(list []byte) (now, later []byte) {
	for _, line := range strings.SplitAfter(string(list), "\n") {
		if strings.HasPrefix(line, ";") || strings.TrimSpace(line) == "" {
			continue
		}
		if !strings.HasSuffix(line, "\n") {
			line += "\n"
		}
		kind := ListKind(line)
		if hasAnyPrefix(kind, nowKinds) && !strings.HasPrefix(kind, "INDEX ATTACH ") {
			now = append(now, line...)
		} else {
			later = append(later, line...)
		}
	}
	return now, later
}

// ListKind is the kind and the rest of a pg_restore --list line ("ID;
// catalog-OID object-OID KIND SCHEMA NAME OWNER"): "INDEX public i_x
// owner"; "" for a line of another shape.
func ListKind(line string) string {
	if f := strings.SplitN(line, " ", 4); len(f) == 4 {
		return f[3]
	}
	return ""
}

func hasAnyPrefix(s string, prefixes []string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}
