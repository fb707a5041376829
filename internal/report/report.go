// Package report prints what a command is doing and what it did, in one
// of two forms picked once per command (restic's internal/ui printers):
// JSON lines that each carry a message_type (docs/json.md), or text with
// one progress line redrawn on a terminal and no progress at all when
// the output is not one.
package report

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/lifeboat-backup/lifeboat/internal/humanize"
)

// The message types of the JSON lines (restic's names).
const (
	TypeStatus  = "status"         // progress, at most MaxJSONRate a second
	TypeVerbose = "verbose_status" // one entry processed (-v)
	TypeError   = "error"          // something failed; the command may go on
	TypeSummary = "summary"        // exactly one, the last line
)

// MaxJSONRate is the most status lines a second in JSON mode.
const MaxJSONRate = 2

// Status is one progress report. The percent, total and time left are
// set when the total is known (TotalBytes or TotalFiles > 0).
type Status struct {
	MessageType      string   `json:"message_type"`
	Phase            string   `json:"phase"`                       // backup, restore, check, replicate, export
	Target           string   `json:"target,omitempty"`            // run: the target being backed up; replicate: the secondary
	TargetNumber     int      `json:"target_number,omitempty"`     // run: 1-based position of Target
	TargetCount      int      `json:"target_count,omitempty"`      // run: how many targets
	Unit             string   `json:"unit"`                        // what files_done counts: entries, packs, objects, tables
	SecondsElapsed   float64  `json:"seconds_elapsed"`             // since the phase started
	SecondsRemaining *float64 `json:"seconds_remaining,omitempty"` // estimated, when the total is known
	PercentDone      *float64 `json:"percent_done,omitempty"`      // 0..1, when the total is known
	FilesDone        int64    `json:"files_done"`
	TotalFiles       int64    `json:"total_files,omitempty"`
	BytesDone        int64    `json:"bytes_done"`
	TotalBytes       int64    `json:"total_bytes,omitempty"`
	BytesPerSecond   float64  `json:"bytes_per_second"`
}

// Counter is what a running phase reports: counts so far and, when
// known, totals.
type Counter struct {
	Phase, Unit            string
	Files, TotalFiles      int64
	Bytes, TotalBytes      int64
	Target                 string
	TargetNumber, TargetOf int
}

// Make computes a Status from counts taken elapsed after the start: the
// fraction done (by bytes when their total is known, else by count) and
// from it the time left.
func Make(c Counter, elapsed time.Duration) Status {
	s := Status{MessageType: TypeStatus, Phase: c.Phase, Unit: c.Unit, Target: c.Target, TargetNumber: c.TargetNumber,
		TargetCount: c.TargetOf, SecondsElapsed: elapsed.Seconds(), FilesDone: c.Files, TotalFiles: c.TotalFiles,
		BytesDone: c.Bytes, TotalBytes: c.TotalBytes}
	if sec := elapsed.Seconds(); sec > 0 {
		s.BytesPerSecond = float64(c.Bytes) / sec
	}
	var f float64
	switch {
	case c.TotalBytes > 0:
		f = float64(c.Bytes) / float64(c.TotalBytes)
	case c.TotalFiles > 0:
		f = float64(c.Files) / float64(c.TotalFiles)
	default:
		return s
	}
	f = min(max(f, 0), 1)
	s.PercentDone = &f
	if f > 0 {
		left := elapsed.Seconds() * (1 - f) / f
		s.SecondsRemaining = &left
	}
	return s
}

// Text is s as one progress line: "[0:12] 43.1%  120 / 300 entries
// 1.2 GiB / 2.8 GiB  95 MB/s  ETA 0:17", with the target first in a run.
func (s Status) Text() string {
	line := ""
	switch {
	case s.Target != "" && s.TargetCount > 0:
		line = fmt.Sprintf("target %s (%d/%d) %s: ", s.Target, s.TargetNumber, s.TargetCount, s.Phase)
	case s.Target != "":
		line = s.Phase + " " + s.Target + ": "
	}
	line += "[" + clock(s.SecondsElapsed) + "]"
	if s.PercentDone != nil {
		line += fmt.Sprintf(" %5.1f%% ", *s.PercentDone*100)
	}
	if s.TotalFiles > 0 {
		line += fmt.Sprintf(" %d / %d %s", s.FilesDone, s.TotalFiles, s.Unit)
	} else {
		line += fmt.Sprintf(" %d %s", s.FilesDone, s.Unit)
	}
	if s.TotalBytes > 0 {
		line += fmt.Sprintf("  %s / %s", humanize.Bytes(s.BytesDone), humanize.Bytes(s.TotalBytes))
	} else if s.BytesDone > 0 {
		line += "  " + humanize.Bytes(s.BytesDone)
	}
	if s.BytesDone > 0 {
		line += fmt.Sprintf("  %.0f MB/s", s.BytesPerSecond/1e6)
	}
	if s.SecondsRemaining != nil {
		line += "  ETA " + clock(*s.SecondsRemaining)
	}
	return line
}

// clock formats seconds as M:SS or H:MM:SS.
func clock(sec float64) string {
	t := int64(sec + 0.5)
	if t >= 3600 {
		return fmt.Sprintf("%d:%02d:%02d", t/3600, t/60%60, t%60)
	}
	return fmt.Sprintf("%d:%02d", t/60, t%60)
}

// Printer writes one command's messages. JSON lines go to out; text
// progress is redrawn on errw (stderr) when it is a terminal.
type Printer struct {
	out, errw  io.Writer
	json       bool
	quiet      bool
	term       bool
	interval   time.Duration // between redraws or status lines
	mu         sync.Mutex
	drawn      bool // a progress line is on the terminal
	summarized bool
}

// Options say how a Printer prints.
type Options struct {
	JSON, Quiet bool
	// Terminal: errw is a terminal, so text progress is redrawn there.
	Terminal bool
	// FPS is the redraws (text) or status lines (JSON, at most
	// MaxJSONRate) a second; 0: 4 on a terminal, MaxJSONRate in JSON.
	FPS float64
}

// New returns a Printer writing to out and errw.
func New(out, errw io.Writer, o Options) *Printer {
	fps := o.FPS
	if fps <= 0 {
		fps = 4
		if o.JSON {
			fps = MaxJSONRate
		}
	}
	if o.JSON {
		fps = min(fps, MaxJSONRate)
	}
	return &Printer{out: out, errw: errw, json: o.JSON, quiet: o.Quiet, term: o.Terminal,
		interval: time.Duration(float64(time.Second) / fps)}
}

// FPSFromEnv reads LIFEBOAT_PROGRESS_FPS (restic's RESTIC_PROGRESS_FPS):
// 0 when unset or not a positive number.
func FPSFromEnv() float64 {
	f, err := strconv.ParseFloat(os.Getenv("LIFEBOAT_PROGRESS_FPS"), 64)
	if err != nil || !(f > 0) || f > 1000 {
		return 0
	}
	return f
}

// JSON writes v as one line. A map or struct whose message_type is
// "summary" marks the command as summarized (Summarized).
func (p *Printer) JSON(v any) error {
	line, err := json.Marshal(v)
	if err != nil {
		return err
	}
	var head struct {
		MessageType string `json:"message_type"`
	}
	_ = json.Unmarshal(line, &head)
	p.mu.Lock()
	defer p.mu.Unlock()
	if head.MessageType == TypeSummary {
		p.summarized = true
	}
	_, err = p.out.Write(append(line, '\n'))
	return err
}

// Summarized reports whether a summary line was written.
func (p *Printer) Summarized() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.summarized
}

// Line prints one text line on out, moving a drawn progress line out of
// its way (it is redrawn at the next tick).
func (p *Printer) Line(format string, args ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.clear()
	fmt.Fprintf(p.out, format+"\n", args...)
}

func (p *Printer) clear() {
	if p.drawn {
		fmt.Fprint(p.errw, "\r\033[K")
		p.drawn = false
	}
}

// Progress reports status() while a phase runs, until stop is called:
// in JSON a status line every interval and a last one at stop; as text
// one line redrawn on a terminal, cleared at stop; otherwise (--quiet,
// or text to something that is not a terminal) nothing.
func (p *Printer) Progress(status func() Status) (stop func()) {
	return p.progress(func() (Status, string) {
		s := status()
		return s, s.Text()
	})
}

// ProgressText is Progress for a phase that has no Status, only a text
// line (nothing in JSON).
func (p *Printer) ProgressText(text func() string) (stop func()) {
	if p.json {
		return func() {}
	}
	return p.progress(func() (Status, string) { return Status{}, text() })
}

func (p *Printer) progress(fn func() (Status, string)) (stop func()) {
	if p.quiet || !(p.json || p.term) {
		return func() {}
	}
	tick := func() {
		s, text := fn()
		if p.json {
			_ = p.JSON(s)
			return
		}
		p.mu.Lock()
		fmt.Fprint(p.errw, "\r\033[K"+text)
		p.drawn = true
		p.mu.Unlock()
	}
	done, finished := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(p.interval)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				tick()
			}
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() {
			close(done)
			<-finished
			if p.json {
				tick()
				return
			}
			p.mu.Lock()
			p.clear()
			p.mu.Unlock()
		})
	}
}
