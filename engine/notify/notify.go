package notify

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/smtp"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/lifeboat-backup/lifeboat/engine"
	"github.com/lifeboat-backup/lifeboat/policies"
)

// Notification events (policies.Notify.On).
const (
	EventSuccess            = "success"
	EventFailure            = "failure"
	EventPartial            = "partial"
	EventObjectiveViolation = "objective_violation"
	EventLag                = "lag"
)

// Event is what a notification reports: the summary of one run (or
// drill). It holds no secret: error texts are redacted where they are
// made, and no URL, DSN or password of the policy is copied into it.
type Event struct {
	Kind   string    `json:"kind"` // "run" or "drill"
	Policy string    `json:"policy"`
	Host   string    `json:"host"`
	Status string    `json:"status"` // success, failure, partial, objective_violation
	Events []string  `json:"events"` // every event that applies, e.g. [failure, lag]
	Start  time.Time `json:"start"`
	End    time.Time `json:"end"`
	// Seconds is End - Start.
	Seconds  float64                `json:"duration_seconds"`
	Errors   []string               `json:"errors,omitempty"`
	Targets  []engine.TargetResult  `json:"targets,omitempty"`
	Replicas []engine.ReplicaResult `json:"replicas,omitempty"`
	// Forgotten is how many snapshots retention removed.
	Forgotten int `json:"forgotten"`
	// Details carries kind-specific data (a drill's RTO/RPO), may be nil.
	Details any `json:"details,omitempty"`
}

// RunEvent summarizes a policy run for notifications.
func RunEvent(res *engine.RunResult) Event {
	ev := Event{Kind: "run", Policy: res.Policy, Host: res.Host, Start: res.Start, End: res.End,
		Seconds: res.End.Sub(res.Start).Seconds(), Errors: res.Errors, Targets: res.Targets,
		Replicas: res.Replicas, Forgotten: len(res.Forgotten)}
	switch {
	case !res.OK():
		ev.Status = EventFailure
	case res.Partial:
		ev.Status = EventPartial
	default:
		ev.Status = EventSuccess
	}
	ev.Events = []string{ev.Status}
	if ev.Status == EventFailure && res.Partial {
		ev.Events = append(ev.Events, EventPartial)
	}
	for _, r := range res.Replicas {
		if r.LagExceeded {
			ev.Events = append(ev.Events, EventLag)
			break
		}
	}
	return ev
}

// OK reports whether the event is a plain success (ping_url is pinged
// without /fail).
func (e Event) OK() bool { return e.Status == EventSuccess }

// Subject is the one-line summary used as mail subject.
func (e Event) Subject() string {
	what := map[string]string{
		EventSuccess:            "succeeded",
		EventFailure:            "FAILED",
		EventPartial:            "saved with unreadable source data",
		EventObjectiveViolation: "violated its objectives",
	}[e.Status]
	if what == "" {
		what = e.Status
	}
	s := fmt.Sprintf("lifeboat %s %s on %s %s", e.Kind, e.Policy, e.Host, what)
	if slices.Contains(e.Events, EventLag) {
		s += " (replication lag exceeded)"
	}
	return s
}

// Text is the plain-text mail body.
func (e Event) Text() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s\n\n", e.Subject())
	fmt.Fprintf(&b, "policy:   %s\nhost:     %s\nstatus:   %s\nevents:   %s\nstart:    %s\nduration: %s\n",
		e.Policy, e.Host, e.Status, strings.Join(e.Events, ", "), e.Start.UTC().Format(time.RFC3339),
		time.Duration(e.Seconds*float64(time.Second)).Round(time.Second))
	if len(e.Targets) > 0 {
		b.WriteString("\ntargets:\n")
		for _, t := range e.Targets {
			if t.Error != "" {
				fmt.Fprintf(&b, "  %s: FAILED: %s\n", t.Name, t.Error)
				continue
			}
			fmt.Fprintf(&b, "  %s: snapshot %s, %d bytes in, %d bytes added, %.1fs", t.Name, short(t.Snapshot), t.BytesIn, t.BytesAdded, t.Seconds)
			if len(t.Warnings) > 0 {
				fmt.Fprintf(&b, ", %d unreadable entries", len(t.Warnings))
			}
			b.WriteByte('\n')
		}
	}
	if len(e.Replicas) > 0 {
		b.WriteString("\nreplication:\n")
		for _, r := range e.Replicas {
			status := "ok"
			if r.Error != "" {
				status = "FAILED: " + r.Error
			}
			lag := time.Duration(r.Lag * float64(time.Second)).Round(time.Second)
			fmt.Fprintf(&b, "  %s: %s (lag before copy %s", r.Name, status, lag)
			if r.LagExceeded {
				b.WriteString(", exceeds max_lag")
			}
			b.WriteString(")\n")
		}
	}
	if len(e.Errors) > 0 {
		b.WriteString("\nerrors:\n")
		for _, s := range e.Errors {
			fmt.Fprintf(&b, "  - %s\n", s)
		}
	}
	return b.String()
}

func short(id string) string {
	if len(id) > 8 {
		return id[:8]
	}
	return id
}

// Wants reports whether a notify.on list selects the event. The ping URL
// does not depend on it (see Notifier.Notify).
func Wants(on []string, ev Event) bool {
	for _, e := range ev.Events {
		if slices.Contains(on, e) {
			return true
		}
	}
	return false
}

// Notifier sends notifications. The zero value is usable.
type Notifier struct {
	// Timeout bounds each attempt of each channel; default 10s.
	Timeout time.Duration
	// RetryDelay is the pause before the one retry of a failed webhook or
	// ping; default 2s.
	RetryDelay time.Duration
	// HTTPClient is used for webhooks and pings; default a client with
	// Timeout.
	HTTPClient *http.Client
	// TLSConfig is used for STARTTLS (tests: a custom root CA); default:
	// system roots, ServerName from the smtp address.
	TLSConfig *tls.Config
}

func (n *Notifier) timeout() time.Duration {
	if n.Timeout > 0 {
		return n.Timeout
	}
	return 10 * time.Second
}

func (n *Notifier) client() *http.Client {
	if n.HTTPClient != nil {
		return n.HTTPClient
	}
	return &http.Client{Timeout: n.timeout()}
}

// Start pings ping_url + "/start" (healthchecks.io measures the run time
// from it). Errors are warnings for the caller to print.
func (n *Notifier) Start(ctx context.Context, cfg policies.Notify) error {
	if cfg.PingURL == "" {
		return nil
	}
	return n.ping(ctx, cfg.PingURL, "/start")
}

// Notify sends ev through every configured channel: the ping URL for
// every run (healthchecks-style: URL on success, URL/fail otherwise, so a
// missing ping is noticed; drills do not ping, a passing drill must not
// hide missed backups), email and webhook when notify.on selects one of
// the event's events. It returns one error per failed channel: warnings, a
// run's result never depends on them. The errors name the channel and
// the host it talked to, never a full URL (webhook and ping URLs often
// hold a token) or a password.
func (n *Notifier) Notify(ctx context.Context, cfg policies.Notify, ev Event) []error {
	var errs []error
	if cfg.PingURL != "" && ev.Kind == "run" {
		suffix := ""
		if !ev.OK() {
			suffix = "/fail"
		}
		if err := n.ping(ctx, cfg.PingURL, suffix); err != nil {
			errs = append(errs, err)
		}
	}
	if !Wants(cfg.On, ev) {
		return errs
	}
	if cfg.Webhook.URL != "" {
		if err := n.Webhook(ctx, cfg.Webhook.URL, ev); err != nil {
			errs = append(errs, err)
		}
	}
	if !cfg.Email.IsZero() {
		if err := n.Email(ctx, cfg.Email, ev); err != nil {
			errs = append(errs, err)
		}
	}
	return errs
}

// Webhook POSTs ev as JSON to u; a failed attempt (network error or 5xx,
// 429) is retried once.
func (n *Notifier) Webhook(ctx context.Context, u string, ev Event) error {
	body, err := json.Marshal(ev)
	if err != nil {
		return fmt.Errorf("webhook: %w", err)
	}
	return n.retry(ctx, "webhook", u, func(ctx context.Context) (bool, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
		if err != nil {
			return false, err
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("User-Agent", "lifeboat")
		return n.do(req)
	})
}

func (n *Notifier) ping(ctx context.Context, base, suffix string) error {
	u := strings.TrimRight(base, "/") + suffix
	return n.retry(ctx, "ping", base, func(ctx context.Context) (bool, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			return false, err
		}
		req.Header.Set("User-Agent", "lifeboat")
		return n.do(req)
	})
}

// do sends req; retryable reports whether a failure may pass on retry.
func (n *Notifier) do(req *http.Request) (retryable bool, err error) {
	resp, err := n.client().Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // drop the URL: it may hold a token
		}
		return true, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode/100 == 2 {
		return false, nil
	}
	return resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests,
		fmt.Errorf("HTTP %s", resp.Status)
}

func (n *Notifier) retry(ctx context.Context, what, u string, attempt func(context.Context) (bool, error)) error {
	host := "?"
	if pu, err := url.Parse(u); err == nil && pu.Host != "" {
		host = pu.Host
	}
	delay := n.RetryDelay
	if delay <= 0 {
		delay = 2 * time.Second
	}
	var err error
	for i := 0; i < 2; i++ {
		if i > 0 {
			select {
			case <-ctx.Done():
				return fmt.Errorf("%s to %s: %w (%v)", what, host, err, ctx.Err())
			case <-time.After(delay):
			}
		}
		actx, cancel := context.WithTimeout(ctx, n.timeout())
		var again bool
		again, err = attempt(actx)
		cancel()
		if err == nil {
			return nil
		}
		if !again {
			break
		}
	}
	return fmt.Errorf("%s to %s: %w", what, host, err)
}

// Email sends ev as a short text mail through cfg.SMTP: STARTTLS when the
// server offers it, PLAIN authentication when a username is set (the
// password read from password_file; net/smtp refuses to send it over an
// unencrypted connection to anything but localhost).
func (n *Notifier) Email(ctx context.Context, cfg policies.Email, ev Event) error {
	if err := n.email(ctx, cfg, ev); err != nil {
		return fmt.Errorf("email via %s: %w", cfg.SMTP, err)
	}
	return nil
}

func (n *Notifier) email(ctx context.Context, cfg policies.Email, ev Event) error {
	if cfg.SMTP == "" || cfg.From == "" || len(cfg.To) == 0 {
		return errors.New("notify.email needs smtp, from and to")
	}
	host, _, err := net.SplitHostPort(cfg.SMTP)
	if err != nil {
		return err
	}
	var auth smtp.Auth
	if cfg.Username != "" {
		if cfg.PasswordFile.IsZero() {
			return errors.New("notify.email.username is set but no password_file")
		}
		pw, err := cfg.PasswordFile.Read()
		if err != nil {
			return fmt.Errorf("password_file: %w", err)
		}
		auth = smtp.PlainAuth("", cfg.Username, string(pw), host)
	}
	ctx, cancel := context.WithTimeout(ctx, n.timeout())
	defer cancel()
	d := net.Dialer{}
	conn, err := d.DialContext(ctx, "tcp", cfg.SMTP)
	if err != nil {
		return err
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	c, err := smtp.NewClient(conn, host)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.Hello("localhost"); err != nil {
		return err
	}
	if ok, _ := c.Extension("STARTTLS"); ok {
		tc := &tls.Config{ServerName: host}
		if n.TLSConfig != nil {
			tc = n.TLSConfig.Clone()
			if tc.ServerName == "" {
				tc.ServerName = host
			}
		}
		if err := c.StartTLS(tc); err != nil {
			return fmt.Errorf("STARTTLS: %w", err)
		}
	}
	if auth != nil {
		if err := c.Auth(auth); err != nil {
			return fmt.Errorf("auth: %w", err)
		}
	}
	if err := c.Mail(cfg.From); err != nil {
		return err
	}
	for _, to := range cfg.To {
		if err := c.Rcpt(to); err != nil {
			return fmt.Errorf("RCPT %s: %w", to, err)
		}
	}
	w, err := c.Data()
	if err != nil {
		return err
	}
	if _, err := w.Write(mailMessage(cfg, ev)); err != nil {
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	return c.Quit()
}

func mailMessage(cfg policies.Email, ev Event) []byte {
	var b bytes.Buffer
	hdr := func(k, v string) {
		// No header injection through names or error texts.
		v = strings.NewReplacer("\r", " ", "\n", " ").Replace(v)
		fmt.Fprintf(&b, "%s: %s\r\n", k, v)
	}
	hdr("From", cfg.From)
	hdr("To", strings.Join(cfg.To, ", "))
	hdr("Subject", ev.Subject())
	hdr("Date", ev.End.Format(time.RFC1123Z))
	hdr("MIME-Version", "1.0")
	hdr("Content-Type", "text/plain; charset=utf-8")
	hdr("Content-Transfer-Encoding", "8bit")
	hdr("Auto-Submitted", "auto-generated")
	b.WriteString("\r\n")
	for _, line := range strings.Split(strings.TrimRight(ev.Text(), "\n"), "\n") {
		b.WriteString(line)
		b.WriteString("\r\n")
	}
	return b.Bytes()
}
