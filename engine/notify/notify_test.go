package notify

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lifeboat-backup/lifeboat/engine"
	"github.com/lifeboat-backup/lifeboat/policies"
)

const testSecret = "s3cr3t-smtp-pass-XYZ"

func sampleRun(ok, partial, lag bool) *engine.RunResult {
	start := time.Date(2026, 11, 25, 2, 30, 0, 0, time.UTC)
	res := &engine.RunResult{Policy: "shop", Host: "web1", Start: start, End: start.Add(90 * time.Second),
		Targets: []engine.TargetResult{
			{Name: "media", Kind: "files", Snapshot: "0123456789abcdef", BytesIn: 1000, BytesAdded: 100, Seconds: 12},
		},
		Replicas: []engine.ReplicaResult{{Name: "dr", Copied: 3, Lag: 7200, LagExceeded: lag}},
	}
	if !ok {
		res.Targets = append(res.Targets, engine.TargetResult{Name: "shopdb", Kind: "mysql", Error: "dial tcp 127.0.0.1:3306: connection refused"})
		res.Errors = []string{"target shopdb: dial tcp 127.0.0.1:3306: connection refused"}
	}
	if partial {
		res.Partial = true
		res.Targets[0].Warnings = []string{"/srv/media/x: permission denied"}
	}
	return res
}

func TestRunEvent(t *testing.T) {
	tests := []struct {
		name              string
		ok, partial, lag  bool
		status            string
		events            []string
		onDefault, onSucc bool
	}{
		{"success", true, false, false, EventSuccess, []string{EventSuccess}, false, true},
		{"failure", false, false, false, EventFailure, []string{EventFailure}, true, false},
		{"partial", true, true, false, EventPartial, []string{EventPartial}, true, false},
		{"failure and partial", false, true, false, EventFailure, []string{EventFailure, EventPartial}, true, false},
		{"success with lag", true, false, true, EventSuccess, []string{EventSuccess, EventLag}, true, true},
	}
	def := []string{EventFailure, EventPartial, EventObjectiveViolation, EventLag}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev := RunEvent(sampleRun(tt.ok, tt.partial, tt.lag))
			assert.Equal(t, tt.status, ev.Status)
			assert.Equal(t, tt.events, ev.Events)
			assert.Equal(t, tt.onDefault, Wants(def, ev))
			assert.Equal(t, tt.onSucc, Wants([]string{EventSuccess}, ev))
			assert.Equal(t, 90.0, ev.Seconds)
			assert.Contains(t, ev.Subject(), "lifeboat run shop on web1")
		})
	}
}

// hookServer records requests; it fails the first `failFirst` requests
// with 503.
type hookServer struct {
	*httptest.Server
	mu        sync.Mutex
	paths     []string
	bodies    [][]byte
	failFirst int32
	n         atomic.Int32
}

func newHookServer(t *testing.T, failFirst int32) *hookServer {
	h := &hookServer{failFirst: failFirst}
	h.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		h.mu.Lock()
		h.paths = append(h.paths, r.Method+" "+r.URL.Path)
		h.bodies = append(h.bodies, body)
		h.mu.Unlock()
		if h.n.Add(1) <= h.failFirst {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(h.Close)
	return h
}

func (h *hookServer) got() ([]string, [][]byte) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.paths...), append([][]byte(nil), h.bodies...)
}

func TestWebhookAndPing(t *testing.T) {
	tests := []struct {
		name       string
		ok         bool
		on         []string
		failFirst  int32
		wantPaths  []string
		wantErrors int
	}{
		{"failure notifies", false, []string{"failure"}, 0,
			[]string{"GET /ping/uuid/fail", "POST /hook/token"}, 0},
		{"success not selected: ping only", true, []string{"failure"}, 0,
			[]string{"GET /ping/uuid"}, 0},
		{"success selected", true, []string{"success"}, 0,
			[]string{"GET /ping/uuid", "POST /hook/token"}, 0},
		{"one retry", false, []string{"failure"}, 1,
			[]string{"GET /ping/uuid/fail", "GET /ping/uuid/fail", "POST /hook/token"}, 0},
		{"gives up after the retry", false, []string{"failure"}, 4,
			[]string{"GET /ping/uuid/fail", "GET /ping/uuid/fail", "POST /hook/token", "POST /hook/token"}, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newHookServer(t, tt.failFirst)
			cfg := policies.Notify{On: tt.on, Webhook: policies.Webhook{URL: srv.URL + "/hook/token"}, PingURL: srv.URL + "/ping/uuid"}
			n := &Notifier{RetryDelay: time.Millisecond, Timeout: 2 * time.Second}
			ev := RunEvent(sampleRun(tt.ok, false, false))
			errs := n.Notify(context.Background(), cfg, ev)
			assert.Len(t, errs, tt.wantErrors)
			for _, err := range errs {
				assert.NotContains(t, err.Error(), "token", "no URL path (token) in errors")
				assert.NotContains(t, err.Error(), "uuid")
			}
			paths, bodies := srv.got()
			assert.Equal(t, tt.wantPaths, paths)
			for i, p := range paths {
				if !strings.HasPrefix(p, "POST") {
					continue
				}
				var got Event
				require.NoError(t, json.Unmarshal(bodies[i], &got))
				assert.Equal(t, "shop", got.Policy)
				assert.Equal(t, "web1", got.Host)
				assert.Equal(t, ev.Status, got.Status)
				assert.Len(t, got.Targets, len(ev.Targets))
				assert.Equal(t, ev.Start, got.Start)
			}
		})
	}
}

func TestPingStartAndUnreachable(t *testing.T) {
	srv := newHookServer(t, 0)
	n := &Notifier{RetryDelay: time.Millisecond, Timeout: time.Second}
	require.NoError(t, n.Start(context.Background(), policies.Notify{PingURL: srv.URL + "/p/"}))
	paths, _ := srv.got()
	assert.Equal(t, []string{"GET /p/start"}, paths)

	// A closed port: a warning naming the host only.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	l.Close()
	errs := n.Notify(context.Background(), policies.Notify{On: []string{"failure"},
		Webhook: policies.Webhook{URL: "http://" + addr + "/secret-token"}}, RunEvent(sampleRun(false, false, false)))
	require.Len(t, errs, 1)
	assert.Contains(t, errs[0].Error(), "webhook to "+addr)
	assert.NotContains(t, errs[0].Error(), "secret-token")
}

// smtpSink is a minimal SMTP server: EHLO, STARTTLS (optional), AUTH
// PLAIN, MAIL, RCPT, DATA, QUIT. It records the received messages.
type smtpSink struct {
	addr  string
	tls   *tls.Config
	mu    sync.Mutex
	mails []sinkMail
	auths []string // decoded PLAIN credentials
	tlsOn []bool
}

type sinkMail struct {
	from string
	to   []string
	data string
}

func startSMTPSink(t *testing.T, tlsCfg *tls.Config) *smtpSink {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	s := &smtpSink{addr: l.Addr().String(), tls: tlsCfg}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go s.serve(c)
		}
	}()
	return s
}

func (s *smtpSink) serve(c net.Conn) {
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	r, w := bufio.NewReader(c), bufio.NewWriter(c)
	reply := func(l string) { w.WriteString(l + "\r\n"); w.Flush() }
	reply("220 sink ESMTP")
	var m sinkMail
	secure := false
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		line = strings.TrimRight(line, "\r\n")
		cmd := strings.ToUpper(line)
		switch {
		case strings.HasPrefix(cmd, "EHLO"):
			w.WriteString("250-sink\r\n")
			if s.tls != nil && !secure {
				w.WriteString("250-STARTTLS\r\n")
			}
			reply("250 AUTH PLAIN")
		case cmd == "STARTTLS":
			reply("220 go ahead")
			tc := tls.Server(c, s.tls)
			if tc.Handshake() != nil {
				return
			}
			c, secure = tc, true
			r, w = bufio.NewReader(c), bufio.NewWriter(c)
		case strings.HasPrefix(cmd, "AUTH PLAIN"):
			raw, _ := base64.StdEncoding.DecodeString(strings.TrimSpace(line[len("AUTH PLAIN"):]))
			s.mu.Lock()
			s.auths = append(s.auths, string(raw))
			s.mu.Unlock()
			reply("235 ok")
		case strings.HasPrefix(cmd, "MAIL FROM:"):
			m = sinkMail{from: strings.Trim(line[len("MAIL FROM:"):], "<> ")}
			reply("250 ok")
		case strings.HasPrefix(cmd, "RCPT TO:"):
			m.to = append(m.to, strings.Trim(line[len("RCPT TO:"):], "<> "))
			reply("250 ok")
		case cmd == "DATA":
			reply("354 end with .")
			var b strings.Builder
			for {
				l, err := r.ReadString('\n')
				if err != nil {
					return
				}
				if l == ".\r\n" {
					break
				}
				b.WriteString(l)
			}
			m.data = b.String()
			s.mu.Lock()
			s.mails = append(s.mails, m)
			s.tlsOn = append(s.tlsOn, secure)
			s.mu.Unlock()
			reply("250 queued")
		case cmd == "QUIT":
			reply("221 bye")
			return
		default:
			reply("250 ok")
		}
	}
}

func (s *smtpSink) received() ([]sinkMail, []string, []bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]sinkMail(nil), s.mails...), append([]string(nil), s.auths...), append([]bool(nil), s.tlsOn...)
}

func TestEmail(t *testing.T) {
	// A TLS certificate for 127.0.0.1, borrowed from httptest.
	ts := httptest.NewTLSServer(http.NotFoundHandler())
	defer ts.Close()
	pool := x509.NewCertPool()
	pool.AddCert(ts.Certificate())
	serverTLS := &tls.Config{Certificates: ts.TLS.Certificates}

	pwFile := filepath.Join(t.TempDir(), "smtp.pass")
	require.NoError(t, os.WriteFile(pwFile, []byte(testSecret+"\n"), 0o600))

	tests := []struct {
		name     string
		starttls bool
		user     string
		wantTLS  bool
		wantAuth string
	}{
		{"plain, no auth", false, "", false, ""},
		{"auth on localhost", false, "lifeboat", false, "\x00lifeboat\x00" + testSecret},
		{"starttls and auth", true, "lifeboat", true, "\x00lifeboat\x00" + testSecret},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var tc *tls.Config
			if tt.starttls {
				tc = serverTLS
			}
			sink := startSMTPSink(t, tc)
			cfg := policies.Notify{On: []string{"failure"}, Email: policies.Email{SMTP: sink.addr,
				From: "backups@example.com", To: []string{"ops@example.com", "dba@example.com"}}}
			if tt.user != "" {
				cfg.Email.Username, cfg.Email.PasswordFile = tt.user, policies.SecretRef(pwFile)
			}
			n := &Notifier{Timeout: 5 * time.Second, TLSConfig: &tls.Config{RootCAs: pool}}
			errs := n.Notify(context.Background(), cfg, RunEvent(sampleRun(false, false, false)))
			require.Empty(t, errs)
			mails, auths, secure := sink.received()
			require.Len(t, mails, 1)
			m := mails[0]
			assert.Equal(t, "backups@example.com", m.from)
			assert.Equal(t, []string{"ops@example.com", "dba@example.com"}, m.to)
			assert.Contains(t, m.data, "Subject: lifeboat run shop on web1 FAILED\r\n")
			assert.Contains(t, m.data, "shopdb: FAILED: dial tcp 127.0.0.1:3306: connection refused")
			assert.NotContains(t, m.data, testSecret)
			assert.Equal(t, []bool{tt.wantTLS}, secure)
			if tt.wantAuth == "" {
				assert.Empty(t, auths)
			} else {
				assert.Equal(t, []string{tt.wantAuth}, auths)
			}
		})
	}
}

func TestEmailErrorsAreWarningsWithoutSecrets(t *testing.T) {
	pwFile := filepath.Join(t.TempDir(), "smtp.pass")
	require.NoError(t, os.WriteFile(pwFile, []byte(testSecret), 0o600))
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	l.Close()
	tests := []struct {
		name string
		cfg  policies.Email
		want string
	}{
		{"server down", policies.Email{SMTP: addr, From: "a@example.com", To: []string{"b@example.com"},
			Username: "u", PasswordFile: policies.SecretRef(pwFile)}, "email via " + addr},
		{"missing password file", policies.Email{SMTP: addr, From: "a@example.com", To: []string{"b@example.com"},
			Username: "u", PasswordFile: "/nonexistent/pass"}, "password_file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := &Notifier{Timeout: time.Second}
			errs := n.Notify(context.Background(), policies.Notify{On: []string{"failure"}, Email: tt.cfg},
				RunEvent(sampleRun(false, false, false)))
			require.Len(t, errs, 1)
			assert.Contains(t, errs[0].Error(), tt.want)
			assert.NotContains(t, errs[0].Error(), testSecret)
		})
	}
}

func TestDrillEventsDoNotPing(t *testing.T) {
	srv := newHookServer(t, 0)
	n := &Notifier{RetryDelay: time.Millisecond}
	ev := Event{Kind: "drill", Policy: "shop", Status: EventObjectiveViolation, Events: []string{EventObjectiveViolation}}
	errs := n.Notify(context.Background(), policies.Notify{On: []string{"objective_violation"},
		Webhook: policies.Webhook{URL: srv.URL + "/hook"}, PingURL: srv.URL + "/ping"}, ev)
	assert.Empty(t, errs)
	paths, _ := srv.got()
	assert.Equal(t, []string{"POST /hook"}, paths)
	assert.Equal(t, "lifeboat drill shop on  violated its objectives", ev.Subject())
}
