package restic

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/lifeboat-backup/lifeboat/engine"
	"github.com/lifeboat-backup/lifeboat/engine/replicate"
	"github.com/lifeboat-backup/lifeboat/engine/repo"
	"github.com/lifeboat-backup/lifeboat/engine/snapshot"
	"github.com/lifeboat-backup/lifeboat/policies"
	"github.com/lifeboat-backup/lifeboat/targets/files"
)

// Tags lifeboat puts on restic snapshots besides the user's: the target
// name and kind. They are read back into repo.Snapshot's Target and Kind
// and not shown among its Tags. The policy tag (policy:NAME) stays a tag.
const (
	tagTarget = "target:"
	tagKind   = "kind:"
)

// ArchiveSuffix ends the stdin file name of stream snapshots: /TARGET.lifeboat.
const ArchiveSuffix = ".lifeboat"

// Engine is a restic repository as an engine.Engine.
type Engine struct{ R *Restic }

var _ engine.Engine = (*Engine)(nil)

// Name implements engine.Engine.
func (*Engine) Name() string { return "restic" }

// Init creates the repository.
func (e *Engine) Init(ctx context.Context) error {
	return e.R.run(ctx, cmd{args: []string{"init"}})
}

// Exists reports whether the location holds a repository the password opens.
func (e *Engine) Exists(ctx context.Context) (bool, error) {
	err := e.R.run(ctx, cmd{args: []string{"cat", "config"}})
	if errors.Is(err, ErrNoRepository) {
		return false, nil
	}
	return err == nil, err
}

// backupSummary is restic backup's last --json message.
type backupSummary struct {
	MessageType         string `json:"message_type"`
	SnapshotID          string `json:"snapshot_id"`
	DryRun              bool   `json:"dry_run"`
	FilesNew            int64  `json:"files_new"`
	FilesChanged        int64  `json:"files_changed"`
	FilesUnmodified     int64  `json:"files_unmodified"`
	DirsNew             int64  `json:"dirs_new"`
	DirsChanged         int64  `json:"dirs_changed"`
	DirsUnmodified      int64  `json:"dirs_unmodified"`
	DataAdded           int64  `json:"data_added"`
	DataAddedPacked     int64  `json:"data_added_packed"`
	TotalFilesProcessed int64  `json:"total_files_processed"`
	TotalBytesProcessed int64  `json:"total_bytes_processed"`
	// error messages
	Error struct {
		Message string `json:"message"`
	} `json:"error"`
	Item string `json:"item"`
}

// Backup implements engine.Engine: file trees with restic's own tree
// (restic backup PATHS), every other kind as one stream archive piped into
// restic backup --stdin.
func (e *Engine) Backup(ctx context.Context, src engine.Source, opts engine.BackupOptions) (*engine.BackupResult, error) {
	if opts.Target == "" {
		opts.Target = src.Kind()
	}
	if opts.Host == "" {
		opts.Host, _ = os.Hostname()
	}
	start := time.Now()
	args := []string{"backup", "--json", "--host", opts.Host, "--tag", tagTarget + opts.Target, "--tag", tagKind + src.Kind()}
	for _, t := range opts.Tags {
		if strings.Contains(t, ",") {
			return nil, fmt.Errorf("tag %q: restic tags cannot hold a comma", t)
		}
		args = append(args, "--tag", t)
	}
	if opts.Parent != nil {
		args = append(args, "--parent", opts.Parent.String())
	}
	if opts.NoParent {
		args = append(args, "--force")
	}
	if opts.DryRun {
		args = append(args, "--dry-run") // restic's own: no snapshot, no ID in its summary
	}
	if !opts.Time.IsZero() {
		// restic reads --time in its (our inherited) local zone
		args = append(args, "--time", opts.Time.Local().Format("2006-01-02 15:04:05"))
	}
	var res *engine.BackupResult
	var err error
	if fs, ok := src.(*files.Source); ok {
		res, err = e.backupFiles(ctx, fs, args)
	} else {
		res, err = e.backupStream(ctx, src, opts, args)
	}
	if err != nil {
		return nil, err
	}
	sn := res.Snapshot
	sn.Time, sn.Host, sn.Target, sn.Kind, sn.Tags = start.UTC(), opts.Host, opts.Target, src.Kind(), opts.Tags
	if !opts.Time.IsZero() {
		sn.Time = opts.Time.Truncate(time.Second).UTC()
	}
	sn.Stats.Duration = time.Since(start).Seconds()
	if sn.RecoveryPoint.Time.IsZero() {
		sn.RecoveryPoint.Time = sn.Time
	}
	sn.Program = "restic " + fmt.Sprintf("%d.%d.%d", e.R.Version[0], e.R.Version[1], e.R.Version[2])
	return res, nil
}

func (e *Engine) backupFiles(ctx context.Context, src *files.Source, args []string) (*engine.BackupResult, error) {
	roots := make([]string, len(src.Roots))
	for i, r := range src.Roots {
		if _, err := os.Lstat(r); err != nil {
			return nil, fmt.Errorf("backup root: %w", err)
		}
		roots[i] = r
	}
	for _, x := range src.Options.Excludes {
		args = append(args, "--exclude", x)
	}
	for _, x := range src.Options.IExcludes {
		args = append(args, "--iexclude", x)
	}
	for _, x := range src.Options.ExcludeIfPresent {
		args = append(args, "--exclude-if-present", x)
	}
	if src.Options.ExcludeCaches {
		args = append(args, "--exclude-caches")
	}
	if src.Options.OneFileSystem {
		args = append(args, "--one-file-system")
	}
	args = append(args, "--")
	args = append(args, roots...)
	var out bytes.Buffer
	err := e.R.run(ctx, cmd{args: args, stdout: &out})
	var re *Error
	// Exit 3: the snapshot was saved, some files could not be read.
	if err != nil && !(errors.As(err, &re) && re.Code == 3) {
		return nil, err
	}
	sum, warnings, err := parseBackup(out.Bytes())
	if err != nil {
		return nil, err
	}
	sn, err := summarySnapshot(sum)
	if err != nil {
		return nil, err
	}
	sn.Paths = roots
	sn.Stats.BytesIn = sum.TotalBytesProcessed
	return &engine.BackupResult{Snapshot: sn, Warnings: warnings}, nil
}

// parseBackup reads restic backup --json output: the summary and the
// entries it could not read.
func parseBackup(out []byte) (*backupSummary, []string, error) {
	var sum *backupSummary
	var warnings []string
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 0, 64<<10), 16<<20)
	for sc.Scan() {
		var m backupSummary
		if json.Unmarshal(sc.Bytes(), &m) != nil {
			continue // restic prints status lines too
		}
		switch m.MessageType {
		case "summary":
			sum = &m
		case "error":
			warnings = append(warnings, fmt.Sprintf("%s: %s", m.Item, m.Error.Message))
		}
	}
	if sum == nil || (sum.SnapshotID == "" && !sum.DryRun) {
		return nil, nil, fmt.Errorf("restic backup: no snapshot in its output (%d bytes of JSON)", len(out))
	}
	return sum, warnings, nil
}

func summarySnapshot(sum *backupSummary) (*snapshot.Snapshot, error) {
	var id snapshot.ID
	if !sum.DryRun {
		var err error
		if id, err = snapshot.ParseID(sum.SnapshotID); err != nil {
			return nil, fmt.Errorf("restic backup: snapshot id: %v", err)
		}
	}
	return &snapshot.Snapshot{ID: id, Stats: snapshot.Stats{
		Files:      sum.FilesNew + sum.FilesChanged + sum.FilesUnmodified,
		Dirs:       sum.DirsNew + sum.DirsChanged + sum.DirsUnmodified,
		BytesAdded: sum.DataAdded, BytesStored: sum.DataAddedPacked,
	}}, nil
}

// backupStream writes src as a stream archive into restic backup --stdin.
// Nothing touches the disk on the way. If the source fails, the snapshot
// restic saved of the cut archive is forgotten again (and would be refused
// by a restore: it has no end record).
func (e *Engine) backupStream(ctx context.Context, src engine.Source, opts engine.BackupOptions, args []string) (*engine.BackupResult, error) {
	args = append(args, "--stdin", "--stdin-filename", "/"+opts.Target+ArchiveSuffix)
	aon, ok := src.(engine.AllOrNothing)
	strict := ok && aon.AllOrNothing()
	prog := opts.Progress
	if prog == nil {
		prog = &engine.Progress{}
	}
	pr, pw := io.Pipe()
	var warnings []string
	var warnMu sync.Mutex
	var stats snapshot.Stats
	var rp snapshot.RecoveryPoint
	walkErr := make(chan error, 1)
	go func() {
		err := func() error {
			aw, err := newArchiveWriter(pw)
			if err != nil {
				return err
			}
			warn := func(p string, err error) {
				warnMu.Lock()
				defer warnMu.Unlock()
				warnings = append(warnings, fmt.Sprintf("%s: %v", p, err))
			}
			err = src.Walk(ctx, warn, func(en snapshot.Entry, open engine.Opener) error {
				var rc io.ReadCloser
				if open != nil {
					var err error
					if rc, err = open(); err != nil {
						if strict {
							return fmt.Errorf("%s: %w", en.Path, err)
						}
						warn(en.Path, err)
						return nil
					}
					defer rc.Close()
				}
				var r io.Reader
				if rc != nil {
					r = &countReader{r: rc, p: prog}
				}
				if err := aw.Entry(en, r); err != nil {
					return err
				}
				switch en.Type {
				case snapshot.TypeFile:
					stats.Files++
				case snapshot.TypeDir:
					stats.Dirs++
				default:
					stats.Others++
				}
				prog.Files.Add(1)
				return nil
			})
			if err != nil {
				return err
			}
			rp.Time = time.Now().UTC()
			if p, ok := src.(engine.RecoveryPointer); ok {
				if t, d := p.RecoveryPoint(); !t.IsZero() {
					rp = snapshot.RecoveryPoint{Time: t.UTC(), Details: d}
				}
			}
			stats.BytesIn = aw.bytes
			return aw.End(rp.Time, rp.Details)
		}()
		// A source error closes the stream short: restic sees the end of
		// its stdin. The error is kept and the snapshot forgotten below.
		walkErr <- err
		_ = pw.CloseWithError(err)
	}()
	var out bytes.Buffer
	runErr := e.R.run(ctx, cmd{args: args, stdin: pr, stdout: &out})
	_ = pr.Close()
	werr := <-walkErr
	// restic failing first (locked, wrong password) closes the pipe under
	// the source: its error is the one to report.
	if runErr != nil && (werr == nil || errors.Is(werr, io.ErrClosedPipe)) {
		return nil, runErr
	}
	if werr != nil {
		if sum, _, perr := parseBackup(out.Bytes()); perr == nil {
			if id, err := snapshot.ParseID(sum.SnapshotID); err == nil {
				if ferr := e.Forget(context.WithoutCancel(ctx), []snapshot.ID{id}); ferr != nil {
					return nil, fmt.Errorf("%w (and the cut snapshot %s could not be forgotten: %v)", werr, id.Short(), ferr)
				}
			}
		}
		return nil, werr
	}
	sum, _, err := parseBackup(out.Bytes())
	if err != nil {
		return nil, err
	}
	sn, err := summarySnapshot(sum)
	if err != nil {
		return nil, err
	}
	sn.Paths = src.Paths()
	sn.Stats.Files, sn.Stats.Dirs, sn.Stats.Others, sn.Stats.BytesIn = stats.Files, stats.Dirs, stats.Others, stats.BytesIn
	sn.Stats.BytesRead = stats.BytesIn
	sn.RecoveryPoint = rp
	return &engine.BackupResult{Snapshot: sn, Warnings: warnings}, nil
}

type countReader struct {
	r io.Reader
	p *engine.Progress
}

func (c *countReader) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	c.p.Bytes.Add(int64(n))
	c.p.BytesRead.Add(int64(n))
	return n, err
}

// resticSnapshot is one element of restic snapshots --json.
type resticSnapshot struct {
	ID       string    `json:"id"`
	Time     time.Time `json:"time"`
	Hostname string    `json:"hostname"`
	Username string    `json:"username"`
	Paths    []string  `json:"paths"`
	Tags     []string  `json:"tags"`
	Original string    `json:"original"`
	Program  string    `json:"program_version"`
	Summary  *struct {
		TotalFilesProcessed int64 `json:"total_files_processed"`
		TotalBytesProcessed int64 `json:"total_bytes_processed"`
		DataAdded           int64 `json:"data_added"`
		DataAddedPacked     int64 `json:"data_added_packed"`
	} `json:"summary"`
}

func (e *Engine) list(ctx context.Context) ([]resticSnapshot, error) {
	var out bytes.Buffer
	if err := e.R.run(ctx, cmd{args: []string{"snapshots", "--json"}, stdout: &out}); err != nil {
		return nil, err
	}
	var rs []resticSnapshot
	if err := json.Unmarshal(out.Bytes(), &rs); err != nil {
		return nil, fmt.Errorf("restic snapshots --json: %v", err)
	}
	return rs, nil
}

// FindSnapshot implements restore.Repository.
func (e *Engine) FindSnapshot(ctx context.Context, ref string, filter func(*snapshot.Snapshot) bool) (*snapshot.Snapshot, error) {
	sns, err := e.Snapshots(ctx)
	if err != nil {
		return nil, err
	}
	sn, err := engine.FindSnapshot(sns, ref, filter)
	if err != nil {
		return nil, fmt.Errorf("restic repository: %w", err)
	}
	return sn, nil
}

// Snapshots implements engine.Engine. Snapshots restic made without
// lifeboat (no target: tag) are listed as files snapshots named after
// their first path.
func (e *Engine) Snapshots(ctx context.Context) ([]*snapshot.Snapshot, error) {
	rs, err := e.list(ctx)
	if err != nil {
		return nil, err
	}
	sns := make([]*snapshot.Snapshot, 0, len(rs))
	for _, s := range rs {
		sn, err := toSnapshot(s)
		if err != nil {
			return nil, err
		}
		sns = append(sns, sn)
	}
	slices.SortStableFunc(sns, func(a, b *snapshot.Snapshot) int { return a.Time.Compare(b.Time) })
	return sns, nil
}

func toSnapshot(s resticSnapshot) (*snapshot.Snapshot, error) {
	id, err := snapshot.ParseID(s.ID)
	if err != nil {
		return nil, fmt.Errorf("restic snapshots: %v", err)
	}
	sn := &snapshot.Snapshot{ID: id, Time: s.Time.UTC(), Host: s.Hostname, Username: s.Username, Program: s.Program,
		Kind: "files", Paths: s.Paths}
	for _, t := range s.Tags {
		switch {
		case strings.HasPrefix(t, tagTarget):
			sn.Target = strings.TrimPrefix(t, tagTarget)
		case strings.HasPrefix(t, tagKind):
			sn.Kind = strings.TrimPrefix(t, tagKind)
		default:
			sn.Tags = append(sn.Tags, t)
		}
	}
	if sn.Target == "" && len(s.Paths) > 0 {
		sn.Target = path.Base(s.Paths[0])
	}
	if sn.Kind != "files" {
		sn.Paths = nil // the archive's name, not the source's
	}
	sn.RecoveryPoint.Time = sn.Time
	if s.Summary != nil {
		sn.Stats.Files = s.Summary.TotalFilesProcessed
		sn.Stats.BytesIn = s.Summary.TotalBytesProcessed
		sn.Stats.BytesAdded = s.Summary.DataAdded
		sn.Stats.BytesStored = s.Summary.DataAddedPacked
	}
	return sn, nil
}

// Forget implements engine.Engine: restic forget ID...
func (e *Engine) Forget(ctx context.Context, ids []snapshot.ID) error {
	if len(ids) == 0 {
		return nil
	}
	args := []string{"forget"}
	for _, id := range ids {
		args = append(args, id.String())
	}
	return e.R.run(ctx, cmd{args: args})
}

// Prune implements engine.Engine: restic prune. restic reports no
// counts in JSON, so the result is empty.
func (e *Engine) Prune(ctx context.Context) (*repo.PruneResult, error) {
	if err := e.R.run(ctx, cmd{args: []string{"prune"}}); err != nil {
		return nil, err
	}
	return &repo.PruneResult{}, nil
}

// Check runs restic check, reading readDataPercent of the packs (0: none).
func (e *Engine) Check(ctx context.Context, readDataPercent float64) error {
	args := []string{"check"}
	if readDataPercent > 0 {
		args = append(args, fmt.Sprintf("--read-data-subset=%g%%", min(readDataPercent, 100)))
	}
	return e.R.run(ctx, cmd{args: args})
}

// Unlock removes stale locks (restic unlock).
func (e *Engine) Unlock(ctx context.Context) error {
	return e.R.run(ctx, cmd{args: []string{"unlock"}})
}

// Size implements engine.Engine: restic stats --mode raw-data, the
// stored size of the blobs the snapshots reference (data forgotten but
// not yet pruned is not counted: restic has no command that sums its
// pack files).
func (e *Engine) Size(ctx context.Context) (int64, error) {
	var out bytes.Buffer
	if err := e.R.run(ctx, cmd{args: []string{"stats", "--json", "--mode", "raw-data"}, stdout: &out}); err != nil {
		return 0, err
	}
	var st struct {
		TotalSize int64 `json:"total_size"`
	}
	if err := json.Unmarshal(out.Bytes(), &st); err != nil {
		return 0, fmt.Errorf("restic stats --json: %v", err)
	}
	return st.TotalSize, nil
}

// SaveRecord implements engine.Engine: a restic repository has no
// place for lifeboat's records; the run journal on the host keeps it.
func (*Engine) SaveRecord(context.Context, string, time.Time, any) error { return nil }

// Secondary drives the restic repository of sec: with its own password
// (password_file) when it has one, else this repository's.
func (e *Engine) Secondary(sec policies.Secondary) (*Engine, error) {
	loc, env, err := Location(sec.URL)
	if err != nil {
		return nil, err
	}
	pw := e.R.password
	if sec.PasswordFile != "" {
		if pw, err = sec.PasswordFile.Read(); err != nil {
			return nil, fmt.Errorf("secondary %s: password_file: %w", sec.Name, err)
		}
	}
	return &Engine{R: &Restic{bin: e.R.bin, repo: loc, env: env, url: sec.URL, password: pw, Version: e.R.Version}}, nil
}

// lacking lists the snapshots of src that dst has neither itself nor as
// the original of a copy, and the time of the newest of them.
func lacking(src, dst []resticSnapshot) (n int, newest time.Time) {
	have := map[string]bool{}
	for _, s := range dst {
		have[s.ID], have[s.Original] = true, true
	}
	for _, s := range src {
		if !have[s.ID] {
			n++
			if s.Time.After(newest) {
				newest = s.Time
			}
		}
	}
	return n, newest
}

// Replicate implements engine.Engine with restic copy: the snapshots the
// secondary lacks (by ID, or as the original of an earlier copy) are
// copied; a missing secondary is created with this repository's chunker
// parameters, so that copies deduplicate.
func (e *Engine) Replicate(ctx context.Context, sec policies.Secondary) (*engine.ReplicaStats, error) {
	dst, err := e.Secondary(sec)
	if err != nil {
		return nil, err
	}
	// The source's location environment (region) goes along; S3
	// credentials are the same for both.
	from := cmd{fromPassword: e.R.password, fromEnv: e.R.env}
	ok, err := dst.Exists(ctx)
	if err != nil {
		return nil, fmt.Errorf("secondary %s: %w", sec.Name, err)
	}
	if !ok {
		c := from
		c.args = []string{"init", "--copy-chunker-params", "--from-repo", e.R.repo}
		if err := dst.R.run(ctx, c); err != nil {
			return nil, fmt.Errorf("secondary %s: %w", sec.Name, err)
		}
	}
	src, err := e.list(ctx)
	if err != nil {
		return nil, err
	}
	before, err := dst.list(ctx)
	if err != nil {
		return nil, err
	}
	// Lag as the native engine reports it: the age of the newest
	// snapshot the secondary lacked.
	n, newest := lacking(src, before)
	st := &engine.ReplicaStats{Copied: n}
	if n == 0 {
		return st, nil
	}
	c := from
	c.args = []string{"copy", "--from-repo", e.R.repo}
	if err := dst.R.run(ctx, c); err != nil {
		return nil, fmt.Errorf("secondary %s: %w", sec.Name, err)
	}
	st.Lag = time.Since(newest)
	return st, nil
}

// Lag is how far the secondary dst (see Secondary) is behind this
// repository: the snapshots it lacks and the age of the newest of them
// (0: up to date). restic does not tell the bytes a copy would move.
func (e *Engine) Lag(ctx context.Context, dst *Engine) (*replicate.LagInfo, error) {
	src, err := e.list(ctx)
	if err != nil {
		return nil, err
	}
	have, err := dst.list(ctx)
	if err != nil {
		return nil, fmt.Errorf("secondary: %w", err)
	}
	li := &replicate.LagInfo{}
	var newest time.Time
	if li.SnapshotsMissing, newest = lacking(src, have); li.SnapshotsMissing > 0 {
		li.Lag = time.Since(newest)
	}
	for _, s := range have {
		if s.Time.After(li.NewestReplicated) {
			li.NewestReplicated = s.Time
		}
	}
	return li, nil
}
