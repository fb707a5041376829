package main

import (
	"cmp"
	"context"
	"fmt"
	"regexp"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/spf13/cobra"

	"github.com/lifeboat-backup/lifeboat/engine"
	"github.com/lifeboat-backup/lifeboat/engine/repo"
	"github.com/lifeboat-backup/lifeboat/engine/restic"
	"github.com/lifeboat-backup/lifeboat/internal/humanize"
	"github.com/lifeboat-backup/lifeboat/internal/report"
)

func (a *app) checkCmd() *cobra.Command {
	var readData string
	var repair repo.RepairOptions
	var doRepair bool
	cmd := &cobra.Command{
		Use:   "check [--read-data[=PERCENT]] [--repair [--forget-damaged]]",
		Short: "Verify the repository structure, and with --read-data the pack contents; --repair rebuilds the index",
		Long: `Verify the repository: every index file and snapshot decodes, every referenced blob is
indexed, every indexed pack exists with its size; --read-data downloads, decrypts and
verifies a share of the packs (default all).

--repair (owner key, exclusive lock) reads every pack and rebuilds the index from what
the packs really hold: entries of missing or damaged packs are dropped (the next backup
stores again what its source still has), packs no readable index lists are indexed from
their headers, damaged index files are replaced. Snapshots that reference lost data are
listed; --forget-damaged removes them. See docs/reliability.md.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if doRepair {
				return a.repair(cmd.Context(), repair)
			}
			if repair.ForgetDamaged {
				return usagef("--forget-damaged works with --repair")
			}
			pct := 0.0
			if cmd.Flags().Changed("read-data") {
				v, err := parsePercent(readData)
				if err != nil {
					return usageError{err}
				}
				pct = v
			}
			ctx := cmd.Context()
			if ok, err := a.onRestic(ctx, "check", func(ctx context.Context, e *restic.Engine) error { return e.Check(ctx, pct) }); ok {
				return err
			}
			return a.withRepo(ctx, readLock, "check", func(ctx context.Context, r *repo.Repository) error {
				var done, total atomic.Int64
				stop := a.progressOf(func() report.Counter {
					return report.Counter{Phase: "check", Unit: "packs", Files: done.Load(), TotalFiles: total.Load()}
				})
				res, err := r.Check(ctx, repo.CheckOptions{ReadDataPercent: pct, Progress: func(d, t int) {
					done.Store(int64(d))
					total.Store(int64(t))
				}})
				stop()
				if err != nil {
					return err
				}
				segs, err := checkArchive(ctx, r, pct > 0, res)
				if err != nil {
					return err
				}
				if a.json {
					if err := a.emit(map[string]any{"message_type": "summary", "ok": res.OK(), "check": res, "archived_segments": segs}); err != nil {
						return err
					}
				} else {
					for _, w := range res.Warnings {
						fmt.Fprintln(a.stderr, "warning: "+termSafe(w))
					}
					for _, e := range res.Errors {
						fmt.Fprintln(a.stderr, "error: "+termSafe(e))
					}
					roles := make([]string, len(res.Keys))
					for i, k := range res.Keys {
						roles[i] = cmp.Or(k.Role, k.Status)
					}
					fmt.Fprintf(a.stdout, "%d key files (%s)\n", len(res.Keys), strings.Join(roles, ", "))
					fmt.Fprintf(a.stdout, "%d snapshots, %d packs, %d blobs checked", res.Snapshots, res.Packs, res.Blobs)
					if pct > 0 {
						fmt.Fprintf(a.stdout, "; %d packs read, %d verified, %d damaged", res.PacksRead, res.PacksRead-res.PacksFailed, res.PacksFailed)
					}
					fmt.Fprintln(a.stdout)
					if segs > 0 {
						fmt.Fprintf(a.stdout, "%d archived log segments checked\n", segs)
					}
				}
				if !res.OK() {
					return fmt.Errorf("check found %d problems: %s", len(res.Errors), res.Errors[0])
				}
				a.printf("no problems found\n")
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&readData, "read-data", "100", "also download, decrypt and verify PERCENT of the packs (default all)")
	cmd.Flags().Lookup("read-data").NoOptDefVal = "100"
	cmd.Flags().BoolVar(&doRepair, "repair", false, "read every pack and rebuild the index from what they hold (owner key)")
	cmd.Flags().BoolVar(&repair.ForgetDamaged, "forget-damaged", false, "with --repair: remove snapshots that reference lost data")
	return cmd
}

// repair runs check --repair.
func (a *app) repair(ctx context.Context, opts repo.RepairOptions) error {
	return a.withRepo(ctx, exclusiveLock, "repair", func(ctx context.Context, r *repo.Repository) error {
		var done, total atomic.Int64
		stop := a.progressOf(func() report.Counter {
			return report.Counter{Phase: "repair", Unit: "packs", Files: done.Load(), TotalFiles: total.Load()}
		})
		opts.Progress = func(d, t int) {
			done.Store(int64(d))
			total.Store(int64(t))
		}
		res, err := r.Repair(ctx, opts)
		stop()
		if err != nil {
			return err
		}
		left := len(res.DamagedSnapshots) - len(res.SnapshotsRemoved)
		var lost error
		if left > 0 {
			lost = fmt.Errorf("index rebuilt, but %d snapshots reference lost data (listed; --forget-damaged removes them)", left)
		}
		if a.json {
			if err := a.emit(map[string]any{"message_type": "summary", "repair": res}); err != nil {
				return err
			}
			return lost
		}
		for _, k := range res.PacksMissing {
			fmt.Fprintf(a.stdout, "missing pack %s: its blobs are no longer indexed\n", k)
		}
		for _, k := range res.PacksDamaged {
			fmt.Fprintf(a.stdout, "damaged pack %s: blobs that did not verify are no longer indexed\n", k)
		}
		fmt.Fprintf(a.stdout, "read %d packs; index rebuilt from %d index files (%d damaged), %d packs recovered from their headers, %d blob entries dropped\n",
			res.PacksRead, res.IndexFilesMerged, res.IndexFilesBad, res.PacksRecovered, res.BlobsDropped)
		for _, id := range res.DamagedSnapshots {
			if slices.Contains(res.SnapshotsRemoved, id) {
				fmt.Fprintf(a.stdout, "removed snapshot %s: it referenced lost data\n", id[:8])
			} else {
				fmt.Fprintf(a.stdout, "snapshot %s references lost data (--forget-damaged removes it; the next backup stores again what its source still has)\n", id[:8])
			}
		}
		return lost
	})
}

func (a *app) pruneCmd() *cobra.Command {
	var o repo.PruneOptions
	cmd := &cobra.Command{
		Use:   "prune",
		Short: "Remove data no snapshot references (runs beside backups)",
		Long: `Remove data that no snapshot references, beside running backups: unused packs are marked
as deletion candidates and deleted by a later prune once every backup that could have seen
them before the mark has finished (at once when no other lock is held); mostly unused packs
are repacked, the index rewritten. Safe to interrupt: at every step the index covers every
referenced blob. Repacking data packs needs the owner key; with a host key such packs are kept.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			if ok, err := a.onRestic(ctx, "prune", func(ctx context.Context, e *restic.Engine) error {
				if o.DryRun {
					return usagef("--dry-run: run restic prune --dry-run on a restic repository")
				}
				_, err := e.Prune(ctx)
				return err
			}); ok {
				return err
			}
			return a.withRepo(ctx, pruneLock, "prune", func(ctx context.Context, r *repo.Repository) error {
				if o.Grace == 0 {
					o.Grace = -1 // --grace 0s: none at all
				}
				res, err := r.Prune(ctx, o)
				if err != nil {
					return err
				}
				if a.json {
					return a.emit(map[string]any{"message_type": "summary", "dry_run": o.DryRun, "prune": res})
				}
				verb := "deleted"
				if o.DryRun {
					verb = "would delete"
				}
				fmt.Fprintf(a.stdout, "%s %d unused packs and %d orphaned packs, repacked %d, kept %d (%d partly used); %s freed\n",
					verb, res.PacksDeleted, res.PacksUnindexed, res.PacksRepacked, res.PacksKept, res.PartlyUsedKept, humanize.Bytes(res.BytesFreed))
				if res.PacksMarked > 0 || res.PacksWaiting > 0 {
					fmt.Fprintf(a.stdout, "%d packs marked for deletion, %d wait for backups that started before their mark; a later prune deletes them\n", res.PacksMarked, res.PacksWaiting)
				}
				if res.NeedOwnerKey > 0 {
					fmt.Fprintf(a.stdout, "%d partly used data packs kept: repacking them needs the owner key\n", res.NeedOwnerKey)
				}
				return nil
			})
		},
	}
	f := cmd.Flags()
	f.BoolVarP(&o.DryRun, "dry-run", "n", false, "only report what would be removed")
	f.DurationVar(&o.Grace, "grace", repo.DefaultGrace, "keep unindexed packs younger than this (a backup may still index them)")
	f.Float64Var(&o.RepackUnused, "repack-unused", 0.2, "repack packs with more than this share of unused bytes")
	return cmd
}

func (a *app) unlockCmd() *cobra.Command {
	var all bool
	cmd := &cobra.Command{
		Use:   "unlock",
		Short: "Remove stale locks (expired leases, dead processes on this host); --all removes every lock",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			if ok, err := a.onRestic(ctx, "unlock", func(ctx context.Context, e *restic.Engine) error {
				if all {
					return usagef("--all: run restic unlock --remove-all on a restic repository")
				}
				return e.Unlock(ctx)
			}); ok {
				return err
			}
			return a.withRepo(ctx, noLock, "", func(ctx context.Context, r *repo.Repository) error {
				n, err := repo.RemoveStaleLocks(ctx, r.Bucket(), all)
				if err != nil {
					return err
				}
				if a.json {
					return a.emit(map[string]any{"message_type": "summary", "removed": n})
				}
				fmt.Fprintf(a.stdout, "removed %d locks\n", n)
				return nil
			})
		},
	}
	cmd.Flags().BoolVar(&all, "all", false, "remove all locks, also live ones (only when you know no lifeboat runs)")
	return cmd
}

func (a *app) versionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			commit, built := buildCommit()
			if a.json {
				return a.emit(map[string]any{"version": engine.Version, "commit": commit, "commit_time": built,
					"go": runtime.Version(), "repository_format": repo.FormatVersion})
			}
			fmt.Fprintln(a.stdout, versionLine())
			return nil
		},
	}
}

// buildCommit returns the VCS revision and time Go stamped into the
// binary ("" when built outside a checkout); "-dirty" marks local changes.
func buildCommit() (commit, when string) {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "", ""
	}
	dirty := false
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			commit = s.Value
		case "vcs.time":
			when = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if dirty && commit != "" {
		commit += "-dirty"
	}
	return commit, when
}

// versionLine is what `lifeboat version` and `--version` print.
func versionLine() string {
	line := "lifeboat " + engine.Version
	if commit, when := buildCommit(); commit != "" {
		line += fmt.Sprintf(" (commit %s, %s)", commit, when)
	}
	return line + fmt.Sprintf(", %s, repository format %d", runtime.Version(), repo.FormatVersion)
}

var percentRE = regexp.MustCompile(`^[0-9]{1,3}(\.[0-9]{1,6})?%?$`)

// parsePercent reads --read-data's PERCENT: a plain decimal in (0, 100],
// optionally followed by "%". NaN, infinities, exponents, hex and signs
// are refused (NaN once compared false with both bounds and meant a
// structure-only check).
func parsePercent(s string) (float64, error) {
	bad := fmt.Errorf("--read-data=%q: want a percentage greater than 0 and at most 100 (e.g. 10, 2.5, 100%%)", s)
	if !percentRE.MatchString(s) {
		return 0, bad
	}
	v, err := strconv.ParseFloat(strings.TrimSuffix(s, "%"), 64)
	if err != nil || !(v > 0 && v <= 100) {
		return 0, bad
	}
	return v, nil
}
