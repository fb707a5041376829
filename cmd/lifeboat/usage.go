package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"github.com/spf13/cobra"
)

// guardCommands makes every usage mistake an exit-2 error with a one-line
// hint instead of a help text and exit 0 (a cron job that "ran" and did
// nothing): a command group (a command with subcommands and no RunE of
// its own) run without a subcommand or with an unknown one, and every
// argument-count mistake. It walks the whole tree, so commands added later
// behave too (TestCLIEveryGroupRefusesUnknownArgs).
func guardCommands(cmd *cobra.Command) {
	if cmd.HasSubCommands() && cmd.Run == nil && cmd.RunE == nil {
		cmd.Args = cobra.ArbitraryArgs
		if cmd.Annotations == nil {
			cmd.Annotations = map[string]string{}
		}
		cmd.Annotations[annotGroup] = "true"
		cmd.RunE = func(c *cobra.Command, args []string) error { return groupUsage(c, args) }
	}
	if check := cmd.Args; check != nil {
		cmd.Args = func(c *cobra.Command, args []string) error {
			if err := check(c, args); err != nil {
				return usagef("%s: %v (see `%s --help`)", c.CommandPath(), err, c.CommandPath())
			}
			return nil
		}
	}
	for _, sub := range cmd.Commands() {
		guardCommands(sub)
	}
}

// annotGroup marks the command groups guardCommands gave a RunE.
const annotGroup = "lifeboat-group"

// groupUsage is the error for a command group run without a known
// subcommand, with a hint: `lifeboat backup /srv/www` (restic's habit)
// suggests `lifeboat backup files /srv/www`; a misspelt subcommand its
// nearest names; otherwise the list of subcommands.
func groupUsage(c *cobra.Command, args []string) error {
	var names []string
	for _, s := range c.Commands() {
		if s.IsAvailableCommand() {
			names = append(names, s.Name())
		}
	}
	list := strings.Join(names, ", ")
	if len(args) == 0 {
		return usagef("%s needs a subcommand: one of %s", c.CommandPath(), list)
	}
	arg := args[0]
	if c.Name() == "backup" && looksLikePath(arg) {
		return usagef("%s: unknown subcommand %q; did you mean `%s files %s`?", c.CommandPath(), arg, c.CommandPath(), strings.Join(args, " "))
	}
	if s := c.SuggestionsFor(arg); len(s) > 0 {
		return usagef("%s: unknown subcommand %q; did you mean `%s %s`?", c.CommandPath(), arg, c.CommandPath(), s[0])
	}
	return usagef("%s: unknown subcommand %q; one of %s", c.CommandPath(), arg, list)
}

func looksLikePath(s string) bool {
	if strings.ContainsRune(s, '/') || strings.HasPrefix(s, ".") || strings.HasPrefix(s, "~") {
		return true
	}
	_, err := os.Lstat(s)
	return err == nil
}

// usageNotFound makes a file the user named that does not exist a usage
// error (exit 2), naming the flag: a typo in --key-file is not a failure
// of the repository.
func usageNotFound(flag string, err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		return usageError{fmt.Errorf("%s: %w", flag, err)}
	}
	return err
}
