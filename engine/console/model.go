package console

import (
	"fmt"
	"strings"
	"time"

	"github.com/lifeboat-backup/lifeboat/engine"
	"github.com/lifeboat-backup/lifeboat/internal/humanize"
	"github.com/lifeboat-backup/lifeboat/policies"
	"github.com/lifeboat-backup/lifeboat/restore/drill"
)

// Status is a policy's repositories as the console shows them (cmd's
// status command computes it).
type Status struct {
	Repositories []Repository
	Archives     []Archive
	Problems     []string
}

// Repository is the primary or a secondary.
type Repository struct {
	Name      string // "primary" or the secondary's name
	URL       string // redacted
	Reachable bool
	Error     string
	// Newest is the newest trusted snapshot per target of the policy's host.
	Newest map[string]time.Time
	// Secondaries: the replication lag (age of the newest primary
	// snapshot missing here; 0 in sync), what is missing, and max_lag.
	Lag              *time.Duration
	SnapshotsMissing int
	BytesPending     int64
	MaxLag           time.Duration
}

// Archive is a log archive stream (point-in-time recovery).
type Archive struct {
	Target   string
	Stream   string
	Newest   time.Time // end of the newest segment
	Lag      time.Duration
	PITRFrom time.Time
	Gaps     []string
}

// Level is a check's colour.
type Level int

// Levels, worst last.
const (
	None Level = iota // informational
	Green
	Amber
	Red
)

func (l Level) String() string { return [...]string{"none", "green", "amber", "red"}[l] }

// Check is one line of the overview: what, its value and its verdict in words.
type Check struct {
	What   string
	Value  string
	Level  Level
	Reason string
}

// PolicyView is a policy's part of the overview.
type PolicyView struct {
	Name   string
	Host   string
	Level  Level
	Checks []Check
	Error  string // status could not be computed
}

// evaluate turns a policy's journals and status into checks.
func evaluate(p *policies.Policy, runs []engine.RunResult, drills []drill.Report, st *Status, now time.Time) PolicyView {
	v := PolicyView{Name: p.Name, Host: p.Host}
	add := func(c Check) {
		v.Checks = append(v.Checks, c)
		v.Level = max(v.Level, c.Level)
	}

	// last run
	if len(runs) == 0 {
		add(Check{What: "last run", Value: "none recorded", Level: Amber, Reason: "no run of this policy in the journal"})
	} else {
		r := runs[len(runs)-1]
		val := fmt.Sprintf("%s ago, took %s, %s added", age(now.Sub(r.End)), dur(r.End.Sub(r.Start)), humanize.Bytes(added(r)))
		switch {
		case !r.OK():
			add(Check{What: "last run", Value: "FAILED " + val, Level: Red, Reason: strings.Join(r.Errors, "; ")})
		case r.Partial:
			add(Check{What: "last run", Value: "partial " + val, Level: Amber, Reason: "some source entries could not be read"})
		default:
			add(Check{What: "last run", Value: "ok " + val, Level: Green, Reason: "every step succeeded"})
		}
	}

	// next run
	if c := p.Schedule.Calendar; !c.IsZero() {
		next := c.Next(now)
		add(Check{What: "next run", Value: fmt.Sprintf("in %s (%s)", age(next.Sub(now)), next.UTC().Format("2006-01-02 15:04 MST")), Level: None, Reason: "schedule " + c.String()})
	} else {
		add(Check{What: "next run", Value: "not scheduled", Level: None, Reason: "the policy has no schedule.calendar"})
	}

	// newest snapshot per target against the RPO
	var primary *Repository
	if st != nil {
		for i := range st.Repositories {
			if st.Repositories[i].Name == "primary" {
				primary = &st.Repositories[i]
			}
		}
	}
	rpo := p.Objectives.RPO.D()
	for _, t := range p.Targets {
		what := "target " + t.Name + ": newest snapshot"
		var newest time.Time
		if primary != nil {
			newest = primary.Newest[t.Name]
		}
		switch {
		case primary == nil || !primary.Reachable:
			add(Check{What: what, Value: "unknown", Level: Red, Reason: "the primary repository is not reachable"})
		case newest.IsZero():
			add(Check{What: what, Value: "none", Level: Red, Reason: "no snapshot of this target in the primary repository"})
		case rpo <= 0:
			add(Check{What: what, Value: age(now.Sub(newest)) + " old", Level: Green, Reason: "no RPO objective set"})
		case now.Sub(newest) > rpo:
			add(Check{What: what, Value: fmt.Sprintf("%s old, RPO %s", age(now.Sub(newest)), dur(rpo)), Level: Red,
				Reason: "RPO violated: the newest snapshot is older than the objective"})
		case now.Sub(newest) > rpo*4/5:
			add(Check{What: what, Value: fmt.Sprintf("%s old, RPO %s", age(now.Sub(newest)), dur(rpo)), Level: Amber,
				Reason: "the newest snapshot is close to the RPO objective"})
		default:
			add(Check{What: what, Value: fmt.Sprintf("%s old, RPO %s", age(now.Sub(newest)), dur(rpo)), Level: Green, Reason: "within the RPO objective"})
		}
	}

	// replication lag per secondary
	if st != nil {
		for _, r := range st.Repositories {
			if r.Name == "primary" {
				continue
			}
			what := "replication to " + r.Name
			switch {
			case !r.Reachable:
				add(Check{What: what, Value: "unreachable", Level: Red, Reason: r.Error})
			case r.Lag == nil:
				add(Check{What: what, Value: "unknown", Level: Amber, Reason: r.Error})
			case *r.Lag == 0:
				add(Check{What: what, Value: "lag 0s", Level: Green, Reason: "in sync with the primary"})
			default:
				val := fmt.Sprintf("lag %s, %d snapshots, %s pending", age(*r.Lag), r.SnapshotsMissing, humanize.Bytes(r.BytesPending))
				if r.MaxLag > 0 && *r.Lag > r.MaxLag {
					add(Check{What: what, Value: val, Level: Red, Reason: fmt.Sprintf("the lag exceeds max_lag %s", dur(r.MaxLag))})
				} else {
					add(Check{What: what, Value: val, Level: Amber, Reason: "the secondary lacks the newest snapshots until the next replication"})
				}
			}
		}
		for _, a := range st.Archives {
			what := "archive lag " + a.Target + " (" + a.Stream + ")"
			val := fmt.Sprintf("lag %s, PITR from %s", age(a.Lag), a.PITRFrom.UTC().Format("2006-01-02 15:04"))
			maxDelay := time.Minute
			if t, err := p.Target(a.Target); err == nil && t.Archive != nil && t.Archive.MaxDelay.D()*2 > maxDelay {
				maxDelay = t.Archive.MaxDelay.D() * 2
			}
			switch {
			case len(a.Gaps) > 0:
				add(Check{What: what, Value: val, Level: Red, Reason: "gap in the archive: " + strings.Join(a.Gaps, "; ")})
			case a.Lag > maxDelay:
				add(Check{What: what, Value: val, Level: Amber, Reason: fmt.Sprintf("the archive is more than %s behind", dur(maxDelay))})
			default:
				add(Check{What: what, Value: val, Level: Green, Reason: "archiving"})
			}
		}
	}

	// last drill
	if len(drills) == 0 {
		add(Check{What: "last drill", Value: "none recorded", Level: Amber, Reason: "the policy was never drilled: RPO and RTO are unmeasured"})
	} else {
		d := drills[len(drills)-1]
		val := fmt.Sprintf("%s %s ago: RTO %s / %s, RPO %s / %s", strings.ReplaceAll(d.Status, "_", " "), age(now.Sub(d.End)),
			secs(d.RTO.Seconds), objective(d.RTO.Objective), secs(d.RPO.Seconds), objective(d.RPO.Objective))
		if d.Status == drill.Passed {
			add(Check{What: "last drill", Value: val, Level: Green, Reason: "checks passed, objectives met"})
		} else {
			reason := d.Status
			if err := d.Err(); err != nil {
				reason = err.Error()
			}
			add(Check{What: "last drill", Value: val, Level: Red, Reason: reason})
		}
	}
	if st != nil {
		for _, pr := range st.Problems {
			if !strings.Contains(pr, "lag ") { // lags are checks of their own
				add(Check{What: "problem", Value: "", Level: Red, Reason: pr})
			}
		}
	}
	return v
}

func added(r engine.RunResult) int64 {
	var n int64
	for _, t := range r.Targets {
		n += t.BytesAdded
	}
	return n
}

func objective(s float64) string {
	if s == 0 {
		return "no objective"
	}
	return secs(s)
}

func secs(s float64) string { return dur(time.Duration(s * float64(time.Second))) }

// dur prints a duration at a precision fit for it.
func dur(d time.Duration) string {
	switch {
	case d >= time.Hour:
		return d.Round(time.Minute).String()
	case d >= time.Minute:
		return d.Round(time.Second).String()
	case d >= time.Second:
		return d.Round(100 * time.Millisecond).String()
	}
	return d.Round(time.Millisecond).String()
}

// age prints how long ago (or until) something is, coarsely.
func age(d time.Duration) string {
	if d < 0 {
		d = -d
	}
	switch {
	case d >= 48*time.Hour:
		return fmt.Sprintf("%dd", int(d.Hours()/24))
	case d >= time.Hour:
		return d.Round(time.Minute).String()
	}
	return d.Round(time.Second).String()
}
