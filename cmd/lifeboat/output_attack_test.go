package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lifeboat-backup/lifeboat/engine/snapshot"
)

// hostile holds what a backup host may write into a snapshot's names to
// drive the terminal of whoever lists it: clear the screen, set the window
// title, reverse the text direction, fake a table row.
const hostile = "\x1b[2J\x1b]0;pwned\x07\u202eevil\nfake\x9b31m"

// assertInert fails if out holds any terminal control character (tab and
// newline excepted: the tables' own layout).
func assertInert(t *testing.T, out string) {
	t.Helper()
	for _, bad := range []string{"\x1b", "\x07", "\u202e", "\x9b", "\u009b", "\nfake"} {
		assert.NotContains(t, out, bad)
	}
}

// TestAttackTerminalEscapesInSnapshotNames writes a snapshot with the host
// key whose host, target, tag and file names carry escape sequences, as a
// stolen backup host would (lifeboat backup --host ...), and lists it with
// every human-readable command: nothing reaches the terminal raw, and
// --json still carries the names exactly.
func TestAttackTerminalEscapesInSnapshotNames(t *testing.T) {
	c, dir, src := setup(t)
	require.NoError(t, os.WriteFile(filepath.Join(src, "sub", "x\x1b[2Jy"), []byte("x"), 0o644))
	c.env["LIFEBOAT_KEY_FILE"] = filepath.Join(dir, "host.key")
	c.ok("backup", "files", src, "--host", hostile, "--target", "t"+hostile, "--tag", "tag"+hostile)
	c.ok("backup", "files", src, "--host", hostile, "--target", "t"+hostile, "--tag", "tag"+hostile)

	out := c.ok("snapshots")
	assertInert(t, out)
	assert.Contains(t, out, `\x1b[2J\x1b]0;pwned\a\u202eevil\nfake`)
	assert.Contains(t, out, "2 snapshots")

	out = c.ok("snapshots", "--json")
	assert.Contains(t, out, `\u001b[2J`, "JSON escapes by itself")

	out = c.ok("forget", "--keep-last", "1", "--dry-run")
	assertInert(t, out)
	assert.Contains(t, out, `\x1b[2J`)

	c.env["LIFEBOAT_KEY_FILE"] = filepath.Join(dir, "owner.key")
	out = c.ok("ls", "latest")
	assertInert(t, out)
	assert.Contains(t, out, `x\x1b[2Jy`)

	out = c.ok("restore", "latest", "--to", filepath.Join(dir, "out"))
	assertInert(t, out)

	_, errs, code := c.run("ls", "latest", "--target", "t"+hostile, "nothing/here")
	assert.NotEqual(t, 0, code)
	assertInert(t, errs)
}

func TestLsLineHostileOwner(t *testing.T) {
	n := &snapshot.Node{Entry: snapshot.Entry{Path: "a" + hostile, Type: snapshot.TypeSymlink, Mode: 0o644, User: hostile,
		Group: hostile, ModTime: time.Unix(0, 0), LinkTarget: hostile}}
	line := lsLine(n)
	assertInert(t, line)
	assert.Equal(t, 4, strings.Count(line, `\x1b[2J`), line)
}

func TestTermSafe(t *testing.T) {
	for in, want := range map[string]string{
		"shop-db-1":           "shop-db-1",
		"naïve host 名前":       "naïve host 名前",
		"\x1b[2J":             `\x1b[2J`,
		"a\tb\nc\rd":          `a\tb\nc\rd`,
		"\x7f\u0085\u202e":    `\x7f\u0085\u202e`,
		"bad\xffutf8\xc2":     `bad\xffutf8\xc2`,
		"\x00":                `\x00`,
		"line1\nline2\x1b[0m": `line1\nline2\x1b[0m`,
	} {
		assert.Equal(t, want, termSafe(in), "%q", in)
	}
	assert.Equal(t, "line1\n\tline2\\x1b[0m", termLines("line1\n\tline2\x1b[0m"))
}
