package main

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/lifeboat-backup/lifeboat/restore/browse"
	"github.com/lifeboat-backup/lifeboat/restore/mount"
)

func (a *app) mountCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "mount MOUNTPOINT",
		Short: "Serve the snapshots as a read-only file system (FUSE) until interrupted",
		Long: `Mount the repository read-only at MOUNTPOINT (FUSE; as root no fusermount is needed):
  ids/SHORTID/...          each snapshot's tree
  snapshots/TIME           the snapshots by time (UTC)
  targets/TARGET/TIME      by target, with TARGET/latest
  latest                   the newest snapshot
Names, sizes, modes and times come with the host key; reading a file needs the owner key
(EACCES otherwise). The snapshot list is read at mount time. Ctrl-C (or umount) ends it.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withBrowse(cmd.Context(), readLock, "mount", func(ctx context.Context, r browse.Repo) error {
				m, err := mount.Mount(ctx, r, args[0])
				if err != nil {
					return err
				}
				fmt.Fprintf(a.stderr, "mounted at %s (read-only); interrupt or umount to end\n", termSafe(args[0]))
				done := make(chan struct{})
				go func() { m.Wait(); close(done) }()
				select {
				case <-ctx.Done():
				case <-done:
				}
				return m.Unmount()
			})
		},
	}
}
