package torture

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/lifeboat-backup/lifeboat/internal/testutil/gentree"
)

const exitLocked = 11

// op is one scheduled operation.
type op struct {
	id        int
	kind      string
	r         *rand.Rand // the operation's own draws: the same for a seed
	start     time.Time
	killAfter time.Duration // for its next command; 0: none
}

// proc is a running lifeboat command.
type proc struct {
	op      *op
	cmd     *exec.Cmd
	stalled bool // guarded by harness.mu
}

// result is how a command ended.
type result struct {
	code           int // exit code; -1 when killed
	killed         bool
	stalled        bool // stopped with SIGSTOP for a while
	stdout, stderr string
	start, end     time.Time
}

// backupRec is a backup operation and the tree state it was given.
type backupRec struct {
	op   int
	tree int
	man  Manifest
}

// snap is a snapshot the oracle knows.
type snap struct {
	id      string
	rec     *backupRec
	added   time.Time // when the oracle learnt of it
	gone    bool
	goneAt  time.Time
	pending map[int]bool // forget operations that may have removed it
}

func short(id string) string {
	if len(id) > 8 {
		return id[:8]
	}
	return id
}

// lifeboat runs one command with key against repository url. The
// operation's killAfter, when set, SIGKILLs it after that long (and is
// cleared: one kill per operation).
func (h *harness) lifeboat(o *op, key, url string, args ...string) result {
	full := append([]string{"--json"}, args...)
	cmd := exec.Command(h.bin, full...)
	env := []string{}
	for _, e := range os.Environ() {
		if !strings.HasPrefix(e, "LIFEBOAT_") {
			env = append(env, e)
		}
	}
	env = append(env, h.env...)
	env = append(env, "LIFEBOAT_REPO="+url)
	if key != "" {
		env = append(env, "LIFEBOAT_KEY_FILE="+key)
	}
	cmd.Env = env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	res := result{start: time.Now()}
	kill := o.killAfter
	if kill > 0 {
		o.killAfter = 0
	}
	argText := strings.Join(args, " ")
	if kill > 0 {
		argText += fmt.Sprintf(" (kill -9 after %s)", kill)
	}
	h.logf(o, "run lifeboat %s", argText)
	if err := cmd.Start(); err != nil {
		res.code, res.stderr, res.end = 1, err.Error(), time.Now()
		return res
	}
	h.mu.Lock()
	h.sum.Commands++
	seq := h.sum.Commands
	p := &proc{op: o, cmd: cmd}
	h.procs[seq] = p
	h.mu.Unlock()
	var timer *time.Timer
	if kill > 0 {
		timer = time.AfterFunc(kill, func() { _ = cmd.Process.Signal(syscall.SIGKILL) })
	}
	err := cmd.Wait()
	if timer != nil {
		timer.Stop()
	}
	res.end = time.Now()
	h.mu.Lock()
	delete(h.procs, seq)
	res.stalled = p.stalled
	h.mu.Unlock()
	res.stdout, res.stderr = stdout.String(), stderr.String()
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		res.code = ee.ExitCode()
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			res.code = -1
			res.killed = ws.Signal() == syscall.SIGKILL
		}
	default:
		res.code = 1
	}
	if res.killed {
		h.mu.Lock()
		h.sum.Kills++
		h.mu.Unlock()
		h.logf(o, "killed (-9) after %s", res.end.Sub(res.start).Round(time.Millisecond))
	} else {
		h.logf(o, "exit %d after %s %s", res.code, res.end.Sub(res.start).Round(time.Millisecond), firstLine(res.stderr))
	}
	return res
}

// summaryLine returns the last JSON line of stdout (the summary).
func summaryLine(stdout string) map[string]any {
	var last map[string]any
	sc := bufio.NewScanner(strings.NewReader(stdout))
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		var m map[string]any
		if json.Unmarshal(sc.Bytes(), &m) == nil && m["message_type"] == "summary" {
			last = m
		}
	}
	return last
}

// maybeKill decides, from the operation's draws, whether its command is
// killed and when.
func (h *harness) maybeKill(o *op) {
	if h.enabled["kill"] && o.r.IntN(8) == 0 {
		o.killAfter = time.Duration(50+o.r.IntN(1500)) * time.Millisecond
	}
}

// retryLock returns --retry-lock flags for some operations.
func (h *harness) retryLock(o *op) []string {
	if h.enabled["retry-lock"] && o.r.IntN(3) == 0 {
		return []string{"--retry-lock", fmt.Sprintf("%ds", 5+o.r.IntN(20))}
	}
	return nil
}

func (h *harness) opBackup(o *op) {
	t := o.r.IntN(nTrees)
	mutate := o.r.IntN(4) != 0
	fraction := 0.01 + o.r.Float64()*0.1
	mseed := o.r.Int64()
	retry := h.retryLock(o)
	h.maybeKill(o)
	h.backup(o, t, mutate, fraction, mseed, retry)
}

// backup mutates tree t (when asked), records it and backs it up. It
// returns the ID of the snapshot the command reported, or "", and the
// command's result.
func (h *harness) backup(o *op, t int, mutate bool, fraction float64, mseed int64, retry []string) (string, result) {
	h.treeMu[t].Lock()
	defer h.treeMu[t].Unlock()
	if mutate {
		n, err := gentree.Mutate(h.trees[t], fraction, mseed)
		if err != nil {
			h.violate(o, "harness: mutate tree%d: %v", t, err)
			return "", result{}
		}
		h.logf(o, "mutated tree%d: %d bytes", t, n)
	}
	man, err := Scan(h.trees[t])
	if err != nil {
		h.violate(o, "harness: %v", err)
		return "", result{}
	}
	rec := &backupRec{op: o.id, tree: t, man: man}
	h.mu.Lock()
	h.backups[o.id] = rec
	h.mu.Unlock()
	args := append([]string{"backup", "files", "--tag", fmt.Sprintf("op-%d", o.id), "--target", fmt.Sprintf("tree%d", t)}, retry...)
	res := h.lifeboat(o, h.host, h.primary, append(args, h.trees[t])...)
	sum := summaryLine(res.stdout)
	id, _ := sum["snapshot_id"].(string)
	switch {
	case (res.code == 0 || res.code == 4) && id != "":
		h.mu.Lock()
		h.sum.Saved++
		h.addSnap(id, rec)
		h.mu.Unlock()
		h.logf(o, "saved snapshot %s of tree%d", short(id), t)
		if res.code == 4 {
			h.violate(o, "backup of an unchanging tree exit 4 (source unreadable): %s", firstLine(res.stderr))
		}
	case res.code == 0:
		h.violate(o, "backup exit 0 without a snapshot_id: %s", firstLine(res.stdout))
	default:
		if h.excuse(o, res) == "" {
			h.anomaly(o, res)
		}
	}
	h.reconcile(o)
	if res.code == 0 || res.code == 4 {
		return id, res
	}
	return "", res
}

// opPruneRace forgets the newest snapshot of a tree (the next backup's
// parent), starts a prune and, while it runs, a backup of the unchanged
// tree that waits for the lock; the new snapshot is restored at once.
func (h *harness) opPruneRace(o *op) {
	t := o.r.IntN(nTrees)
	delay := time.Duration(o.r.IntN(300)) * time.Millisecond
	var newest string
	h.mu.Lock()
	for _, id := range h.order {
		if s := h.snaps[id]; !s.gone && len(s.pending) == 0 && s.rec.tree == t {
			newest = id
		}
	}
	h.mu.Unlock()
	if newest != "" {
		h.markPending(o, []string{newest})
		res := h.lifeboat(o, h.owner, h.primary, "forget", newest)
		if res.code != 0 && h.excuse(o, res) == "" {
			h.anomaly(o, res)
		}
		h.forgotten(o, removedIDs(res))
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if res := h.lifeboat(o, h.owner, h.primary, h.prune()...); res.code != 0 && h.excuse(o, res) == "" {
			h.anomaly(o, res)
		}
	}()
	time.Sleep(delay)
	id, _ := h.backup(o, t, false, 0, 0, []string{"--retry-lock", "30s"})
	<-done
	if id != "" {
		h.verify(o, h.primary, id, h.rec(id), []string{"--retry-lock", "1m"}, firstTry)
	}
}

// addSnap registers a snapshot that must restore. h.mu is held.
func (h *harness) addSnap(id string, rec *backupRec) {
	if _, ok := h.snaps[id]; ok {
		return
	}
	s := &snap{id: id, rec: rec, added: time.Now(), pending: map[int]bool{}}
	for k := range h.keeping {
		s.pending[k] = true // a running forget --keep-last may remove it too
	}
	h.snaps[id] = s
	h.order = append(h.order, id)
}

// markPending notes that o may remove the snapshots ids.
func (h *harness) markPending(o *op, ids []string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, id := range ids {
		h.snaps[id].pending[o.id] = true
	}
}

// forgotten records the snapshots a forget said it removed and clears
// o's pending marks.
func (h *harness) forgotten(o *op, removed []string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, id := range removed {
		if s := h.snaps[id]; s != nil && !s.gone {
			s.gone, s.goneAt = true, time.Now()
			h.sum.Forgotten++
		}
	}
	for _, s := range h.snaps {
		delete(s.pending, o.id)
	}
	delete(h.keeping, o.id)
}

func removedIDs(res result) []string {
	var ids []string
	if list, ok := summaryLine(res.stdout)["removed"].([]any); ok {
		for _, v := range list {
			if s, ok := v.(string); ok {
				ids = append(ids, s)
			}
		}
	}
	return ids
}

func (h *harness) opForget(o *op) {
	ids := h.aliveIDs(true)
	id, ok := pick(o.r, ids)
	if newest := o.r.IntN(2) == 0; newest {
		// The newest snapshot of a tree is the next backup's parent: forgetting
		// it is what a backup waiting for the lock must notice.
		t := o.r.IntN(nTrees)
		h.mu.Lock()
		for _, x := range ids {
			if h.snaps[x].rec.tree == t {
				id, ok = x, true
			}
		}
		h.mu.Unlock()
	}
	retry := h.retryLock(o)
	h.maybeKill(o)
	if !ok {
		h.logf(o, "no snapshot to forget")
		return
	}
	h.markPending(o, []string{id})
	res := h.lifeboat(o, h.owner, h.primary, append(append([]string{"forget"}, retry...), id)...)
	removed := removedIDs(res)
	if res.code == 0 && !slices.Contains(removed, id) {
		h.violate(o, "forget %s exit 0 but it is not in the removed list %v", short(id), removed)
	}
	if res.code != 0 {
		removed = nil
		if h.excuse(o, res) == "" {
			h.anomaly(o, res)
		}
		h.reconcile(o) // a killed forget may or may not have removed it
	}
	h.forgotten(o, removed)
	h.reconcile(o)
}

func (h *harness) opForgetKeep(o *op) {
	n := 1 + o.r.IntN(3)
	retry := h.retryLock(o)
	h.maybeKill(o)
	h.mu.Lock()
	h.keeping[o.id] = true
	h.mu.Unlock()
	h.markPending(o, h.aliveIDs(false))
	res := h.lifeboat(o, h.owner, h.primary, append([]string{"forget", "--keep-last", strconv.Itoa(n)}, retry...)...)
	var removed []string
	if res.code == 0 {
		removed = removedIDs(res)
		h.logf(o, "removed %d snapshots", len(removed))
	} else {
		if h.excuse(o, res) == "" {
			h.anomaly(o, res)
		}
		h.reconcile(o)
	}
	h.forgotten(o, removed)
	h.reconcile(o)
}

// opTag adds a tag to a random live snapshot. The command writes the
// manifest anew under a new ID and then deletes the old one, so the old ID
// may vanish through this operation only, and the new one (it keeps the
// op-N tag) must restore like the backup that made it.
func (h *harness) opTag(o *op) {
	id, ok := pick(o.r, h.aliveIDs(true))
	retry := h.retryLock(o)
	h.maybeKill(o)
	if !ok {
		h.logf(o, "no snapshot to tag")
		return
	}
	rec := h.rec(id)
	h.markPending(o, []string{id})
	res := h.lifeboat(o, h.owner, h.primary, append(append([]string{"tag", "--add", fmt.Sprintf("t-%d", o.id)}, retry...), id)...)
	var removed []string
	if res.code == 0 {
		changes, _ := summaryLine(res.stdout)["snapshots"].([]any)
		for _, c := range changes {
			m, _ := c.(map[string]any)
			oldID, _ := m["old_id"].(string)
			newID, _ := m["new_id"].(string)
			if oldID != id || newID == "" {
				h.violate(o, "tag %s exit 0 reported a change of %q to %q", short(id), oldID, newID)
				continue
			}
			removed = append(removed, oldID)
			h.mu.Lock()
			h.addSnap(newID, rec)
			h.mu.Unlock()
			h.logf(o, "snapshot %s is now %s", short(oldID), short(newID))
		}
		if len(changes) != 1 {
			h.violate(o, "tag %s exit 0 with %d changes, want 1", short(id), len(changes))
		}
	} else {
		if h.excuse(o, res) == "" && !h.goneMeanwhile(id) {
			h.anomaly(o, res)
		}
		h.reconcile(o) // a killed tag may have written the new manifest, deleted the old, both or neither
	}
	h.forgotten(o, removed)
	h.reconcile(o)
}

// goneMeanwhile says whether the oracle saw snapshot id go (a forget that
// ran beside the command that failed on it).
func (h *harness) goneMeanwhile(id string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	s := h.snaps[id]
	return s != nil && s.gone
}

// prune returns the prune command: with a test lease, its grace period
// (1 h by default, 12 real leases) shrinks in proportion, or nothing a
// forget releases would be freed within a run and the tmpfs would fill.
func (h *harness) prune() []string {
	if h.cfg.Lease > 0 {
		return []string{"prune", "--grace", (12 * h.cfg.Lease).String()}
	}
	return []string{"prune"}
}

func (h *harness) opPrune(o *op) {
	retry := h.retryLock(o)
	h.maybeKill(o)
	res := h.lifeboat(o, h.owner, h.primary, append(h.prune(), retry...)...)
	if res.code != 0 && h.excuse(o, res) == "" {
		h.anomaly(o, res)
	}
	h.reconcile(o)
}

func (h *harness) opCheck(o *op) {
	args := []string{"check"}
	if o.kind == "check-read" {
		args = append(args, "--read-data")
	}
	args = append(args, h.retryLock(o)...)
	h.maybeKill(o)
	res := h.lifeboat(o, h.owner, h.primary, args...)
	if res.code == 0 || h.excuse(o, res) != "" {
		return
	}
	h.anomaly(o, res)
	if errs := checkErrorList(res); len(errs) > 0 && !h.falseAlarm(o, errs) {
		h.violate(o, "check found errors with no injected fault: %s", checkErrors(res))
	}
}

var (
	snapshotError = regexp.MustCompile(`^snapshot(?:s/| )([0-9a-f]{8,}):`)
	snapshotRef   = regexp.MustCompile(`snapshot ([0-9a-f]{8,})\b`)
)

// fullID returns the known snapshot ID that starts with prefix, or "".
func (h *harness) fullID(prefix string) string {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, id := range h.order {
		if strings.HasPrefix(id, prefix) {
			return id
		}
	}
	return ""
}

// falseAlarm tells whether every error check reported names a snapshot,
// and restores each: one that does not is reported as broken by verify;
// the check's errors add nothing to that (a check that raced with a backup
// or a forget names snapshots that restore).
func (h *harness) falseAlarm(o *op, errs []string) bool {
	for _, e := range errs {
		m := snapshotError.FindStringSubmatch(e)
		if m == nil {
			return false
		}
		id := h.fullID(m[1])
		if id == "" {
			h.reconcile(o) // saved by a backup that has not exited yet: adopt it
			if id = h.fullID(m[1]); id == "" {
				return false
			}
		}
		h.mu.Lock()
		s := h.snaps[id]
		gone := s.gone || len(s.pending) > 0
		h.mu.Unlock()
		if h.knownBroken(id) {
			h.logf(o, "check named snapshot %s, known broken", short(id))
			continue
		}
		h.logf(o, "check named snapshot %s: restoring it", short(id))
		if !gone {
			// A broken snapshot is reported by verify itself; a restore that
			// failed for an injected fault proves nothing either way.
			h.verify(o, h.primary, id, s.rec, []string{"--retry-lock", "1m"}, secondTry)
		}
	}
	h.logf(o, "check named only snapshots that restore or were reported broken already")
	return true
}

func checkErrorList(res result) []string {
	var out []string
	if c, ok := summaryLine(res.stdout)["check"].(map[string]any); ok {
		if errs, ok := c["errors"].([]any); ok {
			for _, e := range errs {
				out = append(out, fmt.Sprint(e))
			}
		}
	}
	return out
}

func checkErrors(res result) string {
	s := checkErrorList(res)
	if len(s) == 0 {
		return firstLine(res.stderr)
	}
	if len(s) > 5 {
		s = append(s[:5], fmt.Sprintf("... %d more", len(s)-5))
	}
	return strings.Join(s, "; ")
}

func (h *harness) opRestore(o *op) {
	id, ok := pick(o.r, h.aliveIDs(true))
	retry := h.retryLock(o)
	h.maybeKill(o)
	if !ok {
		h.logf(o, "no snapshot to restore")
		return
	}
	h.verify(o, h.primary, id, h.rec(id), retry, firstTry)
}

// How verify judges a failed restore.
const (
	firstTry   = iota // expected when the snapshot was forgotten meanwhile or a fault was injected; else tried again
	secondTry         // the same, but a failure is a violation
	finalCheck        // never expected: recovery is done
)

// verify restores snapshot id from url and compares it with the tree state
// recorded before its backup.
func (h *harness) verify(o *op, url, id string, rec *backupRec, retry []string, mode int) bool {
	to := filepath.Join(h.dir, "restore", fmt.Sprintf("op-%d", o.id))
	os.RemoveAll(to)
	defer os.RemoveAll(to)
	args := append([]string{"restore", id, "--to", to}, h.restoreFlags...)
	res := h.lifeboat(o, h.owner, url, append(args, retry...)...)
	if res.code != 0 {
		gone := false
		if url == h.primary {
			h.mu.Lock()
			s := h.snaps[id]
			gone = s.gone || len(s.pending) > 0
			h.mu.Unlock()
		}
		switch why := h.excuse(o, res); {
		case mode == finalCheck:
			h.lost(o, url, id, "snapshot %s (backup op #%d) does not restore from %s after recovery: exit %d: %s", short(id), rec.op, url, res.code, firstLine(res.stderr))
		case gone:
			h.logf(o, "snapshot %s was forgotten meanwhile", short(id))
		case why != "":
			h.logf(o, "restore failed, expected: %s", why)
		case mode == secondTry:
			h.lost(o, url, id, "snapshot %s (backup op #%d) does not restore from %s, twice: exit %d: %s", short(id), rec.op, url, res.code, firstLine(res.stderr))
		default:
			// The snapshot may be fine and the command wrong (a race with a
			// concurrent command): a second try tells a failed restore from
			// a lost snapshot.
			h.anomaly(o, res)
			h.logf(o, "restore of %s failed with no injected fault: trying again", short(id))
			return h.verify(o, url, id, rec, []string{"--retry-lock", "1m"}, secondTry)
		}
		return false
	}
	got, err := Scan(filepath.Join(to, fmt.Sprintf("tree%d", rec.tree)))
	if err != nil {
		h.lost(o, url, id, "snapshot %s (backup op #%d) restored exit 0 but: %v", short(id), rec.op, err)
		return false
	}
	if diff := rec.man.Diff(got, 10); len(diff) > 0 {
		h.lost(o, url, id, "snapshot %s (backup op #%d) restored exit 0 but differs from the tree it was given:\n  %s", short(id), rec.op, strings.Join(diff, "\n  "))
		return false
	}
	h.mu.Lock()
	h.sum.Verified++
	h.mu.Unlock()
	h.logf(o, "snapshot %s of backup op #%d verified (%d entries)", short(id), rec.op, len(got))
	return true
}

// lost reports a snapshot of url that does not restore to its tree: a
// violation the first time, a log line after that.
func (h *harness) lost(o *op, url, id, format string, args ...any) {
	key := url + " " + id
	h.mu.Lock()
	first, seen := h.broken[key]
	if !seen {
		h.broken[key] = o.id
	}
	h.mu.Unlock()
	if seen {
		h.logf(o, "snapshot %s known broken since op #%d: %s", short(id), first, fmt.Sprintf(format, args...))
		return
	}
	h.violate(o, format, args...)
}

// knownBroken tells whether a violation was reported for snapshot id of the
// primary repository already.
func (h *harness) knownBroken(id string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	_, ok := h.broken[h.primary+" "+id]
	return ok
}

// rec returns the backup of a known snapshot, nil for an unknown one.
func (h *harness) rec(id string) *backupRec {
	h.mu.Lock()
	defer h.mu.Unlock()
	if s := h.snaps[id]; s != nil {
		return s.rec
	}
	return nil
}

// listing is what `snapshots --json` says.
type listing struct {
	ID   string   `json:"id"`
	Tags []string `json:"tags"`
}

func (h *harness) list(o *op, url string) ([]listing, result, error) {
	res := h.lifeboat(o, h.owner, url, "snapshots")
	if res.code != 0 {
		return nil, res, fmt.Errorf("snapshots: exit %d: %s", res.code, firstLine(res.stderr))
	}
	var l []listing
	if err := json.Unmarshal([]byte(res.stdout), &l); err != nil {
		return nil, res, fmt.Errorf("snapshots --json: %w", err)
	}
	return l, res, nil
}

// backupOf returns the backup that made a listed snapshot (its op-N tag).
func (h *harness) backupOf(l listing) *backupRec {
	for _, t := range l.Tags {
		if n, ok := strings.CutPrefix(t, "op-"); ok {
			if i, err := strconv.Atoi(n); err == nil {
				return h.backups[i]
			}
		}
	}
	return nil
}

// reconcile compares the repository's snapshots with the oracle: every
// snapshot known to be saved and not forgotten must be listed, a
// forgotten one must stay gone, and a listed unknown one (its backup was
// killed or failed after saving it) is adopted: it must restore too.
func (h *harness) reconcile(o *op) {
	h.listMu.Lock()
	defer h.listMu.Unlock()
	t0 := time.Now()
	l, res, err := h.list(o, h.primary)
	if err != nil {
		if h.excuse(o, res) == "" {
			h.anomaly(o, res)
		}
		return
	}
	present := map[string]bool{}
	var viol, adopted []string
	h.mu.Lock()
	for _, e := range l {
		present[e.ID] = true
		if s := h.snaps[e.ID]; s != nil {
			if s.gone && s.goneAt.Before(t0) {
				viol = append(viol, fmt.Sprintf("snapshot %s (backup op #%d) was forgotten and is listed again", short(e.ID), s.rec.op))
				s.gone = false
			}
			continue
		}
		rec := h.backupOf(e)
		if rec == nil {
			viol = append(viol, fmt.Sprintf("snapshot %s with tags %v: no backup made it", short(e.ID), e.Tags))
			continue
		}
		h.addSnap(e.ID, rec)
		h.sum.Adopted++
		adopted = append(adopted, fmt.Sprintf("adopted snapshot %s of backup op #%d", short(e.ID), rec.op))
	}
	for _, id := range h.order {
		s := h.snaps[id]
		if s.gone || present[id] || !s.added.Before(t0) {
			continue
		}
		if len(s.pending) > 0 {
			s.gone, s.goneAt = true, time.Now()
			h.sum.Forgotten++
			continue
		}
		viol = append(viol, fmt.Sprintf("snapshot %s (backup op #%d) is gone and nothing forgot it", short(id), s.rec.op))
		s.gone, s.goneAt = true, time.Now()
	}
	h.mu.Unlock()
	for _, a := range adopted {
		h.logf(o, "%s", a)
	}
	for _, v := range viol {
		h.violate(o, "%s", v)
	}
}

func (h *harness) opReplicate(o *op) {
	h.maybeKill(o)
	h.replMu.Lock()
	defer h.replMu.Unlock()
	// The workload forgets much at once, on purpose: no mass-deletion stop.
	res := h.lifeboat(o, h.host, h.primary, "replicate", "--to", h.second, "--max-delete-percent", "100")
	if res.code != 0 && h.excuse(o, res) == "" {
		h.anomaly(o, res)
	}
	// Whatever the secondary lists must restore from it, also after an
	// interrupted copy.
	l, lres, err := h.list(o, h.second)
	if err != nil {
		if h.excuse(o, lres) == "" {
			h.anomaly(o, lres)
		}
		return
	}
	type known struct {
		id  string
		rec *backupRec
	}
	var ks []known
	h.mu.Lock()
	for _, e := range l {
		if rec := h.backupOf(e); rec != nil {
			ks = append(ks, known{e.ID, rec})
		}
	}
	h.mu.Unlock()
	if k, ok := pick(o.r, ks); ok {
		h.verify(o, h.second, k.id, k.rec, nil, firstTry)
	}
}

// running returns the running commands ordered by operation.
func (h *harness) running() []*proc {
	h.mu.Lock()
	defer h.mu.Unlock()
	var ps []*proc
	for _, p := range h.procs {
		ps = append(ps, p)
	}
	slices.SortFunc(ps, func(a, b *proc) int { return a.op.id - b.op.id })
	return ps
}

// stallMax is the longest SIGSTOP.
func (h *harness) stallMax() time.Duration {
	if h.cfg.Lease > 0 {
		return h.cfg.Lease * 3 / 2
	}
	return 8 * time.Second
}

func (h *harness) opStall(o *op) {
	max := h.stallMax()
	d := max/3 + time.Duration(o.r.Int64N(int64(max-max/3)))
	nth := o.r.IntN(8)
	time.Sleep(time.Duration(o.r.IntN(300)) * time.Millisecond)
	ps := h.running()
	if len(ps) == 0 {
		h.logf(o, "nothing running to stall")
		return
	}
	p := ps[nth%len(ps)]
	if err := p.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		h.logf(o, "SIGSTOP #%d: %v", p.op.id, err)
		return
	}
	h.mu.Lock()
	p.stalled = true
	h.sum.Stalls++
	h.mu.Unlock()
	h.logf(o, "SIGSTOP #%d %s for %s", p.op.id, p.op.kind, d.Round(time.Millisecond))
	time.Sleep(d)
	_ = p.cmd.Process.Signal(syscall.SIGCONT)
	h.logf(o, "SIGCONT #%d", p.op.id)
}

func (h *harness) opMinioRestart(o *op) {
	down := time.Duration(300+o.r.IntN(4000)) * time.Millisecond
	crash := o.r.IntN(2) == 0
	time.Sleep(time.Duration(o.r.IntN(500)) * time.Millisecond)
	h.minioMu.Lock()
	defer h.minioMu.Unlock()
	w := h.openWindow("MinIO down")
	if crash {
		h.srv.Kill()
	} else {
		h.srv.Stop()
	}
	h.logf(o, "MinIO stopped (kill %v), down for %s", crash, down)
	time.Sleep(down)
	if err := h.srv.Restart(); err != nil {
		h.violate(o, "harness: restart MinIO: %v", err)
	}
	h.closeWindow(w)
	h.mu.Lock()
	h.sum.MinioRestarts++
	h.mu.Unlock()
	h.logf(o, "MinIO up again")
}

func (h *harness) opDiskFull(o *op) {
	hold := time.Duration(500+o.r.IntN(4000)) * time.Millisecond
	ballast := filepath.Join(h.tmpfs, "ballast")
	w := h.openWindow("disk full")
	f, err := os.Create(ballast)
	if err == nil {
		buf := make([]byte, 1<<20)
		for _, n := range []int{1 << 20, 4 << 10} {
			for {
				if _, err := f.Write(buf[:n]); err != nil {
					break
				}
			}
		}
		f.Close()
	}
	h.mu.Lock()
	h.sum.DiskFull++
	h.mu.Unlock()
	h.logf(o, "repository file system full for %s", hold)
	time.Sleep(hold)
	os.Remove(ballast)
	h.closeWindow(w)
	h.logf(o, "space freed")
}

// opDamage runs alone: it damages one object, expects check --read-data
// to find it, restores a snapshot (it may fail, never restore wrong
// content), then puts the object back and expects a clean check.
func (h *harness) opDamage(ctx context.Context, o *op) {
	how := []string{"flip", "truncate", "delete"}[o.r.IntN(3)]
	// The repository must check clean first, or the check after the undo
	// would blame this operation for what an earlier one broke.
	if res := h.lifeboat(o, h.owner, h.primary, "check", "--read-data"); res.code != 0 {
		if errs := checkErrorList(res); len(errs) > 0 && !h.falseAlarm(o, errs) {
			h.violate(o, "check --read-data before any damage: exit %d: %s", res.code, checkErrors(res))
		}
		h.logf(o, "repository not clean before the damage: no damage")
		return
	}
	prefix := "data/"
	if how == "truncate" {
		prefix = "index/"
	}
	keys, err := h.raw.List(ctx, prefix)
	if err != nil {
		h.violate(o, "harness: %v", err)
		return
	}
	key, ok := pick(o.r, keys)
	if !ok {
		h.logf(o, "no object under %s", prefix)
		return
	}
	pos, bit := o.r.Float64(), o.r.IntN(8)
	orig, err := h.raw.Get(ctx, key)
	if err != nil || len(orig) == 0 {
		h.violate(o, "harness: read %s: %v (%d bytes)", key, err, len(orig))
		return
	}
	if prefix == "data/" {
		// A pack in no index (left by a killed backup or prune) holds nothing
		// a snapshot needs: check does not miss it when it is gone.
		if err := h.raw.Delete(ctx, key); err != nil {
			h.violate(o, "harness: %v", err)
			return
		}
		probe := h.lifeboat(o, h.owner, h.primary, "check")
		if err := h.raw.Put(ctx, key, orig); err != nil {
			h.violate(o, "harness: put %s back: %v", key, err)
			return
		}
		if probe.code == 0 {
			h.logf(o, "%s is in no index: not worth damaging", key)
			return
		}
	}
	at := int(pos * float64(len(orig)))
	switch how {
	case "flip":
		b := bytes.Clone(orig)
		b[at] ^= 1 << bit
		err = h.raw.Put(ctx, key, b)
	case "truncate":
		err = h.raw.Put(ctx, key, orig[:at])
	case "delete":
		err = h.raw.Delete(ctx, key)
	}
	if err != nil {
		h.violate(o, "harness: damage %s: %v", key, err)
		return
	}
	w := h.openWindow("damage " + how + " " + key)
	h.mu.Lock()
	h.sum.Damages++
	h.mu.Unlock()
	h.logf(o, "damaged %s: %s at %d of %d", key, how, at, len(orig))
	res := h.lifeboat(o, h.owner, h.primary, "check", "--read-data")
	if res.code == 0 {
		h.violate(o, "check --read-data exit 0 with %s damaged (%s at byte %d of %d): %s", key, how, at, len(orig), firstLine(res.stdout))
	}
	if id, ok := pick(o.r, h.aliveIDs(true)); ok {
		if !h.verify(o, h.primary, id, h.rec(id), nil, firstTry) {
			h.mu.Lock()
			h.sum.ExpectedLoss++
			h.mu.Unlock()
		}
	}
	if h.canRepair {
		h.repair(o, key)
		h.closeWindow(w)
		return
	}
	if err := h.raw.Put(ctx, key, orig); err != nil {
		h.violate(o, "harness: undo damage of %s: %v", key, err)
	}
	h.closeWindow(w)
	h.logf(o, "put %s back", key)
	res = h.lifeboat(o, h.owner, h.primary, "check", "--read-data")
	if res.code != 0 {
		h.violate(o, "check --read-data after %s was put back: exit %d: %s", key, res.code, checkErrors(res))
	}
}

// repairSummary is what check --repair --json says.
type repairSummary struct {
	Repair struct {
		PacksDamaged     []string `json:"packs_damaged"`
		DamagedSnapshots []string `json:"damaged_snapshots"`
		SnapshotsRemoved []string `json:"snapshots_removed"`
	} `json:"repair"`
}

func parseRepair(res result) repairSummary {
	var r repairSummary
	sc := bufio.NewScanner(strings.NewReader(res.stdout))
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		if bytes.Contains(sc.Bytes(), []byte(`"repair"`)) {
			_ = json.Unmarshal(sc.Bytes(), &r)
		}
	}
	return r
}

// repair runs check --repair on the damaged repository and accounts for
// the loss: the snapshots it lists as damaged may lose data, every other
// one must restore as before; a new backup must be whole; --forget-damaged
// may remove only listed snapshots, and what it keeps must restore; then
// the repository checks clean.
func (h *harness) repair(o *op, key string) {
	res := h.lifeboat(o, h.owner, h.primary, "check", "--repair")
	if res.code != 0 && res.code != 1 {
		h.violate(o, "check --repair with %s damaged: exit %d: %s", key, res.code, firstLine(res.stderr))
		return
	}
	rep := parseRepair(res)
	damaged := rep.Repair.DamagedSnapshots
	h.mu.Lock()
	h.sum.DamagedSnapshots += len(damaged)
	h.mu.Unlock()
	h.logf(o, "repair: damaged packs %v, damaged snapshots %d", rep.Repair.PacksDamaged, len(damaged))
	var whole []string
	for _, id := range h.aliveIDs(true) {
		if !slices.Contains(damaged, id) {
			whole = append(whole, id)
		}
	}
	if id, ok := pick(o.r, whole); ok {
		h.verify(o, h.primary, id, h.rec(id), nil, finalCheck)
	}
	t := o.r.IntN(nTrees)
	for _, id := range damaged {
		if rec := h.rec(id); rec != nil {
			t = rec.tree // back up what the damaged snapshot held, if the tree still does
			break
		}
	}
	switch id, bres := h.backup(o, t, false, 0, 0, nil); {
	case id != "":
		h.verify(o, h.primary, id, h.rec(id), nil, finalCheck)
	case strings.Contains(bres.stderr, "no space left on device"):
		// The repository filled its file system (no fault injected):
		// the backup said so and saved nothing; no promise broken.
		h.anomaly(o, bres)
	default:
		h.violate(o, "backup of tree%d after check --repair saved no snapshot: %s", t, firstLine(bres.stderr))
	}
	res = h.lifeboat(o, h.owner, h.primary, "check", "--repair", "--forget-damaged")
	if res.code != 0 {
		h.violate(o, "check --repair --forget-damaged: exit %d: %s", res.code, firstLine(res.stderr))
		return
	}
	removed := parseRepair(res).Repair.SnapshotsRemoved
	for _, id := range removed {
		if !slices.Contains(damaged, id) {
			h.violate(o, "check --repair --forget-damaged removed snapshot %s, which the repair did not list as damaged", short(id))
		}
	}
	h.forgotten(o, removed)
	h.mu.Lock()
	h.sum.RemovedByRepair += len(removed)
	h.mu.Unlock()
	for _, id := range damaged {
		if !slices.Contains(removed, id) && h.rec(id) != nil {
			h.logf(o, "snapshot %s healed by the new backup", short(id))
			h.verify(o, h.primary, id, h.rec(id), nil, finalCheck)
		}
	}
	h.reconcile(o)
	if res := h.lifeboat(o, h.owner, h.primary, "check", "--read-data"); res.code != 0 {
		h.violate(o, "check --read-data after check --repair --forget-damaged: exit %d: %s", res.code, checkErrors(res))
	}
}

// final recovers and verifies: no manual unlock; a prune and
// check --read-data must succeed, and every live snapshot must restore.
func (h *harness) final(ctx context.Context) {
	o := &op{id: 0, kind: "final", r: rand.New(rand.NewPCG(h.cfg.Seed, 1))}
	o.start = time.Now()
	if h.srv != nil && !h.srv.Running() {
		if err := h.srv.Restart(); err != nil {
			h.violate(o, "harness: restart MinIO: %v", err)
			return
		}
	}
	h.reconcile(o)
	retry := []string{"--retry-lock", "2m"}
	if res := h.lifeboat(o, h.owner, h.primary, append(h.prune(), retry...)...); res.code != 0 {
		if m := snapshotRef.FindStringSubmatch(res.stderr); m != nil && h.knownBroken(h.fullID(m[1])) {
			h.logf(o, "prune stopped by snapshot %s, known broken", m[1])
		} else {
			h.violate(o, "prune after recovery: exit %d: %s", res.code, firstLine(res.stderr))
		}
	}
	if res := h.lifeboat(o, h.owner, h.primary, append([]string{"check", "--read-data"}, retry...)...); res.code != 0 {
		if errs := checkErrorList(res); len(errs) == 0 || !h.falseAlarm(o, errs) {
			h.violate(o, "check --read-data after recovery: exit %d: %s", res.code, checkErrors(res))
		}
	}
	h.reconcile(o)
	for _, id := range h.aliveIDs(false) {
		if ctx.Err() != nil {
			return
		}
		h.verify(o, h.primary, id, h.rec(id), retry, finalCheck)
	}
}
