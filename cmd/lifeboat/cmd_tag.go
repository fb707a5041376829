package main

import (
	"context"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/lifeboat-backup/lifeboat/engine"
	"github.com/lifeboat-backup/lifeboat/engine/repo"
	"github.com/lifeboat-backup/lifeboat/engine/snapshot"
)

func (a *app) tagCmd() *cobra.Command {
	var add, remove, set []string
	var target, host string
	cmd := &cobra.Command{
		Use:   "tag SNAPSHOT|latest... (--add TAG | --remove TAG | --set TAG)...",
		Short: "Change the tags of snapshots (restic's tag; native repositories)",
		Long: `Add, remove or replace the tags of the snapshots named. A changed snapshot gets a new ID:
its new manifest is written first, then the old one deleted (a crash in between leaves both,
never neither). Snapshots whose tags would not change are left alone. Tags hold no comma
(keep_tags and snapshots --tag read "a,b" as both).`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(set) > 0 && (len(add) > 0 || len(remove) > 0) {
				return usagef("--set replaces all tags: not with --add or --remove")
			}
			if len(set)+len(add)+len(remove) == 0 {
				return usagef("give --add, --remove or --set")
			}
			for _, t := range slices.Concat(set, add, remove) {
				if t == "" || strings.Contains(t, ",") {
					return usagef("tag %q: want a non-empty tag without a comma", t)
				}
			}
			ctx := cmd.Context()
			return a.withRepo(ctx, sharedLock, "tag", func(ctx context.Context, r *repo.Repository) error {
				var ids []snapshot.ID
				for _, ref := range args {
					var id snapshot.ID
					if ref == "latest" {
						sn, err := findPerTarget(ctx, engine.Native{R: r}, ref, target, host)
						if err != nil {
							return err
						}
						id = sn.ID
					} else {
						var err error
						if id, err = r.ResolveID(ctx, ref); err != nil {
							return err
						}
					}
					if !slices.Contains(ids, id) {
						ids = append(ids, id)
					}
				}
				type change struct {
					Old  string   `json:"old_id"`
					New  string   `json:"new_id,omitempty"`
					Tags []string `json:"tags"`
				}
				changes := []change{}
				for _, id := range ids {
					sn, err := r.LoadSnapshot(ctx, id)
					if err != nil {
						return err
					}
					tags := retag(sn.Tags, add, remove, set)
					if slices.Equal(tags, sn.Tags) {
						a.printf("snapshot %s unchanged: tags %s\n", id.Short(), strings.Join(tags, ", "))
						continue
					}
					nid, err := r.RewriteSnapshot(ctx, id, func(s *snapshot.Snapshot) { s.Tags = tags })
					if err != nil {
						return err
					}
					changes = append(changes, change{Old: id.String(), New: nid.String(), Tags: nonNil(tags)})
					a.printf("snapshot %s is now %s: tags %s\n", id.Short(), nid.Short(), strings.Join(tags, ", "))
				}
				if a.json {
					return a.emit(map[string]any{"message_type": "summary", "changed": len(changes), "snapshots": changes})
				}
				return nil
			})
		},
	}
	f := cmd.Flags()
	f.StringArrayVar(&add, "add", nil, "add this tag, repeatable")
	f.StringArrayVar(&remove, "remove", nil, "remove this tag, repeatable")
	f.StringArrayVar(&set, "set", nil, "replace all tags by these, repeatable")
	f.StringVar(&target, "target", "", "with latest: the latest snapshot of this target")
	f.StringVar(&host, "host", "", "with latest: the latest snapshot of this host")
	return cmd
}

// retag applies --set, or --add then --remove, keeping the order tags
// were first given and no duplicates.
func retag(have, add, remove, set []string) []string {
	var out []string
	put := func(ts []string) {
		for _, t := range ts {
			if !slices.Contains(out, t) && !slices.Contains(remove, t) {
				out = append(out, t)
			}
		}
	}
	if len(set) > 0 {
		put(set)
		return out
	}
	put(have)
	put(add)
	return out
}
