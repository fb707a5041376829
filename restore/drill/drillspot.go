package drill

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/lifeboat-backup/lifeboat/engine/repo"
	"github.com/lifeboat-backup/lifeboat/engine/snapshot"
	"github.com/lifeboat-backup/lifeboat/policies"
	"github.com/lifeboat-backup/lifeboat/targets/files"
)

// SpotCheckOptions configure a spot check.
type SpotCheckOptions struct {
	Policy  *policies.Policy
	From    string
	Targets []string
	// Tolerance is the allowed relative difference of file counts, total
	// and per directory (default 0.05).
	Tolerance float64
	// MinDirFiles: directories holding fewer files (live and in the
	// snapshot) are not compared on their own (default 10).
	MinDirFiles int
	// Sample is how many live files are hashed against the snapshot
	// (default 32).
	Sample int
	Now    func() time.Time
	Rand   *rand.Rand
}

// SpotCheckResult is the spot check of one files target.
type SpotCheckResult struct {
	Target        string   `json:"target"`
	Snapshot      string   `json:"snapshot"`
	LiveFiles     int64    `json:"live_files"`
	SnapshotFiles int64    `json:"snapshot_files"`
	Sampled       int      `json:"sampled"`
	Matched       int      `json:"matched"`
	Changed       int      `json:"changed_since_backup"` // sampled files modified after the backup: not compared
	OK            bool     `json:"ok"`
	Problems      []string `json:"problems,omitempty"`
}

// SpotCheck compares each files target's live source with its latest
// snapshot without restoring it: file counts, in total and per directory,
// within a tolerance, and the content of a random sample of live files
// (unchanged since the backup by size and mtime) against the snapshot's
// blobs. It catches a wrong exclude or a silently emptied directory.
func SpotCheck(ctx context.Context, r snapshot.Repository, o SpotCheckOptions) (*Report, error) {
	p := o.Policy
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.From == "" {
		o.From = "primary"
	}
	if o.Tolerance <= 0 {
		o.Tolerance = 0.05
	}
	if o.MinDirFiles <= 0 {
		o.MinDirFiles = 10
	}
	if o.Sample <= 0 {
		o.Sample = 32
	}
	if o.Rand == nil {
		o.Rand = rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
	}
	start := o.Now()
	rep := &Report{Schema: Schema, Kind: "spot_check", Policy: p.Name, Host: p.Host, From: o.From, Start: start.UTC(),
		Phases: []Phase{}, Targets: []Target{}, Checks: []CheckResult{}, SpotChecks: []SpotCheckResult{}}
	if !r.CanReadData() {
		return rep, fmt.Errorf("spot check: %w: the policy's key_file is a host key, which cannot read content; give the owner key with --key-file or LIFEBOAT_KEY_FILE", repo.ErrNoDataKey)
	}
	ok := true
	var rpo float64
	for _, t := range p.Targets {
		if len(o.Targets) > 0 && !contains(o.Targets, t.Name) {
			continue
		}
		if t.Kind != policies.KindFiles {
			rep.Notes = append(rep.Notes, "target "+t.Name+": spot checks cover files targets only")
			continue
		}
		sn, err := r.FindSnapshot(ctx, "latest", func(s *snapshot.Snapshot) bool { return s.Target == t.Name && s.Host == p.Host })
		if err != nil {
			return rep, fmt.Errorf("target %s: %w", t.Name, err)
		}
		rp := sn.RecoveryPoint.Time
		if rp.IsZero() {
			rp = sn.Time
		}
		rpo = max(rpo, start.Sub(rp).Seconds())
		t0 := o.Now()
		var res *SpotCheckResult
		err = snapshot.WithReader(ctx, r, sn, func(s snapshot.Reader) (err error) {
			res, err = spotCheck(ctx, s, &t, o)
			return err
		})
		if err != nil {
			return rep, fmt.Errorf("target %s: %w", t.Name, err)
		}
		rep.Phases = append(rep.Phases, Phase{Name: "spot check " + t.Name, Target: t.Name, Seconds: o.Now().Sub(t0).Seconds(), InRTO: false})
		rep.Targets = append(rep.Targets, Target{Name: t.Name, Kind: t.Kind, Snapshot: sn.ID.String(), SnapshotTime: sn.Time.UTC(),
			RecoveryPoint: rp.UTC(), RPOSeconds: start.Sub(rp).Seconds(), Files: res.SnapshotFiles})
		ok = ok && res.OK
		rep.SpotChecks = append(rep.SpotChecks, *res)
	}
	rep.End = o.Now().UTC()
	// A spot check restores nothing: RTO is not measured.
	rep.RTO = Measure{Met: true}
	rep.RPO = measure(rpo, p.Objectives.RPO.D())
	switch {
	case !ok:
		rep.Status = CheckFailed
	case !rep.RPO.Met:
		rep.Status = ObjectiveViolated
	default:
		rep.Status = Passed
	}
	return rep, nil
}

type liveFile struct {
	path, src string
	size      int64
	mtime     time.Time
}

// dirsOf calls fn for every ancestor directory of a file path ("" is the
// whole tree).
func dirsOf(p string, fn func(string)) {
	fn("")
	for i := 0; i < len(p); i++ {
		if p[i] == '/' {
			fn(p[:i])
		}
	}
}

func spotCheck(ctx context.Context, s snapshot.Reader, t *policies.Target, o SpotCheckOptions) (*SpotCheckResult, error) {
	sn := s.Info()
	res := &SpotCheckResult{Target: t.Name, Snapshot: sn.ID.String()}
	live := map[string]int64{}
	stored := map[string]int64{}
	// Reservoir sample of live files.
	var sample []liveFile
	var seen int
	err := files.Walk(ctx, t.Paths, files.Options{Excludes: t.Exclude, OneFileSystem: t.OneFileSystem,
		OnError: func(string, error) error { return nil }}, func(e snapshot.Entry, src string) error {
		if e.Type != snapshot.TypeFile && e.Type != snapshot.TypeHardlink {
			return nil
		}
		res.LiveFiles++
		dirsOf(e.Path, func(d string) { live[d]++ })
		if e.Type != snapshot.TypeFile {
			return nil
		}
		seen++
		f := liveFile{e.Path, src, e.Size, e.ModTime}
		if len(sample) < o.Sample {
			sample = append(sample, f)
		} else if j := o.Rand.IntN(seen); j < o.Sample {
			sample[j] = f
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("live source: %w", err)
	}
	want := map[string]liveFile{}
	for _, f := range sample {
		want[f.path] = f
	}
	nodes := map[string]*snapshot.Node{}
	tr := s.Tree(ctx)
	for {
		n, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		if n.Type != snapshot.TypeFile && n.Type != snapshot.TypeHardlink {
			continue
		}
		res.SnapshotFiles++
		dirsOf(n.Path, func(d string) { stored[d]++ })
		if _, ok := want[n.Path]; ok && n.Type == snapshot.TypeFile {
			nodes[n.Path] = n
		}
	}
	// Counts.
	differ := func(a, b int64) bool {
		hi := max(a, b)
		return hi > 0 && float64(hi-min(a, b)) > o.Tolerance*float64(hi)
	}
	if differ(res.LiveFiles, res.SnapshotFiles) {
		res.Problems = append(res.Problems, fmt.Sprintf("file count: %d live, %d in snapshot %s (tolerance %.0f%%)",
			res.LiveFiles, res.SnapshotFiles, sn.ID.Short(), o.Tolerance*100))
	}
	dirs := map[string]bool{}
	for d := range live {
		dirs[d] = true
	}
	for d := range stored {
		dirs[d] = true
	}
	var names []string
	for d := range dirs {
		if d != "" {
			names = append(names, d)
		}
	}
	sort.Strings(names)
	var differing []string
	for _, d := range names {
		if l, s := live[d], stored[d]; max(l, s) >= int64(o.MinDirFiles) && differ(l, s) {
			differing = append(differing, d)
		}
	}
	// Report the deepest differing directories: where the files went.
	reported := 0
	for i, d := range differing {
		if i+1 < len(differing) && strings.HasPrefix(differing[i+1], d+"/") {
			continue
		}
		if reported++; reported > 10 {
			res.Problems = append(res.Problems, "more directories differ")
			break
		}
		res.Problems = append(res.Problems, fmt.Sprintf("directory %s: %d files live, %d in the snapshot", d, live[d], stored[d]))
	}
	// Content sample.
	for _, f := range sample {
		n := nodes[f.path]
		if n == nil {
			continue // counted above
		}
		res.Sampled++
		if n.Size != f.size || !n.ModTime.Equal(f.mtime) {
			res.Changed++
			continue
		}
		same, err := sameContent(ctx, s, n, f.src)
		if err != nil {
			return nil, err
		}
		if same {
			res.Matched++
		} else {
			res.Problems = append(res.Problems, fmt.Sprintf("%s: live content differs from the snapshot though size and mtime match", path.Clean(f.path)))
		}
	}
	res.OK = len(res.Problems) == 0
	return res, nil
}

// sameContent hashes the live file and the snapshot's content of n.
func sameContent(ctx context.Context, s snapshot.Reader, n *snapshot.Node, src string) (bool, error) {
	hs := sha256.New()
	rc := s.Open(ctx, n)
	_, err := io.Copy(hs, rc)
	rc.Close()
	if err != nil {
		return false, fmt.Errorf("%s: %w", n.Path, err)
	}
	f, err := os.Open(src)
	if err != nil {
		return false, nil // vanished or unreadable since the walk: not a backup problem
	}
	defer f.Close()
	hl := sha256.New()
	if _, err := io.Copy(hl, f); err != nil {
		return false, nil
	}
	return bytes.Equal(hs.Sum(nil), hl.Sum(nil)), nil
}
