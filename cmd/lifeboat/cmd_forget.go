package main

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/lifeboat-backup/lifeboat/engine"
	"github.com/lifeboat-backup/lifeboat/engine/schedule"
	"github.com/lifeboat-backup/lifeboat/engine/snapshot"
	"github.com/lifeboat-backup/lifeboat/internal/report"
	"github.com/lifeboat-backup/lifeboat/retention"
)

type forgetOptions struct {
	rules      retention.Rules
	within     string
	timezone   string
	weekStarts string
	pick       string
	groupBy    string
	dryRun     bool
	host       string
}

func (a *app) forgetCmd() *cobra.Command {
	var o forgetOptions
	cmd := &cobra.Command{
		Use:   "forget [ID...] [--keep-daily N ...] [--dry-run]",
		Short: "Remove snapshots by ID, or by GFS retention rules (their data goes at the next prune)",
		Long: `Remove snapshots: the given IDs, or every snapshot the retention rules do not keep.
Rules work per group (host and target by default) and are safe when backups stop: count
rules count periods that have snapshots, --keep-within counts back from the newest
snapshot, and the newest snapshot of each group is always kept. --dry-run prints the
decision and its reason for every snapshot and changes nothing. With --policy and no rule
flags, the policy's retention block applies to the snapshots that policy made on its host.
See docs/retention.md.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			rules, err := o.parse()
			if err != nil {
				return err
			}
			var only func(*snapshot.Snapshot) bool
			if rules.Empty() && a.policy != nil && len(args) == 0 {
				// --policy alone: its retention block, over its own snapshots
				p := a.policy
				rules = schedule.RulesOf(p.Retention)
				only = func(s *snapshot.Snapshot) bool {
					return s.Host == p.Host && slices.Contains(s.Tags, schedule.PolicyTag(p.Name))
				}
			}
			if o.host != "" {
				if len(args) > 0 {
					return usagef("--host selects the snapshots retention rules apply to; give snapshot IDs without it")
				}
				policyOnly := only
				only = func(s *snapshot.Snapshot) bool {
					return s.Host == o.host && (policyOnly == nil || policyOnly(s))
				}
			}
			switch {
			case len(args) > 0 && !rules.Empty():
				return usagef("give snapshot IDs or retention rules, not both")
			case len(args) == 0 && rules.Empty():
				return usagef("give snapshot IDs or retention rules (--keep-daily N, ...)")
			}
			ctx := cmd.Context()
			return a.withEngine(ctx, sharedLock, "forget", func(ctx context.Context, e engine.Engine) error {
				var ids []snapshot.ID
				if len(args) > 0 {
					for _, ref := range args {
						if ref == "latest" {
							return usagef("forget takes snapshot IDs, not %q", ref)
						}
						id, err := resolveID(ctx, e, ref)
						if err != nil {
							return err
						}
						ids = append(ids, id)
					}
				} else if ids, err = a.applyRetention(ctx, e, rules, only, o.dryRun); err != nil {
					return err
				}
				ws, err := forgetArchive(ctx, e, ids)
				if err != nil {
					return err
				}
				if o.dryRun {
					a.printWindows(ws, "would remove")
					if a.json {
						var would []string
						for _, id := range ids {
							would = append(would, id.String())
						}
						return a.emit(map[string]any{"message_type": "summary", "dry_run": true, "removed": []string{},
							"would_remove": nonNil(would), "segments_removed": 0})
					}
					return nil
				}
				if err := e.Forget(ctx, ids); err != nil {
					return err
				}
				var removed []string
				for _, id := range ids {
					removed = append(removed, id.String())
					a.printf("removed snapshot %s\n", id.Short())
				}
				segs, err := applyArchive(ctx, e, ws)
				a.printWindows(ws, "removed")
				if err != nil {
					return err
				}
				if a.json {
					return a.emit(map[string]any{"message_type": "summary", "dry_run": false, "removed": nonNil(removed), "segments_removed": segs})
				}
				return nil
			})
		},
	}
	f := cmd.Flags()
	f.IntVar(&o.rules.KeepLast, "keep-last", 0, "keep the N newest snapshots (-1: all)")
	f.IntVar(&o.rules.KeepHourly, "keep-hourly", 0, "keep one snapshot for each of the last N hours that have one")
	f.IntVar(&o.rules.KeepDaily, "keep-daily", 0, "keep one snapshot for each of the last N days that have one")
	f.IntVar(&o.rules.KeepWeekly, "keep-weekly", 0, "keep one snapshot for each of the last N weeks that have one")
	f.IntVar(&o.rules.KeepMonthly, "keep-monthly", 0, "keep one snapshot for each of the last N months that have one")
	f.IntVar(&o.rules.KeepYearly, "keep-yearly", 0, "keep one snapshot for each of the last N years that have one")
	f.StringVar(&o.within, "keep-within", "", "keep everything within this duration of the newest snapshot (e.g. 7d)")
	f.StringArrayVar(&o.rules.KeepTags, "keep-tag", nil, "keep snapshots with this tag, repeatable")
	f.StringVar(&o.timezone, "timezone", "UTC", "time zone of days, weeks and months")
	f.StringVar(&o.weekStarts, "week-starts", "monday", "first day of a week")
	f.StringVar(&o.pick, "period-pick", "last", "which snapshot stands for a period: last or first")
	f.StringVar(&o.groupBy, "group-by", "host,target", "group snapshots by these fields (host, target, tags)")
	f.BoolVarP(&o.dryRun, "dry-run", "n", false, "print the decisions, remove nothing")
	f.StringVar(&o.host, "host", "", "apply the rules to this host's snapshots only")
	return cmd
}

// parse turns the flags into retention rules.
func (o *forgetOptions) parse() (retention.Rules, error) {
	r := o.rules
	var err error
	if r.KeepWithin, err = retention.ParseDuration(o.within); err != nil {
		return r, usagef("--keep-within: %v", err)
	}
	if r.Location, err = time.LoadLocation(o.timezone); err != nil {
		return r, usagef("--timezone: %v", err)
	}
	if r.WeekStart, err = retention.ParseWeekday(o.weekStarts); err != nil {
		return r, usagef("--week-starts: %v", err)
	}
	if r.PeriodPick, err = retention.ParsePick(o.pick); err != nil {
		return r, usagef("--period-pick: %v", err)
	}
	r.GroupBy = strings.Split(o.groupBy, ",")
	if err := r.Validate(); err != nil {
		return r, usageError{err}
	}
	return r, nil
}

// applyRetention decides over all snapshots, prints the decisions (a
// table, or JSON lines) and returns the IDs to remove.
func (a *app) applyRetention(ctx context.Context, e engine.Engine, rules retention.Rules, only func(*snapshot.Snapshot) bool, dryRun bool) ([]snapshot.ID, error) {
	sns, err := e.Snapshots(ctx)
	if err != nil {
		return nil, err
	}
	byID := map[string]*snapshot.Snapshot{}
	in := make([]retention.Snapshot, 0, len(sns))
	for _, s := range sns {
		if only != nil && !only(s) {
			continue
		}
		if s.Suspect != "" {
			// A host can date a snapshot in 2099: counted, it would make
			// keep-last remove every genuine one.
			fmt.Fprintf(a.stderr, "warning: snapshot %s not counted by retention: %s\n", s.ID.Short(), s.Suspect)
			continue
		}
		byID[s.ID.String()] = s
		in = append(in, retention.Snapshot{ID: s.ID.String(), Time: s.Time, Host: s.Host, Target: s.Target, Tags: s.Tags})
	}
	ds := retention.Apply(in, rules)
	var drop []snapshot.ID
	for _, d := range ds {
		if !d.Keep {
			drop = append(drop, byID[d.Snapshot.ID].ID)
		}
		if a.json {
			action := "remove"
			if d.Keep {
				action = "keep"
			}
			if err := a.emit(map[string]any{"message_type": report.TypeVerbose, "action": action, "id": d.Snapshot.ID, "time": d.Snapshot.Time,
				"group": d.Group, "keep": d.Keep, "reasons": nonNil(d.Reasons), "dry_run": dryRun}); err != nil {
				return nil, err
			}
		}
	}
	if !a.json && !a.quiet {
		if err := retention.Table(a.stdout, termSafeDecisions(ds), rules.Location); err != nil {
			return nil, err
		}
		verb := "removing"
		if dryRun {
			verb = "would remove"
		}
		fmt.Fprintf(a.stdout, "%s %d of %d snapshots\n", verb, len(drop), len(ds))
	}
	return drop, nil
}

// termSafeDecisions copies ds with the names a backup host wrote (host,
// target, tags, and the group and reasons made of them) made termSafe.
func termSafeDecisions(ds []retention.Decision) []retention.Decision {
	out := make([]retention.Decision, len(ds))
	for i, d := range ds {
		d.Snapshot.Host, d.Snapshot.Target = termSafe(d.Snapshot.Host), termSafe(d.Snapshot.Target)
		d.Snapshot.Tags, d.Reasons, d.Group = termSafeAll(d.Snapshot.Tags), termSafeAll(d.Reasons), termSafe(d.Group)
		out[i] = d
	}
	return out
}
