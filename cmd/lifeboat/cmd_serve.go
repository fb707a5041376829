package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/lifeboat-backup/lifeboat/engine/console"
	"github.com/lifeboat-backup/lifeboat/engine/schedule"
	"github.com/lifeboat-backup/lifeboat/policies"
	"github.com/lifeboat-backup/lifeboat/restore/browse"
	"github.com/lifeboat-backup/lifeboat/restore/drill"
)

type serveOptions struct {
	listen, journal, tokenFile   string
	tlsCert, tlsKey, tlsClientCA string
	allowActions                 bool
	statusTTL                    time.Duration
}

func (a *app) serveCmd() *cobra.Command {
	var o serveOptions
	cmd := &cobra.Command{
		Use:   "serve [POLICY...]",
		Short: "The operator's console: a web page of every policy's state, history and snapshots",
		Long: `Serve the console (docs/console.md) for the policies given as arguments and by --policy:
an overview (last run, next run, newest snapshot against the RPO, replication and archive lag,
last drill; red/amber/green with the reason), run and drill history with charts, a snapshot
browser (names, sizes, modes and times with the host key; downloads as .tar.zst only with the
owner key: --key-file), /metrics (the textfile's series) and /healthz.
Actions (run or drill a policy now) are off unless --allow-actions.
It listens on loopback by default; any other address needs --auth-token-file (Authorization:
Bearer TOKEN, or the login form) or TLS client certificates (--tls-client-ca).`,
		RunE: func(cmd *cobra.Command, args []string) error {
			paths := args
			if p := a.v.GetString("policy"); p != "" {
				paths = append([]string{p}, paths...)
			}
			if len(paths) == 0 {
				return usagef("serve: give at least one policy")
			}
			return a.serve(cmd.Context(), paths, o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.listen, "listen", "127.0.0.1:8470", "address to listen on")
	f.StringVar(&o.journal, "journal", defaultJournal(), "directory of the run and drill journals")
	f.StringVar(&o.tokenFile, "auth-token-file", "", "file holding the access token (required off loopback unless --tls-client-ca)")
	f.StringVar(&o.tlsCert, "tls-cert", "", "serve HTTPS with this certificate (PEM)")
	f.StringVar(&o.tlsKey, "tls-key", "", "the certificate's key (PEM)")
	f.StringVar(&o.tlsClientCA, "tls-client-ca", "", "require client certificates signed by this CA (PEM; needs --tls-cert)")
	f.BoolVar(&o.allowActions, "allow-actions", false, "allow running a policy or a drill from the console (POST with a CSRF token)")
	f.DurationVar(&o.statusTTL, "status-ttl", 30*time.Second, "how long a policy's repository status is reused")
	return cmd
}

// loopback reports whether addr (host:port) only listens on loopback.
func loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// lockedWriter serializes writes from concurrent requests.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func (a *app) serve(ctx context.Context, paths []string, o serveOptions) error {
	var token string
	if o.tokenFile != "" {
		b, err := os.ReadFile(o.tokenFile)
		if err != nil {
			return usagef("--auth-token-file: %v", err)
		}
		if token = strings.TrimSpace(string(b)); len(token) < 16 {
			return usagef("--auth-token-file %s: the token must have at least 16 characters", o.tokenFile)
		}
	}
	if o.tlsClientCA != "" && o.tlsCert == "" {
		return usagef("--tls-client-ca needs --tls-cert and --tls-key")
	}
	if !loopback(o.listen) && token == "" && o.tlsClientCA == "" {
		return usagef("--listen %s is not loopback: give --auth-token-file or --tls-client-ca", o.listen)
	}
	stderr := &lockedWriter{w: a.stderr}
	var pols []*policies.Policy
	pathOf := map[string]string{}
	for _, path := range paths {
		p, err := a.loadPolicy(path)
		if err != nil {
			return err
		}
		if _, dup := pathOf[p.Name]; dup {
			return usagef("policy %s given twice", p.Name)
		}
		pols, pathOf[p.Name] = append(pols, p), path
	}
	// Each request works on its own app: the policy is per request.
	forPolicy := func(p *policies.Policy) *app {
		return &app{stdin: strings.NewReader(""), stdout: io.Discard, stderr: stderr, v: a.v, flags: a.flags, policy: p, quiet: true}
	}
	co := console.Options{
		Policies:  pols,
		Runs:      schedule.Journal(o.journal).Read,
		Drills:    drill.Journal(o.journal).Read,
		StatusTTL: o.statusTTL,
		Token:     token,
		Status: func(ctx context.Context, p *policies.Policy) (*console.Status, error) {
			st, err := forPolicy(p).policyStatus(ctx, o.journal)
			if err != nil {
				return nil, err
			}
			return consoleStatus(st), nil
		},
		Repo: func(ctx context.Context, p *policies.Policy, contents bool, fn func(context.Context, browse.Repo) error) error {
			mode, purpose := noLock, ""
			if contents {
				mode, purpose = readLock, "console download"
			}
			return forPolicy(p).withBrowse(ctx, mode, purpose, fn)
		},
	}
	if o.allowActions {
		// Actions run the commands themselves, in-process: the same
		// lifecycle (journal, metrics, notifications, exit codes).
		action := func(verb string) console.Action {
			return func(ctx context.Context, p *policies.Policy, log io.Writer) error {
				args := []string{verb, pathOf[p.Name], "--journal", o.journal}
				for _, name := range []string{"key-file", "passphrase-file", "pin"} {
					if f := a.flags.Lookup(name); f != nil && f.Changed {
						args = append(args, "--"+name, f.Value.String())
					}
				}
				fmt.Fprintf(log, "$ lifeboat %s\n", strings.Join(args, " "))
				if code := newApp(strings.NewReader(""), log, log).run(ctx, args); code != 0 {
					return fmt.Errorf("lifeboat %s %s: exit %d", verb, p.Name, code)
				}
				return nil
			}
		}
		co.Run, co.Drill = action("run"), action("drill")
	}
	srv, err := console.New(ctx, co)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", o.listen)
	if err != nil {
		return err
	}
	hs := &http.Server{Handler: srv, ReadHeaderTimeout: 10 * time.Second}
	scheme := "http"
	if o.tlsCert != "" {
		cert, err := tls.LoadX509KeyPair(o.tlsCert, o.tlsKey)
		if err != nil {
			ln.Close()
			return usagef("--tls-cert/--tls-key: %v", err)
		}
		hs.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		if o.tlsClientCA != "" {
			pem, err := os.ReadFile(o.tlsClientCA)
			if err != nil {
				ln.Close()
				return usagef("--tls-client-ca: %v", err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				ln.Close()
				return usagef("--tls-client-ca %s: no PEM certificate", o.tlsClientCA)
			}
			hs.TLSConfig.ClientCAs, hs.TLSConfig.ClientAuth = pool, tls.RequireAndVerifyClientCert
		}
		ln = tls.NewListener(ln, hs.TLSConfig)
		scheme = "https"
	}
	fmt.Fprintf(stderr, "lifeboat console on %s://%s/ (%d policies; actions %s)\n", scheme, ln.Addr(), len(pols), map[bool]string{true: "on", false: "off"}[o.allowActions])
	done := make(chan error, 1)
	go func() { done <- hs.Serve(ln) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return nil
}

// consoleStatus is status's result as the console shows it.
func consoleStatus(st *policyStatus) *console.Status {
	out := &console.Status{Problems: st.Problems}
	for _, r := range st.Repositories {
		cr := console.Repository{Name: r.Name, URL: r.URL, Reachable: r.Reachable, Error: r.Error, Newest: r.Newest, MaxLag: r.MaxLag}
		if r.Lag != nil {
			lag := r.Lag.Lag
			cr.Lag, cr.SnapshotsMissing, cr.BytesPending = &lag, r.Lag.SnapshotsMissing, r.Lag.BytesPending
		}
		out.Repositories = append(out.Repositories, cr)
	}
	for _, as := range st.Archives {
		out.Archives = append(out.Archives, console.Archive{Target: as.Target, Stream: as.Stream, Newest: as.Newest,
			Lag: time.Duration(as.LagSeconds * float64(time.Second)), PITRFrom: as.PITRFrom, Gaps: as.Gaps})
	}
	return out
}
