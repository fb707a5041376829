package report

import (
	"bufio"
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func TestMakePercentAndETA(t *testing.T) {
	s := Make(Counter{Phase: "restore", Unit: "entries", Files: 10, TotalFiles: 40, Bytes: 250, TotalBytes: 1000}, 10*time.Second)
	if s.PercentDone == nil || *s.PercentDone != 0.25 {
		t.Fatalf("percent_done = %v, want 0.25 (by bytes)", s.PercentDone)
	}
	if s.SecondsRemaining == nil || *s.SecondsRemaining != 30 {
		t.Fatalf("seconds_remaining = %v, want 30", s.SecondsRemaining)
	}
	if s.BytesPerSecond != 25 {
		t.Fatalf("bytes_per_second = %v", s.BytesPerSecond)
	}
	text := s.Text()
	for _, want := range []string{"[0:10]", "25.0%", "10 / 40 entries", "250 B / 1000 B", "ETA 0:30"} {
		if !strings.Contains(text, want) {
			t.Errorf("%q lacks %q", text, want)
		}
	}
	// By count when the bytes' total is unknown (check: packs).
	s = Make(Counter{Phase: "check", Unit: "packs", Files: 3, TotalFiles: 4}, 3*time.Second)
	if s.PercentDone == nil || *s.PercentDone != 0.75 || *s.SecondsRemaining != 1 {
		t.Fatalf("by count: %+v", s)
	}
	// No total: no percent, no ETA.
	s = Make(Counter{Phase: "backup", Unit: "entries", Files: 3, Bytes: 5}, time.Second)
	if s.PercentDone != nil || s.SecondsRemaining != nil || strings.Contains(s.Text(), "ETA") || strings.Contains(s.Text(), "%") {
		t.Fatalf("no total: %+v %q", s, s.Text())
	}
	run := Make(Counter{Phase: "backup", Unit: "entries", Target: "db", TargetNumber: 2, TargetOf: 3}, time.Second).Text()
	if !strings.HasPrefix(run, "target db (2/3) backup: ") {
		t.Fatalf("run line %q", run)
	}
}

func count(s Counter) func() Status {
	start := time.Now()
	return func() Status { return Make(s, time.Since(start)) }
}

// TestProgressOnlyOnTerminalOrJSON: text progress to something that is not
// a terminal prints nothing; on a terminal it redraws; JSON prints status
// lines at most MaxJSONRate a second and one at stop.
func TestProgressOnlyOnTerminalOrJSON(t *testing.T) {
	c := Counter{Phase: "restore", Unit: "entries", Files: 1, TotalFiles: 2}
	var out, errw bytes.Buffer
	stop := New(&out, &errw, Options{FPS: 100}).Progress(count(c))
	time.Sleep(100 * time.Millisecond)
	stop()
	if out.Len()+errw.Len() != 0 {
		t.Fatalf("not a terminal, yet printed %q %q", out.String(), errw.String())
	}
	stop = New(&out, &errw, Options{Terminal: true, FPS: 100}).Progress(count(c))
	time.Sleep(100 * time.Millisecond)
	stop()
	if out.Len() != 0 || !strings.Contains(errw.String(), "\r\033[K[0:00]  50.0%") || !strings.HasSuffix(errw.String(), "\r\033[K") {
		t.Fatalf("terminal: %q", errw.String())
	}
	errw.Reset()
	stop = New(&out, &errw, Options{Terminal: true, Quiet: true, FPS: 100}).Progress(count(c))
	time.Sleep(50 * time.Millisecond)
	stop()
	if errw.Len() != 0 {
		t.Fatalf("--quiet drew %q", errw.String())
	}
	p := New(&out, &errw, Options{JSON: true, FPS: 100})
	stop = p.Progress(count(c))
	time.Sleep(1100 * time.Millisecond)
	stop()
	n := 0
	sc := bufio.NewScanner(&out)
	for sc.Scan() {
		var s Status
		if err := json.Unmarshal(sc.Bytes(), &s); err != nil || s.MessageType != TypeStatus || *s.PercentDone != 0.5 {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		n++
	}
	if n < 2 || n > MaxJSONRate+2 {
		t.Fatalf("%d status lines in 1.1s, want 2..%d", n, MaxJSONRate+2)
	}
	if errw.Len() != 0 || p.Summarized() {
		t.Fatal("JSON progress drew on stderr or counted as a summary")
	}
	if err := p.JSON(map[string]any{"message_type": "summary"}); err != nil || !p.Summarized() {
		t.Fatal("summary not noticed")
	}
}
