package mysql

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
)

// The data of a table is stored in the default text format of LOAD DATA
// and SELECT ... INTO OUTFILE: fields separated by a tab, rows ended by a
// newline, NULL as \N, and a backslash before backslash, tab and newline
// (NUL as \0). Values are the server's bytes unconverted (the dump
// connection runs SET NAMES binary), so they are loaded back with
// CHARACTER SET binary. The first line names the columns in the same
// format: the columns stored, which leaves out generated columns.
//
// Load one by hand with:
//
//	LOAD DATA LOCAL INFILE 't.data' INTO TABLE t CHARACTER SET binary IGNORE 1 LINES (col, ...)

// escapes maps each byte that needs a backslash to the letter after it.
var escapes = [256]byte{'\\': '\\', '\t': 't', '\n': 'n', 0: '0'}

// AppendField appends one value in the LOAD DATA text format (nil is NULL).
func AppendField(dst, v []byte) []byte {
	if v == nil {
		return append(dst, '\\', 'N')
	}
	start := 0
	for i := 0; i < len(v); {
		// Eight bytes at a time while none needs a backslash.
		if i+8 <= len(v) && !needsEscape(binary.LittleEndian.Uint64(v[i:])) {
			i += 8
			continue
		}
		if esc := escapes[v[i]]; esc != 0 {
			dst = append(dst, v[start:i]...)
			dst = append(dst, '\\', esc)
			start = i + 1
		}
		i++
	}
	return append(dst, v[start:]...)
}

// needsEscape reports whether one of the eight bytes of x is a backslash,
// tab, newline or NUL (a byte b is zero in x^b when x holds it).
func needsEscape(x uint64) bool {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	zero := func(y uint64) uint64 { return (y - ones) &^ y & highs }
	return zero(x)|zero(x^'\\'*ones)|zero(x^'\t'*ones)|zero(x^'\n'*ones) != 0
}

// AppendRow appends a row and its newline.
func AppendRow(dst []byte, vals [][]byte) []byte {
	for i, v := range vals {
		if i > 0 {
			dst = append(dst, '\t')
		}
		dst = AppendField(dst, v)
	}
	return append(dst, '\n')
}

// SplitRow parses one line (without its newline) of the text format.
// Tests and the column header use it; restores stream the data to the
// server unparsed.
func SplitRow(line []byte) [][]byte {
	var out [][]byte
	var cur []byte
	null := false
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case c == '\t':
			if null {
				out = append(out, nil)
			} else {
				out = append(out, append([]byte{}, cur...))
			}
			cur, null = cur[:0], false
		case c == '\\' && i+1 < len(line):
			i++
			switch line[i] {
			case 'N':
				if len(cur) == 0 {
					null = true
					continue
				}
				cur = append(cur, 'N')
			case 't':
				cur = append(cur, '\t')
			case 'n':
				cur = append(cur, '\n')
			case '0':
				cur = append(cur, 0)
			case 'r':
				cur = append(cur, '\r')
			case 'b':
				cur = append(cur, '\b')
			case 'Z':
				cur = append(cur, 0x1a)
			default:
				cur = append(cur, line[i])
			}
		default:
			cur = append(cur, c)
		}
	}
	if null {
		out = append(out, nil)
	} else {
		out = append(out, append([]byte{}, cur...))
	}
	return out
}

// ReadHeader reads the column header line of a table's data stream.
func ReadHeader(r *bufio.Reader) ([]string, error) {
	line, err := r.ReadBytes('\n')
	if err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("data stream has no column header")
		}
		return nil, err
	}
	fields := SplitRow(line[:len(line)-1])
	cols := make([]string, len(fields))
	for i, f := range fields {
		cols[i] = string(f)
	}
	return cols, nil
}

// Object is a schema object as stored in a .sql entry: the session
// settings it was created under and its CREATE statement.
type Object struct {
	Kind  string   // table, view, trigger, procedure, function, event
	Name  string   //
	Setup []string // SET statements, without the semicolon
	Stmt  string   // the CREATE statement, without a terminator
}

const delimiter = ";;"

// Format writes the object so that the mysql client can run the file:
//
//	-- lifeboat mysql view `v`
//	SET SESSION sql_mode = '...';
//	DELIMITER ;;
//	CREATE ... ;;
//	DELIMITER ;
func (o *Object) Format() []byte {
	var b bytes.Buffer
	// The name is informational (restores take it from the entry's path);
	// line breaks in it would end the comment.
	name := strings.NewReplacer("\n", " ", "\r", " ").Replace(o.Name)
	fmt.Fprintf(&b, "-- lifeboat mysql %s %s\n", o.Kind, QuoteName(name))
	for _, s := range o.Setup {
		b.WriteString(s)
		b.WriteString(";\n")
	}
	b.WriteString("DELIMITER " + delimiter + "\n")
	b.WriteString(o.Stmt)
	b.WriteString(delimiter + "\nDELIMITER ;\n")
	return b.Bytes()
}

// ParseObject reads what Format wrote.
func ParseObject(data []byte) (*Object, error) {
	s := string(data)
	head, body, ok := strings.Cut(s, "DELIMITER "+delimiter+"\n")
	if !ok || !strings.HasSuffix(body, delimiter+"\nDELIMITER ;\n") {
		return nil, errors.New("not a lifeboat mysql object file")
	}
	o := &Object{Stmt: strings.TrimSuffix(body, delimiter+"\nDELIMITER ;\n")}
	for _, line := range strings.Split(strings.TrimSuffix(head, "\n"), "\n") {
		switch {
		case strings.HasPrefix(line, "-- lifeboat mysql "):
			kind, name, _ := strings.Cut(strings.TrimPrefix(line, "-- lifeboat mysql "), " ")
			o.Kind = kind
			if len(name) >= 2 && name[0] == '`' && name[len(name)-1] == '`' {
				o.Name = strings.ReplaceAll(name[1:len(name)-1], "``", "`")
			}
		case strings.HasPrefix(line, "SET ") && strings.HasSuffix(line, ";"):
			o.Setup = append(o.Setup, strings.TrimSuffix(line, ";"))
		case line == "" || strings.HasPrefix(line, "--"):
		default:
			return nil, fmt.Errorf("unexpected line in object file: %.60q", line)
		}
	}
	return o, nil
}

var (
	reCharset   = regexp.MustCompile(`(?i)CHARACTER SET (\w+)`)
	reCollation = regexp.MustCompile(`(?i)COLLATE (\w+)`)
)

// CreateDatabaseAs turns a stored DatabaseFile (its CREATE DATABASE) into
// a CREATE DATABASE IF NOT EXISTS of name with the same character set and
// collation: restores and sanitized exports create databases under other
// names with it. A file it cannot read gives the server's defaults.
func CreateDatabaseAs(name string, stored []byte) string {
	q := "CREATE DATABASE IF NOT EXISTS " + QuoteName(name)
	o, err := ParseObject(stored)
	if err != nil {
		return q
	}
	if m := reCharset.FindStringSubmatch(o.Stmt); m != nil {
		q += " CHARACTER SET " + m[1]
	}
	if m := reCollation.FindStringSubmatch(o.Stmt); m != nil {
		q += " COLLATE " + m[1]
	}
	return q
}

// reTriggerTable finds the table of a CREATE TRIGGER statement: ON name
// or ON db.name, quoted or not.
var reTriggerTable = regexp.MustCompile("(?is)\\bTRIGGER\\s.*?\\s(?:BEFORE|AFTER)\\s+(?:INSERT|UPDATE|DELETE)\\s+ON\\s+(`(?:[^`]|``)+`|[^\\s`.]+)(?:\\.(`(?:[^`]|``)+`|[^\\s`.]+))?")

// TriggerTable is the table a CREATE TRIGGER statement is defined on
// (restores of some tables keep their triggers; sanitized exports drop
// those of skipped tables).
func TriggerTable(stmt string) (string, error) {
	m := reTriggerTable.FindStringSubmatch(stmt)
	if m == nil {
		return "", errors.New("no table in the trigger's CREATE statement")
	}
	t := m[1]
	if m[2] != "" {
		t = m[2]
	}
	if strings.HasPrefix(t, "`") {
		t = strings.ReplaceAll(t[1:len(t)-1], "``", "`")
	}
	return t, nil
}
