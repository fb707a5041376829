package restic

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"path"
	"path/filepath"

	"github.com/lifeboat-backup/lifeboat/engine/repo"
	"github.com/lifeboat-backup/lifeboat/restore"
)

// RestoreFiles restores a files snapshot to dest the way the native engine
// lays it out: each backed-up root under dest/BASENAME (restic restore
// SNAPSHOT:ROOT --target dest/BASENAME).
func (e *Engine) RestoreFiles(ctx context.Context, sn *repo.Snapshot, dest string) (*restore.Stats, error) {
	if sn.Kind != "files" {
		return nil, fmt.Errorf("snapshot %s is a %s snapshot, not files", sn.ID.Short(), sn.Kind)
	}
	st := &restore.Stats{}
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
	return st, nil
}
