package main

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/spf13/cobra"

	"github.com/lifeboat-backup/lifeboat/engine"
	"github.com/lifeboat-backup/lifeboat/engine/replicate"
	"github.com/lifeboat-backup/lifeboat/engine/repo"
	"github.com/lifeboat-backup/lifeboat/engine/restic"
	"github.com/lifeboat-backup/lifeboat/engine/schedule"
	"github.com/lifeboat-backup/lifeboat/engine/snapshot"
	"github.com/lifeboat-backup/lifeboat/engine/storage"
	"github.com/lifeboat-backup/lifeboat/internal/humanize"
)

func (a *app) failoverCmd() *cobra.Command {
	var o restoreOptions
	var from, ref string
	var my *mysqlRestoreFlags
	var bp *binlogPITRFlags
	cmd := &cobra.Command{
		Use:   "failover POLICY [--from SECONDARY] [--snapshot ID|latest] [--target NAME] --to DEST",
		Short: "Restore from a secondary when the primary is gone (never contacts the primary)",
		Long: `Restore a target from one of the policy's secondaries: a directory for files targets,
mysql://user:pass@host:port/ for MySQL targets. The primary is not contacted at all, so this
works when its region is down. Needs the owner key (--key-file or LIFEBOAT_KEY_FILE): the
policy's key_file is a host key, which cannot read content. Reads a native secondary under a shared
lock (a warning instead where the credentials cannot write one).
The summary says which recovery point was restored and how old it is.
postgres targets with a WAL archive: --until TIME|latest|LSN|NAME --to-datadir DIR [--start]
recovers to a point from the secondary's bases and WAL (docs/pitr.md), as restore --until does.
mysql targets with a binlog archive: --until TIME|latest, --until-gtid or --until-position with
--to mysql://... (or --to-datadir DIR) restore the secondary's newest snapshot before the point and replay its
archived binlog up to it.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) (err error) {
			p, err := a.loadPolicy(args[0])
			if err != nil {
				return err
			}
			a.policy = p
			sec, err := p.Secondary(from)
			if err != nil {
				return usageError{err}
			}
			if o.pitr.toDatadir != "" && !a.isBinlogPITR(o, bp) {
				// PostgreSQL point-in-time recovery from the secondary's
				// bases and WAL (docs/pitr.md).
				o.pitr.policy = args[0]
				return a.restorePGPITR(cmd.Context(), o, o.pitr, sec.Name)
			}
			if o.pitr.until != "" || bp.gtid != "" || bp.pos != "" {
				if ref != "latest" {
					return usagef("--until picks the base snapshot itself: no --snapshot")
				}
				return a.restoreBinlogPITR(cmd.Context(), o, my, bp, sec.Name)
			}
			if o.to == "" {
				return usagef("--to DEST is required")
			}
			t, err := p.Target(o.target)
			if err != nil {
				return usageError{err}
			}
			ctx, r, done, err := a.engineAt(cmd.Context(), sec.Name, readLock, "failover")
			if err != nil {
				return fmt.Errorf("secondary %s: %w", sec.Name, err)
			}
			defer done()
			defer func() { err = lockLost(ctx, err) }()
			if !r.CanReadData() {
				return fmt.Errorf("failover from %s: %w; give the owner key with --key-file", sec.Name, repo.ErrNoDataKey)
			}
			sn, err := r.FindSnapshot(ctx, ref, func(s *snapshot.Snapshot) bool { return s.Target == t.Name && s.Host == p.Host })
			if err != nil {
				return fmt.Errorf("secondary %s, target %s: %w", sec.Name, t.Name, err)
			}
			if !a.json {
				fmt.Fprintf(a.stdout, "failover from %s (%s): target %s, snapshot %s, recovery point %s (%s old)\n",
					sec.Name, storage.Redact(sec.URL), t.Name, sn.ID.Short(), sn.RecoveryPoint.Time.Format(time.RFC3339),
					time.Since(sn.RecoveryPoint.Time).Round(time.Second))
			}
			o.target = t.Name
			return a.restoreFrom(ctx, r, sn, o, my)
		},
	}
	f := cmd.Flags()
	f.StringVar(&from, "from", "", "the secondary to restore from (default: the only one)")
	f.StringVar(&ref, "snapshot", "latest", "snapshot ID, or latest")
	f.StringVar(&o.target, "target", "", "the target to restore (default: the only one)")
	f.StringVar(&o.to, "to", "", "destination: a directory, or mysql://user:pass@host:port/")
	f.StringArrayVar(&o.includes, "include", nil, "files: restore only this path and below, repeatable")
	addFilesRestoreFlags(f, &o)
	my = addMySQLRestoreFlags(f)
	bp = addBinlogPITRFlags(f)
	addPITRFlags(f, &o.pitr)
	return cmd
}

func (a *app) statusCmd() *cobra.Command {
	var journal string
	cmd := &cobra.Command{
		Use:   "status POLICY",
		Short: "Per repository: reachable, newest snapshot, replication lag; the last run",
		Long: `Show the state of a policy: for the primary and every secondary whether it answers, its newest
snapshot per target, every host's snapshot count and newest (when more than one host
writes into it: a fleet) and, for secondaries, the replication lag (age of the newest primary
snapshot it lacks, and bytes pending) against the policy's max_lag; then the last run from the
journal. Takes no lock. Exit 1 when a repository is unreachable or a lag exceeds max_lag.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := a.loadPolicy(args[0])
			if err != nil {
				return err
			}
			a.policy = p
			ctx := cmd.Context()
			st, err := a.policyStatus(ctx, journal)
			if err != nil {
				return err
			}
			if a.json {
				if err := a.emit(st); err != nil {
					return err
				}
			} else {
				a.printStatus(st)
			}
			if len(st.Problems) > 0 {
				return errors.New(st.Problems[0])
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&journal, "journal", defaultJournal(), "directory of the run journal")
	return cmd
}

type repoStatus struct {
	Name      string               `json:"name"`
	URL       string               `json:"url"`
	Reachable bool                 `json:"reachable"`
	Error     string               `json:"error,omitempty"`
	Newest    map[string]time.Time `json:"newest_per_target,omitempty"`
	// Hosts: every host with snapshots in the repository (a fleet shares
	// one), so a host that stopped backing up shows.
	Hosts  map[string]hostStatus `json:"hosts,omitempty"`
	Lag    *replicate.LagInfo    `json:"lag,omitempty"`
	MaxLag time.Duration         `json:"max_lag_ns,omitempty"`
	// Mode: what this host's storage credentials may do (native
	// repositories; docs/security.md, "Append-only deployment").
	Mode *repo.StorageMode `json:"storage_mode,omitempty"`
}

// probeMode fills rs.Mode for a native repository.
func probeMode(ctx context.Context, e engine.Engine, rs *repoStatus) error {
	n, ok := e.(engine.Native)
	if !ok {
		return nil
	}
	m, err := repo.ProbeStorage(ctx, n.R.Bucket())
	if err != nil {
		return err
	}
	rs.Mode = &m
	return nil
}

// hostStatus is one host's snapshots in a repository (status).
type hostStatus struct {
	Snapshots int       `json:"snapshots"`
	Newest    time.Time `json:"newest"`
}

type policyStatus struct {
	Policy       string         `json:"policy"`
	Repositories []repoStatus   `json:"repositories"`
	LastRun      any            `json:"last_run,omitempty"`
	Archives     []archiveState `json:"archives,omitempty"`        // log archives in the primary (cmd_archive.go)
	Binlogs      []binlogWindow `json:"binlog_archives,omitempty"` // mysql targets' PITR windows (cmd_binlog_restore.go)
	Problems     []string       `json:"problems,omitempty"`
}

func (a *app) policyStatus(ctx context.Context, journal string) (*policyStatus, error) {
	p := a.policy
	st := &policyStatus{Policy: p.Name}
	// newest fills the policy host's newest snapshot per target and every
	// host's count and newest; a suspect snapshot (dated in the future) is
	// a problem, never the newest.
	newest := func(e engine.Engine, rs *repoStatus) error {
		sns, err := e.Snapshots(ctx)
		if err != nil {
			return err
		}
		rs.Newest, rs.Hosts = map[string]time.Time{}, map[string]hostStatus{}
		for _, s := range sns {
			if s.Suspect != "" {
				st.Problems = append(st.Problems, fmt.Sprintf("%s: snapshot %s is suspect: %s", rs.Name, s.ID.Short(), s.Suspect))
				continue
			}
			if s.Host == p.Host && s.Time.After(rs.Newest[s.Target]) {
				rs.Newest[s.Target] = s.Time
			}
			h := rs.Hosts[s.Host]
			h.Snapshots++
			if s.Time.After(h.Newest) {
				h.Newest = s.Time
			}
			rs.Hosts[s.Host] = h
		}
		return nil
	}
	prim := repoStatus{Name: "primary", URL: storage.Redact(p.Repositories.Primary.URL)}
	_, pe, done, err := a.engineAt(ctx, "primary", noLock, "status")
	if err == nil {
		defer done()
		prim.Reachable = true
		if err = newest(pe, &prim); err == nil {
			err = probeMode(ctx, pe, &prim)
		}
	}
	if err != nil {
		prim.Error = err.Error()
		st.Problems = append(st.Problems, "primary: "+err.Error())
	}
	st.Repositories = append(st.Repositories, prim)
	if n, ok := pe.(engine.Native); ok && err == nil {
		if st.Archives, err = archiveStates(ctx, n.R); err != nil {
			st.Problems = append(st.Problems, "primary: log archive: "+err.Error())
		}
		for _, as := range st.Archives {
			st.Problems = append(st.Problems, as.Problems...)
		}
		if err := a.binlogWindows(ctx, pe, st); err != nil {
			st.Problems = append(st.Problems, "primary: binlog archive: "+err.Error())
		}
	}
	for _, sec := range p.Repositories.Secondaries {
		rs := repoStatus{Name: sec.Name, URL: storage.Redact(sec.URL), MaxLag: sec.MaxLag.D()}
		_, se, done, err := a.engineAt(ctx, sec.Name, noLock, "status")
		if err == nil {
			rs.Reachable = true
			err = newest(se, &rs)
			if err == nil {
				err = probeMode(ctx, se, &rs)
			}
			if err == nil && pe != nil {
				rs.Lag, err = lagOf(ctx, pe, se)
			}
			done()
		}
		switch {
		case err != nil:
			rs.Error = err.Error()
			st.Problems = append(st.Problems, sec.Name+": "+err.Error())
		case rs.Lag != nil && rs.MaxLag > 0 && rs.Lag.Lag > rs.MaxLag:
			st.Problems = append(st.Problems, fmt.Sprintf("%s: lag %s exceeds max_lag %s", sec.Name, rs.Lag.Lag.Round(time.Second), rs.MaxLag))
		}
		st.Repositories = append(st.Repositories, rs)
	}
	if runs, err := schedule.Journal(journal).Read(p.Name); err == nil && len(runs) > 0 {
		st.LastRun = runs[len(runs)-1]
	}
	return st, nil
}

// lagOf is how far the secondary se is behind the primary pe.
func lagOf(ctx context.Context, pe, se engine.Engine) (*replicate.LagInfo, error) {
	switch pe := pe.(type) {
	case engine.Native:
		return replicate.Lag(ctx, pe.R, se.(engine.Native).R.Bucket())
	case *restic.Engine:
		return pe.Lag(ctx, se.(*restic.Engine))
	}
	return nil, fmt.Errorf("engine %s has no replication lag", pe.Name())
}

func (a *app) printStatus(st *policyStatus) {
	fmt.Fprintf(a.stdout, "policy %s\n", termSafe(st.Policy))
	for _, r := range st.Repositories {
		state := "reachable"
		if !r.Reachable {
			state = "UNREACHABLE: " + termSafe(r.Error)
		}
		fmt.Fprintf(a.stdout, "  %-10s %s  %s\n", r.Name, r.URL, state)
		if r.Mode != nil {
			fmt.Fprintf(a.stdout, "    storage: %s\n", r.Mode)
		}
		for _, t := range slices.Sorted(maps.Keys(r.Newest)) {
			ts := r.Newest[t]
			fmt.Fprintf(a.stdout, "    %-12s newest snapshot %s (%s old)\n", termSafe(t), ts.Local().Format(time.RFC3339), time.Since(ts).Round(time.Second))
		}
		if len(r.Hosts) > 1 { // a fleet: every host's newest
			for _, h := range slices.Sorted(maps.Keys(r.Hosts)) {
				hs := r.Hosts[h]
				fmt.Fprintf(a.stdout, "    host %-12s %d snapshots, newest %s (%s old)\n", termSafe(h), hs.Snapshots,
					hs.Newest.Local().Format(time.RFC3339), time.Since(hs.Newest).Round(time.Second))
			}
		}
		if r.Lag != nil {
			fmt.Fprintf(a.stdout, "    lag %s, %d snapshots and %s pending", r.Lag.Lag.Round(time.Second), r.Lag.SnapshotsMissing, humanize.Bytes(r.Lag.BytesPending))
			if r.MaxLag > 0 {
				fmt.Fprintf(a.stdout, " (max_lag %s)", r.MaxLag)
			}
			fmt.Fprintln(a.stdout)
		}
	}
	a.printArchiveStates(st.Archives)
	a.printBinlogWindows(st.Binlogs)
	for _, pr := range st.Problems {
		fmt.Fprintln(a.stdout, "  PROBLEM: "+termSafe(pr))
	}
}
