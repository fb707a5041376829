package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/lifeboat-backup/lifeboat/engine"
	"github.com/lifeboat-backup/lifeboat/engine/repo"
	"github.com/lifeboat-backup/lifeboat/engine/snapshot"
	"github.com/lifeboat-backup/lifeboat/internal/humanize"
	"github.com/lifeboat-backup/lifeboat/policies"
)

type restoreOptions struct {
	to         string
	includes   []string
	target     string
	host       string
	keepSetuid bool
	xattrs     string
	devices    bool
	kinds      targetRestoreFlags    // volume, bucket, exec snapshots (cmd_targets.go)
	pg         *postgresRestoreFlags // postgres:// destinations (cmd_postgres.go)
	pitr       pitrFlags             // --until, --to-datadir (cmd_pitr.go)
}

func (a *app) restoreCmd() *cobra.Command {
	var o restoreOptions
	var my *mysqlRestoreFlags
	var bp *binlogPITRFlags
	cmd := &cobra.Command{
		Use:   "restore SNAPSHOT|latest --to DIR|--to-datadir DIR [--include PATTERN]... | restore --until TIME|latest|LSN|NAME --to-datadir DIR|--to mysql://...",
		Short: "Restore a snapshot, or paths in it, to a directory",
		Long: `Restore a snapshot to DIR: entries keep their stored paths (media/x restores to DIR/media/x).
--include restores only what matches the given patterns (stored paths, as listed by ls) and what
is below them, reading only the byte ranges those files need. Patterns are restic's: * ? [...]
within a name, ** across directories; a leading / anchors at the top level, otherwise a pattern
matches at any depth (--include '*.png', --include /www/img, --include 'img/**/*.jpg'). Every blob is verified against its ID. Needs the owner key.

A snapshot's metadata is what its backup host wrote: unless asked, setuid/setgid bits of files
are cleared (--keep-setuid), only user.* xattrs are restored (--xattrs all|user|none) and device
nodes are not created (--devices). Nothing is written outside DIR and no symlink under DIR is
followed. Each file is written under a temporary name and renamed into place when complete; an
entry that cannot be restored (a damaged pack) is listed and the restore goes on.

Point-in-time recovery of a postgres target with a WAL archive (docs/pitr.md): --until TIME
(RFC 3339, or YYYY-MM-DD HH:MM:SS in the policy's time zone: up to and including that second),
latest, an LSN (0/3000060) or a restore point name, without a SNAPSHOT argument: the newest
physical base from before the point is restored into the empty --to-datadir DIR, with recovery
settings (restore_command naming this binary, the policy, the target and the owner key file by
absolute path); --start starts the server and waits until it recovered and was promoted.

Point-in-time restore of a mysql target with a binlog archive (docs/pitr.md): --until TIME|latest,
--until-gtid or --until-position with --to mysql://...: the newest snapshot before the point is
restored and the archived transactions up to the point replayed; --dry-run prints the plan. A
point the archive cannot reach (a gap, past its end) is refused with the reason. With
--to-datadir DIR instead of --to, the newest base of either method (physical: mariabackup;
logical: a dump, loaded into a new data directory) is restored into the empty DIR, a temporary
mariadbd on it replays the binary log, and DIR is left ready for a plain mariadbd.

A physical mysql base (method: physical) restores with SNAPSHOT|latest --to-datadir DIR: the
mariabackup stream is unpacked into the empty DIR and prepared (mariabackup --prepare); DIR is
owned by the server's user (DIR's owner, or the mysql user when lifeboat runs as root).

Exit codes: 0 ok, 1 failure, 2 bad usage, 5 restore finished but some entries could not be
restored (listed), 12 wrong key.`,
		Args: cobra.RangeArgs(0, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 && o.pitr.toDatadir != "" && o.pitr.until == "" && bp.gtid == "" && bp.pos == "" {
				return a.restoreDatadir(cmd.Context(), args[0], o)
			}
			if o.pitr.until != "" || o.pitr.toDatadir != "" || bp.gtid != "" || bp.pos != "" {
				if len(args) > 0 {
					return usagef("--until restores the newest base before the point: no SNAPSHOT argument")
				}
				if a.isBinlogPITR(o, bp) {
					return a.restoreBinlogPITR(cmd.Context(), o, my, bp, "")
				}
				if o.pitr.toDatadir == "" {
					return usagef("--until needs --to-datadir DIR (postgres targets)")
				}
				return a.restorePGPITR(cmd.Context(), o, o.pitr, "")
			}
			if len(args) != 1 {
				return usagef("restore needs a SNAPSHOT (or latest), or --until")
			}
			if o.to == "" && o.kinds.toCommand == "" {
				return usagef("--to DIR is required")
			}
			ctx := cmd.Context()
			return a.withEngine(ctx, readLock, "restore", func(ctx context.Context, e engine.Engine) error {
				sn, err := findPerTarget(ctx, e, args[0], o.target, o.host)
				if err != nil {
					return err
				}
				a.announce(sn)
				return a.restoreFrom(ctx, e, sn, o, my)
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.to, "to", "", "destination directory (created if missing)")
	f.StringArrayVar(&o.includes, "include", nil, "restore only what matches this pattern (restic's: *, **, leading / anchors) and below, repeatable")
	addFilesRestoreFlags(f, &o)
	f.StringVar(&o.target, "target", "", "with latest: the latest snapshot of this target")
	f.StringVar(&o.host, "host", "", "with latest: the latest snapshot of this host")
	my = addMySQLRestoreFlags(f)
	bp = addBinlogPITRFlags(f)
	o.pg = addPostgresRestoreFlags(f)
	addTargetRestoreFlags(f, &o.kinds)
	addPITRFlags(f, &o.pitr)
	return cmd
}

// announce warns, before a restore starts, when the snapshot's time is
// odd: in the future, or flagged as suspect (its time and age are in the
// restore's summary line).
func (a *app) announce(sn *snapshot.Snapshot) {
	if a.json || a.quiet {
		return
	}
	switch age := time.Since(sn.Time); {
	case sn.Suspect != "":
		fmt.Fprintf(a.stderr, "warning: snapshot %s is suspect: %s\n", sn.ID.Short(), sn.Suspect)
	case age < -time.Minute:
		fmt.Fprintf(a.stderr, "warning: snapshot %s is dated %s in the future (a wrong clock on its backup host, or a forged time)\n", sn.ID.Short(), (-age).Round(time.Second))
	}
}

// restoreFrom restores sn of r (either engine) to o.to: the stream kinds
// (databases, exec, bucket, volume) through their restores, anything else
// as files under a directory. The one place restore and failover dispatch
// on the destination.
func (a *app) restoreFrom(ctx context.Context, r snapshot.Repository, sn *snapshot.Snapshot, o restoreOptions, my *mysqlRestoreFlags) error {
	if !isMySQLDestination(o.to) && (my.users || my.noBinlog || len(my.tables) > 0) {
		return usagef("--users, --tables and --no-binlog are for restores into a MySQL server (--to mysql://...)")
	}
	if !r.CanReadData() {
		return fmt.Errorf("restore snapshot %s: %w", sn.ID.Short(), repo.ErrNoDataKey)
	}
	if sn.Kind != policies.KindFiles || isMySQLDestination(o.to) || isPostgresDestination(o.to) {
		var handled bool
		err := snapshot.WithReader(ctx, r, sn, func(s snapshot.Reader) (err error) {
			handled, err = a.restoreStream(ctx, s, o, my)
			return err
		})
		if err != nil || handled {
			return err
		}
	}
	if o.to == "" || isMySQLDestination(o.to) || isPostgresDestination(o.to) {
		return usagef("snapshot %s is a %s snapshot: --to DIR", sn.ID.Short(), sn.Kind)
	}
	fo, err := o.filesOptions()
	if err != nil {
		return err
	}
	start := time.Now()
	p := &snapshot.Progress{}
	if list := a.verboseFile("size"); list != nil { // one line at a time: the printer locks
		p.Entry = func(path string, size int64) { list(path, "restored", size) }
	}
	var totalFiles, totalBytes int64 // known for a whole snapshot
	if len(o.includes) == 0 {
		totalFiles, totalBytes = sn.Stats.Files+sn.Stats.Others, sn.Stats.BytesIn
	}
	stop := a.restoreProgress(p, "entries", totalFiles, totalBytes)
	st, err := r.RestoreFiles(ctx, sn, o.to, snapshot.RestoreOptions{Include: o.includes, Progress: p, Entries: fo,
		OnFailure: func(f snapshot.Failure) {
			if a.json {
				_ = a.emit(map[string]any{"message_type": "error", "path": f.Path, "error": f.Err.Error()})
				return
			}
			fmt.Fprintf(a.stderr, "error: could not restore %s: %s\n", termSafe(f.Path), termSafe(f.Err.Error()))
		}})
	stop()
	var incomplete *snapshot.IncompleteError
	if err != nil && !errors.As(err, &incomplete) {
		return err
	}
	el := time.Since(start).Seconds()
	if a.json {
		if err := a.emit(map[string]any{"message_type": "summary", "snapshot_id": sn.ID.String(),
			"target": sn.Target, "to": o.to, "files": st.Files, "dirs": st.Dirs, "others": st.Other,
			"bytes": st.Bytes, "failed": st.Failed, "devices_skipped": st.DevicesSkipped,
			"duration_seconds": el, "recovery_point": sn.RecoveryPoint.Time}); err != nil {
			return err
		}
		return err
	}
	fmt.Fprintf(a.stdout, "restored snapshot %s (%s, taken %s, %s old) to %s\n", sn.ID.Short(), termSafe(sn.Target),
		sn.Time.Local().Format(time.RFC3339), time.Since(sn.RecoveryPoint.Time).Round(time.Second), o.to)
	fmt.Fprintf(a.stdout, "  %d files, %d dirs, %d others, %s in %.1fs\n", st.Files, st.Dirs, st.Other, humanize.Bytes(st.Bytes), el)
	if st.DevicesSkipped > 0 {
		fmt.Fprintf(a.stdout, "  %d device nodes not restored (--devices restores them)\n", st.DevicesSkipped)
	}
	if st.Failed > 0 {
		fmt.Fprintf(a.stdout, "  %d entries could not be restored (listed above)\n", st.Failed)
	}
	return err
}

// addFilesRestoreFlags adds the flags that grant a files restore what a
// snapshot cannot ask for by itself (restore and failover).
func addFilesRestoreFlags(f *pflag.FlagSet, o *restoreOptions) {
	f.BoolVar(&o.keepSetuid, "keep-setuid", false, "files: restore setuid/setgid bits (cleared by default)")
	f.StringVar(&o.xattrs, "xattrs", "user", "files: extended attributes to restore: user (user.* only), all, none")
	f.BoolVar(&o.devices, "devices", false, "files: create block and character device nodes (skipped by default)")
}

// filesOptions are the files.RestoreOptions the flags ask for.
func (o restoreOptions) filesOptions() (snapshot.EntryOptions, error) {
	fo := snapshot.EntryOptions{KeepSetuid: o.keepSetuid, Devices: o.devices}
	switch o.xattrs {
	case "user":
		fo.Xattrs = snapshot.XattrsUser
	case "all":
		fo.Xattrs = snapshot.XattrsAll
	case "none":
		fo.Xattrs = snapshot.XattrsNone
	default:
		return fo, usagef("--xattrs %q: want user, all or none", o.xattrs)
	}
	return fo, nil
}

// restoreStream restores a database, exec, bucket or volume snapshot of
// any engine; handled is false for a files snapshot.
func (a *app) restoreStream(ctx context.Context, s snapshot.Reader, o restoreOptions, my *mysqlRestoreFlags) (handled bool, err error) {
	if isMySQLDestination(o.to) {
		return true, a.restoreMySQL(ctx, s, o.to, my)
	}
	if isPostgresDestination(o.to) {
		return true, a.restorePostgres(ctx, s, o.to, my, o.pg)
	}
	return a.restoreTargetKind(ctx, s, o.to, o.kinds)
}
