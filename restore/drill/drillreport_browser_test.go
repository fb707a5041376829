package drill_test

import (
	"bytes"
	"context"
	"image/png"
	"os"
	osexec "os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lifeboat-backup/lifeboat/restore/drill"
)

// TestDrillReportRendersInChromium renders the HTML report of a drill
// history in headless Chromium (Debian's chromium) and checks the
// screenshot: the page draws, and the charts' blue history lines and
// orange objective lines are there. It skips without chromium unless
// LIFEBOAT_REQUIRE_CHROMIUM=1.
func TestDrillReportRendersInChromium(t *testing.T) {
	bin, err := osexec.LookPath("chromium")
	if err != nil {
		if os.Getenv("LIFEBOAT_REQUIRE_CHROMIUM") == "1" {
			t.Fatal("chromium not installed (scripts/deps installs it)")
		}
		t.Skip("chromium not installed")
	}
	start := time.Date(2026, 11, 1, 5, 0, 0, 0, time.UTC)
	var hist []drill.Report
	for i := range 8 {
		rto := 60 + 25*float64(i%4)
		hist = append(hist, drill.Report{Schema: 1, Kind: "drill", Policy: "shop", Host: "db-1", From: "primary",
			Start: start.AddDate(0, 0, 7*i), End: start.AddDate(0, 0, 7*i).Add(time.Duration(rto) * time.Second),
			Status: drill.Passed,
			RTO:    drill.Measure{Seconds: rto, Objective: 1800, Met: true},
			RPO:    drill.Measure{Seconds: 3600 * float64(2+i%3), Objective: 26 * 3600, Met: true}})
	}
	var page bytes.Buffer
	require.NoError(t, drill.WriteHTML(&page, &hist[len(hist)-1], hist))
	dir := t.TempDir()
	html := filepath.Join(dir, "report.html")
	require.NoError(t, os.WriteFile(html, page.Bytes(), 0o644))

	shot := filepath.Join(dir, "shot.png")
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := osexec.CommandContext(ctx, bin, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir="+filepath.Join(dir, "profile"), "--window-size=1200,1600",
		"--screenshot="+shot, "file://"+html)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "chromium: %s", out)

	f, err := os.Open(shot)
	require.NoError(t, err)
	defer f.Close()
	img, err := png.Decode(f)
	require.NoError(t, err)
	var blue, orange, dark int
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl, _ := img.At(x, y).RGBA()
			r, g, bl = r>>8, g>>8, bl>>8
			switch {
			case bl > 180 && r < 90 && g < 140: // #2563eb history lines
				blue++
			case r > 160 && g < 110 && bl < 60: // #c2410c objective lines
				orange++
			case r < 60 && g < 60 && bl < 60: // text
				dark++
			}
		}
	}
	t.Logf("screenshot %dx%d: %d blue, %d orange, %d dark pixels", b.Dx(), b.Dy(), blue, orange, dark)
	assert.Greater(t, blue, 200, "the RTO/RPO history lines are drawn")
	assert.Greater(t, orange, 200, "the objective lines are drawn")
	assert.Greater(t, dark, 1000, "the page has text")
}
