// Command lifeboat-dev holds developer tools: generate, mutate and compare
// test file trees. It stays thin: the logic lives in internal/testutil/gentree and
// internal/testutil/treecmp. To add a command, write a newXCommand in its own file
// and list it in newRootCommand.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
)

// errDifferent makes the process exit with 1 without printing more.
var errDifferent = errors.New("trees differ")

// usageError makes the process exit with 2.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func newRootCommand(stdout io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:           "lifeboat-dev",
		Short:         "Developer tools for lifeboat: test trees and comparisons",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(stdout)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	root.AddCommand(
		newGenTreeCommand(),
		newMutateCommand(),
		newCompareTreesCommand(),
		newGenShopCommand(),
		newTortureCommand(),
		newGenRepoCommand(),
	)
	return root
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run executes the command line and returns the exit code: 0 ok, 1
// failure or differences, 2 bad usage.
func run(args []string, stdout, stderr io.Writer) int {
	root := newRootCommand(stdout)
	root.SetArgs(args)
	root.SetErr(stderr)
	err := root.Execute()
	var ue usageError
	switch {
	case err == nil:
		return 0
	case errors.Is(err, errDifferent), errors.Is(err, errViolations):
		return 1
	case errors.As(err, &ue) || isArgsError(err):
		fmt.Fprintf(stderr, "lifeboat-dev: %v\nTry: lifeboat-dev --help\n", err)
		return 2
	default:
		fmt.Fprintf(stderr, "lifeboat-dev: %v\n", err)
		return 1
	}
}

// isArgsError recognizes cobra's errors for unknown commands and wrong
// argument counts, which it does not type.
func isArgsError(err error) bool {
	var ae argsError
	return errors.As(err, &ae) || strings.HasPrefix(err.Error(), "unknown command ")
}

type argsError struct{ err error }

func (e argsError) Error() string { return e.err.Error() }

// exactArgs is cobra.ExactArgs with a usage error.
func exactArgs(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if err := cobra.ExactArgs(n)(cmd, args); err != nil {
			return argsError{err}
		}
		return nil
	}
}
