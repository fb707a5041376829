package torture

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/lifeboat-backup/lifeboat/engine/storage/miniotest"
	"github.com/lifeboat-backup/lifeboat/internal/testutil/gentree"
)

// Config selects what Run does.
type Config struct {
	// Duration is how long operations are scheduled; the recovery and
	// the final verification of every live snapshot come after it.
	Duration time.Duration
	// Store is "file" (a file:// repository, on a tmpfs of TmpfsSize
	// when it can be mounted) or "minio".
	Store string
	// Seed selects the schedule: the same seed gives the same sequence of
	// operations and parameters (the interleaving of the processes is
	// the kernel's).
	Seed uint64
	// Dir holds the repositories, trees, restores and the operation log
	// (created; empty: a new temporary directory, removed when Run ends
	// without violations).
	Dir string
	// Binary is the lifeboat binary; empty: built with go build into Dir.
	Binary string
	// Ops are the operation kinds scheduled (see Kinds); empty: all that
	// the store supports.
	Ops []string
	// Lease, when set, is passed to every command as
	// LIFEBOAT_TEST_LOCK_LEASE, and stalls last up to 1.5 leases, so that
	// stopped commands outlive their leases; without it stalls last up to
	// 8 s (shorter than the real 5-minute lease).
	Lease time.Duration
	// TmpfsSize is the size of the tmpfs of a file:// repository (0:
	// 64 MiB).
	TmpfsSize int64
	// Concurrency bounds the lifeboat commands running at once (0: 3).
	Concurrency int
	// Out receives the header, each violation as it is found, and the
	// summary; the operation log goes to Dir/ops.log (and to Out when
	// there are violations).
	Out io.Writer
	// Verbose also copies the operation log to Out as it is written.
	Verbose bool
}

// kind is one kind of scheduled operation.
type kind struct {
	name   string
	weight int
	excl   bool // runs alone: waits for all others, none starts meanwhile
	store  string
}

var kinds = []kind{
	{name: "backup", weight: 30},
	{name: "forget", weight: 4},
	{name: "forget-keep", weight: 3},
	{name: "tag", weight: 3},
	{name: "prune", weight: 6},
	{name: "prune-race", weight: 3},
	{name: "check", weight: 3},
	{name: "check-read", weight: 3},
	{name: "restore", weight: 10},
	{name: "replicate", weight: 3},
	{name: "stall", weight: 3},
	{name: "minio-restart", weight: 2, store: "minio"},
	{name: "disk-full", weight: 2, store: "file"},
	{name: "damage", weight: 2, excl: true},
	// Modifiers of the commands above, not operations of their own.
	{name: "kill"},
	{name: "retry-lock"},
}

// Kinds lists the operation kinds and modifiers Config.Ops may name.
func Kinds() []string {
	var out []string
	for _, k := range kinds {
		out = append(out, k.name)
	}
	return out
}

const nTrees = 3

// Run runs the workload and the final verification. Violations are in
// the summary; the error is for a harness that could not run.
func Run(ctx context.Context, cfg Config) (*Summary, error) {
	h, err := newHarness(ctx, cfg)
	if err != nil {
		return nil, err
	}
	defer h.close()
	h.schedule(ctx)
	h.final(ctx)
	h.sum.Duration = time.Since(h.start).Round(time.Second)
	fmt.Fprintf(h.out, "%s\n", h.sum)
	if len(h.sum.Violations) > 0 {
		fmt.Fprintf(h.out, "torture: %d violations, seed %d (replay: --seed %d --store %s); the operations involved (all of them in %s):\n%s",
			len(h.sum.Violations), cfg.Seed, cfg.Seed, cfg.Store, h.logPath, h.involved())
	}
	return h.sum, nil
}

type window struct {
	what       string
	start, end time.Time // end zero: still open
}

type harness struct {
	cfg          Config
	out          io.Writer
	dir          string
	ownDir       bool
	bin          string
	primary      string // repository URLs
	second       string
	env          []string
	raw          rawStore
	srv          *miniotest.Server
	tmpfs        string // mount point of the repository's tmpfs, "" when none
	trees        [nTrees]string
	treeMu       [nTrees]sync.Mutex
	owner        string // key files
	restoreFlags []string
	canRepair    bool       // the binary has check --repair
	minioMu      sync.Mutex // one MinIO restart at a time
	host         string
	enabled      map[string]bool
	weights      []kind
	rng          *rand.Rand
	start        time.Time

	excl   sync.RWMutex // exclusive operations hold it for writing
	replMu sync.Mutex   // one replicate (and restore from the secondary) at a time
	listMu sync.Mutex   // one reconciliation at a time

	mu      sync.Mutex // guards everything below
	log     *os.File
	logBuf  strings.Builder
	logPath string
	procs   map[int]*proc // running commands by sequence number
	windows []*window
	backups map[int]*backupRec
	snaps   map[string]*snap
	order   []string       // snapshot IDs in registration order
	keeping map[int]bool   // running forget --keep-last operations
	broken  map[string]int // "URL ID" of snapshots reported broken → the operation that did
	sum     *Summary
}

func newHarness(ctx context.Context, cfg Config) (*harness, error) {
	if cfg.Out == nil {
		cfg.Out = io.Discard
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 3
	}
	if cfg.TmpfsSize <= 0 {
		cfg.TmpfsSize = 64 << 20
	}
	if cfg.Store != "file" && cfg.Store != "minio" {
		return nil, fmt.Errorf("torture: store %q: want file or minio", cfg.Store)
	}
	h := &harness{cfg: cfg, out: cfg.Out, procs: map[int]*proc{}, backups: map[int]*backupRec{}, snaps: map[string]*snap{}, keeping: map[int]bool{}, broken: map[string]int{},
		sum: newSummary(cfg), rng: rand.New(rand.NewPCG(cfg.Seed, 0x746f727475726521))}
	h.enabled = map[string]bool{}
	for _, k := range kinds {
		if k.store == "" || k.store == cfg.Store {
			h.enabled[k.name] = len(cfg.Ops) == 0
		}
	}
	for _, name := range cfg.Ops {
		if _, ok := h.enabled[name]; !ok {
			return nil, fmt.Errorf("torture: operation %q unknown or not for store %s (have %s)", name, cfg.Store, strings.Join(Kinds(), ", "))
		}
		h.enabled[name] = true
	}
	h.dir = cfg.Dir
	if h.dir == "" {
		d, err := os.MkdirTemp("", "lifeboat-torture-")
		if err != nil {
			return nil, err
		}
		h.dir, h.ownDir = d, true
	}
	if err := os.MkdirAll(h.dir, 0o700); err != nil {
		return nil, err
	}
	var err error
	h.logPath = filepath.Join(h.dir, "ops.log")
	if h.log, err = os.Create(h.logPath); err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			h.close()
		}
	}()
	if err := h.setup(ctx); err != nil {
		return nil, err
	}
	for _, k := range kinds {
		if h.enabled[k.name] && k.weight > 0 {
			h.weights = append(h.weights, k)
		}
	}
	if len(h.weights) == 0 {
		return nil, errors.New("torture: no operation enabled")
	}
	var names []string
	for _, k := range kinds {
		if h.enabled[k.name] {
			names = append(names, k.name)
		}
	}
	fmt.Fprintf(h.out, "torture: seed %d, store %s, %s, dir %s\ntorture: operations %s\n", cfg.Seed, cfg.Store, cfg.Duration, h.dir, strings.Join(names, " "))
	ok = true
	return h, nil
}

func (h *harness) setup(ctx context.Context) error {
	h.bin = h.cfg.Binary
	if h.bin == "" {
		h.bin = filepath.Join(h.dir, "lifeboat")
		out, err := exec.CommandContext(ctx, "go", "build", "-o", h.bin, "github.com/lifeboat-backup/lifeboat/cmd/lifeboat").CombinedOutput()
		if err != nil {
			return fmt.Errorf("torture: go build lifeboat: %v\n%s", err, out)
		}
	}
	switch h.cfg.Store {
	case "file":
		fsDir := filepath.Join(h.dir, "repofs")
		if err := os.MkdirAll(fsDir, 0o700); err != nil {
			return err
		}
		if err := unix.Mount("tmpfs", fsDir, "tmpfs", 0, fmt.Sprintf("size=%d", h.cfg.TmpfsSize)); err == nil {
			h.tmpfs = fsDir
		} else {
			h.enabled["disk-full"] = false
			fmt.Fprintf(h.out, "torture: no tmpfs for the repository (mount: %v): no disk-full operations\n", err)
		}
		root := filepath.Join(fsDir, "repo")
		h.primary = "file://" + root
		h.second = "file://" + filepath.Join(h.dir, "secondary")
		h.raw = dirStore{root: root}
	case "minio":
		bin, err := miniotest.Binary()
		if err != nil {
			return fmt.Errorf("torture: %w", err)
		}
		if h.srv, err = miniotest.New(bin, filepath.Join(h.dir, "minio")); err != nil {
			return fmt.Errorf("torture: %w", err)
		}
		for _, b := range []string{"primary", "secondary"} {
			if err := h.srv.MakeBucket(ctx, b); err != nil {
				return err
			}
		}
		h.primary, h.second = h.srv.URL("primary", ""), h.srv.URL("secondary", "")
		h.env = h.srv.Env()
		h.raw = s3Store{c: h.srv.Client(), bucket: "primary"}
	}
	if h.cfg.Lease > 0 {
		h.env = append(h.env, "LIFEBOAT_TEST_LOCK_LEASE="+h.cfg.Lease.String())
	}
	// A restore recreates what the tree had: setuid bits and device nodes
	// too, where the binary restores them only when asked.
	if help, err := exec.CommandContext(ctx, h.bin, "restore", "--help").Output(); err == nil {
		for _, f := range []string{"--keep-setuid", "--devices"} {
			if strings.Contains(string(help), f+" ") {
				h.restoreFlags = append(h.restoreFlags, f)
			}
		}
	}
	if help, err := exec.CommandContext(ctx, h.bin, "check", "--help").Output(); err == nil {
		h.canRepair = strings.Contains(string(help), "--forget-damaged")
	}
	if err := exec.CommandContext(ctx, h.bin, "tag", "--help").Run(); err != nil {
		h.enabled["tag"] = false // an older binary
	}
	h.owner, h.host = filepath.Join(h.dir, "owner.key"), filepath.Join(h.dir, "host.key")
	h.start = time.Now()
	init := &op{id: 0, kind: "init"}
	if res := h.lifeboat(init, "", h.primary, "init", "--owner-key-out", h.owner, "--host-key-out", h.host); res.code != 0 {
		return fmt.Errorf("torture: init %s: exit %d: %s", h.primary, res.code, res.stderr)
	}
	for i := range h.trees {
		h.trees[i] = filepath.Join(h.dir, "trees", fmt.Sprintf("tree%d", i))
		opts := gentree.Options{Size: int64(1+i) << 19, Seed: int64(h.cfg.Seed) + int64(i), NoSpecial: os.Geteuid() != 0}
		if _, err := gentree.Generate(h.trees[i], opts); err != nil {
			return fmt.Errorf("torture: %w", err)
		}
	}
	return nil
}

func (h *harness) close() {
	h.mu.Lock()
	for _, p := range h.procs {
		_ = p.cmd.Process.Kill()
	}
	h.mu.Unlock()
	if h.srv != nil {
		h.srv.Stop()
	}
	if h.tmpfs != "" {
		_ = unix.Unmount(h.tmpfs, unix.MNT_DETACH)
	}
	if h.log != nil {
		h.log.Close()
	}
	if h.ownDir && h.sum != nil && len(h.sum.Violations) == 0 {
		os.RemoveAll(h.dir)
	}
}

// schedule starts operations drawn from the seeded generator until
// Duration has passed since the first, then waits for them. (Counted
// from here, not from the harness's start: under load, init and the
// trees took all of a short Duration and no operation ran.)
func (h *harness) schedule(ctx context.Context) {
	deadline := time.Now().Add(h.cfg.Duration)
	slots := make(chan struct{}, h.cfg.Concurrency)
	var wg sync.WaitGroup
	total := 0
	for _, k := range h.weights {
		total += k.weight
	}
	for i := 1; time.Now().Before(deadline) && ctx.Err() == nil; i++ {
		n := h.rng.IntN(total)
		var k kind
		for _, k = range h.weights {
			if n < k.weight {
				break
			}
			n -= k.weight
		}
		o := &op{id: i, kind: k.name, r: rand.New(rand.NewPCG(h.cfg.Seed, h.rng.Uint64()))}
		gap := time.Duration(h.rng.IntN(500)) * time.Millisecond
		switch {
		case k.excl:
			h.excl.Lock()
			h.run(ctx, o)
			h.excl.Unlock()
		case k.name == "stall" || k.name == "minio-restart" || k.name == "disk-full":
			h.excl.RLock()
			wg.Add(1)
			go func() { defer wg.Done(); defer h.excl.RUnlock(); h.run(ctx, o) }()
		default:
			slots <- struct{}{}
			h.excl.RLock()
			wg.Add(1)
			go func() { defer wg.Done(); defer func() { h.excl.RUnlock(); <-slots }(); h.run(ctx, o) }()
		}
		select {
		case <-time.After(gap):
		case <-ctx.Done():
		}
	}
	wg.Wait()
}

// run runs one operation and logs its start and end.
func (h *harness) run(ctx context.Context, o *op) {
	h.mu.Lock()
	h.sum.Ops[o.kind]++
	h.mu.Unlock()
	o.start = time.Now()
	h.logf(o, "start")
	switch o.kind {
	case "backup":
		h.opBackup(o)
	case "forget":
		h.opForget(o)
	case "forget-keep":
		h.opForgetKeep(o)
	case "tag":
		h.opTag(o)
	case "prune":
		h.opPrune(o)
	case "prune-race":
		h.opPruneRace(o)
	case "check", "check-read":
		h.opCheck(o)
	case "restore":
		h.opRestore(o)
	case "replicate":
		h.opReplicate(o)
	case "stall":
		h.opStall(o)
	case "minio-restart":
		h.opMinioRestart(o)
	case "disk-full":
		h.opDiskFull(o)
	case "damage":
		h.opDamage(ctx, o)
	}
	h.logf(o, "end (%s)", time.Since(o.start).Round(time.Millisecond))
}

// logf writes a line of the operation log.
func (h *harness) logf(o *op, format string, args ...any) {
	line := fmt.Sprintf("%8.2fs #%d %s: %s\n", time.Since(h.start).Seconds(), o.id, o.kind, fmt.Sprintf(format, args...))
	h.mu.Lock()
	defer h.mu.Unlock()
	h.logBuf.WriteString(line)
	_, _ = h.log.WriteString(line)
	if h.cfg.Verbose {
		fmt.Fprint(h.out, line)
	}
}

// involved returns the log lines of the operations that the violations
// name (the operation that found it, the backup that made the snapshot).
func (h *harness) involved() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	ids := map[string]bool{}
	for _, v := range h.sum.Violations {
		for _, m := range opRef.FindAllString(v, -1) {
			ids[m] = true
		}
	}
	var b strings.Builder
	for _, line := range strings.SplitAfter(h.logBuf.String(), "\n") {
		if m := opRef.FindString(line); m != "" && ids[m] {
			b.WriteString(line)
		}
	}
	return b.String()
}

var opRef = regexp.MustCompile(`#[0-9]+\b`)

// violate records a broken promise.
func (h *harness) violate(o *op, format string, args ...any) {
	msg := fmt.Sprintf("op #%d %s: %s", o.id, o.kind, fmt.Sprintf(format, args...))
	h.logf(o, "VIOLATION: %s", fmt.Sprintf(format, args...))
	h.mu.Lock()
	h.sum.Violations = append(h.sum.Violations, msg)
	h.mu.Unlock()
	fmt.Fprintf(h.out, "VIOLATION (seed %d): %s\n", h.cfg.Seed, msg)
}

// anomaly records a failure that no injected fault explains but that
// broke no promise (a command that failed without saying it succeeded).
func (h *harness) anomaly(o *op, res result) {
	h.logf(o, "ANOMALY: exit %d without an injected fault: %s", res.code, firstLine(res.stderr))
	h.mu.Lock()
	h.sum.Anomalies = append(h.sum.Anomalies, fmt.Sprintf("op #%d %s: exit %d: %s", o.id, o.kind, res.code, firstLine(res.stderr)))
	h.mu.Unlock()
}

// openWindow starts a fault window (MinIO down, disk full, damage);
// failures of operations that overlap one are expected.
func (h *harness) openWindow(what string) *window {
	w := &window{what: what, start: time.Now()}
	h.mu.Lock()
	h.windows = append(h.windows, w)
	h.mu.Unlock()
	return w
}

func (h *harness) closeWindow(w *window) {
	h.mu.Lock()
	w.end = time.Now()
	h.mu.Unlock()
}

// excuse returns why a failure of o is expected, or "".
func (h *harness) excuse(o *op, res result) string {
	if res.killed {
		return "killed"
	}
	if res.code == exitLocked {
		return "locked"
	}
	if res.stalled {
		return "stalled"
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, w := range h.windows {
		if w.start.Before(res.end) && (w.end.IsZero() || w.end.After(res.start)) {
			return w.what
		}
	}
	return ""
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	if len(s) > 300 {
		s = s[:300] + "..."
	}
	return s
}

// Summary counts what a run did and lists what it found.
type Summary struct {
	Seed          uint64
	Store         string
	Duration      time.Duration
	Ops           map[string]int
	Commands      int // lifeboat processes run
	Kills         int // commands ended by SIGKILL
	Stalls        int // commands stopped with SIGSTOP and continued
	MinioRestarts int
	DiskFull      int
	Damages       int // objects damaged on purpose (each undone or repaired)
	Saved         int // snapshots reported saved by a backup
	Adopted       int // snapshots found in the repository that no backup reported (killed, failed)
	Forgotten     int
	Verified      int // snapshot restores compared equal to their recorded tree
	ExpectedLoss  int // restores that failed while damage was injected
	// DamagedSnapshots are those check --repair listed as referencing lost
	// data; RemovedByRepair those its --forget-damaged removed.
	DamagedSnapshots int
	RemovedByRepair  int
	Violations       []string
	Anomalies        []string
}

func newSummary(cfg Config) *Summary {
	return &Summary{Seed: cfg.Seed, Store: cfg.Store, Ops: map[string]int{}}
}

func (s *Summary) String() string {
	var ops []string
	keys := make([]string, 0, len(s.Ops))
	for k := range s.Ops {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	n := 0
	for _, k := range keys {
		ops = append(ops, fmt.Sprintf("%s %d", k, s.Ops[k]))
		n += s.Ops[k]
	}
	return fmt.Sprintf("torture summary: seed %d, store %s, %s: %d operations (%s), %d commands; %d kills, %d stalls, %d MinIO restarts, %d disk-full, %d damages; snapshots: %d saved, %d adopted, %d forgotten, %d restores verified, %d expected losses, %d damaged by injection, %d removed by repair; %d anomalies, %d violations",
		s.Seed, s.Store, s.Duration, n, strings.Join(ops, ", "), s.Commands, s.Kills, s.Stalls, s.MinioRestarts, s.DiskFull, s.Damages,
		s.Saved, s.Adopted, s.Forgotten, s.Verified, s.ExpectedLoss, s.DamagedSnapshots, s.RemovedByRepair, len(s.Anomalies), len(s.Violations))
}

// aliveIDs returns the IDs of the snapshots that must restore, in the
// order they became known.
func (h *harness) aliveIDs(excludePending bool) []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var ids []string
	for _, id := range h.order {
		s := h.snaps[id]
		if !s.gone && (!excludePending || len(s.pending) == 0) {
			ids = append(ids, id)
		}
	}
	return ids
}

func pick[T any](r *rand.Rand, s []T) (T, bool) {
	var zero T
	if len(s) == 0 {
		return zero, false
	}
	return s[r.IntN(len(s))], true
}
