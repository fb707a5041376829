package main

import (
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// termSafe returns s fit for a human-readable line on a terminal: every
// rune that is not printable (control characters such as ESC, newline
// and tab, DEL, C1 controls, bidi overrides, invalid UTF-8) is written as
// its Go escape (\x1b, \n, \u202e), so names read from a repository
// (host, user, group, tag, target and file names a backup host wrote)
// cannot move the cursor, clear the screen, retitle the window or fake
// table rows. --json output needs no such care: JSON escapes them.
func termSafe(s string) string {
	if printable(s) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n == 1:
			b.WriteString(`\x` + strconv.FormatUint(uint64(s[i])|0x100, 16)[1:])
		case r == ' ' || unicode.IsPrint(r):
			b.WriteString(s[i : i+n])
		default:
			q := strconv.QuoteRuneToASCII(r)
			b.WriteString(q[1 : len(q)-1])
		}
		i += n
	}
	return b.String()
}

// termLines is termSafe for a message of several lines: its newlines and
// tabs stay.
func termLines(s string) string {
	if printable(strings.NewReplacer("\n", "", "\t", "").Replace(s)) {
		return s
	}
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		cells := strings.Split(l, "\t")
		for j, c := range cells {
			cells[j] = termSafe(c)
		}
		lines[i] = strings.Join(cells, "\t")
	}
	return strings.Join(lines, "\n")
}

// termSafeAll is termSafe for every element of list (a new slice).
func termSafeAll(list []string) []string {
	out := make([]string, len(list))
	for i, s := range list {
		out[i] = termSafe(s)
	}
	return out
}

func printable(s string) bool {
	for _, r := range s {
		if r != ' ' && (r == utf8.RuneError || !unicode.IsPrint(r)) {
			return false
		}
	}
	return true
}
