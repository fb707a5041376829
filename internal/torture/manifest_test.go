package torture

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestManifestDiff(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string, mode os.FileMode) {
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte(content), mode))
		require.NoError(t, os.Chmod(filepath.Join(dir, name), mode))
	}
	require.NoError(t, os.Mkdir(filepath.Join(dir, "d"), 0o755))
	write("d/a", "alpha", 0o644)
	write("b", "bravo", 0o600)
	require.NoError(t, os.Symlink("d/a", filepath.Join(dir, "l")))
	m, err := Scan(dir)
	require.NoError(t, err)
	assert.Equal(t, Entry{Type: "file", Mode: 0o644, Size: 5, SHA256: "8ed3f6ad685b959ead7022518e1af76cd816f8e8ec7ccdda1ed4018e8f2223f8"}, m["d/a"])
	assert.Equal(t, Entry{Type: "symlink", Link: "d/a"}, m["l"])
	assert.Equal(t, "dir", m["d"].Type)
	assert.Empty(t, m.Diff(m, 0))

	write("d/a", "alphA", 0o644) // same size, other content
	write("b", "bravo", 0o640)
	require.NoError(t, os.Remove(filepath.Join(dir, "l")))
	require.NoError(t, os.Symlink("b", filepath.Join(dir, "l")))
	write("c", "", 0o644)
	got, err := Scan(dir)
	require.NoError(t, err)
	diff := m.Diff(got, 0)
	require.Len(t, diff, 4, "%q", diff)
	assert.Contains(t, diff[0], "b: want file 0600 5 bytes sha256 f144a6907dc4, got file 0640")
	assert.Contains(t, diff[1], "c: extra (file)")
	assert.Contains(t, diff[2], "d/a: want file 0644 5 bytes sha256 8ed3f6ad685b")
	assert.Contains(t, diff[3], "l: want symlink -> d/a, got symlink -> b")
	assert.Len(t, m.Diff(got, 2), 3)
}
