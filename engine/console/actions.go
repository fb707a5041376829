package console

import (
	"bytes"
	"crypto/hmac"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// job is an action started from the console: its log, kept in memory
// while the server runs.
type job struct {
	ID             int
	Policy, Action string
	Start          time.Time

	mu   sync.Mutex
	log  bytes.Buffer
	end  time.Time
	err  error
	done bool
}

func (j *job) Write(p []byte) (int, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.log.Write(p)
}

func (j *job) state() (state string, running bool) {
	j.mu.Lock()
	defer j.mu.Unlock()
	switch {
	case !j.done:
		return "running for " + dur(time.Since(j.Start).Round(time.Second)), true
	case j.err != nil:
		return "FAILED: " + j.err.Error(), false
	}
	return "done in " + dur(j.end.Sub(j.Start)), false
}

type jobRow struct {
	ID                           int
	Policy, Action, Start, State string
}

func (s *Server) actions(w http.ResponseWriter, _ *http.Request) {
	s.mu.Lock()
	jobs := append([]*job(nil), s.jobs...)
	s.mu.Unlock()
	var rows []jobRow
	for i := len(jobs) - 1; i >= 0; i-- {
		j := jobs[i]
		st, _ := j.state()
		rows = append(rows, jobRow{ID: j.ID, Policy: j.Policy, Action: j.Action, Start: j.Start.UTC().Format("2006-01-02 15:04:05"), State: st})
	}
	s.render(w, "actions", "Actions", "actions", map[string]any{"Enabled": s.o.Run != nil || s.o.Drill != nil,
		"Policies": s.names(), "CSRF": s.csrf, "Jobs": rows})
}

// act starts a run or drill: only with actions on (--allow-actions), a
// valid CSRF token, and none of the policy's jobs running.
func (s *Server) act(w http.ResponseWriter, r *http.Request) {
	action := s.o.Run
	name := r.PathValue("action")
	switch name {
	case "run":
	case "drill":
		action = s.o.Drill
	default:
		http.NotFound(w, r)
		return
	}
	if action == nil {
		http.Error(w, "actions are off: start lifeboat serve with --allow-actions", http.StatusForbidden)
		return
	}
	if !hmac.Equal([]byte(r.PostFormValue("csrf")), []byte(s.csrf)) {
		http.Error(w, "missing or wrong CSRF token: use the form of the Actions page", http.StatusForbidden)
		return
	}
	p := s.policy(r.PathValue("policy"))
	if p == nil {
		http.NotFound(w, r)
		return
	}
	s.mu.Lock()
	for _, j := range s.jobs {
		if _, running := j.state(); running && j.Policy == p.Name {
			s.mu.Unlock()
			http.Error(w, fmt.Sprintf("policy %s is busy: job %d (%s) is running", p.Name, j.ID, j.Action), http.StatusConflict)
			return
		}
	}
	j := &job{ID: len(s.jobs) + 1, Policy: p.Name, Action: name, Start: s.o.Now()}
	s.jobs = append(s.jobs, j)
	s.mu.Unlock()
	go func() {
		err := action(s.ctx, p, j)
		j.mu.Lock()
		j.err, j.end, j.done = err, s.o.Now(), true
		j.mu.Unlock()
		s.mu.Lock()
		delete(s.status, p.Name) // the next overview reads it afresh
		s.mu.Unlock()
	}()
	http.Redirect(w, r, "/jobs/"+strconv.Itoa(j.ID), http.StatusSeeOther)
}

func (s *Server) job(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.Atoi(r.PathValue("id"))
	s.mu.Lock()
	var j *job
	if err == nil && id >= 1 && id <= len(s.jobs) {
		j = s.jobs[id-1]
	}
	s.mu.Unlock()
	if j == nil {
		http.NotFound(w, r)
		return
	}
	st, running := j.state()
	j.mu.Lock()
	log := j.log.String()
	j.mu.Unlock()
	data := map[string]any{"Action": j.Action, "Policy": j.Policy, "State": st, "Running": running,
		"Start": j.Start.UTC().Format("2006-01-02 15:04:05 UTC"), "Log": log}
	if running {
		data["Refresh"] = 2
	}
	s.render(w, "job", j.Action+" "+j.Policy, "actions", data)
}
