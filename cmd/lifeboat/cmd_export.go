package main

import (
	"context"
	"errors"
	"fmt"
	"strings"

	driver "github.com/go-sql-driver/mysql"

	"github.com/spf13/cobra"

	"github.com/lifeboat-backup/lifeboat/engine"
	"github.com/lifeboat-backup/lifeboat/engine/repo"
	"github.com/lifeboat-backup/lifeboat/engine/snapshot"
	"github.com/lifeboat-backup/lifeboat/internal/humanize"
	"github.com/lifeboat-backup/lifeboat/policies"
	"github.com/lifeboat-backup/lifeboat/sanitize"
	"github.com/lifeboat-backup/lifeboat/targets/mysql"
)

// sanitizeConfig loads POLICY (it also names the repository and key) and
// compiles its sanitize block; bad rules or a missing key are usage errors.
func (a *app) sanitizeConfig(path, rulesFile string) (*policies.Policy, *sanitize.Config, error) {
	p, err := a.loadPolicy(path)
	if err != nil {
		return nil, nil, err
	}
	a.policy = p
	if rulesFile == "" {
		rulesFile = p.Sanitize.RulesFile
	}
	c, err := sanitize.Compile(p.Sanitize, sanitize.Options{RulesFile: rulesFile})
	if err != nil {
		return nil, nil, usageError{err}
	}
	return p, c, nil
}

// withSnapshot runs fn on snapshot ref (latest: of target) of the
// policy's repository, on its engine: native (under a shared lock where it can be written, with
// the owner key) or restic. The snapshot is closed after fn.
func (a *app) withSnapshot(ctx context.Context, purpose, ref, target string, fn func(context.Context, snapshot.Reader) error) error {
	return a.withEngine(ctx, readLock, purpose, func(ctx context.Context, e engine.Engine) error {
		sn, err := findPerTarget(ctx, e, ref, target, "", "mysql", "postgres")
		if err != nil {
			return err
		}
		if sn.Kind != "mysql" && sn.Kind != "postgres" {
			return usagef("snapshot %s is a %s snapshot: %s reads mysql and postgres snapshots", sn.ID.Short(), sn.Kind, purpose)
		}
		err = snapshot.WithReader(ctx, e, sn, func(s snapshot.Reader) error { return fn(ctx, s) })
		if errors.Is(err, repo.ErrNoDataKey) {
			err = fmt.Errorf("%w (%s reads the table data: give the owner key, --key-file)", err, purpose)
		}
		return err
	})
}

// sanitizeErr makes rule errors found against the snapshot usage errors.
func sanitizeErr(err error) error {
	if errors.Is(err, sanitize.ErrRules) {
		return usageError{err}
	}
	return err
}

func (a *app) sanitizeCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "sanitize",
		Short: "Sanitize rules: lint a policy's rules against a snapshot",
	}
	var ref, target, rulesFile string
	var sample int
	lint := &cobra.Command{
		Use:   "lint POLICY",
		Short: "Report columns that look personal but have no sanitize rule",
		Long: `Read the schema and a sample of rows of every table in a mysql or postgres snapshot (latest by default)
and report columns whose name (email, phone, name, street, IP, birth date, card, password, tax id)
or sampled content (emails, phone numbers, IP addresses, card numbers passing Luhn) looks personal
but that neither the preset nor the policy's rules cover. Truncated and skipped tables are not
looked at; a "keep" rule marks a column as reviewed. Reads native and restic repositories; needs
the owner key (native: the table data is encrypted to it) or the restic password.

Exit codes: 0 no findings, 1 findings (or a failure), 2 bad rules or key, 12 wrong key or password.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			_, c, err := a.sanitizeConfig(args[0], rulesFile)
			if err != nil {
				return err
			}
			return a.withSnapshot(cmd.Context(), "sanitize lint", ref, target, func(ctx context.Context, s snapshot.Reader) error {
				sn := s.Info()
				fs, err := sanitize.Lint(ctx, s, c, sanitize.LintOptions{SampleRows: sample})
				if err != nil {
					return sanitizeErr(err)
				}
				if a.json {
					for _, f := range fs {
						if err := a.emit(f); err != nil {
							return err
						}
					}
					if err := a.emit(map[string]any{"message_type": "summary", "snapshot_id": sn.ID.String(), "findings": len(fs)}); err != nil {
						return err
					}
				} else {
					for _, f := range fs {
						fmt.Fprintln(a.stdout, f.String())
					}
				}
				if len(fs) > 0 {
					return fmt.Errorf("%d columns look personal but have no sanitize rule (snapshot %s)", len(fs), sn.ID.Short())
				}
				a.printf("no findings in snapshot %s\n", sn.ID.Short())
				return nil
			})
		},
	}
	lint.Flags().StringVar(&ref, "snapshot", "latest", "snapshot ID or latest")
	lint.Flags().StringVar(&target, "target", "", "with latest: the latest snapshot of this target")
	lint.Flags().IntVar(&sample, "sample", 300, "rows read per table")
	lint.Flags().StringVar(&rulesFile, "rules", "", "a rules file (tables to rules, as under sanitize.rules) replacing the policy's sanitize.rules_file")
	cmd.AddCommand(lint)
	return cmd
}

func (a *app) exportCmd() *cobra.Command {
	var (
		sanitized, allowPII bool
		ref, target         string
		output, journal     string
		to, passwordFile    string
		rulesFile           string
		recipients, dbs     []string
		renames             []string
		jobs                int
	)
	cmd := &cobra.Command{
		Use:   "export POLICY --sanitized (-o dump.sql.zst [--recipient age1...] | --to mysql://user@host:port/) [--snapshot ID|latest]",
		Short: "Write a sanitized SQL dump of a mysql or postgres snapshot for developers, or load it into their server",
		Long: `Read a mysql or postgres snapshot from the policy's repository, native or restic (never the production database),
apply the policy's sanitize rules (preset, rules, and the rules file: --rules FILE replaces sanitize.rules_file) and write an SQL dump that
loads with the plain client (mysql/mariadb; psql into an existing database for PostgreSQL, one
database per export): .sql, .sql.gz or .sql.zst by the name of -o, age-encrypted to
sanitize.export.recipients or --recipient when given (then name it ….age). The file appears only
when complete. With --to mysql://user@host:port/ the dump is loaded straight into that server
(a developer's) with the mariadb/mysql client; the password comes from --password-file,
$LIFEBOAT_MYSQL_PASSWORD or $MYSQL_PWD (never from the command line, never printed), and a failed
statement is reported with its table. Exports refuse to run while "lifeboat sanitize lint" has findings, unless
--allow-unruled-pii. Every export is appended to the journal (POLICY.exports.jsonl).
Needs the owner key (native: the table data is encrypted to it) or the restic password.

Exit codes: 0 ok, 1 failure or lint findings, 2 bad rules, key or flags, 12 wrong key or password.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if !sanitized {
				return usagef("exports are sanitized: give --sanitized (to copy production data unchanged, use restore)")
			}
			if (output == "") == (to == "") {
				return usagef("give -o FILE (.sql, .sql.gz or .sql.zst) or --to mysql://user@host:port/")
			}
			var server *driver.Config
			if to != "" {
				if !strings.HasPrefix(to, "mysql://") {
					return usagef("--to %s: give a mysql://user@host:port/ URL", mysql.Redact(to))
				}
				if len(recipients) > 0 {
					return usagef("--recipient encrypts a file: it does not go with --to")
				}
				pw, err := databasePassword(passwordFile, "LIFEBOAT_MYSQL_PASSWORD", "MYSQL_PWD")
				if err != nil {
					return usageError{err}
				}
				if server, err = mysql.ParseDSN(to, pw); err != nil {
					return usageError{err}
				}
				if _, err := sanitize.ClientBinary(); err != nil {
					return usageError{err}
				}
			}
			rename, err := parseRenames(renames)
			if err != nil {
				return err
			}
			p, c, err := a.sanitizeConfig(args[0], rulesFile)
			if err != nil {
				return err
			}
			if len(recipients) == 0 && to == "" {
				recipients = p.Sanitize.Export.Recipients
			}
			rs, err := sanitize.ParseRecipients(recipients)
			if err != nil {
				return usageError{err}
			}
			return a.withSnapshot(cmd.Context(), "export", ref, target, func(ctx context.Context, s snapshot.Reader) error {
				sn := s.Info()
				if server != nil && sn.Kind != "mysql" {
					return usagef("--to mysql:// loads a mysql snapshot; snapshot %s is %s (write a file with -o and load it with psql)", sn.ID.Short(), sn.Kind)
				}
				rec, st, err := sanitize.Run(ctx, s, c, sanitize.RunOptions{Policy: p.Name, Output: output, Server: server,
					Recipients: rs, RecipientNames: recipients, AllowUnruledPII: allowPII,
					Export: sanitize.ExportOptions{Databases: dbs, Rename: rename, Jobs: jobs}})
				var pii *sanitize.UnruledPIIError
				if errors.As(err, &pii) {
					for _, f := range pii.Findings {
						fmt.Fprintln(a.stderr, f.String())
					}
				}
				if err != nil {
					return sanitizeErr(err)
				}
				if err := sanitize.Journal(journal).Append(p.Name, rec); err != nil {
					a.warn(fmt.Errorf("export not recorded in the journal: %w", err))
				}
				if a.json {
					return a.emit(map[string]any{"message_type": "summary", "export": rec, "tables": st.Tables})
				}
				enc := ""
				if len(rs) > 0 {
					enc = fmt.Sprintf(", encrypted to %d recipient(s)", len(rs))
				}
				verb := "exported"
				if server != nil {
					verb = "loaded"
				}
				fmt.Fprintf(a.stdout, "%s snapshot %s (%s) sanitized to %s: %d tables, %s of SQL in %.1fs%s\n",
					verb, sn.ID.Short(), sn.Target, rec.Output, len(st.Tables), humanize.Bytes(st.Bytes), rec.DurationSec, enc)
				return nil
			})
		},
	}
	f := cmd.Flags()
	f.BoolVar(&sanitized, "sanitized", false, "apply the policy's sanitize rules (required)")
	f.StringVarP(&output, "output", "o", "", "file to write: .sql, .sql.gz or .sql.zst (optionally .age)")
	f.StringVar(&to, "to", "", "mysql://user@host:port/: load into this server instead of writing a file")
	f.StringVar(&passwordFile, "password-file", "", "with --to: file holding the password (else $LIFEBOAT_MYSQL_PASSWORD or $MYSQL_PWD)")
	f.StringVar(&rulesFile, "rules", "", "a rules file (tables to rules, as under sanitize.rules) replacing the policy's sanitize.rules_file")
	f.IntVar(&jobs, "jobs", 0, "workers sanitizing rows (default: the number of CPUs; the output does not depend on it)")
	f.StringVar(&ref, "snapshot", "latest", "snapshot ID or latest")
	f.StringVar(&target, "target", "", "with latest: the latest snapshot of this target")
	f.StringArrayVar(&recipients, "recipient", nil, "age recipient (age1..., ssh-ed25519 ...) to encrypt to, repeatable; default sanitize.export.recipients")
	f.StringArrayVar(&dbs, "database", nil, "export only this database, repeatable")
	f.StringArrayVar(&renames, "rename", nil, "OLD=NEW: export database OLD under the name NEW, repeatable")
	f.BoolVar(&allowPII, "allow-unruled-pii", false, "export even though lint finds personal-looking columns without rules")
	f.StringVar(&journal, "journal", defaultJournal(), "directory of the run journal")
	return cmd
}
