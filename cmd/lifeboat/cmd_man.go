package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"

	"github.com/lifeboat-backup/lifeboat/engine"
)

func (a *app) manCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "man DIR",
		Short: "Write the man pages, one per command (lifeboat.1, lifeboat-backup-files.1, ...), into DIR",
		Long: `Write the man pages of every command, generated from the same help text as --help, into
DIR (created if missing): lifeboat.1, lifeboat-backup.1, lifeboat-backup-files.1, ... Install
them with "make man" (to $(PREFIX)/share/man/man1) or read one with "man -l DIR/lifeboat-ls.1".`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := os.MkdirAll(args[0], 0o755); err != nil {
				return err
			}
			root := cmd.Root()
			root.DisableAutoGenTag = true // the same pages from the same binary
			hdr := &doc.GenManHeader{Title: "LIFEBOAT", Section: "1", Source: "lifeboat " + engine.Version, Manual: "lifeboat manual"}
			if err := doc.GenManTree(root, hdr, args[0]); err != nil {
				return fmt.Errorf("man pages: %w", err)
			}
			a.printf("wrote the man pages to %s\n", args[0])
			return nil
		},
	}
}
