package repo_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lifeboat-backup/lifeboat/engine/repo"
	"github.com/lifeboat-backup/lifeboat/engine/repo/repotest"
	"github.com/lifeboat-backup/lifeboat/engine/snapshot"
)

// damagedRepo backs up a small tree into a fresh repository (on mem:// or
// file://) and returns it, opened with the owner key, with its snapshot.
func damagedRepo(t *testing.T, file bool) (*repotest.Repo, *repo.Repository, *snapshot.Snapshot) {
	t.Helper()
	b := memBucket(t)
	if file {
		b = fileBucket(t)
	}
	tr := repotest.Init(t, b, repotest.SmallChunks, 256<<10)
	r := tr.Open(t, tr.Owner)
	sn := backupDir(t, r, makeTree(t, 3<<20, 21))
	return tr, r, sn
}

func requireNames(t *testing.T, err error, key string) {
	t.Helper()
	require.Error(t, err)
	t.Logf("error: %v", err)
	assert.Contains(t, err.Error(), key, "the error must name the damaged object")
}

// checkErrors runs a full check (with --read-data) and returns its errors.
func checkErrors(t *testing.T, r *repo.Repository) []string {
	t.Helper()
	res, err := r.Check(ctx, repo.CheckOptions{ReadDataPercent: 100})
	require.NoError(t, err)
	return res.Errors
}

func requireReported(t *testing.T, errs []string, parts ...string) {
	t.Helper()
	for _, e := range errs {
		ok := true
		for _, p := range parts {
			ok = ok && strings.Contains(e, p)
		}
		if ok {
			return
		}
	}
	t.Fatalf("check did not report %q; errors: %q", parts, errs)
}

func TestCorruptDataPack(t *testing.T) {
	tests := []struct {
		name        string
		file        bool
		pos         func(n int) int // which byte to flip
		restoreFail bool            // restore reads that byte
	}{
		{"mem middle", false, func(n int) int { return n / 2 }, true},
		{"file middle", true, func(n int) int { return n / 2 }, true},
		{"mem last byte", false, func(n int) int { return n - 1 }, false},
		{"file age header mac", true, func(n int) int { return -1 }, true},
		{"mem recipient stanza body", false, func(n int) int { return -2 }, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tr, r, sn := damagedRepo(t, tc.file)
			require.Empty(t, checkErrors(t, r), "the repository is sound before the damage")
			p := dataPacks(r)[0]
			key := packKey(p.ID)
			data, err := tr.Bucket.ReadAll(ctx, key)
			require.NoError(t, err)
			pos := tc.pos(len(data))
			switch pos {
			case -1: // a byte of the header MAC ("--- <mac>\n")
				pos = strings.Index(string(data), "\n--- ") + 6
				data[pos] ^= 0x04
			case -2: // the wrapped file key of every recipient stanza, still valid base64
				for i := 0; ; {
					j := strings.Index(string(data[i:]), "\n-> ")
					if j < 0 || i+j > strings.Index(string(data), "\n--- ") {
						break
					}
					body := i + j + 1 + strings.IndexByte(string(data[i+j+1:]), '\n') + 1
					data[body+2] = map[bool]byte{true: 'B', false: 'A'}[data[body+2] == 'A']
					i = body
				}
			default:
				data[pos] ^= 0x04
			}
			overwrite(t, tr.Bucket, key, data)

			r = tr.Open(t, tr.Owner) // no cached pack readers
			if tc.restoreFail {
				err = restoreErr(r, sn, t.TempDir())
				requireNames(t, err, key)
				var ce *repo.CorruptError
				require.True(t, errors.As(err, &ce), "want a CorruptError, got %v", err)
				assert.Equal(t, key, ce.Object)
			}

			errs := checkErrors(t, r)
			requireReported(t, errs, key)
			assert.Len(t, errs, 1, "only the damaged pack is reported: %q", errs)
		})
	}
}

func TestTruncatedIndex(t *testing.T) {
	for _, cut := range []struct {
		name string
		keep func(n int) int
	}{
		{"half", func(n int) int { return n / 2 }},
		{"last byte", func(n int) int { return n - 1 }},
		{"empty", func(int) int { return 0 }},
	} {
		t.Run(cut.name, func(t *testing.T) {
			tr, _, _ := damagedRepo(t, false)
			keys := keysOf(listObjects(t, tr.Bucket, "index/"), "index/")
			require.NotEmpty(t, keys)
			key := keys[0]
			data, err := tr.Bucket.ReadAll(ctx, key)
			require.NoError(t, err)
			overwrite(t, tr.Bucket, key, data[:cut.keep(len(data))])

			// Opening skips the damaged index file and reports it: one bad
			// object must not stop backups.
			for _, c := range []repo.Credentials{tr.Owner, tr.Host} {
				r, err := repo.Open(ctx, tr.Bucket, c)
				require.NoError(t, err)
				bad := r.DamagedIndexes()
				require.Len(t, bad, 1)
				requireNames(t, bad[0], key)
				var ce *repo.CorruptError
				require.True(t, errors.As(bad[0], &ce), "want a CorruptError, got %T %v", bad[0], bad[0])
				assert.Equal(t, key, ce.Object)
			}
			// check names it; prune refuses to delete on partial knowledge.
			r := tr.Open(t, tr.Owner)
			res, err := r.Check(ctx, repo.CheckOptions{})
			require.NoError(t, err)
			requireReported(t, res.Errors, key)
			_, err = r.Prune(ctx, repo.PruneOptions{Grace: -1})
			requireNames(t, err, key)
			assert.Contains(t, err.Error(), "nothing deleted")
		})
	}
}

func TestMissingPack(t *testing.T) {
	tr, r, sn := damagedRepo(t, true)
	p := dataPacks(r)[0]
	key := packKey(p.ID)
	require.NoError(t, tr.Bucket.Delete(ctx, key))

	r = tr.Open(t, tr.Owner)
	errs := checkErrors(t, r)
	requireReported(t, errs, key, "missing")
	// Structure check alone (no --read-data) finds it too.
	res, err := r.Check(ctx, repo.CheckOptions{})
	require.NoError(t, err)
	requireReported(t, res.Errors, key, "missing")

	requireNames(t, restoreErr(r, sn, t.TempDir()), key)
}

func TestTruncatedPack(t *testing.T) {
	for _, file := range []bool{false, true} {
		name := map[bool]string{false: "mem", true: "file"}[file]
		t.Run(name, func(t *testing.T) {
			tr, r, sn := damagedRepo(t, file)
			p := dataPacks(r)[0]
			key := packKey(p.ID)
			data, err := tr.Bucket.ReadAll(ctx, key)
			require.NoError(t, err)
			overwrite(t, tr.Bucket, key, data[:len(data)/2])

			r = tr.Open(t, tr.Owner)
			err = restoreErr(r, sn, t.TempDir())
			requireNames(t, err, key)
			errs := checkErrors(t, r)
			requireReported(t, errs, key)
		})
	}
}

func TestGarbageSnapshot(t *testing.T) {
	tr, r, sn := damagedRepo(t, false)
	key := "snapshots/" + sn.ID.String()
	overwrite(t, tr.Bucket, key, []byte("this is not an age file"))

	r = tr.Open(t, tr.Owner)
	_, err := r.LoadSnapshot(ctx, sn.ID)
	requireNames(t, err, key)
	var ce *repo.CorruptError
	require.True(t, errors.As(err, &ce))
	assert.Equal(t, key, ce.Object)

	// Listing skips it and reports it; "latest" is the newest readable one.
	good := backupDir(t, r, makeTree(t, 1<<20, 22))
	sns, err := r.Snapshots(ctx)
	require.NoError(t, err)
	require.Len(t, sns, 1)
	require.Len(t, r.DamagedSnapshots(), 1)
	requireNames(t, r.DamagedSnapshots()[0], key)
	latest, err := r.FindSnapshot(ctx, "latest", nil)
	require.NoError(t, err)
	assert.Equal(t, good.ID, latest.ID)
	_, err = r.FindSnapshot(ctx, sn.ID.Short(), nil)
	requireNames(t, err, key)

	requireReported(t, checkErrors(t, r), key)

	// It can be forgotten without being read.
	id, err := r.ResolveID(ctx, sn.ID.Short())
	require.NoError(t, err)
	require.NoError(t, r.DeleteSnapshot(ctx, id))
	assert.Empty(t, checkErrors(t, r))

	// Valid age, wrong content: encrypted to the repository, but not JSON.
	tr2, r2, sn2 := damagedRepo(t, false)
	key2 := "snapshots/" + sn2.ID.String()
	idx := keysOf(listObjects(t, tr2.Bucket, "index/"), "index/")[0]
	data, err := tr2.Bucket.ReadAll(ctx, idx)
	require.NoError(t, err)
	overwrite(t, tr2.Bucket, key2, data) // an index where a snapshot should be
	_, err = r2.LoadSnapshot(ctx, sn2.ID)
	requireNames(t, err, key2)
}

// --read-data=10 of a few packs read none and said "no problems"; a
// damaged pack was counted as "read and verified".
func TestCheckReadDataCounts(t *testing.T) {
	tr, r, _ := damagedRepo(t, false)
	res, err := r.Check(ctx, repo.CheckOptions{ReadDataPercent: 10})
	require.NoError(t, err)
	assert.Equal(t, (res.Packs+9)/10, res.PacksRead, "a share rounded up: at least one pack")

	key := packKey(dataPacks(r)[0].ID)
	data, err := tr.Bucket.ReadAll(ctx, key)
	require.NoError(t, err)
	data[len(data)/2] ^= 1
	overwrite(t, tr.Bucket, key, data)
	res, err = tr.Open(t, tr.Owner).Check(ctx, repo.CheckOptions{ReadDataPercent: 100})
	require.NoError(t, err)
	assert.Equal(t, res.Packs, res.PacksRead)
	assert.Equal(t, 1, res.PacksFailed)
}
