package main

import (
	"bytes"
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/lifeboat-backup/lifeboat/engine"
	"github.com/lifeboat-backup/lifeboat/engine/logarchive"
	"github.com/lifeboat-backup/lifeboat/restore/drill"
)

func (a *app) drillCmd() *cobra.Command {
	var from, journal, tmp, out string
	var targets []string
	var spot bool
	cmd := &cobra.Command{
		Use:   "drill POLICY [--from primary|SECONDARY] [--target NAME] [--spot-check]",
		Short: "Restore drill: restore the latest snapshots into scratch places, run the health checks, measure RTO/RPO",
		Long: `Restore the latest snapshot of each files, mysql and postgres target into a scratch place (a
temporary directory; a MariaDB server lifeboat starts on a free loopback port from
drill.mysql.server_binary, or the scratch server drill.mysql.dsn; likewise a PostgreSQL server
initialized with initdb from drill.postgres.server_binary, or drill.postgres.dsn), run the
policy's drill.checks (sql checks on postgres targets run with psql in the target's first
database), tear everything down (also on
failure and Ctrl-C), and compare the measured RTO (drill start until all checks pass) and RPO
(drill start minus the snapshot's recovery point) with objectives. The drill is appended to the
journal (POLICY.drills.jsonl); lifeboat_drill_* metrics go next to metrics.textfile.

--spot-check restores nothing: it compares each files target's live file count (total and per
directory, 5% tolerance) with its latest snapshot and hashes a random sample of live files
against the snapshot's content.

Native repositories: needs the owner key: --key-file or LIFEBOAT_KEY_FILE, else the policy's
drill.key_file (the policy's repositories.primary.key_file is a host key, which cannot restore). Restic repositories (engine: restic): needs the
repository's password only (a secondary's own password_file, else the primary's);
--spot-check is for native repositories only. See docs/drills.md.

Exit codes: 0 passed, 1 a check failed (or the drill could not run), 3 an objective was violated.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) (err error) {
			p, err := a.loadPolicy(args[0], targets...)
			if err != nil {
				return err
			}
			a.policy, a.drillKey = p, true
			ctx := cmd.Context()
			if from == "" {
				from = "primary"
			}
			if from != "primary" {
				sec, err := p.Secondary(from)
				if err != nil {
					return usageError{err}
				}
				from = sec.Name
			}
			engineName, err := a.engineName()
			if err != nil {
				return err
			}
			if spot && engineName != "native" {
				return usagef("--spot-check reads the snapshot's content blobs of native repositories only; this policy's repository engine is %s: run `lifeboat drill` without --spot-check (it restores and checks)", engineName)
			}
			ctx, r, done, err := a.engineAt(ctx, from, readLock, "drill "+p.Name)
			if err != nil {
				return fmt.Errorf("drill from %s: %w", from, err)
			}
			defer done()
			defer func() { err = lockLost(ctx, err) }()
			var rep *drill.Report
			if spot {
				rep, err = drill.SpotCheck(ctx, r, drill.SpotCheckOptions{Policy: p, From: from, Targets: targets})
			} else {
				var repoURL string
				if from != "primary" {
					sec, _ := p.Secondary(from)
					repoURL = sec.URL
				}
				o := drill.Options{Policy: p, From: from, Targets: targets, TempDir: tmp, Archived: binlogNewest(p, r),
					RestoreCommand: func(target string) (string, error) { return a.restoreCommand(p.File, target, repoURL) }}
				if n, ok := r.(engine.Native); ok {
					o.LogArchive, o.Snapshots = logarchive.New(n.R), r.Snapshots
				}
				if !a.json && !a.quiet {
					o.Log = a.stderr
				}
				rep, err = drill.Run(ctx, r, o)
			}
			if rep != nil && ctx.Err() == nil {
				drill.Record(ctx, p, r, rep, drill.RecordOptions{Journal: journal, Report: out, Spot: spot, Warn: a.warn})
				if perr := a.drillSummary(rep); perr != nil {
					return perr
				}
				drill.Notify(ctx, p, rep, a.warn)
			}
			if err != nil {
				return fmt.Errorf("drill from %s: %w", from, err)
			}
			return rep.Err()
		},
	}
	f := cmd.Flags()
	f.StringVar(&from, "from", "primary", "restore from the primary or this secondary")
	f.StringArrayVar(&targets, "target", nil, "only this target, repeatable")
	f.BoolVar(&spot, "spot-check", false, "files targets: compare the live source with the latest snapshot, restore nothing")
	f.StringVar(&journal, "journal", defaultJournal(), "directory of the run journal")
	f.StringVar(&tmp, "tmp-dir", "", "where the scratch directory is made (default $TMPDIR)")
	f.StringVarP(&out, "output", "o", "", "also write the report to this file (.json, .md or .html)")
	cmd.AddCommand(a.drillReportCmd())
	return cmd
}

func (a *app) drillReportCmd() *cobra.Command {
	var journal, out string
	cmd := &cobra.Command{
		Use:   "report POLICY -o FILE.html|FILE.md|FILE.json",
		Short: "Render the last drill of a policy from the journal, with RTO/RPO history",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if out == "" {
				return usagef("-o FILE is required (.html, .md or .json; - for JSON on stdout)")
			}
			name := args[0]
			if strings.HasSuffix(name, ".yaml") || strings.HasSuffix(name, ".yml") || strings.Contains(name, string(filepath.Separator)) {
				p, err := a.loadPolicy(name)
				if err != nil {
					return err
				}
				name = p.Name
			}
			hist, err := drill.Journal(journal).Read(name)
			if err != nil {
				return err
			}
			if len(hist) == 0 {
				return fmt.Errorf("no drill of policy %s in %s", name, journal)
			}
			last := hist[len(hist)-1]
			if out == "-" {
				return drill.WriteJSON(a.stdout, &last)
			}
			err = drill.WriteReport(out, &last, hist)
			if errors.Is(err, drill.ErrReportFormat) {
				return usageError{err}
			}
			return err
		},
	}
	cmd.Flags().StringVar(&journal, "journal", defaultJournal(), "directory of the run journal")
	cmd.Flags().StringVarP(&out, "output", "o", "", "output file: .html, .md or .json (- : JSON on stdout)")
	return cmd
}

func (a *app) drillSummary(rep *drill.Report) error {
	if a.json {
		return a.emit(map[string]any{"message_type": "summary", "drill": rep})
	}
	var b bytes.Buffer
	if err := drill.WriteMarkdown(&b, rep, nil); err != nil {
		return err
	}
	_, err := a.stdout.Write(b.Bytes())
	return err
}
