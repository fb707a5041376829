package restic

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"path"
	"path/filepath"

	"github.com/lifeboat-backup/lifeboat/engine/snapshot"
)

// RestoreFiles restores a files snapshot to dest the way the native engine
// lays it out: each backed-up root under dest/BASENAME (restic restore
// SNAPSHOT:ROOT --target dest/BASENAME).
// restic restores entries its own way: it keeps setuid/setgid bits and
// creates device nodes whatever KeepSetuid and Devices say (documented in
// docs/restic-engine.md), maps Xattrs onto --include-xattr/--exclude-xattr,
// sets Progress at the end, and refuses what it has no means for
// (Include, owner modes) rather than ignoring it.
func (e *Engine) RestoreFiles(ctx context.Context, sn *snapshot.Snapshot, dest string, opts snapshot.RestoreOptions) (*snapshot.RestoreStats, error) {
	if sn.Kind != "files" {
		return nil, fmt.Errorf("snapshot %s is a %s snapshot, not files", sn.ID.Short(), sn.Kind)
	}
	if len(opts.Include) > 0 {
		return nil, fmt.Errorf("%w: --include on restic files snapshots (use restic restore --include)", snapshot.ErrUnsupported)
	}
	if opts.Entries.Owner != snapshot.OwnerAuto || opts.Entries.NumericOwner {
		return nil, fmt.Errorf("%w: owner modes on restic files snapshots (restic restore restores owners when run as root)", snapshot.ErrUnsupported)
	}
	var xattrs []string
	switch opts.Entries.Xattrs {
	case snapshot.XattrsUser:
		xattrs = []string{"--include-xattr", "user.*"}
	case snapshot.XattrsNone:
		xattrs = []string{"--exclude-xattr", "*"}
	}
	st := &snapshot.RestoreStats{}
	for _, root := range sn.Paths {
		to := filepath.Join(dest, path.Base(filepath.ToSlash(root)))
		var out bytes.Buffer
		err := e.R.run(ctx, cmd{args: append([]string{"restore", "--json", sn.ID.String() + ":" + root, "--target", to}, xattrs...), stdout: &out})
		if err != nil {
			return nil, fmt.Errorf("restore %s of snapshot %s: %w", root, sn.ID.Short(), err)
		}
		for _, line := range bytes.Split(out.Bytes(), []byte("\n")) {
			var m struct {
				MessageType   string `json:"message_type"`
				FilesRestored int64  `json:"files_restored"`
				BytesRestored int64  `json:"bytes_restored"`
			}
			if json.Unmarshal(line, &m) == nil && m.MessageType == "summary" {
				st.Files += m.FilesRestored
				st.Bytes += m.BytesRestored
			}
		}
	}
	if opts.Progress != nil {
		opts.Progress.Files.Store(st.Files)
		opts.Progress.Bytes.Store(st.Bytes)
	}
	return st, nil
}

// CanReadData implements snapshot.Repository: a restic repository's
// password reads everything.
func (e *Engine) CanReadData() bool { return true }
