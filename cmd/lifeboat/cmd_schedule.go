package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	osexec "os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/lifeboat-backup/lifeboat/engine"
	"github.com/lifeboat-backup/lifeboat/engine/notify"
	"github.com/lifeboat-backup/lifeboat/engine/schedule"
	"github.com/lifeboat-backup/lifeboat/internal/humanize"
	"github.com/lifeboat-backup/lifeboat/policies"
)

// userJournal is defaultJournal for a non-root user.
func userJournal() string {
	if d := os.Getenv("XDG_STATE_HOME"); d != "" {
		return filepath.Join(d, "lifeboat", "journal")
	}
	home, _ := os.UserHomeDir()
	return filepath.Join(home, ".local", "state", "lifeboat", "journal")
}

func (a *app) systemdCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "systemd",
		Short: "Generate systemd units that run a policy on its schedule",
	}
	cmd.AddCommand(a.systemdInstallCmd())
	return cmd
}

func (a *app) systemdInstallCmd() *cobra.Command {
	var user, dryRun, now bool
	var dir, journal, binary string
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "install POLICY",
		Short: "Write lifeboat-NAME.service and .timer (and -drill units when drill.schedule is set)",
		Long: `Write a oneshot service running "lifeboat run POLICY" and a timer with the policy's
schedule.calendar (OnCalendar), schedule.randomized_delay (RandomizedDelaySec) and Persistent=true,
so a start missed while the machine was off runs at boot. With drill.schedule set, a second pair
runs "lifeboat drill POLICY". A mysql target with an archive block gets
lifeboat-binlog@POLICY.service, running "lifeboat binlog archive POLICY" with Restart=always.

The service is sandboxed from what the policy says it reads and writes: ProtectSystem=strict with
ReadWritePaths for the journal, file:// repositories and the metrics directory; ProtectHome=yes
unless the policy uses paths under /home; PrivateTmp, NoNewPrivileges; idle I/O priority. exec
targets and volume hooks relax ProtectSystem (see docs/scheduling.md).

Units go to /etc/systemd/system (--user: ~/.config/systemd/user); --dry-run prints them, each
preceded by a line "# <unit file name>". The systemctl commands that activate the timer are
printed; --now runs them.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := a.loadPolicy(args[0])
			if err != nil {
				return err
			}
			policyFile, err := filepath.Abs(args[0])
			if err != nil {
				return err
			}
			if binary == "" {
				if binary, err = os.Executable(); err != nil {
					return err
				}
				if r, err := filepath.EvalSymlinks(binary); err == nil {
					binary = r
				}
			}
			if journal == "" {
				journal = "/var/lib/lifeboat/journal"
				if user {
					journal = userJournal()
				}
			}
			if journal, err = filepath.Abs(journal); err != nil {
				return err
			}
			units, err := schedule.SystemdUnits(p, schedule.UnitOptions{Binary: binary, PolicyFile: policyFile,
				JournalDir: journal, User: user, Timeout: timeout})
			if err != nil {
				if errors.Is(err, schedule.ErrNoSchedule) {
					return usagef("policy %s: %v: nothing to schedule", p.Name, err)
				}
				return usageError{err}
			}
			if dryRun {
				for i, u := range units {
					if i > 0 {
						fmt.Fprintln(a.stdout)
					}
					fmt.Fprintf(a.stdout, "# %s\n%s", u.Name, u.Text)
				}
				return nil
			}
			if dir == "" {
				if dir, err = schedule.UnitDir(user); err != nil {
					return err
				}
			}
			paths, err := schedule.WriteUnits(dir, units)
			for _, path := range paths {
				a.printf("wrote %s\n", path)
			}
			if err != nil {
				return err
			}
			cmds := schedule.ActivateCommands(units, user)
			if !now {
				var lines []string
				for _, c := range cmds {
					lines = append(lines, strings.Join(c, " "))
				}
				fmt.Fprintf(a.stdout, "activate with:\n  %s\n", strings.Join(lines, " && "))
				return nil
			}
			if _, err := osexec.LookPath("systemctl"); err != nil {
				return fmt.Errorf("--now: systemctl not found; run: %s", strings.Join(cmds[0], " "))
			}
			for _, c := range cmds {
				a.printf("%s\n", strings.Join(c, " "))
				ec := osexec.CommandContext(cmd.Context(), c[0], c[1:]...)
				ec.Stdout, ec.Stderr = a.stdout, a.stderr
				if err := ec.Run(); err != nil {
					return fmt.Errorf("%s: %w", strings.Join(c, " "), err)
				}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.BoolVar(&user, "user", false, "units for the user's systemd instance (~/.config/systemd/user)")
	f.StringVar(&dir, "dir", "", "write the units here instead")
	f.BoolVarP(&dryRun, "dry-run", "n", false, "print the units, write nothing")
	f.BoolVar(&now, "now", false, "run systemctl daemon-reload and enable --now the timers")
	f.StringVar(&journal, "journal", "", "journal directory passed to the units (default /var/lib/lifeboat/journal; --user: ~/.local/state/lifeboat/journal)")
	f.StringVar(&binary, "binary", "", "lifeboat binary the units run (default: this one)")
	f.DurationVar(&timeout, "timeout", 12*time.Hour, "TimeoutStartSec of the run service")
	return cmd
}

func (a *app) daemonCmd() *cobra.Command {
	var journal, listen string
	cmd := &cobra.Command{
		Use:   "daemon POLICY...",
		Short: "Run policies on their schedule in-process (hosts without systemd)",
		Long: `Run each policy at its schedule.calendar times plus a random delay of up to
schedule.randomized_delay, as "lifeboat run POLICY" would (journal, notifications, metrics).
A policy never runs twice at once and runs are serialized; a start missed while the daemon
was down (from the journal's last run) is caught up once at startup. SIGTERM or SIGINT stops
the daemon: a running run is interrupted and recorded.

--metrics-listen ADDR serves the Prometheus metrics of every policy's last run at /metrics.`,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) == 0 {
				return usagef("daemon: give at least one POLICY file")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			var ps []*policies.Policy
			seen := map[string]string{}
			for _, path := range args {
				p, err := a.loadPolicy(path)
				if err != nil {
					return err
				}
				if p.Schedule.Calendar.IsZero() {
					return usagef("policy %s (%s): no schedule.calendar", p.Name, path)
				}
				if other, dup := seen[p.Name]; dup {
					return usagef("policies %s and %s have the same name %s", other, path, p.Name)
				}
				seen[p.Name] = path
				ps = append(ps, p)
			}
			ctx := cmd.Context()
			log := slog.New(slog.NewTextHandler(a.stderr, nil))
			if listen != "" {
				l, err := net.Listen("tcp", listen)
				if err != nil {
					return usagef("--metrics-listen: %v", err)
				}
				srv := &http.Server{Handler: schedule.MetricsHandler(journal, ps), ReadHeaderTimeout: 10 * time.Second}
				go func() { _ = srv.Serve(l) }()
				defer srv.Close()
				log.Info("serving metrics", "addr", l.Addr().String(), "path", "/metrics")
			}
			d := &schedule.Daemon{
				Policies: ps,
				Run: func(ctx context.Context, p *policies.Policy) error {
					return a.runPolicy(ctx, p, nil, journal)
				},
				LastRun: func(p *policies.Policy) (time.Time, error) { return schedule.LastStart(journal, p.Name) },
				Archive: a.daemonArchive,
				Log:     log,
			}
			log.Info("daemon started", "policies", len(ps))
			err := d.Serve(ctx)
			log.Info("daemon stopped")
			return err
		},
	}
	cmd.Flags().StringVar(&journal, "journal", defaultJournal(), "directory of the run journal")
	cmd.Flags().StringVar(&listen, "metrics-listen", "", "serve Prometheus metrics on this address (e.g. 127.0.0.1:9917)")
	return cmd
}

func (a *app) historyCmd() *cobra.Command {
	var journal string
	var last int
	cmd := &cobra.Command{
		Use:   "history [POLICY]",
		Short: "Show the recorded runs of a policy from the journal",
		Long: `Show a policy's runs, newest last: start time, duration, status, per target the
snapshot and bytes, replication, errors. POLICY is the policy file or just the policy's name
(or give --policy FILE). --json prints the journal records as a JSON array.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var name string
			switch {
			case len(args) == 1:
				_, serr := os.Stat(args[0])
				if serr == nil || strings.Contains(args[0], "/") || strings.HasSuffix(args[0], ".yaml") || strings.HasSuffix(args[0], ".yml") {
					p, err := a.loadPolicy(args[0])
					if err != nil {
						return err
					}
					name = p.Name
				} else {
					name = args[0]
				}
			case a.policy != nil:
				name = a.policy.Name
			default:
				return usagef("history: give a POLICY (file or name) or --policy FILE")
			}
			runs, err := schedule.Journal(journal).Read(name)
			if err != nil {
				return err
			}
			if last > 0 && len(runs) > last {
				runs = runs[len(runs)-last:]
			}
			if a.json {
				if runs == nil {
					runs = []engine.RunResult{}
				}
				return a.emit(runs)
			}
			if len(runs) == 0 {
				if _, err := os.Stat(filepath.Join(journal, name+".jsonl")); errors.Is(err, fs.ErrNotExist) {
					fmt.Fprintf(a.stdout, "no runs of policy %s recorded in %s\n", name, journal)
					return nil
				}
			}
			for _, r := range runs {
				printRun(a, r)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&journal, "journal", defaultJournal(), "directory of the run journal")
	cmd.Flags().IntVar(&last, "last", 20, "show only the last N runs (0: all)")
	return cmd
}

func printRun(a *app, r engine.RunResult) {
	ev := notify.RunEvent(&r)
	status := map[string]string{notify.EventSuccess: "ok", notify.EventFailure: "FAILED", notify.EventPartial: "PARTIAL"}[ev.Status]
	d := r.End.Sub(r.Start)
	if d >= time.Second {
		d = d.Round(time.Second)
	} else {
		d = d.Round(10 * time.Millisecond)
	}
	fmt.Fprintf(a.stdout, "%s  %-8s %-7s %s", r.Start.UTC().Format("2006-01-02 15:04:05Z"), d, status, termSafe(r.Host))
	if len(r.Forgotten) > 0 {
		fmt.Fprintf(a.stdout, ", %d forgotten", len(r.Forgotten))
	}
	if r.Pruned {
		fmt.Fprint(a.stdout, ", pruned")
	}
	fmt.Fprintln(a.stdout)
	for _, t := range r.Targets {
		if t.Error != "" {
			fmt.Fprintf(a.stdout, "    %-14s FAILED: %s\n", termSafe(t.Name), termSafe(t.Error))
			continue
		}
		id := t.Snapshot
		if len(id) > 8 {
			id = id[:8]
		}
		fmt.Fprintf(a.stdout, "    %-14s %s  %s in, %s added, %.1fs", termSafe(t.Name), termSafe(id), humanize.Bytes(t.BytesIn), humanize.Bytes(t.BytesAdded), t.Seconds)
		if len(t.Warnings) > 0 {
			fmt.Fprintf(a.stdout, ", %d unreadable", len(t.Warnings))
		}
		fmt.Fprintln(a.stdout)
	}
	for _, s := range r.Replicas {
		st := "ok"
		if s.Error != "" {
			st = "FAILED: " + termSafe(s.Error)
		}
		fmt.Fprintf(a.stdout, "    -> %-11s %s, %d objects, lag before %s\n", termSafe(s.Name), st, s.Copied,
			time.Duration(s.Lag*float64(time.Second)).Round(time.Second))
	}
	for _, e := range r.Errors {
		if !strings.HasPrefix(e, "target ") && !strings.HasPrefix(e, "replicate to ") {
			fmt.Fprintf(a.stdout, "    error: %s\n", termSafe(e))
		}
	}
}
