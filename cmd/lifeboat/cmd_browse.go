package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/lifeboat-backup/lifeboat/engine"
	"github.com/lifeboat-backup/lifeboat/engine/snapshot"
	"github.com/lifeboat-backup/lifeboat/internal/humanize"
	"github.com/lifeboat-backup/lifeboat/restore/browse"
	"github.com/lifeboat-backup/lifeboat/targets/files"
)

// The browsing commands (restore/browse): diff, find, dump, stats, mount.
// Listings take no lock, like snapshots and ls; dump and mount read packs
// under a read lock. Output shapes: docs/console.md.

func (a *app) browseCmds() []*cobra.Command {
	return []*cobra.Command{a.diffCmd(), a.findCmd(), a.dumpCmd(), a.statsCmd(), a.mountCmd(), a.serveCmd()}
}

// withBrowse runs fn on the repository as browse reads it, locked by
// mode (readLock where contents are read: a prune must not remove them).
func (a *app) withBrowse(ctx context.Context, mode lockMode, purpose string, fn func(context.Context, browse.Repo) error) error {
	return a.withEngine(ctx, mode, purpose, func(ctx context.Context, e engine.Engine) error {
		return fn(ctx, browse.Engine(e))
	})
}

func (a *app) diffCmd() *cobra.Command {
	var target string
	cmd := &cobra.Command{
		Use:   "diff SNAPSHOT1 SNAPSHOT2",
		Short: "Show the entries added, removed and changed between two snapshots (host key suffices)",
		Long: `Compare two snapshots entry by entry, like restic diff: "+" added, "-" removed, "M" content
modified, "T" type changed, "U" metadata only (mode, owner, time, link target, xattrs), each
with its size before and after; then the counts. Content is compared by blob IDs, so the host
key suffices. --json prints one "change" line per entry and a "statistics" line last.`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withBrowse(cmd.Context(), noLock, "", func(ctx context.Context, r browse.Repo) error {
				sa, err := findPerTarget(ctx, r, args[0], target, "")
				if err != nil {
					return err
				}
				sb, err := findPerTarget(ctx, r, args[1], target, "")
				if err != nil {
					return err
				}
				if !a.json {
					fmt.Fprintf(a.stdout, "comparing snapshot %s to %s:\n\n", sa.ID.Short(), sb.ID.Short())
				}
				st, err := browse.Diff(ctx, r, sa, sb, func(c browse.Change) error {
					if a.json {
						return a.emit(struct {
							MessageType string `json:"message_type"`
							browse.Change
						}{"change", c})
					}
					size := humanize.Bytes(c.SizeAfter)
					switch c.Modifier {
					case browse.Removed:
						size = humanize.Bytes(c.SizeBefore)
					case browse.Modified:
						size = humanize.Bytes(c.SizeBefore) + " -> " + humanize.Bytes(c.SizeAfter)
					}
					if c.Type != snapshot.TypeFile && c.Modifier != browse.Modified {
						size = string(c.Type)
					}
					fmt.Fprintf(a.stdout, "%-2s %-24s %s\n", c.Modifier, size, termSafe(c.Path))
					return nil
				})
				if err != nil {
					return err
				}
				if a.json {
					return a.emit(struct {
						MessageType string `json:"message_type"`
						*browse.DiffStats
					}{"statistics", st})
				}
				fmt.Fprintf(a.stdout, "\nFiles:       %5d new, %5d removed, %5d changed\n", st.Added.Files, st.Removed.Files, st.ChangedFiles)
				fmt.Fprintf(a.stdout, "Dirs:        %5d new, %5d removed\n", st.Added.Dirs, st.Removed.Dirs)
				fmt.Fprintf(a.stdout, "Others:      %5d new, %5d removed\n", st.Added.Others, st.Removed.Others)
				fmt.Fprintf(a.stdout, "Added:   %s\nRemoved: %s\n", humanize.Bytes(st.Added.Bytes), humanize.Bytes(st.Removed.Bytes))
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&target, "target", "", "with latest: the latest snapshot of this target")
	return cmd
}

type findMatchJSON struct {
	Path  string             `json:"path"`
	Type  snapshot.EntryType `json:"type"`
	Size  int64              `json:"size"`
	Mode  string             `json:"mode"`
	MTime time.Time          `json:"mtime"`
	UID   uint32             `json:"uid"`
	GID   uint32             `json:"gid"`
	User  string             `json:"user,omitempty"`
	Group string             `json:"group,omitempty"`
	Link  string             `json:"link,omitempty"`
}

func (a *app) findCmd() *cobra.Command {
	var refs []string
	var target, host string
	var ignoreCase, long bool
	cmd := &cobra.Command{
		Use:   "find PATTERN",
		Short: "Find entries by name across snapshots (host key suffices)",
		Long: `Find the entries whose base name matches PATTERN (a shell glob: *, ?, [...]), or whose whole
path ("/dir/file") matches when PATTERN contains a slash, in every snapshot (oldest first) or
those named by --snapshot (restic's own file trees are skipped: restic find reads them).
--json prints one line per snapshot with hits:
{"snapshot": ID, "hits": N, "matches": [...]}.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			m, err := browse.NewMatcher(args[0], ignoreCase)
			if err != nil {
				return usageError{err}
			}
			return a.withBrowse(cmd.Context(), noLock, "", func(ctx context.Context, r browse.Repo) error {
				sns, err := a.selectSnapshots(ctx, r, refs, snapshotFilter(target, host))
				if err != nil {
					return err
				}
				total := 0
				for _, sn := range sns {
					var matches []findMatchJSON
					var lines []string
					err := browse.Find(ctx, r, sn, m, func(n *snapshot.Node) error {
						if a.json {
							matches = append(matches, findMatchJSON{Path: "/" + n.Path, Type: n.Type, Size: n.Size, Mode: fmt.Sprintf("%04o", files.UnixMode(n.Mode)),
								MTime: n.ModTime, UID: n.UID, GID: n.GID, User: n.User, Group: n.Group, Link: n.LinkTarget})
						} else if long {
							lines = append(lines, lsLine(n))
						} else {
							lines = append(lines, termSafe("/"+n.Path))
						}
						return nil
					})
					if errors.Is(err, snapshot.ErrUnsupported) { // restic's own file trees
						fmt.Fprintf(a.stderr, "skipped: %s\n", termSafe(err.Error()))
						continue
					}
					if err != nil {
						return err
					}
					hits := len(matches) + len(lines)
					total += hits
					if hits == 0 {
						continue
					}
					if a.json {
						if err := a.emit(map[string]any{"snapshot": sn.ID.String(), "hits": hits, "matches": matches}); err != nil {
							return err
						}
						continue
					}
					fmt.Fprintf(a.stdout, "Found matching entries in snapshot %s (%s) from %s\n", sn.ID.Short(), termSafe(sn.Target), sn.Time.Local().Format("2006-01-02 15:04:05"))
					for _, l := range lines {
						fmt.Fprintln(a.stdout, l)
					}
					fmt.Fprintln(a.stdout)
				}
				if !a.json {
					fmt.Fprintf(a.stdout, "%d matches in %d snapshots\n", total, len(sns))
				}
				return nil
			})
		},
	}
	cmd.Flags().StringSliceVar(&refs, "snapshot", nil, "only these snapshots (ID prefixes, or latest: the latest of each target; repeatable)")
	cmd.Flags().StringVar(&target, "target", "", "only snapshots of this target")
	cmd.Flags().StringVar(&host, "host", "", "only snapshots of this host")
	cmd.Flags().BoolVarP(&ignoreCase, "ignore-case", "i", false, "match regardless of case")
	cmd.Flags().BoolVarP(&long, "long", "l", false, "print each match as ls --long does")
	return cmd
}

// selectSnapshots resolves refs (none: all snapshots filter keeps).
// latest is per target, as everywhere: it names the latest snapshot of
// each target filter keeps (one with --target).
func (a *app) selectSnapshots(ctx context.Context, r browse.Repo, refs []string, filter func(*snapshot.Snapshot) bool) ([]*snapshot.Snapshot, error) {
	var all []*snapshot.Snapshot
	if len(refs) == 0 || slices.Contains(refs, "latest") {
		sns, err := r.Snapshots(ctx)
		if err != nil {
			return nil, err
		}
		all = slices.DeleteFunc(sns, func(s *snapshot.Snapshot) bool { return !filter(s) })
	}
	if len(refs) == 0 {
		return all, nil
	}
	var out []*snapshot.Snapshot
	add := func(sn *snapshot.Snapshot) {
		if !slices.ContainsFunc(out, func(s *snapshot.Snapshot) bool { return s.ID == sn.ID }) {
			out = append(out, sn)
		}
	}
	for _, ref := range refs {
		if ref == "latest" {
			latest := latestPerTarget(all)
			if len(latest) == 0 {
				return nil, fmt.Errorf("latest: no snapshot matches")
			}
			for _, sn := range latest {
				add(sn)
			}
			continue
		}
		sn, err := r.FindSnapshot(ctx, ref, filter)
		if err != nil {
			return nil, err
		}
		add(sn)
	}
	return out, nil
}

// latestPerTarget returns the newest intact snapshot of each target in
// sns (oldest first), in target order.
func latestPerTarget(sns []*snapshot.Snapshot) []*snapshot.Snapshot {
	newest := map[string]*snapshot.Snapshot{}
	for _, s := range sns {
		if s.Suspect != "" {
			continue
		}
		if n := newest[s.Target]; n == nil || !s.Time.Before(n.Time) {
			newest[s.Target] = s
		}
	}
	out := make([]*snapshot.Snapshot, 0, len(newest))
	for _, s := range newest {
		out = append(out, s)
	}
	slices.SortFunc(out, func(a, b *snapshot.Snapshot) int { return strings.Compare(a.Target, b.Target) })
	return out
}

func (a *app) dumpCmd() *cobra.Command {
	var target string
	cmd := &cobra.Command{
		Use:   "dump SNAPSHOT|latest PATH",
		Short: "Write a file of a snapshot to stdout, or a directory as a tar archive (owner key)",
		Long: `Write the file at PATH in the snapshot to stdout; a directory (or "/", the whole snapshot)
is written as a tar archive, paths relative to the snapshot root. Reading contents needs the
owner key (exit 12 with a host key).`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withBrowse(cmd.Context(), readLock, "dump", func(ctx context.Context, r browse.Repo) error {
				sn, err := findPerTarget(ctx, r, args[0], target, "")
				if err != nil {
					return err
				}
				return browse.Dump(ctx, r, sn, args[1], a.stdout)
			})
		},
	}
	cmd.Flags().StringVar(&target, "target", "", "with latest: the latest snapshot of this target")
	return cmd
}

func (a *app) statsCmd() *cobra.Command {
	var mode, target, host string
	cmd := &cobra.Command{
		Use:   "stats [SNAPSHOT...]",
		Short: "Count what snapshots hold: restore size or stored data (host key suffices)",
		Long: `Count the snapshots named (default: all): --mode restore-size (default) adds up their entries and
file sizes, what restoring each would write; --mode raw-data counts the distinct blobs they
reference once each, stored (compressed, before encryption overhead) and uncompressed, and the
compression ratio (native repositories).`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if mode != browse.ModeRestoreSize && mode != browse.ModeRawData {
				return usagef("--mode %q: restore-size or raw-data", mode)
			}
			return a.withBrowse(cmd.Context(), noLock, "", func(ctx context.Context, r browse.Repo) error {
				sns, err := a.selectSnapshots(ctx, r, args, snapshotFilter(target, host))
				if err != nil {
					return err
				}
				st, err := browse.Stats(ctx, r, sns, mode)
				if err != nil {
					return err
				}
				if a.json {
					return a.emit(st)
				}
				fmt.Fprintf(a.stdout, "Stats in %s mode:\n", mode)
				fmt.Fprintf(a.stdout, "     Snapshots processed:  %d\n", st.SnapshotsCount)
				if mode == browse.ModeRestoreSize {
					fmt.Fprintf(a.stdout, "        Total File Count:  %d\n", st.TotalFileCount)
					fmt.Fprintf(a.stdout, "              Total Size:  %s\n", humanize.Bytes(st.TotalSize))
					return nil
				}
				fmt.Fprintf(a.stdout, "        Total Blob Count:  %d\n", st.TotalBlobCount)
				fmt.Fprintf(a.stdout, " Total Uncompressed Size:  %s\n", humanize.Bytes(st.TotalUncompressedSize))
				fmt.Fprintf(a.stdout, "              Total Size:  %s\n", humanize.Bytes(st.TotalSize))
				fmt.Fprintf(a.stdout, "       Compression Ratio:  %.2fx\n", st.CompressionRatio)
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&mode, "mode", browse.ModeRestoreSize, "restore-size or raw-data")
	cmd.Flags().StringVar(&target, "target", "", "only snapshots of this target")
	cmd.Flags().StringVar(&host, "host", "", "only snapshots of this host")
	return cmd
}
