package jsonl

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type rec struct {
	N int `json:"n"`
}

func TestAppendRead(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "j.jsonl")
	got, err := Read[rec](path, nil)
	require.NoError(t, err)
	assert.Empty(t, got, "a missing journal is empty")

	require.NoError(t, Append(path, rec{1}))
	require.NoError(t, Append(path, rec{2}))
	// a crash mid-write leaves half a line: skipped, later lines still read
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	require.NoError(t, err)
	_, err = f.WriteString(`{"n":`)
	require.NoError(t, err)
	require.NoError(t, f.Close())
	require.NoError(t, Append(path, rec{3}))

	got, err = Read[rec](path, nil)
	require.NoError(t, err)
	assert.Equal(t, []rec{{1}, {2}, {3}}, got, "only the half line is lost")

	odd, err := Read(path, func(r *rec) bool { return r.N%2 == 1 })
	require.NoError(t, err)
	assert.Equal(t, []rec{{1}, {3}}, odd)

	st, err := os.Stat(path)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), st.Mode().Perm())
}
