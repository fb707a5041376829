package atomicfile

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestWriteFileReplacesWhole(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "sub", "m.prom")
	require.NoError(t, WriteFile(p, []byte("one\n"), 0o640))
	require.NoError(t, WriteFile(p, []byte("two\n"), 0o640))
	b, err := os.ReadFile(p)
	require.NoError(t, err)
	assert.Equal(t, "two\n", string(b))
	st, err := os.Stat(p)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o640), st.Mode().Perm())
	ents, _ := os.ReadDir(filepath.Dir(p))
	assert.Len(t, ents, 1, "no temporary file left")
}

func TestAbortLeavesNothing(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "out.sql")
	require.NoError(t, os.WriteFile(p, []byte("old"), 0o644))
	f, err := Create(p, 0o644)
	require.NoError(t, err)
	_, err = f.WriteString("half")
	require.NoError(t, err)
	f.Abort()
	f.Abort()
	b, _ := os.ReadFile(p)
	assert.Equal(t, "old", string(b), "the old file is untouched")
	ents, _ := os.ReadDir(dir)
	assert.Len(t, ents, 1)
	assert.Error(t, f.Commit(), "commit after abort")
}
