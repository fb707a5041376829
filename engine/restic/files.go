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
// restic restores entries its own way: of the options only Progress (set
// at the end) is honoured; the others are refused rather than ignored.
func (e *Engine) RestoreFiles(ctx context.Context, sn *snapshot.Snapshot, dest string, opts snapshot.RestoreOptions) (*snapshot.RestoreStats, error) {
	if sn.Kind != "files" {
		return nil, fmt.Errorf("snapshot %s is a %s snapshot, not files", sn.ID.Short(), sn.Kind)
	}
	if len(opts.Include) > 0 {
		return nil, fmt.Errorf("%w: --include on restic files snapshots (use restic restore --include)", snapshot.ErrUnsupported)
	}
	if opts.Entries != (snapshot.EntryOptions{}) {
		return nil, fmt.Errorf("%w: --owner, --numeric-owner, --xattrs, --keep-setuid and --devices on restic files snapshots (restic restore applies its own rules)", snapshot.ErrUnsupported)
	}
	st := &snapshot.RestoreStats{}
	for _, root := range sn.Paths {
		to := filepath.Join(dest, path.Base(filepath.ToSlash(root)))
		var out bytes.Buffer
		err := e.R.run(ctx, cmd{args: []string{"restore", "--json", sn.ID.String() + ":" + root, "--target", to}, stdout: &out})
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
