package drill

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/lifeboat-backup/lifeboat/engine"
	"github.com/lifeboat-backup/lifeboat/engine/notify"
	"github.com/lifeboat-backup/lifeboat/internal/atomicfile"
	"github.com/lifeboat-backup/lifeboat/policies"
)

// ErrReportFormat is returned by WriteReport for a file name that is not
// .html, .md or .json.
var ErrReportFormat = errors.New("report: use .html, .md or .json")

// RecordOptions say where a finished drill is kept.
type RecordOptions struct {
	// Journal is the directory of the drill journal.
	Journal string
	// Report, if set, is a file the report is also written to (.html,
	// .md or .json), with the drill history of the journal.
	Report string
	// Spot: the report is a spot check, which writes no drill metrics.
	Spot bool
	// Warn receives what could not be kept; the drill's result stands.
	Warn func(error)
}

// Record keeps a finished drill: appended to the journal, a copy in the
// repository drilled where its engine has a place (records/drills/POLICY),
// the lifeboat_drill_* metrics next to the policy's metrics textfile, and
// the report file.
func Record(ctx context.Context, p *policies.Policy, e engine.Engine, rep *Report, o RecordOptions) {
	warn := o.Warn
	if warn == nil {
		warn = func(error) {}
	}
	j := Journal(o.Journal)
	if err := j.Append(p.Name, rep); err != nil {
		warn(err)
	}
	if err := e.SaveRecord(context.WithoutCancel(ctx), "drills/"+p.Name, rep.Start, rep); err != nil {
		warn(fmt.Errorf("drill record: %w", err))
	}
	if p.Metrics.Textfile != "" && !o.Spot {
		if err := WriteMetrics(MetricsFile(p.Metrics.Textfile), rep); err != nil {
			warn(fmt.Errorf("metrics: %w", err))
		}
	}
	if o.Report != "" {
		hist, _ := j.Read(p.Name)
		if err := WriteReport(o.Report, rep, hist); err != nil {
			warn(err)
		}
	}
}

// WriteReport writes rep (with the history hist for the charts) to path,
// in the format its extension names, atomically.
func WriteReport(path string, rep *Report, hist []Report) error {
	var b bytes.Buffer
	var err error
	switch strings.ToLower(filepath.Ext(path)) {
	case ".html", ".htm":
		err = WriteHTML(&b, rep, hist)
	case ".md", ".markdown":
		err = WriteMarkdown(&b, rep, hist)
	case ".json":
		err = WriteJSON(&b, rep)
	default:
		return fmt.Errorf("%s: %w", path, ErrReportFormat)
	}
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(path, b.Bytes(), 0o644)
}

// Event is the notification of a drill.
func Event(rep *Report) notify.Event {
	ev := notify.Event{Kind: "drill", Policy: rep.Policy, Host: rep.Host, Start: rep.Start, End: rep.End,
		Seconds: rep.End.Sub(rep.Start).Seconds(), Errors: rep.Errors,
		Details: map[string]any{"from": rep.From, "rto": rep.RTO, "rpo": rep.RPO, "drill_status": rep.Status}}
	switch rep.Status {
	case Passed:
		ev.Status = notify.EventSuccess
	case ObjectiveViolated:
		ev.Status = notify.EventObjectiveViolation
	default:
		ev.Status = notify.EventFailure
	}
	for _, c := range rep.Checks {
		if !c.OK {
			ev.Errors = append(ev.Errors, fmt.Sprintf("check %s failed: %s", c.Name, c.Message))
		}
	}
	ev.Events = []string{ev.Status}
	return ev
}

// Notify sends a drill's notifications (ping_url, and email and webhook
// per notify.on); failures go to warn.
func Notify(ctx context.Context, p *policies.Policy, rep *Report, warn func(error)) {
	n := notify.Notifier{}
	for _, err := range n.Notify(context.WithoutCancel(ctx), p.Notify, Event(rep)) {
		warn(fmt.Errorf("notify: %w", err))
	}
}
