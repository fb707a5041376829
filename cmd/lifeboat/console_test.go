package main

import (
	"bytes"
	"context"
	"image/png"
	"io"
	"net/http"
	"net/url"
	"os"
	osexec "os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const hostileName = "<img src=x onerror=alert(1)>"

// syncBuffer is a bytes.Buffer safe for a writer and a reader at once.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// serving runs lifeboat serve with args until the test ends and returns
// its base URL.
func serving(t *testing.T, c *cli, args ...string) string {
	t.Helper()
	for k, v := range c.env {
		t.Setenv(k, v)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errb := &syncBuffer{}
	done := make(chan int, 1)
	go func() {
		done <- newApp(strings.NewReader(""), io.Discard, errb).run(ctx, append([]string{"serve", "--listen", "127.0.0.1:0", "--status-ttl", "0"}, args...))
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case code := <-done:
			assert.Equal(t, 0, code, "serve: %s", errb.String())
		case <-time.After(30 * time.Second):
			t.Error("serve did not stop")
		}
	})
	re := regexp.MustCompile(`console on (http://127\.0\.0\.1:\d+)/`)
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if m := re.FindStringSubmatch(errb.String()); m != nil {
			return m[1]
		}
		select {
		case code := <-done:
			t.Fatalf("serve ended (exit %d): %s", code, errb.String())
		default:
		}
	}
	t.Fatalf("serve did not start: %s", errb.String())
	return ""
}

// browser drives Debian's chromium headless: the DOM after load and a
// screenshot of each page.
type browser struct {
	t    *testing.T
	bin  string
	dir  string // screenshots
	prof string
}

func (b *browser) run(args ...string) []byte {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	base := []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--hide-scrollbars",
		"--disable-background-networking", "--disable-component-update", "--disable-sync", "--user-data-dir=" + b.prof}
	cmd := osexec.CommandContext(ctx, b.bin, append(base, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	require.NoError(b.t, cmd.Run(), "chromium %v: %s", args, stderr.String())
	return stdout.Bytes()
}

// page loads u, saves NAME.png and returns the DOM.
func (b *browser) page(name, u string) string {
	b.t.Helper()
	shot := filepath.Join(b.dir, name+".png")
	dom := string(b.run("--window-size=1280,1400", "--screenshot="+shot, "--dump-dom", u))
	f, err := os.Open(shot)
	require.NoError(b.t, err)
	defer f.Close()
	_, err = png.Decode(f)
	require.NoError(b.t, err, "screenshot %s", shot)
	return dom
}

// row returns the table row (<tr ...>...</tr>) of dom that contains what.
func row(t *testing.T, dom, what string) string {
	t.Helper()
	for _, r := range regexp.MustCompile(`(?s)<tr[^>]*>.*?</tr>`).FindAllString(dom, -1) {
		if strings.Contains(r, what) {
			return r
		}
	}
	t.Fatalf("no row with %q in the page", what)
	return ""
}

// consoleFixture makes a repository by real runs and drills: policy shop
// (two targets: two good runs, two drills, then a run whose uploads
// target is gone, then a snapshot its secondary lacks) and policy legacy
// (one run, RPO 1s: violated by the time anyone looks).
func consoleFixture(t *testing.T) (c *cli, dir, shop, legacy, journal string) {
	c, dir, src := setup(t)
	primary := c.env["LIFEBOAT_REPO"]
	c.env["LIFEBOAT_REPO"] = ""
	journal = filepath.Join(dir, "journal")
	uploads := filepath.Join(dir, "uploads")
	require.NoError(t, os.MkdirAll(uploads, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(uploads, "u.jpg"), bytes.Repeat([]byte{0xff, 0xd8}, 5000), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(src, "sub", hostileName), []byte("hostile\n"), 0o644))
	write := func(name, body string) string {
		p := filepath.Join(dir, name+".yaml")
		require.NoError(t, os.WriteFile(p, []byte("version: 1\nname: "+name+"\n"+body), 0o600))
		return p
	}
	shop = write("shop", `host: web-1
repositories:
  primary:
    url: `+primary+`
    key_file: `+filepath.Join(dir, "host.key")+`
  secondaries:
    - name: dr
      url: file://`+filepath.Join(dir, "dr")+`
      max_lag: 26h
schedule:
  calendar: "*-*-* 02:30:00"
targets:
  - name: site
    kind: files
    paths: [`+src+`]
  - name: uploads
    kind: files
    paths: [`+uploads+`]
objectives:
  rpo: 26h
  rto: 30m
drill:
  checks:
    - name: content present
      target: site
      path: sub
      min_files: 1
`)
	legacy = write("legacy", `host: legacy-1
repositories:
  primary:
    url: `+primary+`
    key_file: `+filepath.Join(dir, "host.key")+`
targets:
  - name: etc
    kind: files
    paths: [`+filepath.Join(src, "sub")+`]
objectives:
  rpo: 1s
`)
	c.ok("run", legacy, "--journal", journal)
	for i := range 2 {
		require.NoError(t, os.WriteFile(filepath.Join(src, "n.txt"), []byte(strings.Repeat("x", 1000*(i+1))), 0o644))
		c.ok("run", shop, "--journal", journal)
	}
	c.env["LIFEBOAT_KEY_FILE"] = filepath.Join(dir, "owner.key")
	c.ok("drill", shop, "--journal", journal)
	c.ok("drill", shop, "--journal", journal, "--from", "dr")
	c.env["LIFEBOAT_KEY_FILE"] = ""
	require.NoError(t, os.RemoveAll(uploads))
	_, _, code := c.run("run", shop, "--journal", journal)
	require.Equal(t, exitFailure, code, "the uploads target is gone")
	// a snapshot the secondary lacks: replication lag
	c.ok("backup", "files", src, "--policy", shop, "--host", "web-1", "--target", "site")
	return c, dir, shop, legacy, journal
}

// TestConsoleMustShow drives headless Chromium against a real lifeboat
// serve over a repository made by real runs and drills (issue #23): the
// overview shows the failed run in red with its reason, the violated RPO
// in red and the replication lag; the history has the drills' RTO/RPO
// charts; a snapshot's tree is browsable and a hostile file name renders
// as text; without the owner key there is no download link and the URL
// answers 403; actions are refused without --allow-actions and without
// the CSRF token, and work with both. Screenshots of every page go to
// $LIFEBOAT_SCREENSHOTS (default: a temporary directory). Skips without
// chromium unless LIFEBOAT_REQUIRE_CHROMIUM=1.
func TestConsoleMustShow(t *testing.T) {
	bin, err := osexec.LookPath("chromium")
	if err != nil {
		if os.Getenv("LIFEBOAT_REQUIRE_CHROMIUM") == "1" {
			t.Fatal("chromium not installed (scripts/deps installs it)")
		}
		t.Skip("chromium not installed")
	}
	start := time.Now()
	c, dir, shop, legacy, journal := consoleFixture(t)
	t.Logf("fixture: runs and drills in %s", time.Since(start).Round(time.Millisecond))
	shots := os.Getenv("LIFEBOAT_SCREENSHOTS")
	if shots == "" {
		shots = t.TempDir()
	}
	require.NoError(t, os.MkdirAll(shots, 0o755))
	t.Logf("screenshots in %s", shots)
	br := &browser{t: t, bin: bin, dir: shots, prof: filepath.Join(dir, "chromium")}

	base := serving(t, c, shop, legacy, "--journal", journal) // the policies' host key, no actions

	// overview
	dom := br.page("overview", base+"/")
	failed := row(t, dom, "last run</td><td>FAILED")
	assert.Contains(t, failed, `class="red"`)
	assert.Regexp(t, `target uploads: .*no such file or directory`, failed, "the reason in words")
	rpo := row(t, dom, "target etc: newest snapshot")
	assert.Contains(t, rpo, `class="red"`)
	assert.Contains(t, rpo, "RPO violated")
	lag := row(t, dom, "replication to dr")
	assert.Regexp(t, `lag [0-9][0-9hms.]*, 1 snapshots`, lag)
	assert.NotContains(t, lag, "lag 0s")
	assert.Contains(t, lag, `class="amber"`)
	assert.Contains(t, row(t, dom, "last drill"), `class="green"`)
	assert.Contains(t, dom, "next run")

	// history: the drills' RTO and RPO charts, with their objectives
	dom = br.page("history", base+"/history/shop")
	for _, chart := range []string{"Drill RTO", "Drill RPO"} {
		m := regexp.MustCompile(`(?s)<svg[^>]*aria-label="` + regexp.QuoteMeta(chart) + `[^"]*".*?</svg>`).FindString(dom)
		require.NotEmpty(t, m, chart)
		assert.Contains(t, m, "<polyline", chart)
		assert.Equal(t, 2, strings.Count(m, "<circle"), "%s: one point per drill", chart)
		assert.Contains(t, m, `class="objective"`, chart)
	}
	assert.Contains(t, dom, "target uploads: backup root", "each run's errors")
	assertOrangePixels(t, filepath.Join(shots, "history.png"))

	// snapshots, the tree down to the hostile name, a diff
	dom = br.page("snapshots", base+"/snapshots/shop?target=site")
	ids := regexp.MustCompile(`/snapshots/shop/([0-9a-f]{64})/tree`).FindAllStringSubmatch(dom, -1)
	require.GreaterOrEqual(t, len(ids), 3)
	newest, oldest := ids[0][1], ids[len(ids)-1][1]
	assert.Contains(t, dom, "no downloads")
	dom = br.page("tree", base+"/snapshots/shop/"+newest+"/tree?path="+url.QueryEscape("src/sub"))
	assert.Contains(t, dom, "&lt;img src=x onerror=alert(1)&gt;", "the hostile name is text")
	assert.NotRegexp(t, `<img[^>]*onerror`, dom, "and no element")
	assert.Contains(t, dom, "a.txt")
	assert.NotContains(t, dom, `class="download"`, "no download link without the owner key")
	dom = br.page("diff", base+"/snapshots/shop/diff?a="+oldest+"&b="+newest)
	assert.Contains(t, row(t, dom, "n.txt"), "<td class=\"mono\">M</td>")
	assert.NotRegexp(t, `<img[^>]*onerror`, dom)

	get := func(u string, hdr ...string) (int, string) {
		req, err := http.NewRequest(http.MethodGet, u, nil)
		require.NoError(t, err)
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		res, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}
	code, body := get(base + "/snapshots/shop/" + newest + "/tree")
	assert.Equal(t, http.StatusOK, code)
	assert.Contains(t, body, `tree?path=src"`, "the root lists src as a link")
	code, _ = get(base + "/snapshots/shop/" + newest + "/download?path=src")
	assert.Equal(t, http.StatusForbidden, code, "download without the owner key")
	code, body = get(base + "/metrics")
	assert.Equal(t, http.StatusOK, code)
	assert.Contains(t, body, `lifeboat_run_success{policy="shop"} 0`)
	assert.Contains(t, body, `lifeboat_drill_rto_objective_seconds{policy="shop"} 1800`)
	code, body = get(base + "/healthz")
	assert.Equal(t, http.StatusOK, code)
	assert.Equal(t, "ok\n", body)

	// actions: refused without --allow-actions
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	post := func(u string, form url.Values, hdr ...string) (*http.Response, string) {
		req, err := http.NewRequest(http.MethodPost, u, strings.NewReader(form.Encode()))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		res, err := noRedirect.Do(req)
		require.NoError(t, err)
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res, string(b)
	}
	dom = br.page("actions-off", base+"/actions")
	assert.Contains(t, dom, "Actions are off")
	res, body := post(base+"/actions/shop/run", url.Values{"csrf": {"x"}})
	assert.Equal(t, http.StatusForbidden, res.StatusCode, body)
	assert.Contains(t, body, "--allow-actions")

	// off loopback without a token: refused; a second console with the
	// owner key, actions and a token
	_, errs, code2 := c.run("serve", shop, "--listen", "0.0.0.0:0")
	assert.Equal(t, exitUsage, code2, errs)
	token := filepath.Join(dir, "token")
	require.NoError(t, os.WriteFile(token, []byte("s3cret-token-of-the-operator\n"), 0o600))
	c.env["LIFEBOAT_KEY_FILE"] = filepath.Join(dir, "owner.key")
	base2 := serving(t, c, shop, "--journal", journal, "--allow-actions", "--auth-token-file", token)
	auth := []string{"Authorization", "Bearer s3cret-token-of-the-operator"}
	code, _ = get(base2 + "/actions")
	assert.Equal(t, http.StatusUnauthorized, code, "no token")
	code, body = get(base2+"/actions", auth...)
	require.Equal(t, http.StatusOK, code)
	assert.NotContains(t, body, "s3cret-token", "no secret rendered")
	csrf := regexp.MustCompile(`name="csrf" value="([0-9a-f]+)"`).FindStringSubmatch(body)
	require.NotNil(t, csrf)
	res, body = post(base2+"/actions/shop/run", url.Values{}, auth...)
	assert.Equal(t, http.StatusForbidden, res.StatusCode, "no CSRF token: %s", body)
	wrong := []byte(csrf[1]) // another token, whatever its first digit
	if wrong[0] == '0' {
		wrong[0] = '1'
	} else {
		wrong[0] = '0'
	}
	res, body = post(base2+"/actions/shop/run", url.Values{"csrf": {string(wrong)}}, auth...)
	assert.Equal(t, http.StatusForbidden, res.StatusCode, "a wrong CSRF token: %s", body)
	runsBefore := strings.Count(readFile(t, filepath.Join(journal, "shop.jsonl")), "\n")
	res, body = post(base2+"/actions/shop/drill", url.Values{"csrf": csrf[1:2]}, auth...)
	require.Equal(t, http.StatusSeeOther, res.StatusCode, body)
	job := base2 + res.Header.Get("Location")
	var log string
	for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(200 * time.Millisecond) {
		_, log = get(job, auth...)
		if !strings.Contains(log, "running for") || time.Now().After(deadline) {
			break
		}
	}
	assert.Contains(t, log, "done in", "the drill ran: %s", log)
	assert.Contains(t, log, "PASSED", "its log")
	assert.Equal(t, runsBefore, strings.Count(readFile(t, filepath.Join(journal, "shop.jsonl")), "\n"), "a drill is no run")
	assert.Equal(t, 3, strings.Count(readFile(t, filepath.Join(journal, "shop.drills.jsonl")), "\n"), "the drill is in the journal")

	// with the owner key the tree offers downloads, and they are .tar.zst
	code, body = get(base2+"/snapshots/shop/"+newest+"/tree?path=src", auth...)
	require.Equal(t, http.StatusOK, code)
	assert.Contains(t, body, `class="download"`)
	code, body = get(base2+"/snapshots/shop/"+newest+"/download?path=src%2Fsub", auth...)
	require.Equal(t, http.StatusOK, code)
	assert.True(t, strings.HasPrefix(body, "\x28\xb5\x2f\xfd"), "zstd magic")
}

func readFile(t *testing.T, p string) string {
	b, err := os.ReadFile(p)
	require.NoError(t, err)
	return string(b)
}

// assertOrangePixels checks that a screenshot shows the objective lines
// (#c2410c): the charts were drawn, not only written.
func assertOrangePixels(t *testing.T, shot string) {
	f, err := os.Open(shot)
	require.NoError(t, err)
	defer f.Close()
	img, err := png.Decode(f)
	require.NoError(t, err)
	orange, blue := 0, 0
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl, _ := img.At(x, y).RGBA()
			r, g, bl = r>>8, g>>8, bl>>8
			switch {
			case r > 160 && g < 110 && bl < 60:
				orange++
			case bl > 180 && r < 90 && g < 140:
				blue++
			}
		}
	}
	assert.Greater(t, orange, 200, "objective lines drawn in %s", shot)
	assert.Greater(t, blue, 100, "history lines drawn in %s", shot)
}
