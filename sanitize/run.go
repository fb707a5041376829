package sanitize

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"filippo.io/age"
	driver "github.com/go-sql-driver/mysql"

	"github.com/lifeboat-backup/lifeboat/engine/snapshot"
	"github.com/lifeboat-backup/lifeboat/internal/jsonl"
	"github.com/lifeboat-backup/lifeboat/targets/mysql"
)

// Record is what the export journal keeps of one export: no secret (the
// server's address without its password, recipients are public keys).
type Record struct {
	Time        time.Time `json:"time"`
	Policy      string    `json:"policy"`
	SnapshotID  string    `json:"snapshot_id"`
	Target      string    `json:"target"`
	Output      string    `json:"output"`
	Recipients  []string  `json:"recipients,omitempty"`
	Bytes       int64     `json:"bytes"`
	Tables      int       `json:"tables"`
	Findings    int       `json:"lint_findings"`
	AllowedPII  bool      `json:"allow_unruled_pii,omitempty"`
	DurationSec float64   `json:"duration_seconds"`
}

// Journal is the export journal in dir: DIR/POLICY.exports.jsonl, next to
// the runs and drills.
func Journal(dir string) jsonl.Journal[Record] {
	return jsonl.Journal[Record]{Dir: dir, Suffix: ".exports.jsonl"}
}

// UnruledPIIError is returned by Run when lint finds personal-looking
// columns without rules and the export was not allowed to go on.
type UnruledPIIError struct{ Findings []Finding }

func (e *UnruledPIIError) Error() string {
	return fmt.Sprintf("refusing to export: %d columns look personal but have no sanitize rule (add rules, \"keep\" for reviewed columns, or --allow-unruled-pii)", len(e.Findings))
}

// RunOptions say where an export goes: a file (Output, encrypted to
// Recipients when given) or, with Server, a MySQL server through its
// client.
type RunOptions struct {
	Policy string
	Export ExportOptions
	Output string
	// Recipients are the parsed age recipients; RecipientNames their
	// text, for the record.
	Recipients     []age.Recipient
	RecipientNames []string
	Server         *driver.Config
	// AllowUnruledPII exports although lint has findings.
	AllowUnruledPII bool
}

// Run lints the rules against the snapshot, exports it sanitized to the
// file or server o names, and returns the journal record (not yet
// appended) with the export's stats. The file appears only when complete.
func Run(ctx context.Context, s snapshot.Reader, c *Config, o RunOptions) (*Record, *ExportStats, error) {
	start := time.Now()
	sn := s.Info()
	fs, err := Lint(ctx, s, c, LintOptions{})
	if err != nil {
		return nil, nil, err
	}
	if len(fs) > 0 && !o.AllowUnruledPII {
		return nil, nil, &UnruledPIIError{Findings: fs}
	}
	var st *ExportStats
	output := o.Output
	if o.Server != nil {
		output = mysql.RedactConfig(o.Server)
		if st, err = exportToServer(ctx, s, c, o.Export, o.Server); err != nil {
			return nil, nil, err
		}
	} else {
		out, err := CreateOutput(o.Output, o.Recipients)
		if err != nil {
			return nil, nil, err
		}
		if st, err = Export(ctx, s, c, o.Export, out); err != nil {
			out.Abort()
			return nil, nil, err
		}
		if err := out.Commit(); err != nil {
			return nil, nil, err
		}
		if abs, err := filepath.Abs(output); err == nil {
			output = abs
		}
	}
	rec := &Record{Time: time.Now().UTC(), Policy: o.Policy, SnapshotID: sn.ID.String(), Target: sn.Target,
		Output: output, Recipients: o.RecipientNames, Bytes: st.Bytes, Tables: len(st.Tables), Findings: len(fs),
		AllowedPII: o.AllowUnruledPII && len(fs) > 0, DurationSec: time.Since(start).Seconds()}
	return rec, st, nil
}

// exportToServer streams the export into a server through its client.
// A failed load is reported with the client's error and the table. An
// export that fails otherwise (bad rules, a repository read, Ctrl-C)
// kills the client, so that it does not run a cut dump, and returns that
// error.
func exportToServer(ctx context.Context, s snapshot.Reader, c *Config, o ExportOptions, server *driver.Config) (*ExportStats, error) {
	l, err := StartLoad(ctx, server)
	if err != nil {
		return nil, err
	}
	st, err := Export(ctx, s, c, o, l)
	if cerr := ctx.Err(); cerr != nil {
		// Cancelled: the client was killed with the context, so a broken
		// pipe or its "signal: killed" is no cause.
		l.Abort()
		if err == nil || !errors.Is(err, cerr) {
			err = fmt.Errorf("export to %s: %w", mysql.RedactConfig(server), cerr)
		}
		return nil, err
	}
	var werr *LoadWriteError
	if err != nil && !errors.As(err, &werr) {
		l.Abort()
		return nil, err
	}
	// The client stopped reading: its own error explains the broken pipe.
	if lerr := l.Close(); lerr != nil {
		return nil, lerr
	}
	if err != nil {
		return nil, err
	}
	return st, nil
}
