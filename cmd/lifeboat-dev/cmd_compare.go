package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/lifeboat-backup/lifeboat/internal/testutil/treecmp"
)

func newCompareTreesCommand() *cobra.Command {
	var opts treecmp.Options
	cmd := &cobra.Command{
		Use:   "compare-trees A B",
		Short: "Compare two file trees; exit 1 and list the differences if they differ",
		Long: `Compare two file trees: paths, types, modes, owners, mtimes (directories
and symlinks too), sizes, content, symlink targets, hardlink structure and
xattrs. Exit codes: 0 identical, 1 different (or error), 2 bad usage.`,
		Args: exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			diffs, err := treecmp.Compare(args[0], args[1], opts)
			if err != nil {
				return err
			}
			for _, d := range diffs {
				fmt.Fprintln(cmd.OutOrStdout(), d)
			}
			if len(diffs) > 0 {
				fmt.Fprintf(cmd.ErrOrStderr(), "%d differences\n", len(diffs))
				return errDifferent
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.BoolVar(&opts.IgnoreOwner, "ignore-owner", false, "do not compare uid/gid")
	f.BoolVar(&opts.IgnoreMode, "ignore-mode", false, "do not compare permission bits")
	f.BoolVar(&opts.IgnoreMtime, "ignore-mtime", false, "do not compare mtimes")
	f.BoolVar(&opts.IgnoreDirMtime, "ignore-dir-mtime", false, "do not compare directory mtimes")
	f.BoolVar(&opts.IgnoreXattrs, "ignore-xattrs", false, "do not compare extended attributes")
	f.BoolVar(&opts.IgnoreContent, "ignore-content", false, "do not read and compare file content")
	f.BoolVar(&opts.CompareAtime, "atime", false, "also compare access times")
	f.BoolVar(&opts.CompareRoot, "root", false, "also compare the metadata of A and B themselves")
	f.BoolVar(&opts.Sparse, "sparse", false, "check that files in B use no more blocks than in A (+slack)")
	f.IntVar(&opts.MaxDifferences, "max", 0, "stop after this many differences (0: all)")
	return cmd
}
