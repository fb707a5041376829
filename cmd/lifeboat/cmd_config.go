package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/lifeboat-backup/lifeboat/policies"
)

// loadPolicy reads a policy file with the LIFEBOAT_* overrides of
// policies.EnvOverrides applied. An invalid policy (or a missing file) is
// a usage error (exit 2); the problems are listed one per line. So is a
// name in targets (--target) that is not one of the policy's targets.
func (a *app) loadPolicy(path string, targets ...string) (*policies.Policy, error) {
	p, err := policies.Load(path, policies.WithEnviron(os.Environ()))
	if err != nil {
		var ve policies.ValidationErrors
		if errors.As(err, &ve) || errors.Is(err, os.ErrNotExist) {
			return nil, usageError{err}
		}
		return nil, err
	}
	for _, t := range targets {
		if _, err := p.Target(t); err != nil {
			return nil, usageError{err}
		}
	}
	return p, nil
}

func (a *app) configCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Check a policy file, print an example policy or the policy's JSON Schema",
		Long: `Policy files are described in docs/policy.md.

  lifeboat config validate FILE                          check FILE: "ok", or every problem with file:line:column
  lifeboat config example [--preset magento2|orocommerce] print a commented, valid policy
  lifeboat config schema                                 print the JSON Schema (draft 2020-12) for editors`,
	}
	cmd.AddCommand(a.configValidateCmd(), a.configExampleCmd(), a.configSchemaCmd())
	return cmd
}

func (a *app) configValidateCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "validate FILE",
		Short: "Check a policy file; exit 2 listing every problem (file:line:column: key: problem)",
		Long: `Check a policy file as lifeboat run would read it, LIFEBOAT_* overrides included
(docs/policy.md). Prints "ok", or every problem, one per line, and exits 2.
With --json: {"file": ..., "ok": bool, "problems": [{file, line, column, field, value, message, allowed}]}.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			file := args[0]
			_, err := policies.Load(file, policies.WithEnviron(os.Environ()))
			var ve policies.ValidationErrors
			if err != nil && !errors.As(err, &ve) {
				if errors.Is(err, os.ErrNotExist) {
					return usageError{err}
				}
				return err
			}
			if a.json {
				problems := []policies.ValidationError(ve)
				if problems == nil {
					problems = []policies.ValidationError{}
				}
				if err := a.emit(map[string]any{"file": file, "ok": len(ve) == 0, "problems": problems}); err != nil {
					return err
				}
			} else if len(ve) == 0 {
				fmt.Fprintln(a.stdout, "ok")
			} else {
				for _, e := range ve {
					fmt.Fprintln(a.stdout, e.Error())
				}
			}
			if len(ve) > 0 {
				plural := "s"
				if len(ve) == 1 {
					plural = ""
				}
				return usagef("%s: %d problem%s", file, len(ve), plural)
			}
			return nil
		},
	}
}

func (a *app) configExampleCmd() *cobra.Command {
	var preset string
	cmd := &cobra.Command{
		Use:   "example",
		Short: "Print a commented, valid policy (generic, or --preset magento2|orocommerce)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			y, err := policies.Example(preset)
			if err != nil {
				return usageError{err}
			}
			_, err = fmt.Fprint(a.stdout, y)
			return err
		},
	}
	cmd.Flags().StringVar(&preset, "preset", "", "magento2 or orocommerce (default: a generic policy)")
	return cmd
}

func (a *app) configSchemaCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "schema",
		Short: "Print the JSON Schema (draft 2020-12) of policy files, for editors",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, err := policies.JSONSchema()
			if err != nil {
				return err
			}
			_, err = fmt.Fprintln(a.stdout, string(s))
			return err
		},
	}
}
