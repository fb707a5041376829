package drill

import (
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"math"
	"strings"
	"time"
)

// WriteJSON writes rep as indented JSON (schema: docs/drills.md).
func WriteJSON(w io.Writer, rep *Report) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(rep)
}

func dur(s float64) string {
	d := time.Duration(s * float64(time.Second))
	switch {
	case d >= time.Hour:
		return d.Round(time.Minute).String()
	case d >= time.Minute:
		return d.Round(time.Second).String()
	}
	return d.Round(time.Millisecond).String()
}

func objective(m Measure) string {
	if m.Objective == 0 {
		return "—"
	}
	return dur(m.Objective)
}

func verdict(m Measure) string {
	if m.Met {
		return "met"
	}
	return "VIOLATED"
}

// WriteMarkdown writes rep as Markdown, with a table of the past
// drills in history (oldest first; may include rep).
func WriteMarkdown(w io.Writer, rep *Report, history []Report) error {
	var b strings.Builder
	title := "Restore drill"
	if rep.Kind == "spot_check" {
		title = "Spot check"
	}
	fmt.Fprintf(&b, "# %s: %s — %s\n\n", title, rep.Policy, strings.ToUpper(strings.ReplaceAll(rep.Status, "_", " ")))
	fmt.Fprintf(&b, "- Host: %s\n- From: %s\n- Start: %s\n- End: %s\n\n", rep.Host, rep.From, rep.Start.Format(time.RFC3339), rep.End.Format(time.RFC3339))
	b.WriteString("| | measured | objective | |\n|---|---|---|---|\n")
	fmt.Fprintf(&b, "| RTO | %s | %s | %s |\n", dur(rep.RTO.Seconds), objective(rep.RTO), verdict(rep.RTO))
	fmt.Fprintf(&b, "| RPO | %s | %s | %s |\n\n", dur(rep.RPO.Seconds), objective(rep.RPO), verdict(rep.RPO))
	if len(rep.Phases) > 0 {
		b.WriteString("## Phases\n\n| phase | time | in RTO |\n|---|---|---|\n")
		for _, p := range rep.Phases {
			fmt.Fprintf(&b, "| %s | %s | %v |\n", md(p.Name), dur(p.Seconds), p.InRTO)
		}
		b.WriteString("\n")
	}
	if len(rep.Targets) > 0 {
		b.WriteString("## Targets\n\n| target | kind | snapshot | recovery point | RPO | restore | result |\n|---|---|---|---|---|---|---|\n")
		for _, t := range rep.Targets {
			res := "ok"
			switch {
			case t.Skipped != "":
				res = "skipped: " + t.Skipped
			case t.Error != "":
				res = "FAILED: " + t.Error
			}
			id := t.Snapshot
			if len(id) > 8 {
				id = id[:8]
			}
			rp := ""
			if !t.RecoveryPoint.IsZero() {
				rp = t.RecoveryPoint.Format(time.RFC3339)
			}
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s |\n", md(t.Name), t.Kind, id, rp, dur(t.RPOSeconds), dur(t.RestoreSecs), md(res))
		}
		b.WriteString("\n")
		pitr := false
		for _, t := range rep.Targets {
			if t.PITRPoint != "" {
				fmt.Fprintf(&b, "- %s: point-in-time to %s (archive to %s): %s\n", md(t.Name), md(t.PITRPoint), t.ArchivedUntil.Format(time.RFC3339), md(t.Reached))
				pitr = true
			}
		}
		if pitr {
			b.WriteString("\n")
		}
	}
	if len(rep.Checks) > 0 {
		b.WriteString("## Checks\n\n| check | kind | result | value | time |\n|---|---|---|---|---|\n")
		for _, c := range rep.Checks {
			res := "ok"
			if !c.OK {
				res = "FAILED: " + c.Message
			}
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %s |\n", md(c.Name), c.Kind, md(res), md(c.Value), dur(c.Seconds))
		}
		b.WriteString("\n")
	}
	for _, s := range rep.SpotChecks {
		fmt.Fprintf(&b, "## Spot check %s\n\n- files: %d live, %d in the snapshot\n- sample: %d hashed, %d matched, %d changed since the backup\n",
			s.Target, s.LiveFiles, s.SnapshotFiles, s.Sampled, s.Matched, s.Changed)
		for _, p := range s.Problems {
			fmt.Fprintf(&b, "- **problem:** %s\n", md(p))
		}
		b.WriteString("\n")
	}
	for _, e := range rep.Errors {
		fmt.Fprintf(&b, "- **error:** %s\n", md(e))
	}
	for _, n := range rep.Notes {
		fmt.Fprintf(&b, "- note: %s\n", md(n))
	}
	if len(history) > 0 {
		b.WriteString("\n## History\n\n| start | kind | status | RTO | RPO |\n|---|---|---|---|---|\n")
		for _, h := range history {
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %s |\n", h.Start.Format(time.RFC3339), h.Kind, h.Status, dur(h.RTO.Seconds), dur(h.RPO.Seconds))
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func md(s string) string {
	return strings.NewReplacer("|", `\|`, "\n", " ").Replace(s)
}

// chart is an inline SVG line chart of one measure over past drills.
type chart struct {
	Title     string
	W, H      int
	X2, LY    int    // right end of grid lines, y of the x labels
	Line      string // polyline points
	Points    []chartPoint
	Objective float64 // y of the objective line, -1: none
	ObjLabel  string
	YTicks    []chartTick
	XLabels   []chartTick
}

type chartPoint struct {
	X, Y  float64
	OK    bool
	Label string
}

type chartTick struct {
	Pos   float64
	Label string
}

func makeChart(title string, history []Report, get func(*Report) Measure) chart {
	const w, h, left, right, top, bottom = 640, 220, 70, 20, 20, 40
	c := chart{Title: title, W: w, H: h, X2: w - right, LY: h - 18, Objective: -1}
	var maxV, obj float64
	for i := range history {
		m := get(&history[i])
		maxV = math.Max(maxV, m.Seconds)
		if m.Objective > 0 {
			obj = m.Objective
		}
	}
	maxV = math.Max(maxV, obj) * 1.1
	if maxV <= 0 {
		maxV = 1
	}
	y := func(v float64) float64 { return top + (h-top-bottom)*(1-v/maxV) }
	n := len(history)
	x := func(i int) float64 {
		if n == 1 {
			return float64(left+w-right) / 2
		}
		return left + float64(i)*float64(w-left-right)/float64(n-1)
	}
	var pts []string
	for i := range history {
		m := get(&history[i])
		px, py := x(i), y(m.Seconds)
		pts = append(pts, fmt.Sprintf("%.1f,%.1f", px, py))
		c.Points = append(c.Points, chartPoint{X: px, Y: py, OK: m.Met && history[i].Status != CheckFailed && history[i].Status != Errored,
			Label: fmt.Sprintf("%s: %s (%s)", history[i].Start.Format("2006-01-02 15:04"), dur(m.Seconds), history[i].Status)})
	}
	c.Line = strings.Join(pts, " ")
	if obj > 0 {
		c.Objective = y(obj)
		c.ObjLabel = "objective " + dur(obj)
	}
	for k := 0; k <= 4; k++ {
		v := maxV * float64(k) / 4
		c.YTicks = append(c.YTicks, chartTick{Pos: y(v), Label: dur(v)})
	}
	step := max(1, n/6)
	for i := 0; i < n; i += step {
		c.XLabels = append(c.XLabels, chartTick{Pos: x(i), Label: history[i].Start.Format("01-02 15:04")})
	}
	return c
}

var htmlTmpl = template.Must(template.New("drill").Funcs(template.FuncMap{
	"dur": dur, "objective": objective, "verdict": verdict,
	"short": func(s string) string {
		if len(s) > 8 {
			return s[:8]
		}
		return s
	},
	"ts": func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.Format(time.RFC3339)
	},
	"sub": func(a, b int) int { return a - b },
}).Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>lifeboat drill: {{.R.Policy}}</title>
<style>
body{font-family:system-ui,sans-serif;margin:2em;color:#222;max-width:960px}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px;text-align:left}
th{background:#f3f3f3}.ok{color:#17803d}.bad{color:#b91c1c;font-weight:bold}
.status{display:inline-block;padding:2px 10px;border-radius:4px;color:#fff}
.passed{background:#17803d}.check_failed,.error{background:#b91c1c}.objective_violated{background:#c2410c}
svg{background:#fafafa;border:1px solid #ddd;margin:0.5em 0}
</style></head><body>
<h1>{{if eq .R.Kind "spot_check"}}Spot check{{else}}Restore drill{{end}}: {{.R.Policy}} <span class="status {{.R.Status}}">{{.R.Status}}</span></h1>
<p>Host {{.R.Host}}, from {{.R.From}}, {{ts .R.Start}} – {{ts .R.End}}</p>
<table><tr><th></th><th>measured</th><th>objective</th><th></th></tr>
<tr><td>RTO</td><td>{{dur .R.RTO.Seconds}}</td><td>{{objective .R.RTO}}</td><td class="{{if .R.RTO.Met}}ok{{else}}bad{{end}}">{{verdict .R.RTO}}</td></tr>
<tr><td>RPO</td><td>{{dur .R.RPO.Seconds}}</td><td>{{objective .R.RPO}}</td><td class="{{if .R.RPO.Met}}ok{{else}}bad{{end}}">{{verdict .R.RPO}}</td></tr></table>
{{if .R.Phases}}<h2>Phases</h2><table><tr><th>phase</th><th>time</th><th>in RTO</th></tr>
{{range .R.Phases}}<tr><td>{{.Name}}</td><td>{{dur .Seconds}}</td><td>{{.InRTO}}</td></tr>{{end}}</table>{{end}}
{{if .R.Targets}}<h2>Targets</h2><table><tr><th>target</th><th>kind</th><th>snapshot</th><th>recovery point</th><th>RPO</th><th>restore</th><th>result</th></tr>
{{range .R.Targets}}<tr><td>{{.Name}}</td><td>{{.Kind}}</td><td>{{short .Snapshot}}</td><td>{{ts .RecoveryPoint}}</td><td>{{dur .RPOSeconds}}</td><td>{{dur .RestoreSecs}}</td>
<td>{{if .Skipped}}skipped: {{.Skipped}}{{else if .Error}}<span class="bad">FAILED: {{.Error}}</span>{{else}}<span class="ok">ok</span>{{end}}</td></tr>{{end}}</table>
{{range .R.Targets}}{{if .PITRPoint}}<p>{{.Name}}: point-in-time to {{.PITRPoint}} (archive to {{ts .ArchivedUntil}}): {{.Reached}}</p>{{end}}{{end}}{{end}}
{{if .R.Checks}}<h2>Checks</h2><table><tr><th>check</th><th>kind</th><th>result</th><th>value</th><th>time</th></tr>
{{range .R.Checks}}<tr><td>{{.Name}}</td><td>{{.Kind}}</td><td>{{if .OK}}<span class="ok">ok</span>{{else}}<span class="bad">FAILED: {{.Message}}</span>{{end}}</td><td>{{.Value}}</td><td>{{dur .Seconds}}</td></tr>{{end}}</table>{{end}}
{{range .R.SpotChecks}}<h2>Spot check {{.Target}}</h2><p>{{.LiveFiles}} files live, {{.SnapshotFiles}} in the snapshot; {{.Sampled}} sampled, {{.Matched}} matched, {{.Changed}} changed since the backup.</p>
{{range .Problems}}<p class="bad">{{.}}</p>{{end}}{{end}}
{{range .R.Errors}}<p class="bad">error: {{.}}</p>{{end}}
{{range .R.Notes}}<p>note: {{.}}</p>{{end}}
<h2>History</h2>
{{range $c := .Charts}}<h3>{{.Title}}</h3>
<svg xmlns="http://www.w3.org/2000/svg" width="{{.W}}" height="{{.H}}" viewBox="0 0 {{.W}} {{.H}}" role="img" aria-label="{{.Title}}">
{{range .YTicks}}<line x1="70" x2="{{$c.X2}}" y1="{{.Pos}}" y2="{{.Pos}}" stroke="#e5e5e5"/><text x="64" y="{{.Pos}}" font-size="11" text-anchor="end" dominant-baseline="middle">{{.Label}}</text>{{end}}
{{range .XLabels}}<text x="{{.Pos}}" y="{{$c.LY}}" font-size="11" text-anchor="middle">{{.Label}}</text>{{end}}
{{if ge .Objective 0.0}}<line x1="70" x2="{{$c.X2}}" y1="{{.Objective}}" y2="{{.Objective}}" stroke="#c2410c" stroke-dasharray="6 4"/><text x="{{$c.X2}}" y="{{.Objective}}" dy="-4" font-size="11" text-anchor="end" fill="#c2410c">{{.ObjLabel}}</text>{{end}}
<polyline points="{{.Line}}" fill="none" stroke="#2563eb" stroke-width="2"/>
{{range .Points}}<circle cx="{{.X}}" cy="{{.Y}}" r="4" fill="{{if .OK}}#17803d{{else}}#b91c1c{{end}}"><title>{{.Label}}</title></circle>{{end}}
</svg>{{end}}
<table><tr><th>start</th><th>kind</th><th>status</th><th>RTO</th><th>RPO</th></tr>
{{range .History}}<tr><td>{{ts .Start}}</td><td>{{.Kind}}</td><td>{{.Status}}</td><td>{{dur .RTO.Seconds}}</td><td>{{dur .RPO.Seconds}}</td></tr>{{end}}</table>
<p style="color:#888;font-size:small">lifeboat drill report, schema {{.R.Schema}}; self-contained, no external assets.</p>
</body></html>
`))

// WriteHTML writes a self-contained HTML page (inline CSS and SVG,
// no external assets) for rep with RTO and RPO charts over history
// (oldest first; rep is appended when it is not its last entry).
func WriteHTML(w io.Writer, rep *Report, history []Report) error {
	if n := len(history); n == 0 || !history[n-1].Start.Equal(rep.Start) {
		history = append(history, *rep)
	}
	var drills []Report
	for _, h := range history {
		if h.Kind != "spot_check" {
			drills = append(drills, h)
		}
	}
	var charts []chart
	if len(drills) > 0 {
		charts = append(charts,
			makeChart("RTO per drill", drills, func(r *Report) Measure { return r.RTO }),
			makeChart("RPO per drill", drills, func(r *Report) Measure { return r.RPO }))
	}
	return htmlTmpl.Execute(w, map[string]any{"R": rep, "History": history, "Charts": charts})
}
