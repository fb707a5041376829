package gentree_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/lifeboat-backup/lifeboat/internal/testutil/gentree"
	"github.com/lifeboat-backup/lifeboat/internal/testutil/treecmp"
)

var exact = treecmp.Options{CompareRoot: true, Sparse: true}

func gen(t *testing.T, opts gentree.Options) (string, gentree.Stats) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "t")
	st, err := gentree.Generate(dir, opts)
	require.NoError(t, err)
	return dir, st
}

func TestGenerateDeterministic(t *testing.T) {
	opts := gentree.Options{Size: 6 << 20, Seed: 42}
	a, sa := gen(t, opts)
	b, sb := gen(t, opts)
	assert.Equal(t, sa, sb)
	diffs, err := treecmp.Compare(a, b, exact)
	require.NoError(t, err)
	assert.Empty(t, diffs)

	c, _ := gen(t, gentree.Options{Size: 6 << 20, Seed: 43})
	diffs, err = treecmp.Compare(a, c, exact)
	require.NoError(t, err)
	assert.NotEmpty(t, diffs)

	// Mutating both copies the same way keeps them identical, and changes
	// about the requested fraction.
	na, err := gentree.Mutate(a, 0.05, 9)
	require.NoError(t, err)
	nb, err := gentree.Mutate(b, 0.05, 9)
	require.NoError(t, err)
	assert.Equal(t, na, nb)
	diffs, err = treecmp.Compare(a, b, exact)
	require.NoError(t, err)
	assert.Empty(t, diffs)
	assert.InDelta(t, 0.05*float64(sa.Apparent), float64(na), 0.03*float64(sa.Apparent))

	orig, _ := gen(t, opts)
	diffs, err = treecmp.Compare(orig, a, exact)
	require.NoError(t, err)
	fields := map[string]int{}
	for _, d := range diffs {
		fields[d.Field]++
	}
	assert.Positive(t, fields["content"], "%v", fields)
	assert.Positive(t, fields["mtime"])
	assert.Positive(t, fields["missing"])
	assert.Positive(t, fields["extra"])
}

func TestGenerateContent(t *testing.T) {
	dir, st := gen(t, gentree.Options{Size: 8 << 20, Seed: 1, Socket: true})
	assert.InDelta(t, 8<<20, float64(st.Bytes), 0.1*(8<<20))
	assert.Greater(t, st.Files, 150)
	assert.Greater(t, st.Dirs, 30)
	assert.GreaterOrEqual(t, st.Symlinks, 5)
	assert.GreaterOrEqual(t, st.Hardlinks, 3)
	assert.GreaterOrEqual(t, st.Special, 2)

	sql, err := os.ReadFile(filepath.Join(dir, "backup/dump-00.sql"))
	require.NoError(t, err)
	blob, err := os.ReadFile(filepath.Join(dir, "var/lib/blob-00.bin"))
	require.NoError(t, err)
	assert.Equal(t, len(sql), len(blob))
	assert.Contains(t, string(sql[:4096]), "INSERT INTO `customer_entity`")
	assert.Contains(t, string(sql[:4096]), "@example")

	var s unix.Stat_t
	require.NoError(t, unix.Lstat(filepath.Join(dir, "var/lib/vm/disk.img"), &s))
	assert.Less(t, s.Blocks*512, s.Size/4, "sparse")
	require.NoError(t, unix.Lstat(filepath.Join(dir, "run/app.fifo"), &s))
	assert.Equal(t, uint32(unix.S_IFIFO), s.Mode&unix.S_IFMT)
	require.NoError(t, unix.Lstat(filepath.Join(dir, "shared"), &s))
	assert.Equal(t, uint32(0o2775), s.Mode&0o7777)
	require.NoError(t, unix.Lstat(filepath.Join(dir, "odd/new\nline.txt"), &s))
	assert.NotZero(t, s.Mtim.Nsec)

	_, err = gentree.Generate(dir, gentree.Options{Size: 1 << 20})
	assert.ErrorContains(t, err, "not empty")
}

func BenchmarkGenerate64MiB(b *testing.B) {
	for b.Loop() {
		dir := filepath.Join(b.TempDir(), "t")
		st, err := gentree.Generate(dir, gentree.Options{Size: 64 << 20, Seed: 1, NoSpecial: true})
		require.NoError(b, err)
		b.SetBytes(st.Bytes)
	}
}
