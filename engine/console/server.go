package console

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"html/template"
	"io"
	"io/fs"
	"net/http"
	"path"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/lifeboat-backup/lifeboat/engine"
	"github.com/lifeboat-backup/lifeboat/engine/notify"
	"github.com/lifeboat-backup/lifeboat/engine/snapshot"
	"github.com/lifeboat-backup/lifeboat/internal/humanize"
	"github.com/lifeboat-backup/lifeboat/policies"
	"github.com/lifeboat-backup/lifeboat/restore/browse"
	"github.com/lifeboat-backup/lifeboat/restore/drill"
)

//go:embed assets
var assets embed.FS

// assetVersion is in the stylesheet's URL, so a new version is never
// served from an old cache.
const assetVersion = "v1"

// Action runs a policy's run or drill, writing its progress to log.
type Action func(ctx context.Context, p *policies.Policy, log io.Writer) error

// Options are what the console reads and may do.
type Options struct {
	Policies []*policies.Policy
	// Runs and Drills read a policy's journals, oldest first.
	Runs   func(policy string) ([]engine.RunResult, error)
	Drills func(policy string) ([]drill.Report, error)
	// Status gives a policy's repositories (reachability, newest
	// snapshots, replication and archive lag); results are kept StatusTTL.
	Status    func(ctx context.Context, p *policies.Policy) (*Status, error)
	StatusTTL time.Duration
	// Repo opens a policy's primary repository for fn; contents says fn
	// reads file contents (a read lock keeps a prune from removing them).
	Repo func(ctx context.Context, p *policies.Policy, contents bool, fn func(context.Context, browse.Repo) error) error
	// Run and Drill are the actions; nil (no --allow-actions) refuses them.
	Run, Drill Action
	// Token, when set, is required as "Authorization: Bearer TOKEN" or
	// through the login form (a session cookie).
	Token string
	Now   func() time.Time
}

// Server is the console's http.Handler.
type Server struct {
	o       Options
	mux     *http.ServeMux
	pages   map[string]*template.Template
	csrf    string // the token every POST form carries
	session string // the cookie value a login sets
	ctx     context.Context

	mu     sync.Mutex
	status map[string]cachedStatus
	jobs   []*job
}

type cachedStatus struct {
	st  *Status
	err error
	at  time.Time
}

// New builds the console; ctx bounds the actions it starts.
func New(ctx context.Context, o Options) (*Server, error) {
	if o.Now == nil {
		o.Now = time.Now
	}
	s := &Server{o: o, mux: http.NewServeMux(), pages: map[string]*template.Template{}, status: map[string]cachedStatus{}, ctx: ctx}
	var key [32]byte
	if _, err := rand.Read(key[:]); err != nil {
		return nil, err
	}
	mac := func(what string) string {
		h := hmac.New(sha256.New, key[:])
		h.Write([]byte(what))
		return hex.EncodeToString(h.Sum(nil))
	}
	s.csrf, s.session = mac("csrf"), mac("session:"+o.Token)
	funcs := template.FuncMap{"trimPrefix": strings.TrimPrefix}
	for _, p := range []string{"overview", "history", "snapshots", "tree", "diff", "actions", "job", "login"} {
		t, err := template.New(p).Funcs(funcs).ParseFS(assets, "assets/layout.html", "assets/"+p+".html")
		if err != nil {
			return nil, fmt.Errorf("console template %s: %w", p, err)
		}
		s.pages[p] = t
	}
	static, err := fs.Sub(assets, "assets")
	if err != nil {
		return nil, err
	}
	s.mux.Handle("GET /static/"+assetVersion+"/", http.StripPrefix("/static/"+assetVersion+"/", http.FileServerFS(static)))
	s.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok\n") })
	s.mux.HandleFunc("GET /metrics", s.metrics)
	s.mux.HandleFunc("GET /login", s.login)
	s.mux.HandleFunc("POST /login", s.login)
	s.mux.HandleFunc("GET /{$}", s.overview)
	s.mux.HandleFunc("GET /history", s.history)
	s.mux.HandleFunc("GET /history/{policy}", s.history)
	s.mux.HandleFunc("GET /snapshots", s.snapshots)
	s.mux.HandleFunc("GET /snapshots/{policy}", s.snapshots)
	s.mux.HandleFunc("GET /snapshots/{policy}/diff", s.diff)
	s.mux.HandleFunc("GET /snapshots/{policy}/{id}/tree", s.tree)
	s.mux.HandleFunc("GET /snapshots/{policy}/{id}/download", s.download)
	s.mux.HandleFunc("GET /actions", s.actions)
	s.mux.HandleFunc("POST /actions/{policy}/{action}", s.act)
	s.mux.HandleFunc("GET /jobs/{id}", s.job)
	return s, nil
}

// ServeHTTP checks access, sets the security headers and serves.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Cache-Control", "no-store")
	if s.o.Token != "" && r.URL.Path != "/healthz" && r.URL.Path != "/login" && !strings.HasPrefix(r.URL.Path, "/static/") && !s.authorized(r) {
		if strings.Contains(r.Header.Get("Accept"), "text/html") {
			http.Redirect(w, r, "/login", http.StatusSeeOther)
			return
		}
		h.Set("WWW-Authenticate", `Bearer realm="lifeboat"`)
		http.Error(w, "authorization required (Bearer token or /login)", http.StatusUnauthorized)
		return
	}
	s.mux.ServeHTTP(w, r)
}

func (s *Server) authorized(r *http.Request) bool {
	if tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
		return hmac.Equal([]byte(tok), []byte(s.o.Token))
	}
	c, err := r.Cookie("lifeboat_session")
	return err == nil && hmac.Equal([]byte(c.Value), []byte(s.session))
}

func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	data := map[string]any{}
	if r.Method == http.MethodPost {
		if s.o.Token != "" && hmac.Equal([]byte(r.PostFormValue("token")), []byte(s.o.Token)) {
			http.SetCookie(w, &http.Cookie{Name: "lifeboat_session", Value: s.session, Path: "/", HttpOnly: true,
				Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode})
			http.Redirect(w, r, "/", http.StatusSeeOther)
			return
		}
		w.WriteHeader(http.StatusUnauthorized)
		data["Error"] = "wrong token"
	}
	s.render(w, "login", "Sign in", "", data)
}

// render executes a page; data gets the layout's fields.
func (s *Server) render(w http.ResponseWriter, page, title, nav string, data map[string]any) {
	data["Title"], data["Nav"], data["AssetVersion"] = title, nav, assetVersion
	data["Now"] = s.o.Now().UTC().Format("2006-01-02 15:04:05 UTC")
	var b bytes.Buffer
	if err := s.pages[page].ExecuteTemplate(&b, "layout", data); err != nil {
		http.Error(w, "render "+page+": "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Write(b.Bytes())
}

// pagePolicy returns the policy a per-policy page's path names. Without
// one it renders the page's index (data lists every policy), with an
// unknown one it answers 404; both return a nil policy.
func (s *Server) pagePolicy(w http.ResponseWriter, r *http.Request, page, title string, data map[string]any) (string, *policies.Policy) {
	name := r.PathValue("policy")
	if name == "" {
		s.render(w, page, title, page, data)
		return "", nil
	}
	p := s.policy(name)
	if p == nil {
		http.NotFound(w, r)
	}
	return name, p
}

func (s *Server) policy(name string) *policies.Policy {
	for _, p := range s.o.Policies {
		if p.Name == name {
			return p
		}
	}
	return nil
}

func (s *Server) names() []string {
	var out []string
	for _, p := range s.o.Policies {
		out = append(out, p.Name)
	}
	return out
}

func (s *Server) statusOf(ctx context.Context, p *policies.Policy) (*Status, error) {
	s.mu.Lock()
	c, ok := s.status[p.Name]
	s.mu.Unlock()
	if ok && s.o.Now().Sub(c.at) < s.o.StatusTTL {
		return c.st, c.err
	}
	st, err := s.o.Status(ctx, p)
	s.mu.Lock()
	s.status[p.Name] = cachedStatus{st: st, err: err, at: s.o.Now()}
	s.mu.Unlock()
	return st, err
}

func (s *Server) overview(w http.ResponseWriter, r *http.Request) {
	var views []PolicyView
	for _, p := range s.o.Policies {
		runs, rerr := s.o.Runs(p.Name)
		drills, derr := s.o.Drills(p.Name)
		st, serr := s.statusOf(r.Context(), p)
		v := evaluate(p, runs, drills, st, s.o.Now())
		if err := errors.Join(rerr, derr, serr); err != nil {
			v.Error = err.Error()
			v.Level = Red
		}
		views = append(views, v)
	}
	s.render(w, "overview", "Overview", "overview", map[string]any{"Policies": views})
}

type runRow struct {
	Start, Status, Duration, Added string
	Level                          Level
	Targets, Log                   []string
}

type drillRow struct {
	Start, From, Status, RTO, RPO, Reason string
	Level                                 Level
}

func (s *Server) history(w http.ResponseWriter, r *http.Request) {
	data := map[string]any{"All": s.names()}
	name, p := s.pagePolicy(w, r, "history", "History", data)
	if p == nil {
		return
	}
	runs, err := s.o.Runs(name)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	drills, err := s.o.Drills(name)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	var dur, add []Point
	var rows []runRow
	for _, run := range runs {
		dur = append(dur, Point{T: run.Start, V: run.End.Sub(run.Start).Seconds(), Bad: !run.OK()})
		add = append(add, Point{T: run.Start, V: float64(added(run)), Bad: !run.OK()})
		row := runRow{Start: run.Start.UTC().Format("2006-01-02 15:04:05"), Status: "ok", Level: Green,
			Duration: secs(run.End.Sub(run.Start).Seconds()), Added: humanize.Bytes(added(run)), Log: slices.Clone(run.Errors)}
		if !run.OK() {
			row.Status, row.Level = "failed", Red
		} else if run.Partial {
			row.Status, row.Level = "partial", Amber
		}
		for _, t := range run.Targets {
			line := fmt.Sprintf("%s: %s in, %s added, %s", t.Name, humanize.Bytes(t.BytesIn), humanize.Bytes(t.BytesAdded), secs(t.Seconds))
			if t.Snapshot != "" {
				line += ", snapshot " + t.Snapshot[:min(8, len(t.Snapshot))]
			}
			row.Targets = append(row.Targets, line)
			for _, wn := range t.Warnings {
				row.Log = append(row.Log, t.Name+": warning: "+wn)
			}
		}
		for _, rp := range run.Replicas {
			if rp.Error != "" {
				row.Log = append(row.Log, "replicate "+rp.Name+": "+rp.Error)
			}
		}
		rows = append(rows, row)
	}
	slices.Reverse(rows)
	var rto, rpo []Point
	var drows []drillRow
	var rtoObj, rpoObj float64
	for _, d := range drills {
		rto = append(rto, Point{T: d.Start, V: d.RTO.Seconds, Bad: !d.RTO.Met})
		rpo = append(rpo, Point{T: d.Start, V: d.RPO.Seconds, Bad: !d.RPO.Met})
		rtoObj, rpoObj = d.RTO.Objective, d.RPO.Objective
		row := drillRow{Start: d.Start.UTC().Format("2006-01-02 15:04:05"), From: d.From, Status: strings.ReplaceAll(d.Status, "_", " "),
			RTO: secs(d.RTO.Seconds), RPO: secs(d.RPO.Seconds), Level: Green}
		if d.Status != drill.Passed {
			row.Level = Red
			if err := d.Err(); err != nil {
				row.Reason = err.Error()
			}
		}
		drows = append(drows, row)
	}
	slices.Reverse(drows)
	if rtoObj == 0 {
		rtoObj = p.Objectives.RTO.D().Seconds()
	}
	if rpoObj == 0 {
		rpoObj = p.Objectives.RPO.D().Seconds()
	}
	data["Policy"], data["Runs"], data["Drills"] = name, rows, drows
	data["Charts"] = []Chart{
		newChart("Drill RTO", []string{"RTO"}, []string{"s-blue"}, [][]Point{rto}, rtoObj, secs),
		newChart("Drill RPO", []string{"RPO"}, []string{"s-teal"}, [][]Point{rpo}, rpoObj, secs),
		newChart("Run duration", []string{"duration"}, []string{"s-blue"}, [][]Point{dur}, 0, secs),
		newChart("Bytes added per run", []string{"added"}, []string{"s-teal"}, [][]Point{add}, 0, func(v float64) string { return humanize.Bytes(int64(v)) }),
	}
	s.render(w, "history", "History "+name, "history", data)
}

type snapRow struct {
	ID, Short, Time, Target, Kind, Host, Tags, Size string
	Files                                           int64
}

func (s *Server) snapshots(w http.ResponseWriter, r *http.Request) {
	data := map[string]any{"All": s.names()}
	name, p := s.pagePolicy(w, r, "snapshots", "Snapshots", data)
	if p == nil {
		return
	}
	q := r.URL.Query()
	target, tag, host := q.Get("target"), q.Get("tag"), q.Get("host")
	data["Policy"], data["Target"], data["Tag"], data["Host"] = name, target, tag, host
	err := s.o.Repo(r.Context(), p, false, func(ctx context.Context, repo browse.Repo) error {
		sns, err := repo.Snapshots(ctx)
		if err != nil {
			return err
		}
		var rows []snapRow
		for i := len(sns) - 1; i >= 0; i-- {
			sn := sns[i]
			if (target != "" && sn.Target != target) || (host != "" && sn.Host != host) || (tag != "" && !slices.Contains(sn.Tags, tag)) {
				continue
			}
			rows = append(rows, snapRow{ID: sn.ID.String(), Short: sn.ID.Short(), Time: sn.Time.UTC().Format("2006-01-02 15:04:05"),
				Target: sn.Target, Kind: sn.Kind, Host: sn.Host, Tags: strings.Join(sn.Tags, ", "), Size: humanize.Bytes(sn.Stats.BytesIn), Files: sn.Stats.Files})
		}
		data["Snapshots"], data["CanRead"] = rows, repo.CanReadData()
		return nil
	})
	if err != nil {
		data["Error"] = err.Error()
	}
	s.render(w, "snapshots", "Snapshots "+name, "snapshots", data)
}

type treeRow struct {
	Name, Path, Type, Mode, Owner, Size, MTime, Link string
	Dir, Downloadable                                bool
}

type crumb struct{ Name, Path string }

// withSnapshot opens the policy's repository and finds the snapshot of
// the request; it answers 404 itself.
func (s *Server) withSnapshot(w http.ResponseWriter, r *http.Request, contents bool, fn func(context.Context, browse.Repo, *snapshot.Snapshot) error) {
	p := s.policy(r.PathValue("policy"))
	if p == nil {
		http.NotFound(w, r)
		return
	}
	err := s.o.Repo(r.Context(), p, contents, func(ctx context.Context, repo browse.Repo) error {
		sn, err := repo.FindSnapshot(ctx, r.PathValue("id"), nil)
		if err != nil {
			return httpError{http.StatusNotFound, err}
		}
		return fn(ctx, repo, sn)
	})
	if err != nil {
		code := http.StatusInternalServerError
		var he httpError
		if errors.As(err, &he) {
			code = he.code
		}
		http.Error(w, err.Error(), code)
	}
}

type httpError struct {
	code int
	err  error
}

func (e httpError) Error() string { return e.err.Error() }

func (s *Server) tree(w http.ResponseWriter, r *http.Request) {
	dir := browse.Clean(r.URL.Query().Get("path"))
	s.withSnapshot(w, r, false, func(ctx context.Context, repo browse.Repo, sn *snapshot.Snapshot) error {
		tr, err := repo.Tree(ctx, sn)
		if err != nil {
			return err
		}
		var rows []treeRow
		found := dir == ""
		for {
			n, err := tr.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				return err
			}
			if n.Path == dir {
				found = n.Type == snapshot.TypeDir
				continue
			}
			if parent := path.Dir(n.Path); parent != dir && !(dir == "" && parent == ".") {
				continue
			}
			owner := n.User
			if owner == "" {
				owner = fmt.Sprint(n.UID)
			}
			if n.Group != "" {
				owner += ":" + n.Group
			} else {
				owner += fmt.Sprintf(":%d", n.GID)
			}
			rows = append(rows, treeRow{Name: path.Base(n.Path), Path: n.Path, Type: string(n.Type), Mode: n.FileMode().String(),
				Owner: owner, Size: humanize.Bytes(n.Size), MTime: n.ModTime.UTC().Format("2006-01-02 15:04:05"), Link: n.LinkTarget,
				Dir: n.Type == snapshot.TypeDir, Downloadable: n.Type == snapshot.TypeFile || n.Type == snapshot.TypeDir})
		}
		if !found {
			return httpError{http.StatusNotFound, fmt.Errorf("/%s: no such directory in snapshot %s", dir, sn.ID.Short())}
		}
		var crumbs []crumb
		if dir != "" {
			parts := strings.Split(dir, "/")
			for i := range parts {
				crumbs = append(crumbs, crumb{Name: parts[i], Path: strings.Join(parts[:i+1], "/")})
			}
		}
		s.render(w, "tree", "Snapshot "+sn.ID.Short(), "snapshots", map[string]any{"Policy": r.PathValue("policy"), "ID": sn.ID.String(),
			"Short": sn.ID.Short(), "Target": sn.Target, "Time": sn.Time.UTC().Format("2006-01-02 15:04:05 UTC"), "Path": dir,
			"Crumbs": crumbs, "Entries": rows, "CanRead": repo.CanReadData()})
		return nil
	})
}

// download sends a file or directory as .tar.zst; without the owner key
// it refuses (403) before reading anything.
func (s *Server) download(w http.ResponseWriter, r *http.Request) {
	p := browse.Clean(r.URL.Query().Get("path"))
	s.withSnapshot(w, r, true, func(ctx context.Context, repo browse.Repo, sn *snapshot.Snapshot) error {
		if !repo.CanReadData() {
			return httpError{http.StatusForbidden, errors.New("downloads need the owner key, which this server does not hold")}
		}
		if p != "" {
			if _, err := browse.Lookup(ctx, repo, sn, p); err != nil {
				return httpError{http.StatusNotFound, err}
			}
		}
		name := sn.ID.Short()
		if p != "" {
			name += "-" + strings.ReplaceAll(path.Base(p), `"`, "_")
		}
		w.Header().Set("Content-Type", "application/zstd")
		w.Header().Set("Content-Disposition", fmt.Sprintf("attachment; filename=%q", safeFilename(name)+".tar.zst"))
		zw, err := zstd.NewWriter(w)
		if err != nil {
			return err
		}
		tw := tar.NewWriter(zw)
		if err := browse.WriteTar(ctx, repo, sn, p, tw); err != nil {
			zw.Close()
			return err // headers are out: the archive ends short
		}
		if err := tw.Close(); err != nil {
			return err
		}
		return zw.Close()
	})
}

// safeFilename keeps a download's name to plain characters.
func safeFilename(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.' {
			return r
		}
		return '_'
	}, s)
}

type changeRow struct{ Modifier, Path, Type, Before, After string }

// maxChanges bounds a diff page.
const maxChanges = 2000

func (s *Server) diff(w http.ResponseWriter, r *http.Request) {
	p := s.policy(r.PathValue("policy"))
	if p == nil {
		http.NotFound(w, r)
		return
	}
	q := r.URL.Query()
	data := map[string]any{"Policy": p.Name, "A": q.Get("a"), "B": q.Get("b")}
	err := s.o.Repo(r.Context(), p, false, func(ctx context.Context, repo browse.Repo) error {
		a, err := repo.FindSnapshot(ctx, q.Get("a"), nil)
		if err != nil {
			return fmt.Errorf("snapshot A: %w", err)
		}
		b, err := repo.FindSnapshot(ctx, q.Get("b"), nil)
		if err != nil {
			return fmt.Errorf("snapshot B: %w", err)
		}
		data["A"], data["B"] = a.ID.Short(), b.ID.Short()
		var rows []changeRow
		st, err := browse.Diff(ctx, repo, a, b, func(c browse.Change) error {
			if len(rows) < maxChanges {
				rows = append(rows, changeRow{Modifier: c.Modifier, Path: c.Path, Type: string(c.Type), Before: humanize.Bytes(c.SizeBefore), After: humanize.Bytes(c.SizeAfter)})
			} else {
				data["Truncated"] = true
			}
			return nil
		})
		if err != nil {
			return err
		}
		data["Changes"], data["Stats"], data["Added"], data["Removed"] = rows, st, humanize.Bytes(st.Added.Bytes), humanize.Bytes(st.Removed.Bytes)
		return nil
	})
	if err != nil {
		data["Error"] = err.Error()
	}
	s.render(w, "diff", "Diff", "snapshots", data)
}

// metrics serves the Prometheus exposition of the runs (the series the
// textfile holds, engine/notify) and the drills (restore/drill).
func (s *Server) metrics(w http.ResponseWriter, _ *http.Request) {
	var hist [][]engine.RunResult
	dm := &notify.Metrics{}
	for _, p := range s.o.Policies {
		runs, err := s.o.Runs(p.Name)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		hist = append(hist, runs)
		drills, err := s.o.Drills(p.Name)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		if len(drills) > 0 {
			drill.AddMetrics(dm, &drills[len(drills)-1])
		}
	}
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	w.Write(notify.PoliciesMetrics(hist...))
	w.Write(dm.Bytes())
}
