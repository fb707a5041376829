package main

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/spf13/cobra"

	"github.com/lifeboat-backup/lifeboat/engine"
	"github.com/lifeboat-backup/lifeboat/engine/replicate"
	"github.com/lifeboat-backup/lifeboat/engine/repo"
	"github.com/lifeboat-backup/lifeboat/engine/storage"
	"github.com/lifeboat-backup/lifeboat/internal/humanize"
	"github.com/lifeboat-backup/lifeboat/internal/report"
	"github.com/lifeboat-backup/lifeboat/policies"
)

func (a *app) replicateCmd() *cobra.Command {
	var to string
	var verifyAll bool
	var deleteAfter time.Duration
	var maxDelete int
	cmd := &cobra.Command{
		Use:   "replicate [POLICY] [--to URL]",
		Short: "Copy the repository to a second location, byte for byte (the host key is enough)",
		Example: `  lifeboat replicate --to s3://dr-bucket/shop?region=eu-west-1
  lifeboat replicate /etc/lifeboat/shop.yaml   # engine: restic -> restic copy to each secondary`,
		Long: `Copy every pack, index file and snapshot the secondary lacks, verifying each copy
(SHA-256 of the stored bytes against the index), manifests last, so the secondary is
always consistent; then remove from the secondary what forget/prune removed here.
Interrupted runs resume: what is there is skipped. --verify-all also re-reads every
pack already in the secondary and recopies damaged ones. With POLICY: from its primary to
each of its secondaries (exit 1 when one was further behind than its max_lag).
On a restic repository: restic copy of the snapshots the secondary lacks into a restic
repository with the same password (created with the same chunker parameters if missing).`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var dests []policies.Secondary
			switch {
			case len(args) == 1 && to == "":
				p, err := a.loadPolicy(args[0])
				if err != nil {
					return err
				}
				a.policy = p
				dests = p.Repositories.Secondaries
				if len(dests) == 0 {
					return usagef("policy %s has no secondaries", p.Name)
				}
			case len(args) == 0 && to != "":
				dests = []policies.Secondary{{Name: "secondary", URL: to}}
			default:
				return usagef("give POLICY or --to URL")
			}
			ctx := cmd.Context()
			return a.withEngine(ctx, sharedLock, "replicate", func(ctx context.Context, e engine.Engine) error {
				var lagging []string
				var done []map[string]any // --json: each secondary, in the one summary
				for _, d := range dests {
					var lag time.Duration
					switch e := e.(type) {
					case engine.Native:
						opts := engine.ReplicateOptions(d)
						opts.VerifyAll = verifyAll
						if cmd.Flags().Changed("delete-after") {
							opts.DeleteAfter = deleteAfter
							if deleteAfter == 0 {
								opts.DeleteAfter = -1 // 0s: at once
							}
						}
						if cmd.Flags().Changed("max-delete-percent") {
							opts.MaxDeletePercent = maxDelete
						}
						res, err := a.replicateOne(ctx, e.R, d, opts)
						if err != nil {
							return fmt.Errorf("replicate to %s: %w", d.Name, err)
						}
						lag = res.Lag
						done = append(done, map[string]any{"secondary": d.Name, "to": storage.Redact(d.URL), "engine": "native",
							"copied": res.Copied, "bytes": res.Bytes, "recopied": res.Recopied, "deleted": res.Deleted,
							"pending_deletion": res.Pending, "deletions_postponed": res.Postponed,
							"snapshots": res.Snapshots, "lag_seconds": res.Lag.Seconds()})
					default:
						if verifyAll {
							return usagef("--verify-all works on native repositories (restic: lifeboat check on the secondary)")
						}
						st, err := e.Replicate(ctx, d)
						if err != nil {
							return fmt.Errorf("replicate to %s: %w", d.Name, err)
						}
						if !a.json {
							fmt.Fprintf(a.stdout, "replicated to %s (%s, restic copy): %d snapshots copied; lag was %s\n",
								d.Name, storage.Redact(d.URL), st.Copied, st.Lag.Round(time.Second))
						}
						done = append(done, map[string]any{"secondary": d.Name, "to": storage.Redact(d.URL), "engine": "restic",
							"snapshots_copied": st.Copied, "lag_seconds": st.Lag.Seconds()})
						lag = st.Lag
					}
					if limit := d.MaxLag.D(); limit > 0 && lag > limit {
						lagging = append(lagging, fmt.Sprintf("%s was %s behind (max_lag %s)", d.Name, lag.Round(time.Second), limit))
					}
				}
				if a.json {
					if err := a.emit(map[string]any{"message_type": "summary", "secondaries": done}); err != nil {
						return err
					}
				}
				if len(lagging) > 0 {
					return fmt.Errorf("replication lag: %s", strings.Join(lagging, "; "))
				}
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&to, "to", "", "secondary repository URL")
	cmd.Flags().BoolVar(&verifyAll, "verify-all", false, "re-read and verify every pack already in the secondary")
	cmd.Flags().DurationVar(&deleteAfter, "delete-after", replicate.DefaultDeleteAfter, "keep what the primary forgot this long in the secondary (0s: delete at once; default: the policy's replication.delete_after)")
	cmd.Flags().IntVar(&maxDelete, "max-delete-percent", replicate.DefaultMaxDeletePercent, "refuse when more than this percent of the secondary's snapshots are newly gone from the primary (100: no limit)")
	return cmd
}

// replicateOne copies r to one secondary and prints what it did (text;
// in JSON the command's one summary holds it).
func (a *app) replicateOne(ctx context.Context, r *repo.Repository, d policies.Secondary, opts replicate.Options) (*replicate.Result, error) {
	dst, err := storage.OpenWith(ctx, d.URL, storage.OpenOptions{Create: true, Ping: true})
	if err != nil {
		return nil, err
	}
	defer dst.Close()
	var last atomic.Pointer[replicate.Progress]
	last.Store(&replicate.Progress{})
	stop := a.progressOf(func() report.Counter {
		p := last.Load()
		return report.Counter{Phase: "replicate", Target: d.Name, Unit: "objects", Files: int64(p.Objects),
			TotalFiles: int64(p.ObjectsTotal), Bytes: p.Bytes, TotalBytes: p.BytesTotal}
	})
	opts.Progress = func(p replicate.Progress) { last.Store(&p) }
	res, err := replicate.Replicate(ctx, r, dst, opts)
	stop()
	if err != nil {
		return nil, err
	}
	if a.json {
		return res, nil // in the command's summary
	}
	fmt.Fprintf(a.stdout, "replicated to %s (%s): %d objects copied (%s), %d damaged recopied, %d removed, %d kept until their delete_after; %d snapshots; lag was %s\n",
		d.Name, storage.Redact(d.URL), res.Copied, humanize.Bytes(res.Bytes), res.Recopied, res.Deleted, res.Pending, res.Snapshots, res.Lag.Round(time.Second))
	if res.Postponed != "" {
		fmt.Fprintf(a.stderr, "warning: %s: deletions postponed to the next run: %s\n", d.Name, res.Postponed)
	}
	return res, nil
}
