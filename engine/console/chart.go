package console

import (
	"fmt"
	"math"
	"strings"
	"time"
)

// Chart is a small line chart drawn as inline SVG by the page template:
// one or more series over time and, optionally, an objective line.
type Chart struct {
	Title     string
	W, H      int
	Series    []Series
	Objective *Objective
	YTop      string // label of the top of the Y axis
	YBottom   string // and of its bottom ("0" on a linear scale)
	XFrom     string // label of the first and last points' times
	XTo       string
	Empty     bool
}

// Series is one line; Class picks its colour in the stylesheet.
type Series struct {
	Name   string
	Class  string
	Points string // SVG polyline points
	Dots   []Dot
}

// Dot is a data point with its value as a tooltip.
type Dot struct {
	X, Y  float64
	Title string
	Bad   bool // a failed run or violated objective
}

// Objective is a horizontal line at the objective's value.
type Objective struct {
	Y     float64
	Label string
}

// Point is a value at a time.
type Point struct {
	T   time.Time
	V   float64
	Bad bool
}

const (
	chartW, chartH = 560, 180
	padL, padR     = 50, 10
	padT, padB     = 10, 24
)

// newChart scales series (same time axis) and an objective (0: none)
// into a chart; format prints values.
func newChart(title string, names, classes []string, series [][]Point, objective float64, format func(float64) string) Chart {
	c := Chart{Title: title, W: chartW, H: chartH}
	var t0, t1 time.Time
	top := objective
	n := 0
	for _, s := range series {
		for _, p := range s {
			if t0.IsZero() || p.T.Before(t0) {
				t0 = p.T
			}
			if p.T.After(t1) {
				t1 = p.T
			}
			top = math.Max(top, p.V)
			n++
		}
	}
	if n == 0 {
		c.Empty = true
		return c
	}
	if top <= 0 {
		top = 1
	}
	top *= 1.1
	// An objective far above the values (a 30 min RTO, drills of
	// seconds) would flatten them: such a chart uses a log scale.
	lo, logScale := 0.0, false
	if objective > 0 {
		var vmax, vmin float64 = 0, math.Inf(1)
		for _, s := range series {
			for _, p := range s {
				vmax = math.Max(vmax, p.V)
				if p.V > 0 {
					vmin = math.Min(vmin, p.V)
				}
			}
		}
		if vmax > 0 && objective > 20*vmax {
			logScale, lo = true, vmin/2
			c.Title += " · log scale"
			c.YBottom = format(lo)
		}
	}
	span := t1.Sub(t0).Seconds()
	x := func(t time.Time) float64 {
		if span == 0 {
			return padL + float64(chartW-padL-padR)/2
		}
		return padL + t.Sub(t0).Seconds()/span*float64(chartW-padL-padR)
	}
	y := func(v float64) float64 {
		f := v / top
		if logScale {
			f = (math.Log(math.Max(v, lo)) - math.Log(lo)) / (math.Log(top) - math.Log(lo))
		}
		return padT + (1-f)*float64(chartH-padT-padB)
	}
	for i, s := range series {
		se := Series{Name: names[i], Class: classes[i]}
		var pts []string
		for _, p := range s {
			px, py := x(p.T), y(p.V)
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", px, py))
			se.Dots = append(se.Dots, Dot{X: px, Y: py, Bad: p.Bad, Title: p.T.UTC().Format("2006-01-02 15:04:05") + ": " + format(p.V)})
		}
		se.Points = strings.Join(pts, " ")
		c.Series = append(c.Series, se)
	}
	if objective > 0 {
		c.Objective = &Objective{Y: y(objective), Label: "objective " + format(objective)}
	}
	c.YTop = format(top)
	if c.YBottom == "" {
		c.YBottom = "0"
	}
	c.XFrom, c.XTo = t0.UTC().Format("01-02 15:04"), t1.UTC().Format("01-02 15:04")
	return c
}
