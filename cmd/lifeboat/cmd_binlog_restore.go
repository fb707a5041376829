package main

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/spf13/pflag"

	"github.com/lifeboat-backup/lifeboat/engine"
	"github.com/lifeboat-backup/lifeboat/engine/logarchive"
	"github.com/lifeboat-backup/lifeboat/engine/pitr"
	"github.com/lifeboat-backup/lifeboat/engine/repo"
	"github.com/lifeboat-backup/lifeboat/engine/snapshot"
	"github.com/lifeboat-backup/lifeboat/internal/humanize"
	"github.com/lifeboat-backup/lifeboat/policies"
	"github.com/lifeboat-backup/lifeboat/targets/mysql/binlog"
	"github.com/lifeboat-backup/lifeboat/targets/mysql/physical"
	"github.com/lifeboat-backup/lifeboat/targets/postgres/wal"
)

// binlogPITRFlags are restore's point-in-time flags of mysql targets
// (--until itself is shared with postgres targets: restoreOptions.pitr).
type binlogPITRFlags struct {
	until, gtid, pos string
	dryRun           bool
}

func addBinlogPITRFlags(f *pflag.FlagSet) *binlogPITRFlags {
	p := &binlogPITRFlags{}
	f.StringVar(&p.gtid, "until-gtid", "", "mysql: point-in-time restore up to and including this transaction (domain-server-seq)")
	f.StringVar(&p.pos, "until-position", "", "mysql: point-in-time restore of the transactions that end at or before FILE:POS")
	f.BoolVarP(&p.dryRun, "dry-run", "n", false, "mysql, with --until*: print the plan (base snapshot, segments, transactions) and restore nothing")
	return p
}

// isBinlogPITR tells a point-in-time restore of a mysql target: the
// mysql-only flags, a mysql:// destination, or a mysql target.
func (a *app) isBinlogPITR(o restoreOptions, pf *binlogPITRFlags) bool {
	if pf.gtid != "" || pf.pos != "" || pf.dryRun || isMySQLDestination(o.to) {
		return true
	}
	if a.policy == nil {
		return false
	}
	if o.target != "" {
		t, err := a.policy.Target(o.target)
		return err == nil && t.Kind == policies.KindMySQL
	}
	if o.pitr.toDatadir != "" {
		if _, err := a.walTarget(""); err == nil {
			return false // the policy's one target is postgres
		}
	}
	_, err := archiveTarget(a.policy, "")
	return err == nil
}

// restorePITR restores a mysql target to a point: the newest snapshot
// before it, then the archived binlog from the snapshot's position.
// from names the secondary a failover reads ("": the primary).
func (a *app) restoreBinlogPITR(ctx context.Context, o restoreOptions, my *mysqlRestoreFlags, pf *binlogPITRFlags, from string) error {
	pf.until = o.pitr.until
	if len(my.renames) > 0 || len(my.tables) > 0 || len(my.databases) > 0 || my.users {
		return usagef("--rename, --tables, --databases and --users cannot be combined with --until: the replayed binary log names databases inside statements and applies to every database (restore whole, to a separate server, then copy what you need)")
	}
	toDatadir := o.pitr.toDatadir != ""
	if toDatadir && o.to != "" {
		return usagef("give --to mysql://... or --to-datadir DIR, not both")
	}
	if !pf.dryRun && !isMySQLDestination(o.to) && !toDatadir {
		return usagef("--until restores into a MySQL server (--to mysql://USER@HOST:PORT/) or an empty data directory (--to-datadir DIR), or --dry-run")
	}
	var loc *time.Location
	if a.policy != nil {
		loc = a.policy.Retention.Location()
	}
	point, err := pitr.ParsePoint(pf.until, pf.gtid, pf.pos, loc)
	if err != nil {
		return usageError{err}
	}
	target, err := a.pitrTarget(o.target)
	if err != nil {
		return err
	}
	run := func(ctx context.Context, e engine.Engine) error {
		n, ok := e.(engine.Native)
		if !ok {
			return usagef("point-in-time restores need a native repository (the binlog archive lives there)")
		}
		if !pf.dryRun && !n.R.CanReadData() {
			return fmt.Errorf("point-in-time restore of %s: %w", target, repo.ErrNoDataKey)
		}
		snaps, err := e.Snapshots(ctx)
		if err != nil {
			return err
		}
		st := pitr.NewBinlog(logarchive.New(n.R), target)
		st.Damaged = func(err error) { fmt.Fprintf(a.stderr, "warning: %s\n", termSafe(err.Error())) }
		segs, err := st.List(ctx)
		if err != nil {
			return err
		}
		if !toDatadir {
			// A physical base is a data directory, not something to load
			// into a running server.
			snaps = slices.DeleteFunc(snaps, physical.IsBase)
		}
		pl, err := pitr.Choose(snaps, target, segs, point)
		if err != nil {
			return fmt.Errorf("point-in-time restore of %s to %s refused: %w", target, point, err)
		}
		a.printPlan(pl)
		if pf.dryRun {
			if !n.R.CanReadData() {
				fmt.Fprintln(a.stdout, "  (the transactions are counted with the owner key)")
				return nil
			}
			r, err := pitr.DryRun(ctx, pl, st)
			if err != nil {
				return err
			}
			a.printReplay("would replay", r)
			return nil
		}
		a.announce(pl.Base)
		if toDatadir {
			return a.pitrDatadir(ctx, e, pl, st, o.pitr.toDatadir)
		}
		if err := snapshot.WithReader(ctx, e, pl.Base, func(s snapshot.Reader) error { return a.restoreMySQL(ctx, s, o.to, my) }); err != nil {
			return err
		}
		pw, err := databasePassword(my.passwordFile, "LIFEBOAT_MYSQL_PASSWORD", "MYSQL_PWD")
		if err != nil {
			return err
		}
		start := time.Now()
		r, err := pitr.Replay(ctx, pl, st, binlog.ApplyOptions{DSN: o.to, Password: pw, NoBinlog: my.noBinlog})
		if err != nil {
			return fmt.Errorf("point-in-time restore: the base snapshot %s is restored, replaying the binary log failed after %d transactions: %w", pl.Base.ID.Short(), r.Transactions, err)
		}
		if a.json {
			return a.emit(map[string]any{"message_type": "pitr_summary", "target": target, "point": point.String(),
				"base_snapshot": pl.Base.ID.String(), "from": pl.From.String(), "replay": r,
				"last_position": r.LastEnd.String(), "duration_seconds": time.Since(start).Seconds()})
		}
		a.printReplay("replayed", r)
		fmt.Fprintf(a.stdout, "  in %.1fs\n", time.Since(start).Seconds())
		return nil
	}
	if from == "" {
		return a.withEngine(ctx, readLock, "restore", run)
	}
	ctx, e, done, err := a.engineAt(ctx, from, readLock, "failover")
	if err != nil {
		return fmt.Errorf("secondary %s: %w", from, err)
	}
	defer done()
	return lockLost(ctx, run(ctx, e))
}

// pitrTarget is the target to restore to a point: --target, or the
// policy's one mysql target with an archive block.
func (a *app) pitrTarget(name string) (string, error) {
	if name != "" {
		return name, nil
	}
	if a.policy == nil {
		return "", usagef("--until needs --target NAME (or --policy with one archived mysql target)")
	}
	t, err := archiveTarget(a.policy, "")
	if err != nil {
		return "", err
	}
	return t.Name, nil
}

func (a *app) printPlan(pl *pitr.Plan) {
	if a.json {
		return
	}
	var bytes int64
	for _, s := range pl.Chain {
		bytes += s.Size
	}
	fmt.Fprintf(a.stdout, "point-in-time restore of %s to %s\n", termSafe(pl.Base.Target), pl.Point)
	fmt.Fprintf(a.stdout, "  base snapshot %s (recovery point %s, binlog %s)\n", pl.Base.ID.Short(),
		pl.Base.RecoveryPoint.Time.UTC().Format(time.RFC3339), pl.From)
	if len(pl.Chain) == 0 {
		fmt.Fprintln(a.stdout, "  no archived events after the snapshot")
		return
	}
	first, last := pl.Chain[0], pl.Chain[len(pl.Chain)-1]
	fmt.Fprintf(a.stdout, "  %d binlog segments (%s), %s to %s, events %s to %s\n", len(pl.Chain), humanize.Bytes(bytes),
		first.Name, last.Name, first.FirstTime.UTC().Format(time.RFC3339), last.LastTime.UTC().Format(time.RFC3339))
}

func (a *app) printReplay(verb string, r binlog.Replay) {
	if a.json {
		return
	}
	fmt.Fprintf(a.stdout, "  %s %d transactions (%d events, %s) from %d segments\n", verb, r.Transactions, r.Events, humanize.Bytes(r.Bytes), r.Segments)
	if r.Transactions > 0 {
		fmt.Fprintf(a.stdout, "  last transaction: GTID %s at %s, ends at %s\n", r.LastGTID, r.LastTime.UTC().Format(time.RFC3339), r.LastEnd)
	}
	if r.Incomplete {
		fmt.Fprintln(a.stdout, "  a transaction whose end is not archived yet was left out")
	}
}

// binlogWindow is what status says about a mysql target's binlog
// archive beyond the generic log-archive line: which seconds a restore
// can reach, and whether a gap makes point-in-time restores impossible
// until the next snapshot.
type binlogWindow struct {
	Target  string    `json:"target"`
	From    time.Time `json:"restorable_from,omitzero"`
	To      time.Time `json:"restorable_to,omitzero"`
	GapOpen bool      `json:"gap_open,omitempty"`
	Window  string    `json:"window"`
}

// binlogWindows adds the binlog window of every archived mysql target of
// the policy to st (the host key suffices); a gap after every snapshot,
// or an archive with nothing in it, is a problem.
func (a *app) binlogWindows(ctx context.Context, e engine.Engine, st *policyStatus) error {
	n, ok := e.(engine.Native)
	if !ok {
		return nil
	}
	var snaps []*snapshot.Snapshot
	for _, t := range a.policy.Targets {
		if t.Kind != policies.KindMySQL || t.Archive == nil {
			continue
		}
		if snaps == nil {
			var err error
			if snaps, err = e.Snapshots(ctx); err != nil {
				return err
			}
		}
		segs, err := pitr.NewBinlog(logarchive.New(n.R), t.Name).List(ctx)
		if err != nil {
			return err
		}
		d := pitr.Describe(t.Name, snaps, segs, time.Now())
		w := binlogWindow{Target: t.Name, From: d.From, GapOpen: d.GapOpen, Window: d.Window()}
		if d.FromSnapshot != nil {
			w.To = d.Newest
		}
		st.Binlogs = append(st.Binlogs, w)
		switch {
		case d.GapOpen:
			st.Problems = append(st.Problems, fmt.Sprintf("binlog archive of %s: %s", t.Name, d.Window()))
		case d.Segments == 0:
			st.Problems = append(st.Problems, fmt.Sprintf("binlog archive of %s: nothing archived (is lifeboat-binlog@%s running?)", t.Name, a.policy.Name))
		}
	}
	return nil
}

func (a *app) printBinlogWindows(ws []binlogWindow) {
	for _, w := range ws {
		fmt.Fprintf(a.stdout, "  binlog archive %s: %s\n", termSafe(w.Target), termSafe(w.Window))
	}
}

// binlogNewest gives drills the newest archived event of a target's log
// archive: the binlog of archived mysql targets, the WAL of postgres
// targets (native repositories; nil otherwise).
func binlogNewest(p *policies.Policy, e engine.Engine) func(context.Context, string) (time.Time, bool, error) {
	n, ok := e.(engine.Native)
	if !ok {
		return nil
	}
	return func(ctx context.Context, target string) (time.Time, bool, error) {
		t, err := p.Target(target)
		if err == nil && t.Kind == policies.KindPostgres {
			// WAL from wal push or wal receive: the newest last write,
			// streamed partial segments included.
			segs, _, err := logarchive.New(n.R).List(ctx, target, wal.Stream)
			var newest time.Time
			for _, s := range segs {
				if _, _, partial := wal.ParsePartial(s.Name); (partial || wal.IsSegment(s.Name)) && s.EndTime().After(newest) {
					newest = s.EndTime()
				}
			}
			return newest, !newest.IsZero(), err
		}
		if err != nil || t.Kind != policies.KindMySQL || t.Archive == nil {
			return time.Time{}, false, nil
		}
		segs, err := pitr.NewBinlog(logarchive.New(n.R), target).List(ctx)
		if err != nil || len(segs) == 0 {
			return time.Time{}, false, err
		}
		st := pitr.Describe(target, nil, segs, time.Now())
		return st.Newest, true, nil
	}
}
