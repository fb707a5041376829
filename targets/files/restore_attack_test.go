package files

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/lifeboat-backup/lifeboat/engine/snapshot"
)

// Directory modes and mtimes are applied at the end of a restore. Someone
// who can write in the destination swaps a restored directory for a
// symlink to a directory outside in the meantime: the mode must not land
// there (it used to: chmod 0777 outside).
func TestAttackDirModeSymlinkSwap(t *testing.T) {
	outside := t.TempDir()
	require.NoError(t, os.Chmod(outside, 0o700))
	before, err := os.Stat(outside)
	require.NoError(t, err)
	dst := t.TempDir()
	r, err := NewRestorer(dst, snapshot.EntryOptions{})
	require.NoError(t, err)
	e := snapshot.Entry{Path: "d", Type: snapshot.TypeDir, Mode: 0o777, ModTime: time.Unix(1e9, 0)}
	require.NoError(t, r.Dir(e))
	require.NoError(t, r.Finish(e))

	require.NoError(t, os.Rename(filepath.Join(dst, "d"), filepath.Join(dst, "d.moved")))
	require.NoError(t, os.Symlink(outside, filepath.Join(dst, "d")))
	err = r.Close()
	assert.ErrorContains(t, err, `"d"`)

	var st unix.Stat_t
	require.NoError(t, unix.Stat(outside, &st))
	assert.Equal(t, uint32(0o700), st.Mode&0o7777, "outside directory's mode unchanged")
	after, err := os.Stat(outside)
	require.NoError(t, err)
	assert.Equal(t, before.ModTime(), after.ModTime(), "outside directory's mtime unchanged")
}

// A hardlink entry may only link to a file this restorer committed, and
// never changes that file's metadata.
func TestAttackHardlinkOnlyToCreated(t *testing.T) {
	dst := t.TempDir()
	victim := filepath.Join(dst, "victim")
	require.NoError(t, os.WriteFile(victim, []byte("pre-existing"), 0o600))
	r, err := NewRestorer(dst, snapshot.EntryOptions{})
	require.NoError(t, err)
	defer r.Close()
	hl := snapshot.Entry{Path: "grab", Type: snapshot.TypeHardlink, HardlinkTo: "victim", Mode: 0o4777, UID: 65534, GID: 65534}
	assert.ErrorIs(t, r.Other(hl), ErrHardlinkTarget)
	require.NoError(t, r.Finish(hl))
	var st unix.Stat_t
	require.NoError(t, unix.Lstat(victim, &st))
	assert.Equal(t, uint32(0o600), st.Mode&0o7777)
	assert.EqualValues(t, 1, st.Nlink)

	// A file of this restore is a valid target; its metadata stays its own.
	f, err := r.File(snapshot.Entry{Path: "mine", Type: snapshot.TypeFile, Size: 2, Mode: 0o640, Links: 2})
	require.NoError(t, err)
	_, err = f.WriteAt([]byte("ok"), 0)
	require.NoError(t, err)
	require.NoError(t, f.Commit())
	hl.HardlinkTo = "mine"
	require.NoError(t, r.Other(hl))
	require.NoError(t, r.Finish(hl))
	require.NoError(t, unix.Lstat(filepath.Join(dst, "grab"), &st))
	assert.Equal(t, uint32(0o640), st.Mode&0o7777)
	assert.EqualValues(t, 2, st.Nlink)

	// Replaced since it was restored: no longer a target.
	require.NoError(t, os.Remove(filepath.Join(dst, "mine")))
	require.NoError(t, os.Link(victim, filepath.Join(dst, "mine")))
	hl.Path = "grab2"
	assert.ErrorIs(t, r.Other(hl), ErrHardlinkTarget)
}
