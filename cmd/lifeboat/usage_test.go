package main

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Every command group (a command with subcommands and no RunE of its own)
// is a usage error, exit 2, when run with an unknown or no subcommand:
// before, `lifeboat systemd foo` printed the help and exited 0, a backup
// that never happens under cron. Walks the whole tree, so a group added
// later is covered.
func TestCLIEveryGroupRefusesUnknownArgs(t *testing.T) {
	c := &cli{t: t, env: map[string]string{"LIFEBOAT_REPO": "file://" + filepath.Join(t.TempDir(), "none")}}
	root := newApp(strings.NewReader(""), &strings.Builder{}, &strings.Builder{}).root()
	var groups [][]string
	var walk func(cmd *cobra.Command, path []string)
	walk = func(cmd *cobra.Command, path []string) {
		if cmd.HasSubCommands() && cmd.Annotations[annotGroup] != "" {
			groups = append(groups, path)
		} else if cmd.HasSubCommands() {
			t.Logf("%s: a group with its own RunE (takes arguments)", cmd.CommandPath())
		}
		for _, s := range cmd.Commands() {
			walk(s, append(append([]string{}, path...), s.Name()))
		}
	}
	walk(root, nil)
	require.Greater(t, len(groups), 5, "the walk found the groups")
	for _, want := range []string{"backup", "systemd", "sanitize", "config", "key"} {
		assert.Contains(t, groups, []string{want}, "guarded")
	}
	for _, g := range groups {
		name := "lifeboat " + strings.Join(g, " ")
		for _, extra := range [][]string{{"frobnicate"}, nil} {
			out, errs, code := c.run(append(append([]string{}, g...), extra...)...)
			assert.Equal(t, exitUsage, code, "%s %v: %s", name, extra, errs)
			assert.Empty(t, out, "%s %v printed help instead of failing", name, extra)
			assert.Contains(t, errs, strings.TrimSpace(name), "%s %v: the error names the command", name, extra)
		}
	}
}

func TestCLIUsageHints(t *testing.T) {
	c, dir, src := setup(t)
	c.env["LIFEBOAT_KEY_FILE"] = filepath.Join(dir, "host.key")
	for _, tc := range []struct {
		args []string
		hint string
	}{
		{[]string{"backup", "/srv/www"}, "did you mean `lifeboat backup files /srv/www`?"},
		{[]string{"backup", src}, "did you mean `lifeboat backup files " + src + "`?"},
		{[]string{"systemd", "instal"}, "did you mean `lifeboat systemd install`?"},
		{[]string{"systemd", "foo"}, "unknown subcommand \"foo\"; one of"},
		{[]string{"sanitize", "foo"}, "lifeboat sanitize: unknown subcommand \"foo\""},
		{[]string{"backup"}, "lifeboat backup needs a subcommand: one of"},
		{[]string{"backup", "files"}, "lifeboat backup files: requires at least 1 arg(s)"},
		{[]string{"backup", "files", src, "--exclude", "[a-"}, "--exclude: exclude pattern \"[a-\""},
		{[]string{"backup", "files", src, "--key-file", filepath.Join(dir, "nope.key")}, "--key-file"},
		{[]string{"snapshots", "--nosuch"}, "unknown flag"},
		{[]string{"backup", "files", src, "--time", "yesterday"}, "--time \"yesterday\": want RFC 3339"},
	} {
		out, errs, code := c.run(tc.args...)
		assert.Equal(t, exitUsage, code, "%v: %s", tc.args, errs)
		assert.Contains(t, errs, tc.hint, "%v", tc.args)
		assert.Empty(t, out, "%v", tc.args)
	}
	// nothing was backed up by any of them
	assert.Equal(t, "[]", strings.TrimSpace(c.ok("snapshots", "--json")))
}

// Asking for help or the version is not a usage error.
func TestCLIHelpStillExitsZero(t *testing.T) {
	c := &cli{t: t}
	for _, args := range [][]string{{"--help"}, {"backup", "--help"}, {"help", "backup"}, {"--version"}, {"systemd", "-h"}} {
		out, errs, code := c.run(args...)
		assert.Equal(t, 0, code, "%v: %s", args, errs)
		assert.NotEmpty(t, out, "%v", args)
	}
}
