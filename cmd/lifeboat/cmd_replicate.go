package main

import (
	"context"
	"fmt"
	"sync/atomic"

	"github.com/spf13/cobra"

	"github.com/lifeboat-backup/lifeboat/engine/replicate"
	"github.com/lifeboat-backup/lifeboat/engine/repo"
	"github.com/lifeboat-backup/lifeboat/engine/repo/storage"
)

func (a *app) replicateCmd() *cobra.Command {
	var to string
	var opts replicate.Options
	cmd := &cobra.Command{
		Use:   "replicate --to URL",
		Short: "Copy the repository to a second location, byte for byte (the host key is enough)",
		Long: `Copy every pack, index file and snapshot the secondary lacks, verifying each copy
(SHA-256 of the stored bytes against the index), manifests last, so the secondary is
always consistent; then remove from the secondary what forget/prune removed here.
Interrupted runs resume: what is there is skipped. --verify-all also re-reads every
pack already in the secondary and recopies damaged ones.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if to == "" {
				return usagef("--to URL is required")
			}
			ctx := cmd.Context()
			return a.withRepo(ctx, sharedLock, "replicate", func(ctx context.Context, r *repo.Repository) error {
				dst, err := storage.OpenWith(ctx, to, storage.OpenOptions{Create: true, Ping: true})
				if err != nil {
					return err
				}
				defer dst.Close()
				var last atomic.Pointer[replicate.Progress]
				last.Store(&replicate.Progress{})
				stop := a.progress(func() string {
					p := last.Load()
					return fmt.Sprintf("copied %d of %d objects, %s of %s", p.Objects, p.ObjectsTotal,
						formatBytes(p.Bytes), formatBytes(p.BytesTotal))
				})
				opts.Progress = func(p replicate.Progress) { last.Store(&p) }
				res, err := replicate.Replicate(ctx, r, dst, opts)
				stop()
				if err != nil {
					return err
				}
				if a.json {
					return a.emit(map[string]any{"message_type": "summary", "to": storage.Redact(to), "copied": res.Copied,
						"bytes": res.Bytes, "recopied": res.Recopied, "deleted": res.Deleted, "snapshots": res.Snapshots,
						"lag_seconds": res.Lag.Seconds()})
				}
				fmt.Fprintf(a.stdout, "replicated to %s: %d objects copied (%s), %d damaged recopied, %d removed; %d snapshots; lag was %s\n",
					storage.Redact(to), res.Copied, formatBytes(res.Bytes), res.Recopied, res.Deleted, res.Snapshots, res.Lag.Round(1e9))
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&to, "to", "", "secondary repository URL")
	cmd.Flags().BoolVar(&opts.VerifyAll, "verify-all", false, "re-read and verify every pack already in the secondary")
	return cmd
}
