package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/lifeboat-backup/lifeboat/internal/testutil/gentree"
)

func newGenTreeCommand() *cobra.Command {
	var (
		size string
		opts gentree.Options
	)
	cmd := &cobra.Command{
		Use:   "gen-tree DIR",
		Short: "Generate a deterministic test file tree",
		Long: `Generate a deterministic test file tree in DIR (created; must be empty):
SQL-like and random content, small and large files, sparse files, hard and
symbolic links, a FIFO, odd names, modes, mtimes and xattrs. The same --seed
and --size give a byte-identical tree.`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			n, err := parseSize(size)
			if err != nil {
				return usageError{err}
			}
			opts.Size = n
			st, err := gentree.Generate(args[0], opts)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "files %d\ndirs %d\nsymlinks %d\nhardlinks %d\nspecial %d\nbytes %d\napparent_bytes %d\n",
				st.Files, st.Dirs, st.Symlinks, st.Hardlinks, st.Special, st.Bytes, st.Apparent)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&size, "size", "64MiB", "approximate content size (e.g. 1GiB, 512MiB)")
	f.Int64Var(&opts.Seed, "seed", 1, "random seed")
	f.IntVar(&opts.SmallFiles, "small-files", 0, "number of 1-16 KiB files (0: about a fifth of --size)")
	f.BoolVar(&opts.NoSpecial, "no-special", false, "leave out the FIFO, devices, xattrs and owner changes")
	f.BoolVar(&opts.Socket, "socket", false, "add a Unix socket (not restorable)")
	return cmd
}

func newMutateCommand() *cobra.Command {
	var (
		fraction float64
		seed     int64
	)
	cmd := &cobra.Command{
		Use:   "mutate DIR",
		Short: "Change about a fraction of a generated tree's bytes in place, deterministically",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			n, err := gentree.Mutate(args[0], fraction, seed)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "changed_bytes %d\n", n)
			return nil
		},
	}
	cmd.Flags().Float64Var(&fraction, "fraction", 0.01, "fraction of content bytes to change (0..1)")
	cmd.Flags().Int64Var(&seed, "seed", 1, "random seed")
	return cmd
}
