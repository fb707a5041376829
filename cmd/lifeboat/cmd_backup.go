package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/lifeboat-backup/lifeboat/engine"
	"github.com/lifeboat-backup/lifeboat/engine/snapshot"
	"github.com/lifeboat-backup/lifeboat/internal/humanize"
	"github.com/lifeboat-backup/lifeboat/internal/report"
	"github.com/lifeboat-backup/lifeboat/targets/files"
)

type backupOptions struct {
	excludes      []string
	iexcludes     []string
	excludeFiles  []string
	ifPresent     []string
	excludeCaches bool
	tags          []string
	host          string
	target        string
	parent        string
	force         bool
	oneFileSystem bool
	time          string // --time: the snapshot's time instead of now
	dryRun        bool   // --dry-run: count what would be saved, write nothing
	// workers overrides the backup's reader count (database dumps: one
	// per dump stream); consistent, when set, describes a database
	// snapshot's recovery point on a line before the summary.
	workers    int
	consistent func(snapshot.RecoveryPoint) string
}

func (a *app) backupCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "backup KIND ...",
		Short: "Back up a target into the repository",
	}
	var o backupOptions
	files := &cobra.Command{
		Use:   "files PATH...",
		Short: "Back up directory trees",
		Long: `Back up directory trees. Each PATH is stored under its base name (/var/www/media/x
becomes media/x). Files whose size, mtime, ctime and inode match the parent snapshot are
not read again. Unreadable entries are skipped and named; the snapshot is still saved and
the exit code is 4.

--dry-run (-n) reads and chunks the files as a backup would and says what would be saved
and how much of it is new, writing nothing to the repository: no pack, no index, no
snapshot, no lock.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error { return a.runBackupFiles(cmd, o, args) },
	}
	f := files.Flags()
	f.StringArrayVar(&o.excludes, "exclude", nil, "exclude entries matching GLOB (path as stored or base name; ** allowed), repeatable")
	f.StringArrayVar(&o.iexcludes, "iexclude", nil, "like --exclude, ignoring case, repeatable")
	f.StringArrayVar(&o.excludeFiles, "exclude-file", nil, "read --exclude patterns from FILE, one a line (# comments, blank lines skipped), repeatable")
	f.StringArrayVar(&o.ifPresent, "exclude-if-present", nil, "leave out the content of directories holding an entry named FILE (the directory and FILE stay), repeatable")
	f.BoolVar(&o.excludeCaches, "exclude-caches", false, "leave out the content of directories holding a CACHEDIR.TAG with the standard signature (the tag stays)")
	f.StringArrayVar(&o.tags, "tag", nil, "tag the snapshot, repeatable")
	f.StringVar(&o.host, "host", "", "host name recorded in the snapshot (default: this host)")
	f.StringVar(&o.target, "target", "", "target name recorded in the snapshot (default: files)")
	f.StringVar(&o.parent, "parent", "", "compare with this snapshot instead of the latest of the same target")
	f.BoolVar(&o.force, "force", false, "read every file, ignoring the parent snapshot")
	f.BoolVarP(&o.oneFileSystem, "one-file-system", "x", false, "do not cross mount points")
	f.BoolVarP(&o.dryRun, "dry-run", "n", false, "say what would be saved and how much is new; write nothing to the repository")
	timeFlag(f, &o)
	cmd.AddCommand(files, a.backupMySQLCmd(), a.backupPostgresCmd())
	cmd.AddCommand(a.targetBackupCmds()...)
	return cmd
}

func (a *app) runBackupFiles(cmd *cobra.Command, o backupOptions, paths []string) error {
	excludes := o.excludes
	for _, name := range o.excludeFiles {
		pats, err := files.ReadExcludeFile(name)
		if err != nil {
			return usagef("--exclude-file: %v", err)
		}
		excludes = append(excludes, pats...)
	}
	if err := files.CheckExcludes(excludes, o.iexcludes); err != nil {
		return usagef("--exclude: %v", err)
	}
	for _, name := range o.ifPresent {
		if name == "" || strings.Contains(name, "/") {
			return usagef("--exclude-if-present %q: want a file name", name)
		}
	}
	src := &files.Source{Roots: paths, Options: files.Options{Excludes: excludes, IExcludes: o.iexcludes,
		ExcludeIfPresent: o.ifPresent, ExcludeCaches: o.excludeCaches, OneFileSystem: o.oneFileSystem}}
	return a.backupSource(cmd.Context(), o, src)
}

func (a *app) backupSummary(res *engine.BackupResult) error {
	sn, st := res.Snapshot, res.Snapshot.Stats
	if a.json {
		out := map[string]any{
			"message_type": "summary", "snapshot_id": sn.ID.String(), "short_id": sn.ID.Short(),
			"target": sn.Target, "host": sn.Host, "time": sn.Time, "files": st.Files, "dirs": st.Dirs,
			"others": st.Others, "bytes_in": st.BytesIn, "bytes_read": st.BytesRead, "bytes_added": st.BytesAdded,
			"bytes_stored": st.BytesStored, "blobs_added": st.Blobs, "duration_seconds": st.Duration,
			"warnings": nonNil(res.Warnings),
		}
		if sn.Parent != nil {
			out["parent"] = sn.Parent.String()
		}
		if err := a.emit(out); err != nil {
			return err
		}
	} else {
		parent := a.warnUnread(res)
		fmt.Fprintf(a.stdout, "snapshot %s saved (target %s, parent %s)\n", sn.ID.Short(), sn.Target, parent)
		fmt.Fprintf(a.stdout, "  %d files, %d dirs, %d others, %s in, %s read\n", st.Files, st.Dirs, st.Others,
			humanize.Bytes(st.BytesIn), humanize.Bytes(st.BytesRead))
		fmt.Fprintf(a.stdout, "  added %s (%s stored) in %.1fs\n", humanize.Bytes(st.BytesAdded), humanize.Bytes(st.BytesStored), st.Duration)
	}
	if len(res.Warnings) > 0 {
		return partialError{len(res.Warnings)}
	}
	return nil
}

// warnUnread prints the files a backup could not read and returns the
// short ID of its parent ("none").
func (a *app) warnUnread(res *engine.BackupResult) (parent string) {
	for _, w := range res.Warnings {
		fmt.Fprintf(a.stderr, "warning: could not read %s\n", termSafe(w))
	}
	if p := res.Snapshot.Parent; p != nil {
		return p.Short()
	}
	return "none"
}

// dryRunSummary says what a backup --dry-run would have saved.
func (a *app) dryRunSummary(res *engine.BackupResult) error {
	sn, st := res.Snapshot, res.Snapshot.Stats
	if a.json {
		if err := a.emit(map[string]any{
			"message_type": "summary", "dry_run": true, "target": sn.Target, "host": sn.Host,
			"files": st.Files, "dirs": st.Dirs, "others": st.Others, "bytes_in": st.BytesIn,
			"bytes_read": st.BytesRead, "bytes_added": st.BytesAdded, "blobs_added": st.Blobs,
			"duration_seconds": st.Duration, "warnings": nonNil(res.Warnings),
		}); err != nil {
			return err
		}
	} else {
		parent := a.warnUnread(res)
		fmt.Fprintf(a.stdout, "dry run: nothing written (target %s, parent %s)\n", sn.Target, parent)
		fmt.Fprintf(a.stdout, "  would save %d files, %d dirs, %d others, %s in (%s read)\n", st.Files, st.Dirs, st.Others,
			humanize.Bytes(st.BytesIn), humanize.Bytes(st.BytesRead))
		fmt.Fprintf(a.stdout, "  would add %s of new content in %d blobs (before compression; metadata not counted) in %.1fs\n",
			humanize.Bytes(st.BytesAdded), st.Blobs, st.Duration)
	}
	if len(res.Warnings) > 0 {
		return partialError{len(res.Warnings)}
	}
	return nil
}

// snapshotFilter selects snapshots by target and host ("" matches all).
func snapshotFilter(target, host string) func(*snapshot.Snapshot) bool {
	return func(s *snapshot.Snapshot) bool {
		return (target == "" || s.Target == target) && (host == "" || s.Host == host)
	}
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func commonBackupFlags(f *pflag.FlagSet, o *backupOptions, kind string, force bool) {
	f.StringArrayVar(&o.tags, "tag", nil, "tag the snapshot, repeatable")
	f.StringVar(&o.host, "host", "", "host name recorded in the snapshot (default: this host)")
	f.StringVar(&o.target, "target", "", "target name recorded in the snapshot (default: "+kind+")")
	if force {
		f.BoolVar(&o.force, "force", false, "read everything, ignoring the parent snapshot")
	}
	timeFlag(f, o)
}

func timeFlag(f *pflag.FlagSet, o *backupOptions) {
	f.StringVar(&o.time, "time", "", `record this as the snapshot's time instead of now (restic's --time): RFC 3339 or "2006-01-02 15:04:05" local time`)
}

// parseSnapshotTime reads --time: RFC 3339, or restic's
// "2006-01-02 15:04:05" (also without seconds) in the local zone.
func parseSnapshotTime(s string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	for _, layout := range []string{"2006-01-02 15:04:05", "2006-01-02 15:04"} {
		if t, err := time.ParseInLocation(layout, s, time.Local); err == nil {
			return t, nil
		}
	}
	return time.Time{}, usagef("--time %q: want RFC 3339 (2027-09-15T02:30:00+02:00) or \"2027-09-15 02:30:00\" (local time)", s)
}

// backupSource runs one backup of src on the repository's engine, with
// progress and the summary.
func (a *app) backupSource(ctx context.Context, o backupOptions, src engine.Source) error {
	mode := sharedLock
	if o.dryRun {
		mode = noLock // writes nothing, so needs no lock
	}
	return a.withEngine(ctx, mode, "backup", func(ctx context.Context, e engine.Engine) error {
		opts := engine.BackupOptions{Target: o.target, Host: o.host, Tags: o.tags, NoParent: o.force,
			Progress: &engine.Progress{File: a.verboseFile("data_size")}, Workers: o.workers, DryRun: o.dryRun}
		if o.time != "" {
			t, err := parseSnapshotTime(o.time)
			if err != nil {
				return err
			}
			opts.Time = t
		}
		if o.parent != "" {
			target := o.target
			if target == "" {
				target = src.Kind()
			}
			p, err := findPerTarget(ctx, e, o.parent, target, o.host) // latest: of this target
			if err != nil {
				return err
			}
			opts.Parent = &p.ID
		}
		stop := a.progressOf(func() report.Counter {
			return report.Counter{Phase: "backup", Unit: "entries", Files: opts.Progress.Files.Load(), Bytes: opts.Progress.Bytes.Load()}
		})
		res, err := e.Backup(ctx, src, opts)
		stop()
		if err != nil {
			return err
		}
		if o.dryRun {
			return a.dryRunSummary(res)
		}
		if o.consistent != nil && !a.json && !a.quiet {
			rp := res.Snapshot.RecoveryPoint
			fmt.Fprintf(a.stdout, "consistent at %s (%s)\n", rp.Time.Local().Format(time.RFC3339Nano), o.consistent(rp))
		}
		return a.backupSummary(res)
	})
}
