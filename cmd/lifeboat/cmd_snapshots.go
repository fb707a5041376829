package main

import (
	"context"
	"fmt"
	"io"
	"maps"
	"path"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/lifeboat-backup/lifeboat/engine"
	"github.com/lifeboat-backup/lifeboat/engine/repo"
	"github.com/lifeboat-backup/lifeboat/engine/restic"
	"github.com/lifeboat-backup/lifeboat/engine/snapshot"
	"github.com/lifeboat-backup/lifeboat/internal/humanize"
	"github.com/lifeboat-backup/lifeboat/targets/files"
)

type snapshotJSON struct {
	ID            string                 `json:"id"`
	ShortID       string                 `json:"short_id"`
	Time          time.Time              `json:"time"`
	Target        string                 `json:"target"`
	Kind          string                 `json:"kind"`
	Host          string                 `json:"host"`
	Tags          []string               `json:"tags"`
	Paths         []string               `json:"paths,omitempty"`
	Parent        string                 `json:"parent,omitempty"`
	RecoveryPoint snapshot.RecoveryPoint `json:"recovery_point"`
	Stats         snapshot.Stats         `json:"stats"`
	Suspect       string                 `json:"suspect,omitempty"` // why it is never "latest" (a future time)
}

func toJSON(s *snapshot.Snapshot) snapshotJSON {
	j := snapshotJSON{ID: s.ID.String(), ShortID: s.ID.Short(), Time: s.Time, Target: s.Target, Kind: s.Kind,
		Host: s.Host, Tags: s.Tags, Paths: s.Paths, RecoveryPoint: s.RecoveryPoint, Stats: s.Stats, Suspect: s.Suspect}
	if j.Tags == nil {
		j.Tags = []string{}
	}
	if s.Parent != nil {
		j.Parent = s.Parent.String()
	}
	return j
}

func (a *app) snapshotsCmd() *cobra.Command {
	var target, host, groupBy string
	var tags []string
	cmd := &cobra.Command{
		Use:   "snapshots",
		Short: "List snapshots (takes no lock: never blocks or is blocked by a backup)",
		Long: `List snapshots, oldest first: ID, time, target, host, tags, size and paths. A restic
repository (--engine restic or a policy with engine: restic) is listed alike: lifeboat's
target and kind come from its snapshots' target:/kind: tags; snapshots restic made by
itself show as files snapshots named after their first path.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			return a.withEngine(ctx, noLock, "", func(ctx context.Context, e engine.Engine) error {
				sns, err := e.Snapshots(ctx)
				if err != nil {
					return err
				}
				keep := snapshotFilter(target, host)
				out := []snapshotJSON{}
				for _, s := range sns {
					if keep(s) && hasTags(s.Tags, tags) {
						out = append(out, toJSON(s))
					}
				}
				switch groupBy {
				case "":
				case "host":
					return a.printSnapshotsByHost(out)
				default:
					return usagef("--group-by %q: only host is supported", groupBy)
				}
				if a.json {
					return a.emit(out)
				}
				if err := a.printSnapshotTable(out); err != nil {
					return err
				}
				fmt.Fprintf(a.stdout, "%d snapshots\n", len(out))
				for _, s := range out {
					if s.Suspect != "" {
						fmt.Fprintf(a.stderr, "warning: snapshot %s is never used as latest, as a parent or by retention: %s\n", s.ShortID, s.Suspect)
					}
				}
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&target, "target", "", "only this target")
	cmd.Flags().StringVar(&host, "host", "", "only this host")
	cmd.Flags().StringVar(&groupBy, "group-by", "", "group the list: host (one block per host with its count and newest snapshot; JSON: restic's [{group_key, snapshots}])")
	cmd.Flags().StringArrayVar(&tags, "tag", nil, "only snapshots with this tag; repeatable: any of them, and a,b needs both (restic's --tag)")
	return cmd
}

// printSnapshotTable prints snapshots as the snapshots command's table.
func (a *app) printSnapshotTable(out []snapshotJSON) error {
	tw := tabwriter.NewWriter(a.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tTime\tTarget\tHost\tTags\tSize\tPaths")
	for _, s := range out {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", s.ShortID, s.Time.Local().Format("2006-01-02 15:04:05"),
			termSafe(s.Target), termSafe(s.Host), strings.Join(termSafeAll(s.Tags), ","), humanize.Bytes(s.Stats.BytesIn),
			strings.Join(termSafeAll(s.Paths), " "))
	}
	return tw.Flush()
}

// snapshotGroup is one host's snapshots (snapshots --group-by host); the
// JSON is restic's group_key/snapshots form.
type snapshotGroup struct {
	Key       map[string]string `json:"group_key"`
	Snapshots []snapshotJSON    `json:"snapshots"`
}

// printSnapshotsByHost prints out (oldest first) in one block per host,
// hosts sorted by name.
func (a *app) printSnapshotsByHost(out []snapshotJSON) error {
	byHost := map[string][]snapshotJSON{}
	for _, s := range out {
		byHost[s.Host] = append(byHost[s.Host], s)
	}
	groups := []snapshotGroup{}
	for _, h := range slices.Sorted(maps.Keys(byHost)) {
		groups = append(groups, snapshotGroup{Key: map[string]string{"host": h}, Snapshots: byHost[h]})
	}
	if a.json {
		return a.emit(groups)
	}
	for i, g := range groups {
		if i > 0 {
			fmt.Fprintln(a.stdout)
		}
		newest := g.Snapshots[len(g.Snapshots)-1]
		fmt.Fprintf(a.stdout, "host %s: %d snapshots, newest %s (%s)\n", termSafe(g.Key["host"]), len(g.Snapshots),
			newest.ShortID, newest.Time.Local().Format("2006-01-02 15:04:05"))
		if err := a.printSnapshotTable(g.Snapshots); err != nil {
			return err
		}
	}
	fmt.Fprintf(a.stdout, "%d snapshots of %d hosts\n", len(out), len(groups))
	return nil
}

func (a *app) lsCmd() *cobra.Command {
	var target, host string
	var long bool
	cmd := &cobra.Command{
		Use:   "ls SNAPSHOT|latest [PATH]",
		Short: "List the entries of a snapshot (no lock)",
		Args:  cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			return a.withEngine(ctx, noLock, "", func(ctx context.Context, e engine.Engine) error {
				sn, err := findPerTarget(ctx, e, args[0], target, host)
				if err != nil {
					return err
				}
				prefix := ""
				if len(args) == 2 {
					prefix = strings.Trim(args[1], "/")
				}
				tr, err := treeOf(ctx, e, sn)
				if err != nil {
					return err
				}
				if a.json { // restic's ls --json: the snapshot, then its nodes
					if err := a.emit(struct {
						snapshotJSON
						StructType  string `json:"struct_type"`
						MessageType string `json:"message_type"`
					}{toJSON(sn), "snapshot", "snapshot"}); err != nil {
						return err
					}
				}
				n := 0
				for {
					node, err := tr.Next()
					if err == io.EOF {
						break
					}
					if err != nil {
						return err
					}
					if prefix != "" && node.Path != prefix && !strings.HasPrefix(node.Path, prefix+"/") {
						continue
					}
					n++
					if a.json {
						if err := a.emit(lsJSON(node)); err != nil {
							return err
						}
						continue
					}
					if long {
						fmt.Fprintln(a.stdout, lsLine(node))
					} else {
						fmt.Fprintln(a.stdout, termSafe("/"+node.Path))
					}
				}
				if prefix != "" && n == 0 {
					return fmt.Errorf("%s: %w in snapshot %s", prefix, repo.ErrNotFound, sn.ID.Short())
				}
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&target, "target", "", "with latest: the latest snapshot of this target")
	cmd.Flags().StringVar(&host, "host", "", "with latest: the latest snapshot of this host")
	cmd.Flags().BoolVarP(&long, "long", "l", false, "mode, owner, group, size, time and link target of each entry")
	return cmd
}

// treeOf reads a snapshot's nodes: any native snapshot; on restic the
// stream snapshots (files snapshots are restic's own tree: restic ls).
func treeOf(ctx context.Context, e engine.Engine, sn *snapshot.Snapshot) (snapshot.TreeReader, error) {
	switch e := e.(type) {
	case engine.Native:
		return e.R.NewTreeReader(ctx, sn), nil
	case *restic.Engine:
		if sn.Kind == "files" {
			return nil, usagef("snapshot %s is restic's own file tree: list it with restic ls %s", sn.ID.Short(), sn.ID.Short())
		}
		s, err := e.Open(ctx, sn)
		if err != nil {
			return nil, err
		}
		defer s.Close()
		return s.Tree(ctx), nil // read whole by Tree: the snapshot can close
	}
	return nil, fmt.Errorf("engine %s cannot list snapshot trees", e.Name())
}

func lsJSON(n *snapshot.Node) map[string]any {
	return map[string]any{"struct_type": "node", "message_type": "node", "name": path.Base(n.Path), "path": n.Path, "type": n.Type, "mode": fmt.Sprintf("%04o", files.UnixMode(n.Mode)),
		"size": n.Size, "mtime": n.ModTime, "uid": n.UID, "gid": n.GID, "user": n.User, "group": n.Group,
		"link": n.LinkTarget, "hardlink": n.HardlinkTo, "blobs": len(n.Content)}
}

func lsLine(n *snapshot.Node) string {
	mode := n.FileMode().String()
	owner := n.User
	if owner == "" {
		owner = fmt.Sprint(n.UID)
	}
	group := n.Group
	if group == "" {
		group = fmt.Sprint(n.GID)
	}
	line := fmt.Sprintf("%s %8s %8s %12d %s %q", mode, termSafe(owner), termSafe(group), n.Size, n.ModTime.Local().Format("2006-01-02 15:04:05"), n.Path)
	switch {
	case n.LinkTarget != "":
		line += " -> " + fmt.Sprintf("%q", n.LinkTarget)
	case n.HardlinkTo != "":
		line += " => " + fmt.Sprintf("%q", n.HardlinkTo)
	}
	return line
}

// hasTags is restic's --tag filter: true without filters, else when the
// snapshot carries every tag of at least one filter ("a,b" needs both,
// repeated filters are alternatives).
func hasTags(have, filters []string) bool {
	if len(filters) == 0 {
		return true
	}
	for _, f := range filters {
		all := true
		for _, t := range strings.Split(f, ",") {
			if t != "" && !slices.Contains(have, t) {
				all = false
				break
			}
		}
		if all {
			return true
		}
	}
	return false
}
