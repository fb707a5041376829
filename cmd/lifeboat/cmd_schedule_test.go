package main

import (
	"bufio"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lifeboat-backup/lifeboat/engine"
	"github.com/lifeboat-backup/lifeboat/engine/notify"
	"github.com/lifeboat-backup/lifeboat/engine/schedule"
	"github.com/lifeboat-backup/lifeboat/policies"
	"github.com/lifeboat-backup/lifeboat/restore/drill"
)

const smtpSecret = "smtp-Pa55-do-not-leak"

// mailSink is a minimal SMTP server recording DATA and AUTH.
type mailSink struct {
	addr  string
	mu    sync.Mutex
	mails []string
	auth  []string
}

func startMailSink(t *testing.T) *mailSink {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { l.Close() })
	s := &mailSink{addr: l.Addr().String()}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				r := bufio.NewReader(c)
				say := func(l string) { fmt.Fprintf(c, "%s\r\n", l) }
				say("220 sink")
				for {
					line, err := r.ReadString('\n')
					if err != nil {
						return
					}
					line = strings.TrimRight(line, "\r\n")
					switch u := strings.ToUpper(line); {
					case strings.HasPrefix(u, "EHLO"):
						say("250-sink")
						say("250 AUTH PLAIN")
					case strings.HasPrefix(u, "AUTH PLAIN "):
						raw, _ := base64.StdEncoding.DecodeString(line[len("AUTH PLAIN "):])
						s.mu.Lock()
						s.auth = append(s.auth, string(raw))
						s.mu.Unlock()
						say("235 ok")
					case u == "DATA":
						say("354 go")
						var b strings.Builder
						for {
							l, err := r.ReadString('\n')
							if err != nil || l == ".\r\n" {
								break
							}
							b.WriteString(l)
						}
						s.mu.Lock()
						s.mails = append(s.mails, b.String())
						s.mu.Unlock()
						say("250 queued")
					case u == "QUIT":
						say("221 bye")
						return
					default:
						say("250 ok")
					}
				}
			}()
		}
	}()
	return s
}

func closedPort(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	l.Close()
	return addr
}

// TestRunNotifiesAndWritesMetrics: one target's database is down; the
// other target is backed up, the run exits 1, the failure arrives by
// email, webhook and ping, the metrics show it, and the SMTP password
// appears nowhere.
func TestRunNotifiesAndWritesMetrics(t *testing.T) {
	c, dir, src := setup(t)
	repoURL := c.env["LIFEBOAT_REPO"]
	c.env["LIFEBOAT_REPO"] = ""

	var mu sync.Mutex
	var hooks []string
	var hookBodies [][]byte
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		hooks = append(hooks, r.Method+" "+r.URL.Path)
		hookBodies = append(hookBodies, b)
		mu.Unlock()
	}))
	defer hs.Close()
	sink := startMailSink(t)
	smtpPass := filepath.Join(dir, "smtp.pass")
	require.NoError(t, os.WriteFile(smtpPass, []byte(smtpSecret+"\n"), 0o600))
	dbPass := filepath.Join(dir, "db.pass")
	require.NoError(t, os.WriteFile(dbPass, []byte("db-secret-xyz\n"), 0o600))
	prom := filepath.Join(dir, "textfile", "lifeboat.prom")
	journal := filepath.Join(dir, "journal")
	policy := filepath.Join(dir, "policy.yaml")
	require.NoError(t, os.WriteFile(policy, []byte(`version: 1
name: shop
host: web1
repositories:
  primary:
    url: `+repoURL+`
    key_file: `+filepath.Join(dir, "host.key")+`
targets:
  - name: media
    kind: files
    paths: [`+src+`]
  - name: shopdb
    kind: mysql
    dsn: lifeboat@tcp(`+closedPort(t)+`)/
    password_file: `+dbPass+`
schedule:
  calendar: "*-*-* 02:30:00"
notify:
  on: [failure]
  email:
    smtp: `+sink.addr+`
    from: backups@example.com
    to: [ops@example.com]
    username: lifeboat
    password_file: `+smtpPass+`
  webhook:
    url: `+hs.URL+`/hook
  ping_url: `+hs.URL+`/ping
metrics:
  textfile: `+prom+`
`), 0o600))

	stdout, stderr, code := c.run("run", policy, "--journal", journal)
	assert.Equal(t, 1, code, stderr)
	assert.NotContains(t, stderr, "warning: notify", "notifications were delivered")

	mu.Lock()
	assert.Equal(t, []string{"GET /ping/start", "GET /ping/fail", "POST /hook"}, hooks)
	var ev notify.Event
	require.NoError(t, json.Unmarshal(hookBodies[2], &ev))
	mu.Unlock()
	assert.Equal(t, "failure", ev.Status)
	require.Len(t, ev.Targets, 2)
	assert.NotEmpty(t, ev.Targets[0].Snapshot, "media was backed up")
	assert.NotEmpty(t, ev.Targets[1].Error)

	sink.mu.Lock()
	require.Len(t, sink.mails, 1)
	mail := sink.mails[0]
	assert.Equal(t, []string{"\x00lifeboat\x00" + smtpSecret}, sink.auth)
	sink.mu.Unlock()
	assert.Contains(t, mail, "Subject: lifeboat run shop on web1 FAILED")

	metrics, err := os.ReadFile(prom)
	require.NoError(t, err)
	assert.Contains(t, string(metrics), `lifeboat_run_success{policy="shop"} 0`)
	assert.Contains(t, string(metrics), `lifeboat_backup_success{policy="shop",target="media"} 1`)
	assert.Contains(t, string(metrics), `lifeboat_backup_success{policy="shop",target="shopdb"} 0`)

	journalData, err := os.ReadFile(filepath.Join(journal, "shop.jsonl"))
	require.NoError(t, err)
	hist := c.ok("history", policy, "--journal", journal)
	assert.Contains(t, hist, "FAILED")
	assert.Contains(t, hist, "media")
	for name, s := range map[string]string{"stdout": stdout, "stderr": stderr, "mail": mail, "webhook": string(hookBodies[2]),
		"metrics": string(metrics), "journal": string(journalData), "history": hist} {
		assert.NotContains(t, s, smtpSecret, name)
		assert.NotContains(t, s, "db-secret-xyz", name)
	}
}

func TestHistory(t *testing.T) {
	dir := t.TempDir()
	j := schedule.Journal(dir)
	t0 := time.Date(2026, 11, 20, 2, 30, 0, 0, time.UTC)
	for i := 0; i < 3; i++ {
		r := &engine.RunResult{Policy: "shop", Host: "web1", Start: t0.AddDate(0, 0, i), End: t0.AddDate(0, 0, i).Add(75 * time.Second),
			Targets: []engine.TargetResult{{Name: "media", Snapshot: fmt.Sprintf("%02dabcdef0123", i), BytesIn: 2048, BytesAdded: 1024, Seconds: 3}}}
		if i == 1 {
			r.Targets[0] = engine.TargetResult{Name: "media", Error: "open /srv: permission denied"}
			r.Errors = []string{"target media: open /srv: permission denied"}
		}
		require.NoError(t, j.Append(r.Policy, r))
	}
	c := &cli{t: t}
	tests := []struct {
		name string
		args []string
		want []string
		not  []string
	}{
		{"all", []string{"history", "shop", "--journal", dir},
			[]string{"2026-11-20 02:30:00Z  1m15s    ok      web1", "00abcdef  2.0 KiB in, 1.0 KiB added, 3.0s", "2026-11-21 02:30:00Z  1m15s    FAILED", "media          FAILED: open /srv: permission denied", "2026-11-22"}, nil},
		{"last 1", []string{"history", "shop", "--journal", dir, "--last", "1"}, []string{"2026-11-22"}, []string{"2026-11-21", "2026-11-20"}},
		{"unknown policy", []string{"history", "blog", "--journal", dir}, []string{"no runs of policy blog"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := c.ok(tt.args...)
			for _, w := range tt.want {
				assert.Contains(t, out, w)
			}
			for _, w := range tt.not {
				assert.NotContains(t, out, w)
			}
		})
	}
	var runs []engine.RunResult
	require.NoError(t, json.Unmarshal([]byte(c.ok("history", "shop", "--journal", dir, "--json", "--last", "2")), &runs))
	require.Len(t, runs, 2)
	assert.Equal(t, t0.AddDate(0, 0, 1), runs[0].Start)
	_, _, code := c.run("history", "--journal", dir)
	assert.Equal(t, exitUsage, code)
}

func writeSchedPolicy(t *testing.T, dir, extra string) string {
	p := filepath.Join(dir, "policy.yaml")
	require.NoError(t, os.WriteFile(p, []byte(`version: 1
name: shop
host: web1
repositories:
  primary:
    url: file://`+filepath.Join(dir, "repo")+`
    password_file: /etc/lifeboat/repo.pass
targets:
  - name: www
    kind: files
    paths: [/var/www]
`+extra), 0o600))
	return p
}

func TestSystemdInstall(t *testing.T) {
	dir := t.TempDir()
	policy := writeSchedPolicy(t, dir, "schedule:\n  calendar: daily\n  randomized_delay: 1h\n")
	c := &cli{t: t}

	out := c.ok("systemd", "install", policy, "--dry-run", "--binary", "/usr/bin/lifeboat", "--journal", "/var/lib/lifeboat/journal")
	assert.True(t, strings.HasPrefix(out, "# lifeboat-shop.service\n"), out)
	assert.Contains(t, out, "\n# lifeboat-shop.timer\n")
	assert.Contains(t, out, "ExecStart=/usr/bin/lifeboat run "+policy+" --journal /var/lib/lifeboat/journal\n")
	assert.Contains(t, out, "OnCalendar=daily\nRandomizedDelaySec=3600\n")
	assert.Contains(t, out, "ReadWritePaths=-"+filepath.Join(dir, "repo")+"\n")

	units := filepath.Join(dir, "units")
	out = c.ok("systemd", "install", policy, "--dir", units, "--user")
	assert.Contains(t, out, "systemctl --user daemon-reload && systemctl --user enable --now lifeboat-shop.timer")
	svc, err := os.ReadFile(filepath.Join(units, "lifeboat-shop.service"))
	require.NoError(t, err)
	assert.NotContains(t, string(svc), "ProtectSystem")
	_, err = os.Stat(filepath.Join(units, "lifeboat-shop.timer"))
	assert.NoError(t, err)

	noSched := writeSchedPolicy(t, t.TempDir(), "")
	_, stderr, code := c.run("systemd", "install", noSched, "--dry-run")
	assert.Equal(t, exitUsage, code)
	assert.Contains(t, stderr, "no schedule.calendar")
}

func TestDaemonArgs(t *testing.T) {
	dir := t.TempDir()
	c := &cli{t: t}
	_, stderr, code := c.run("daemon", writeSchedPolicy(t, dir, ""))
	assert.Equal(t, exitUsage, code)
	assert.Contains(t, stderr, "no schedule.calendar")
	_, _, code = c.run("daemon")
	assert.Equal(t, exitUsage, code)
}

func TestMetricsHandler(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, schedule.Journal(dir).Append("a", &engine.RunResult{Policy: "a", Start: time.Unix(10, 0), End: time.Unix(20, 0)}))
	srv := httptest.NewServer(schedule.MetricsHandler(dir, []*policies.Policy{{Name: "a"}, {Name: "b"}}))
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Contains(t, string(body), "lifeboat_run_success{policy=\"a\"} 1\n")
	assert.NotContains(t, string(body), "policy=\"b\"")
}

func TestDrillEvent(t *testing.T) {
	tests := []struct {
		status, want string
		wantErrs     int
	}{
		{drill.Passed, notify.EventSuccess, 0},
		{drill.ObjectiveViolated, notify.EventObjectiveViolation, 0},
		{drill.CheckFailed, notify.EventFailure, 1},
		{drill.Errored, notify.EventFailure, 0},
	}
	for _, tt := range tests {
		t.Run(tt.status, func(t *testing.T) {
			rep := &drill.Report{Policy: "shop", Host: "dr1", Status: tt.status}
			if tt.status == drill.CheckFailed {
				rep.Checks = []drill.CheckResult{{Name: "orders", OK: false, Message: "0 < 1000"}, {Name: "ok", OK: true}}
			}
			ev := drill.Event(rep)
			assert.Equal(t, "drill", ev.Kind)
			assert.Equal(t, tt.want, ev.Status)
			assert.Equal(t, []string{tt.want}, ev.Events)
			assert.Len(t, ev.Errors, tt.wantErrs)
		})
	}
}

// A run whose repository is missing is recorded and notified too.
func TestRunRepositoryMissingNotifies(t *testing.T) {
	dir := t.TempDir()
	var mu sync.Mutex
	var got []string
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got = append(got, r.Method+" "+r.URL.Path)
		mu.Unlock()
	}))
	defer hs.Close()
	policy := writeSchedPolicy(t, dir, "notify:\n  webhook:\n    url: "+hs.URL+"/hook\n  ping_url: "+hs.URL+"/ping\n")
	pass := filepath.Join(dir, "repo.pass")
	require.NoError(t, os.WriteFile(pass, []byte("pw\n"), 0o600))
	data, err := os.ReadFile(policy)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(policy, []byte(strings.Replace(string(data), "/etc/lifeboat/repo.pass", pass, 1)), 0o600))
	journal := filepath.Join(dir, "journal")
	c := &cli{t: t, env: map[string]string{"LIFEBOAT_REPO": ""}}
	_, stderr, code := c.run("run", policy, "--journal", journal)
	assert.Equal(t, exitNoRepo, code, stderr)
	mu.Lock()
	assert.Equal(t, []string{"GET /ping/start", "GET /ping/fail", "POST /hook"}, got)
	mu.Unlock()
	assert.Contains(t, c.ok("history", "shop", "--journal", journal), "FAILED")
}
