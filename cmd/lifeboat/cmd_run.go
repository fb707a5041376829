package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync/atomic"
	"time"

	"github.com/spf13/cobra"

	"github.com/lifeboat-backup/lifeboat/engine"
	"github.com/lifeboat-backup/lifeboat/engine/schedule"
	"github.com/lifeboat-backup/lifeboat/internal/humanize"
	"github.com/lifeboat-backup/lifeboat/internal/report"
	"github.com/lifeboat-backup/lifeboat/policies"
)

// defaultJournal is where run records go: /var/lib/lifeboat for root
// (systemd units), the XDG state dir otherwise.
func defaultJournal() string {
	if os.Geteuid() == 0 {
		return "/var/lib/lifeboat/journal"
	}
	if d := os.Getenv("XDG_STATE_HOME"); d != "" {
		return filepath.Join(d, "lifeboat", "journal")
	}
	home, _ := os.UserHomeDir()
	return filepath.Join(home, ".local", "state", "lifeboat", "journal")
}

func (a *app) runCmd() *cobra.Command {
	var targets []string
	var journal string
	cmd := &cobra.Command{
		Use:   "run POLICY",
		Short: "Run a policy once: back up every target, apply retention, prune on its cadence, replicate",
		Long: `Run a policy: back up each target (a failing target does not stop the others), forget the
snapshots of this policy and host that retention does not keep, prune when retention.prune_every
has passed since the last prune, and replicate to every secondary. One summary at the end; the
run is appended to the journal (--journal, default /var/lib/lifeboat/journal as root).

Exit codes: 0 ok, 1 a step failed, 2 invalid policy, 4 saved but some source data unreadable.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := a.loadPolicy(args[0], targets...)
			if err != nil {
				return err
			}
			return a.runPolicy(cmd.Context(), p, targets, journal)
		},
	}
	cmd.Flags().StringArrayVar(&targets, "target", nil, "only this target, repeatable")
	cmd.Flags().StringVar(&journal, "journal", defaultJournal(), "directory of the run journal")
	return cmd
}

// runPolicy runs p once (schedule.RunPolicy: journal, notifications,
// metrics textfile) and prints its summary: the code path of `lifeboat
// run` and `lifeboat daemon`.
func (a *app) runPolicy(ctx context.Context, p *policies.Policy, targets []string, journal string) error {
	a.policy = p
	open := func(ctx context.Context, fn func(context.Context, engine.Engine) error) error {
		return a.withEngine(ctx, sharedLock, "run "+p.Name, fn)
	}
	count := 0
	for _, t := range p.Targets {
		if len(targets) == 0 || slices.Contains(targets, t.Name) {
			count++
		}
	}
	// The target being backed up: its name, number and counts, for
	// per-target progress while the run goes on.
	type running struct {
		name   string
		number int
		start  time.Time
		prog   *engine.Progress
	}
	var cur atomic.Pointer[running]
	stop := a.out().Progress(func() report.Status {
		r := cur.Load()
		if r == nil {
			return report.Status{MessageType: report.TypeStatus, Phase: "start", Unit: "targets", TotalFiles: int64(count)}
		}
		return report.Make(report.Counter{Phase: "backup", Unit: "entries", Target: r.name, TargetNumber: r.number, TargetOf: count,
			Files: r.prog.Files.Load(), Bytes: r.prog.Bytes.Load()}, time.Since(r.start))
	})
	res, err := schedule.RunPolicy(ctx, p, open, schedule.PolicyRun{Journal: journal, Targets: targets,
		Progress: func(name string) *engine.Progress {
			r := &running{name: name, start: time.Now(), prog: &engine.Progress{}}
			if old := cur.Load(); old != nil {
				r.number = old.number
			}
			r.number++
			cur.Store(r)
			return r.prog
		},
		Warn: a.warn})
	stop()
	if res == nil {
		return err
	}
	if perr := a.runSummary(res); perr != nil {
		return perr
	}
	if err != nil {
		if errors.Is(err, schedule.ErrRunFailed) {
			return fmt.Errorf("policy %s: %d step(s) failed: %s", p.Name, len(res.Errors), res.Errors[0])
		}
		return err
	}
	if res.Partial {
		n := 0
		for _, t := range res.Targets {
			n += len(t.Warnings)
		}
		return partialError{n}
	}
	return nil
}

func (a *app) runSummary(res *engine.RunResult) error {
	if a.json {
		return a.emit(map[string]any{"message_type": "summary", "run": res})
	}
	fmt.Fprintf(a.stdout, "policy %s on %s, %s\n", termSafe(res.Policy), termSafe(res.Host), res.End.Sub(res.Start).Round(10*time.Millisecond))
	for _, t := range res.Targets {
		if t.Error != "" {
			fmt.Fprintf(a.stdout, "  target %-12s FAILED: %s\n", termSafe(t.Name), termSafe(t.Error))
			continue
		}
		id := t.Snapshot
		if len(id) > 8 {
			id = id[:8]
		}
		fmt.Fprintf(a.stdout, "  target %-12s snapshot %s, %s in, %s added, %.1fs\n", termSafe(t.Name), id,
			humanize.Bytes(t.BytesIn), humanize.Bytes(t.BytesAdded), t.Seconds)
		for _, w := range t.Warnings {
			fmt.Fprintf(a.stdout, "    unreadable: %s\n", termSafe(w))
		}
	}
	fmt.Fprintf(a.stdout, "  retention: %d snapshots forgotten\n", len(res.Forgotten))
	if res.Pruned {
		fmt.Fprintf(a.stdout, "  prune: %d packs deleted, %d repacked, %s freed\n", res.Prune.PacksDeleted+res.Prune.PacksUnindexed,
			res.Prune.PacksRepacked, humanize.Bytes(res.Prune.BytesFreed))
	}
	for _, s := range res.Replicas {
		if s.Error != "" {
			fmt.Fprintf(a.stdout, "  replicate %s FAILED: %s\n", s.Name, s.Error)
			continue
		}
		fmt.Fprintf(a.stdout, "  replicate %s: %d objects (%s) copied; lag before: %s\n", s.Name, s.Copied,
			humanize.Bytes(s.Bytes), time.Duration(s.Lag*1e9).Round(time.Second))
	}
	return nil
}
