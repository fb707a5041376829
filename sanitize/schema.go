package sanitize

import (
	"strconv"
	"strings"
)

// column is what sanitizing needs to know about a column, parsed from the
// table's SHOW CREATE TABLE.
type column struct {
	name     string
	typ      string // base type, lower case: varchar, int, blob, ...
	max      int    // characters (char types) or bytes (binary types); 0 unknown/unlimited
	nullable bool
	unique   bool // part of a primary or unique key
}

func (c *column) isString() bool {
	switch c.typ {
	case "char", "varchar", "tinytext", "text", "mediumtext", "longtext", "json":
		return true
	}
	return false
}

func (c *column) isBinary() bool {
	switch c.typ {
	case "binary", "varbinary", "tinyblob", "blob", "mediumblob", "longblob", "bit",
		"geometry", "point", "linestring", "polygon", "multipoint", "multilinestring", "multipolygon", "geometrycollection":
		return true
	}
	return false
}

func (c *column) isNumeric() bool {
	switch c.typ {
	case "tinyint", "smallint", "mediumint", "int", "integer", "bigint", "decimal", "numeric", "float", "double", "real", "year":
		return true
	}
	return false
}

func (c *column) isTemporal() bool {
	switch c.typ {
	case "date", "datetime", "timestamp", "time":
		return true
	}
	return false
}

// textLike: a column a fake, hash or mask can be written to.
func (c *column) textLike() bool {
	return c.isString() || c.typ == "varbinary" || c.typ == "binary" || strings.HasSuffix(c.typ, "blob")
}

var textMax = map[string]int{"tinytext": 255, "tinyblob": 255, "text": 65535, "blob": 65535}

// parseColumns reads the column definitions of a CREATE TABLE statement as
// SHOW CREATE TABLE formats it (one definition per line).
func parseColumns(stmt string) []*column {
	var cols []*column
	byName := map[string]*column{}
	for _, line := range strings.Split(stmt, "\n") {
		line = strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(line, "`"):
			name, rest, ok := cutQuoted(line)
			if !ok {
				continue
			}
			c := &column{name: name, nullable: true}
			rest = strings.TrimSpace(rest)
			end := strings.IndexAny(rest, " (,")
			if end < 0 {
				end = len(rest)
			}
			c.typ = strings.ToLower(rest[:end])
			rest = rest[end:]
			if strings.HasPrefix(rest, "(") {
				if close := strings.IndexByte(rest, ')'); close > 0 {
					if n, err := strconv.Atoi(rest[1:close]); err == nil {
						switch c.typ {
						case "char", "varchar", "binary", "varbinary":
							c.max = n
						}
					}
				}
			}
			if m, ok := textMax[c.typ]; ok {
				c.max = m
			}
			up := strings.ToUpper(rest)
			if strings.Contains(up, "NOT NULL") {
				c.nullable = false
			}
			cols = append(cols, c)
			byName[name] = c
		case strings.HasPrefix(line, "PRIMARY KEY") || strings.HasPrefix(line, "UNIQUE KEY") || strings.HasPrefix(line, "UNIQUE INDEX"):
			open, close := strings.IndexByte(line, '('), strings.LastIndexByte(line, ')')
			if open < 0 || close < open {
				continue
			}
			for _, part := range strings.Split(line[open+1:close], ",") {
				part = strings.TrimSpace(part)
				if name, _, ok := cutQuoted(part); ok && byName[name] != nil {
					byName[name].unique = true
				}
			}
		}
	}
	return cols
}

// cutQuoted reads a leading `quoted` identifier.
func cutQuoted(s string) (name, rest string, ok bool) {
	if !strings.HasPrefix(s, "`") {
		return "", s, false
	}
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		if s[i] == '`' {
			if i+1 < len(s) && s[i+1] == '`' {
				b.WriteByte('`')
				i++
				continue
			}
			return b.String(), s[i+1:], true
		}
		b.WriteByte(s[i])
	}
	return "", s, false
}
