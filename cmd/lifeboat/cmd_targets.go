package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/lifeboat-backup/lifeboat/engine/snapshot"
	"github.com/lifeboat-backup/lifeboat/internal/humanize"
	"github.com/lifeboat-backup/lifeboat/restore"
	"github.com/lifeboat-backup/lifeboat/targets/bucket"
	"github.com/lifeboat-backup/lifeboat/targets/exec"
	"github.com/lifeboat-backup/lifeboat/targets/volume"
)

// The backup subcommands and restore helpers of the volume, bucket and
// exec targets (docs/targets.md).

// targetBackupCmds returns the volume, bucket and exec subcommands of backup.
func (a *app) targetBackupCmds() []*cobra.Command {
	var vo, bo, eo backupOptions
	var before, after string
	var blockSize int
	vol := &cobra.Command{
		Use:   "volume PATH [--before CMD] [--after CMD]",
		Short: "Back up a block device or disk image file",
		Long: `Back up a block device or image file as one entry (its base name). --before runs before the
read (e.g. "lvcreate --snapshot ..." or "fsfreeze -f /mnt"), --after after it; --after always
runs once --before was tried, also when the backup fails or is interrupted. Commands are split
into words like a shell does (quotes allowed) but run without a shell. Holes of image files are
not read. The volume is cut into aligned blocks (--block-size, default 256 KiB): a write costs
the blocks it touches, so an unchanged volume adds almost nothing.
A failed read or hook fails the backup: no snapshot is saved.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o := volume.Options{Path: args[0], BlockSize: blockSize}
			var err error
			if o.Before, err = splitCommand(before); err != nil {
				return usagef("--before: %v", err)
			}
			if o.After, err = splitCommand(after); err != nil {
				return usagef("--after: %v", err)
			}
			src, err := volume.New(o)
			if err != nil {
				return usageError{err}
			}
			return a.backupSource(cmd.Context(), vo, src)
		},
	}
	vol.Flags().StringVar(&before, "before", "", "command run before the read")
	vol.Flags().StringVar(&after, "after", "", "command run after the read (always, once --before was tried)")
	vol.Flags().IntVar(&blockSize, "block-size", 0, "bytes per block, a power of two from 4096 to 16777216 (default 262144)")
	commonBackupFlags(vol.Flags(), &vo, "volume", false)

	var bucketOpts bucket.Options
	bkt := &cobra.Command{
		Use:   "bucket URL [--prefix P] [--include GLOB] [--exclude GLOB]",
		Short: "Back up the objects of a bucket (s3://, gs://, azblob://, file://)",
		Long: `Back up the objects of a bucket: each object is one entry (its key relative to the prefix up to
its last "/"), with its content type, ETag, MD5, cache control, content encoding/disposition/
language and user metadata. Objects whose size, modification time and ETag match the parent
snapshot are not read again. --include/--exclude are globs on that relative key ("*" within one
"/" segment, "**" across; a pattern without "/" also matches the base name). Credentials come
from the cloud's environment as for repositories. Keys that are no valid path ("a//b") are
skipped and named; the snapshot is still saved and the exit code is 4.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			bucketOpts.URL = args[0]
			src, err := bucket.New(bucketOpts)
			if err != nil {
				return usageError{err}
			}
			return a.backupSource(cmd.Context(), bo, src)
		},
	}
	bkt.Flags().StringVar(&bucketOpts.Prefix, "prefix", "", "only objects whose keys start with P")
	bkt.Flags().StringArrayVar(&bucketOpts.Include, "include", nil, "back up only keys matching GLOB, repeatable")
	bkt.Flags().StringArrayVar(&bucketOpts.Exclude, "exclude", nil, "leave out keys matching GLOB, repeatable")
	commonBackupFlags(bkt.Flags(), &bo, "bucket", true)

	var name string
	ex := &cobra.Command{
		Use:   "exec --name NAME -- COMMAND [ARGS...]",
		Short: "Back up the standard output of a command (redis-cli --rdb -, pg_dump, ...)",
		Long: `Run COMMAND (no shell) and store its standard output as one entry NAME, streamed: nothing is
written to disk. A command that exits non-zero or is killed fails the backup (no snapshot is
saved); the error quotes the last 4 KiB of its stderr. Restore with
lifeboat restore SNAPSHOT --to FILE or --to-command 'COMMAND ARGS'.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if name == "" {
				return usagef("--name is required")
			}
			src, err := exec.New(exec.Options{Name: name, Command: args})
			if err != nil {
				return usageError{err}
			}
			return a.backupSource(cmd.Context(), eo, src)
		},
	}
	ex.Flags().StringVar(&name, "name", "", "name of the stream in the snapshot (e.g. redis.rdb)")
	commonBackupFlags(ex.Flags(), &eo, "exec", false)
	return []*cobra.Command{vol, bkt, ex}
}

// targetRestoreFlags are restore's flags for volume, bucket and exec
// snapshots.
type targetRestoreFlags struct {
	toCommand string
	overwrite bool
	noHash    bool
	prefix    string
}

func addTargetRestoreFlags(f *pflag.FlagSet, t *targetRestoreFlags) {
	f.StringVar(&t.toCommand, "to-command", "", "exec snapshots: pipe the stream into this command (split like a shell, run without one)")
	f.BoolVar(&t.overwrite, "overwrite", false, "volume snapshots: replace an existing non-empty image file")
	f.BoolVar(&t.noHash, "no-hash", false, "volume snapshots: skip the digest of the restored content, neither verified nor reported (blobs are verified either way)")
	f.StringVar(&t.prefix, "prefix", "", "bucket snapshots restored to a bucket: put P before every key")
}

// restoreTargetKind restores volume, bucket and exec snapshots; handled
// is false for other kinds.
func (a *app) restoreTargetKind(ctx context.Context, s snapshot.Reader, to string, t targetRestoreFlags) (handled bool, err error) {
	sn := s.Info()
	start := time.Now()
	p := &snapshot.Progress{}
	stop := a.restoreProgress(p, "entries", 0, sn.Stats.BytesIn) // a volume's size, a bucket's or stream's content
	defer stop()
	summary := map[string]any{"message_type": "summary", "snapshot_id": sn.ID.String(), "target": sn.Target,
		"kind": sn.Kind, "recovery_point": sn.RecoveryPoint.Time}
	var text string
	switch sn.Kind {
	case "volume":
		if to == "" {
			return true, usagef("--to IMAGE|DEVICE is required")
		}
		st, err := restore.Volume(ctx, s, to, restore.VolumeOptions{Overwrite: t.overwrite, NoHash: t.noHash, Progress: p})
		if err != nil {
			return true, err
		}
		summary["to"], summary["bytes"], summary["written"], summary["zero_bytes"], summary["device"] =
			to, st.Bytes, st.Written, st.ZeroBytes, st.Device
		text = fmt.Sprintf("  %s (%s of data, %s zeros)", humanize.Bytes(st.Bytes), humanize.Bytes(st.Written), humanize.Bytes(st.ZeroBytes))
		switch {
		case st.Digest != "":
			summary["digest"], summary["verified"] = st.Digest, true
			text += ", verified against the block digest recorded at backup"
		case st.SHA256 != "":
			summary["sha256"] = st.SHA256
			text += ", sha256 " + st.SHA256
		}
	case "bucket":
		if to == "" {
			return true, usagef("--to URL|DIR is required")
		}
		st, err := restore.Bucket(ctx, s, to, restore.BucketOptions{Prefix: t.prefix, Progress: p})
		if err != nil {
			return true, err
		}
		summary["to"], summary["files"], summary["bytes"] = to, st.Objects, st.Bytes
		text = fmt.Sprintf("  %d objects, %s", st.Objects, humanize.Bytes(st.Bytes))
	case "exec":
		argv, err := splitCommand(t.toCommand)
		if err != nil {
			return true, usagef("--to-command: %v", err)
		}
		if (to == "") == (len(argv) == 0) {
			return true, usagef("give --to FILE (- for stdout) or --to-command CMD")
		}
		if to == "-" && a.json {
			return true, usagef("--to - and --json both write to stdout")
		}
		st, err := restore.Exec(ctx, s, restore.ExecOptions{To: to, Command: argv, Stdout: a.stdout, Progress: p})
		if err != nil {
			return true, err
		}
		if to == "" {
			to = "command " + t.toCommand
		}
		summary["to"], summary["bytes"], summary["sha256"], summary["name"] = to, st.Bytes, st.SHA256, st.Name
		text = fmt.Sprintf("  %s, sha256 %s", humanize.Bytes(st.Bytes), st.SHA256)
		if to == "-" {
			return true, nil
		}
	default:
		return false, nil
	}
	stop()
	summary["duration_seconds"] = time.Since(start).Seconds()
	if a.json {
		return true, a.emit(summary)
	}
	fmt.Fprintf(a.stdout, "restored %s snapshot %s (%s, taken %s) to %s\n", sn.Kind, sn.ID.Short(), sn.Target,
		sn.Time.Local().Format(time.RFC3339), summary["to"])
	fmt.Fprintf(a.stdout, "%s in %.1fs\n", text, time.Since(start).Seconds())
	return true, nil
}

// splitCommand splits s into words like a POSIX shell (single and double
// quotes, backslash escapes), without expansions. "" gives nil.
func splitCommand(s string) ([]string, error) {
	var out []string
	var cur strings.Builder
	inWord := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\'':
			j := strings.IndexByte(s[i+1:], '\'')
			if j < 0 {
				return nil, errors.New("unterminated '")
			}
			cur.WriteString(s[i+1 : i+1+j])
			i += j + 1
			inWord = true
		case c == '"':
			i++
			for ; i < len(s) && s[i] != '"'; i++ {
				if s[i] == '\\' && i+1 < len(s) && strings.IndexByte("\"\\$`", s[i+1]) >= 0 {
					i++
				}
				cur.WriteByte(s[i])
			}
			if i >= len(s) {
				return nil, errors.New(`unterminated "`)
			}
			inWord = true
		case c == '\\' && i+1 < len(s):
			i++
			cur.WriteByte(s[i])
			inWord = true
		case c == ' ' || c == '\t' || c == '\n':
			if inWord {
				out = append(out, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			cur.WriteByte(c)
			inWord = true
		}
	}
	if inWord {
		out = append(out, cur.String())
	}
	return out, nil
}
