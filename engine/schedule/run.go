package schedule

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/lifeboat-backup/lifeboat/engine"
	"github.com/lifeboat-backup/lifeboat/engine/snapshot"
	"github.com/lifeboat-backup/lifeboat/policies"
	"github.com/lifeboat-backup/lifeboat/retention"
	"github.com/lifeboat-backup/lifeboat/targets/bucket"
	"github.com/lifeboat-backup/lifeboat/targets/exec"
	"github.com/lifeboat-backup/lifeboat/targets/files"
	"github.com/lifeboat-backup/lifeboat/targets/mysql"
	myphysical "github.com/lifeboat-backup/lifeboat/targets/mysql/physical"
	"github.com/lifeboat-backup/lifeboat/targets/postgres"
	"github.com/lifeboat-backup/lifeboat/targets/postgres/physical"
	"github.com/lifeboat-backup/lifeboat/targets/volume"
)

// ErrRunFailed: at least one step of a policy run failed (the others ran).
var ErrRunFailed = errors.New("policy run failed")

// RunOptions tune a policy run.
type RunOptions struct {
	// Targets restricts the run to these target names (default: all).
	Targets []string
	// LastPrune is when this policy last pruned (from the journal); prune
	// runs when it is older than retention.prune_every.
	LastPrune time.Time
	// Progress receives per-target progress (may be nil).
	Progress func(target string) *engine.Progress
	// Now is the clock (tests); default time.Now.
	Now func() time.Time
}

// SourceFor builds the engine.Source of a target: a policy's, or the one
// a backup subcommand makes of its flags (the one mapping both use). pw is
// a database's password; "" reads the target's password_file.
func SourceFor(t policies.Target, pw string) (engine.Source, error) {
	switch t.Kind {
	case "files":
		excludes := slices.Clone(t.Exclude)
		for _, name := range t.ExcludeFile {
			pats, err := files.ReadExcludeFile(name)
			if err != nil {
				return nil, fmt.Errorf("target %s: exclude_file: %w", t.Name, err)
			}
			excludes = append(excludes, pats...)
		}
		return &files.Source{Roots: t.Paths, Options: files.Options{Excludes: excludes, IExcludes: t.IExclude,
			ExcludeIfPresent: t.ExcludeIfPresent, ExcludeCaches: t.ExcludeCaches, OneFileSystem: t.OneFileSystem}}, nil
	case "mysql":
		pw, err := password(t, pw)
		if err != nil {
			return nil, err
		}
		if t.Method == myphysical.Method {
			return myphysical.New(myphysical.Options{DSN: t.DSN, Password: pw})
		}
		return mysql.New(mysql.Options{DSN: t.DSN, Password: pw, Databases: t.Databases, ExcludeTables: t.ExcludeTables,
			Jobs: t.Jobs, LockMode: mysql.LockMode(t.LockMode), Users: t.Users, SplitBytes: int64(t.SplitBytes)})
	case "postgres":
		pw, err := password(t, pw)
		if err != nil {
			return nil, err
		}
		if t.Method == physical.Method {
			return physical.New(physical.Options{DSN: t.DSN, Password: pw})
		}
		return postgres.New(postgres.Options{DSN: t.DSN, Password: pw, Databases: t.Databases, Globals: t.Globals,
			ExcludeTables: t.ExcludeTables, Jobs: t.Jobs})
	case "exec":
		return exec.New(exec.Options{Name: t.Name, Command: t.Command})
	case "bucket":
		return bucket.New(bucket.Options{URL: t.URL, Prefix: t.Prefix, Include: t.Include, Exclude: t.Exclude})
	case "volume":
		return volume.New(volume.Options{Path: t.Path, Before: t.Before, After: t.After, BlockSize: int(t.BlockSize)})
	}
	return nil, fmt.Errorf("target %s: kind %q is not supported by this lifeboat yet", t.Name, t.Kind)
}

// Workers is the backup's reader count for a target: a database target's
// jobs are dumps read at once, as many workers (at least the CPUs). A
// split postgres dump (jobs > 1) reads its pre-data and post-data
// archives beside its data ones: two more.
func Workers(t policies.Target) int {
	n := t.Jobs
	if t.Kind == policies.KindPostgres && t.Method != physical.Method && n > 1 {
		n += 2
	}
	return max(runtime.GOMAXPROCS(0), n)
}

// password is pw, else a database target's password_file ("" when
// unset).
func password(t policies.Target, pw string) (string, error) {
	if pw != "" || t.PasswordFile.IsZero() {
		return pw, nil
	}
	b, err := t.PasswordFile.Read()
	if err != nil {
		return "", fmt.Errorf("target %s: password: %w", t.Name, err)
	}
	return string(b), nil
}

// RulesOf turns a policy's retention block into retention rules, grouped
// per host and target.
func RulesOf(p policies.Retention) retention.Rules {
	return retention.Rules{
		KeepLast: p.KeepLast, KeepHourly: p.KeepHourly, KeepDaily: p.KeepDaily, KeepWeekly: p.KeepWeekly,
		KeepMonthly: p.KeepMonthly, KeepYearly: p.KeepYearly, KeepWithin: p.KeepWithin.D(), KeepTags: p.KeepTags,
		Location: p.Location(), WeekStart: p.WeekStart(), PeriodPick: pick(p.PeriodPick),
		GroupBy: []string{retention.GroupHost, retention.GroupTarget},
	}
}

func pick(s string) retention.Pick {
	if s == "first" {
		return retention.PickFirst
	}
	return retention.PickLast
}

// PolicyTag marks snapshots made by a policy run.
func PolicyTag(name string) string { return "policy:" + name }

// Run executes a policy once on engine e: back up every target (a failing
// target does not stop the others), forget what retention does not keep
// among this policy's snapshots, prune when prune_every has passed, and
// replicate to every secondary. Steps that fail are named in
// engine.RunResult.Errors and the error is ErrRunFailed; the caller records the
// result either way.
func Run(ctx context.Context, p *policies.Policy, e engine.Engine, opts RunOptions) (*engine.RunResult, error) {
	now := time.Now
	if opts.Now != nil {
		now = opts.Now
	}
	res := &engine.RunResult{Policy: p.Name, Host: p.Host, Start: now().UTC()}
	fail := func(format string, args ...any) { res.Errors = append(res.Errors, fmt.Sprintf(format, args...)) }
	polEnv := hookEnv{policy: p.Name, host: p.Host}
	// The policy's before hooks: one failing fails every target, without
	// a snapshot, and the run ends after its on_error hooks.
	if err := runHooks(ctx, res, HookBefore, p.Hooks.Before, p.Hooks.Timeout.D(), polEnv); err != nil {
		for _, t := range p.Targets {
			if len(opts.Targets) == 0 || slices.Contains(opts.Targets, t.Name) {
				res.Targets = append(res.Targets, engine.TargetResult{Name: t.Name, Kind: t.Kind, Error: "not run: policy " + err.Error()})
			}
		}
		fail("policy %v", err)
		return finishRun(ctx, p, e, res, now)
	}

	for _, t := range p.Targets {
		if len(opts.Targets) > 0 && !slices.Contains(opts.Targets, t.Name) {
			continue
		}
		tr := engine.TargetResult{Name: t.Name, Kind: t.Kind}
		start := now()
		env := hookEnv{policy: p.Name, host: p.Host, target: t.Name, kind: t.Kind}
		src, err := SourceFor(t, "")
		if err == nil {
			err = runHooks(ctx, res, HookBefore, t.Hooks.Before, t.Hooks.Timeout.D(), env)
		}
		if err == nil {
			var prog *engine.Progress
			if opts.Progress != nil {
				prog = opts.Progress(t.Name)
			}
			var br *engine.BackupResult
			tags := append([]string{PolicyTag(p.Name)}, t.Tags...)
			br, err = e.Backup(ctx, src, engine.BackupOptions{Target: t.Name, Host: p.Host, Tags: tags, Progress: prog, Workers: Workers(t)})
			if err == nil {
				st := br.Snapshot.Stats
				tr.Snapshot, tr.BytesIn, tr.BytesAdded, tr.Warnings = br.Snapshot.ID.String(), st.BytesIn, st.BytesAdded, br.Warnings
				res.Partial = res.Partial || len(br.Warnings) > 0
				env.snapshots = []string{tr.Snapshot}
				err = runHooks(ctx, res, HookAfter, t.Hooks.After, t.Hooks.Timeout.D(), env)
			}
		}
		if err != nil && len(t.Hooks.OnError) > 0 && ctx.Err() == nil {
			env.err = redactText(err.Error())
			if herr := runHooks(ctx, res, HookOnError, t.Hooks.OnError, t.Hooks.Timeout.D(), env); herr != nil {
				err = fmt.Errorf("%w; %v", err, herr)
			}
		}
		tr.Seconds = now().Sub(start).Seconds()
		if err != nil {
			tr.Error = err.Error()
			fail("target %s: %v", t.Name, err)
		}
		res.Targets = append(res.Targets, tr)
		if ctx.Err() != nil {
			return res, ctx.Err()
		}
	}

	if rules := RulesOf(p.Retention); !rules.Empty() {
		if err := forgetByPolicy(ctx, p, e, rules, res); err != nil {
			fail("retention: %v", err)
		}
		if every := p.Retention.PruneEvery.D(); len(res.Errors) == 0 && (opts.LastPrune.IsZero() || now().Sub(opts.LastPrune) >= every) {
			pr, err := e.Prune(ctx)
			if err != nil {
				fail("prune: %v", err)
			} else {
				res.Pruned, res.Prune = true, pr
			}
		}
	}

	for _, sec := range p.Repositories.Secondaries {
		rr := engine.ReplicaResult{Name: sec.Name}
		st, err := e.Replicate(ctx, sec)
		if err != nil {
			rr.Error = err.Error()
			fail("replicate to %s: %v", sec.Name, err)
		} else {
			rr.Copied, rr.Bytes, rr.Lag = st.Copied, st.Bytes, st.Lag.Seconds()
		}
		rr.LagExceeded = sec.MaxLag.D() > 0 && rr.Lag > sec.MaxLag.D().Seconds()
		res.Replicas = append(res.Replicas, rr)
	}
	// The policy's after hooks when every step succeeded, else on_error.
	if res.OK() {
		for _, t := range res.Targets {
			polEnv.snapshots = append(polEnv.snapshots, t.Snapshot)
		}
		if err := runHooks(ctx, res, HookAfter, p.Hooks.After, p.Hooks.Timeout.D(), polEnv); err != nil {
			fail("policy %v", err)
		}
	}
	return finishRun(ctx, p, e, res, now)
}

// finishRun runs the policy's on_error hooks after a failed run, counts
// the policy's snapshots and the repository's size, and saves the
// journal's copy in the repository.
func finishRun(ctx context.Context, p *policies.Policy, e engine.Engine, res *engine.RunResult, now func() time.Time) (*engine.RunResult, error) {
	fail := func(format string, args ...any) { res.Errors = append(res.Errors, fmt.Sprintf(format, args...)) }
	if !res.OK() && len(p.Hooks.OnError) > 0 && ctx.Err() == nil {
		env := hookEnv{policy: p.Name, host: p.Host, err: redactText(strings.Join(res.Errors, "; "))}
		if err := runHooks(ctx, res, HookOnError, p.Hooks.OnError, p.Hooks.Timeout.D(), env); err != nil {
			fail("policy %v", err)
		}
	}
	if sns, err := e.Snapshots(ctx); err == nil {
		for _, s := range sns {
			if s.Host == p.Host && slices.Contains(s.Tags, PolicyTag(p.Name)) {
				res.Snapshots++
			}
		}
	}
	if size, err := e.Size(ctx); err == nil {
		res.RepositoryBytes = size
	}
	res.End = now().UTC()
	// A copy of the journal entry in the repository: whoever holds a key
	// can see what ran, also when this host is gone.
	if err := e.SaveRecord(ctx, "runs/"+p.Name, res.Start, res); err != nil {
		fail("journal copy: %v", err)
	}
	if !res.OK() {
		return res, ErrRunFailed
	}
	return res, nil
}

// forgetByPolicy applies retention to the snapshots this policy made on
// this host (tagged policy:NAME) and removes the rest.
func forgetByPolicy(ctx context.Context, p *policies.Policy, e engine.Engine, rules retention.Rules, res *engine.RunResult) error {
	sns, err := e.Snapshots(ctx)
	if err != nil {
		return err
	}
	var in []retention.Snapshot
	byID := map[string]*snapshot.Snapshot{}
	for _, s := range sns {
		if s.Host != p.Host || !slices.Contains(s.Tags, PolicyTag(p.Name)) || s.Suspect != "" {
			continue // suspect snapshots (future times) are neither counted nor removed
		}
		byID[s.ID.String()] = s
		in = append(in, retention.Snapshot{ID: s.ID.String(), Time: s.Time, Host: s.Host, Target: s.Target, Tags: s.Tags})
	}
	res.Retention = retention.Apply(in, rules)
	var drop []snapshot.ID
	for _, d := range res.Retention {
		if !d.Keep {
			drop = append(drop, byID[d.Snapshot.ID].ID)
		}
	}
	if len(drop) == 0 {
		return nil
	}
	if err := e.Forget(ctx, drop); err != nil {
		return err
	}
	for _, id := range drop {
		res.Forgotten = append(res.Forgotten, id.String())
	}
	n, err := forgetArchive(ctx, e)
	res.SegmentsRemoved = n
	return err
}
