package mysql

import (
	"fmt"
	"strings"
)

// Object kinds and the suffixes of their entries in a snapshot. Every
// suffix ends in a different letter before ".sql" (or is ".data"), so the
// entries of different objects never collide whatever their names.
const (
	SuffixData      = ".data"
	SuffixSchema    = ".schema.sql"
	SuffixView      = ".view.sql"
	SuffixTrigger   = ".trigger.sql"
	SuffixProcedure = ".procedure.sql"
	SuffixFunction  = ".function.sql"
	SuffixEvent     = ".event.sql"
	// DatabaseFile is the entry in a database's directory holding its
	// CREATE DATABASE statement.
	DatabaseFile = ".database.sql"
)

// Kinds of the .sql entries, in restore order after the tables' data.
var objectSuffixes = []string{SuffixSchema, SuffixView, SuffixTrigger, SuffixProcedure, SuffixFunction, SuffixEvent}

// EncodeName turns a database or object name into one path element:
// '%', '/' and NUL become %XX, and so does a leading '.' (no "." or ".."
// elements, no clash with DatabaseFile). Everything else, unicode
// included, stays as it is.
func EncodeName(name string) string {
	var b strings.Builder
	for i := 0; i < len(name); i++ {
		c := name[i]
		if c == '%' || c == '/' || c == 0 || (i == 0 && c == '.') {
			fmt.Fprintf(&b, "%%%02X", c)
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

// DecodeName reverses EncodeName.
func DecodeName(s string) (string, error) {
	if !strings.Contains(s, "%") {
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '%' {
			b.WriteByte(s[i])
			continue
		}
		var c byte
		if i+2 >= len(s) {
			return "", fmt.Errorf("bad escape in name %q", s)
		}
		if _, err := fmt.Sscanf(s[i+1:i+3], "%02X", &c); err != nil {
			return "", fmt.Errorf("bad escape in name %q", s)
		}
		b.WriteByte(c)
		i += 2
	}
	return b.String(), nil
}

// ParseEntryName splits the base name of an entry below a database
// directory into the object name and its suffix (one of the Suffix
// constants, or DatabaseFile with an empty name).
func ParseEntryName(base string) (name, suffix string, err error) {
	if base == DatabaseFile {
		return "", DatabaseFile, nil
	}
	for _, s := range append([]string{SuffixData}, objectSuffixes...) {
		if strings.HasSuffix(base, s) {
			name, err = DecodeName(strings.TrimSuffix(base, s))
			return name, s, err
		}
	}
	return "", "", fmt.Errorf("unknown entry %q", base)
}
