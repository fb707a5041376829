package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lifeboat-backup/lifeboat/engine"
	"github.com/lifeboat-backup/lifeboat/engine/schedule"
	"github.com/lifeboat-backup/lifeboat/internal/blockdigest"
	"github.com/lifeboat-backup/lifeboat/policies"
	"github.com/lifeboat-backup/lifeboat/targets/volume"
)

func TestCLITargetsExecVolumeBucket(t *testing.T) {
	c, dir, src := setup(t)
	c.env["LIFEBOAT_KEY_FILE"] = filepath.Join(dir, "owner.key")
	payload := filepath.Join(src, "sub", "a.txt")

	// exec
	sum := lastJSON(t, c.ok("backup", "exec", "--name", "dump.txt", "--json", "--", "cat", payload))
	assert.EqualValues(t, 90000, sum["bytes_in"])
	out := filepath.Join(dir, "dump.out")
	rs := lastJSON(t, c.ok("restore", "latest", "--target", "exec", "--to", out, "--json"))
	assert.EqualValues(t, 90000, rs["bytes"])
	want, _ := os.ReadFile(payload)
	got, err := os.ReadFile(out)
	require.NoError(t, err)
	assert.Equal(t, want, got)
	h := sha256.Sum256(want)
	assert.Equal(t, hex.EncodeToString(h[:]), rs["sha256"])
	piped := filepath.Join(dir, "piped out")
	c.ok("restore", "latest", "--target", "exec", "--to-command", "sh -c 'cat > \"$0\"' '"+piped+"'")
	got, err = os.ReadFile(piped)
	require.NoError(t, err)
	assert.Equal(t, want, got)

	// volume
	img := filepath.Join(dir, "disk.img")
	f, err := os.Create(img)
	require.NoError(t, err)
	require.NoError(t, f.Truncate(32<<20))
	_, err = f.WriteAt(bytes.Repeat([]byte("data"), 100000), 5<<20)
	require.NoError(t, err)
	require.NoError(t, f.Close())
	log := filepath.Join(dir, "hooks.log")
	sum = lastJSON(t, c.ok("backup", "volume", img, "--before", "sh -c 'echo before >> "+log+"'", "--after", "sh -c 'echo after >> "+log+"'", "--json"))
	assert.EqualValues(t, 32<<20, sum["bytes_in"])
	hooks, _ := os.ReadFile(log)
	assert.Equal(t, "before\nafter\n", string(hooks))
	rimg := filepath.Join(dir, "restored.img")
	rs = lastJSON(t, c.ok("restore", "latest", "--target", "volume", "--to", rimg, "--json"))
	wantImg, _ := os.ReadFile(img)
	gotImg, err := os.ReadFile(rimg)
	require.NoError(t, err)
	assert.True(t, bytes.Equal(wantImg, gotImg))
	bd := blockdigest.New(volume.DefaultBlockSize)
	bd.Write(wantImg)
	assert.Equal(t, bd.Sum(), rs["digest"], "the recorded block digest, verified")
	assert.Equal(t, true, rs["verified"])
	assert.Empty(t, rs["sha256"], "no whole-image SHA-256 where a digest is recorded")
	// Smaller blocks, and a restore without the digest.
	c.ok("backup", "volume", img, "--block-size", "65536")
	rimg2 := filepath.Join(dir, "restored-64k.img")
	rs = lastJSON(t, c.ok("restore", "latest", "--target", "volume", "--to", rimg2, "--no-hash", "--json"))
	assert.Empty(t, rs["sha256"])
	assert.Empty(t, rs["digest"])
	gotImg, err = os.ReadFile(rimg2)
	require.NoError(t, err)
	assert.True(t, bytes.Equal(wantImg, gotImg))

	// bucket (file://) to a directory
	bdir := filepath.Join(dir, "bucket")
	require.NoError(t, os.MkdirAll(filepath.Join(bdir, "media", "x"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(bdir, "media", "x", "1.jpg"), []byte("jpeg"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(bdir, "media", "2.tmp"), []byte("tmp"), 0o644))
	sum = lastJSON(t, c.ok("backup", "bucket", "file://"+bdir, "--prefix", "media/", "--exclude", "*.tmp", "--json"))
	assert.EqualValues(t, 1, sum["files"])
	rdir := filepath.Join(dir, "bucket-restored")
	c.ok("restore", "latest", "--target", "bucket", "--to", rdir)
	got, err = os.ReadFile(filepath.Join(rdir, "x", "1.jpg"))
	require.NoError(t, err)
	assert.Equal(t, "jpeg", string(got))

	// Bad input.
	cases := []struct {
		name string
		args []string
		code int
	}{
		{"exec without name", []string{"backup", "exec", "--", "true"}, exitUsage},
		{"exec command not found", []string{"backup", "exec", "--name", "x", "--", "no-such-command-lifeboat"}, exitUsage},
		{"exec exits 1", []string{"backup", "exec", "--name", "x", "--", "sh", "-c", "echo partial; exit 1"}, exitFailure},
		{"volume missing", []string{"backup", "volume", filepath.Join(dir, "missing.img")}, exitFailure},
		{"volume hook fails", []string{"backup", "volume", img, "--before", "false"}, exitFailure},
		{"volume block size not a power of two", []string{"backup", "volume", img, "--block-size", "100000"}, exitUsage},
		{"bucket missing", []string{"backup", "bucket", "file://" + filepath.Join(dir, "nope")}, exitFailure},
		{"volume restore over existing", []string{"restore", "latest", "--target", "volume", "--to", rimg}, exitFailure},
		{"exec restore without destination", []string{"restore", "latest", "--target", "exec", "--to-command", ""}, exitUsage},
		{"exec restore command fails", []string{"restore", "latest", "--target", "exec", "--to-command", "false"}, exitFailure},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, errs, code := c.run(tc.args...)
			assert.Equal(t, tc.code, code, errs)
			assert.NotEmpty(t, errs)
		})
	}
}

func TestPolicySourceForNewKinds(t *testing.T) {
	cases := []struct {
		name    string
		target  policies.Target
		kind    string
		wantErr bool
	}{
		{"exec", policies.Target{Name: "redis", Kind: "exec", Command: []string{"true"}}, "exec", false},
		{"exec not found", policies.Target{Name: "redis", Kind: "exec", Command: []string{"no-such-command-lifeboat"}}, "", true},
		{"bucket", policies.Target{Name: "media", Kind: "bucket", URL: "mem://", Prefix: "m/", Include: []string{"*.jpg"}}, "bucket", false},
		{"bucket bad glob", policies.Target{Name: "media", Kind: "bucket", URL: "mem://", Exclude: []string{""}}, "", true},
		{"volume", policies.Target{Name: "disk", Kind: "volume", Path: "/dev/null", Before: []string{"true"}, After: []string{"true"}}, "volume", false},
		{"volume no path", policies.Target{Name: "disk", Kind: "volume"}, "", true},
		{"volume block size", policies.Target{Name: "disk", Kind: "volume", Path: "/dev/null", BlockSize: 64 << 10}, "volume", false},
		{"volume bad block size", policies.Target{Name: "disk", Kind: "volume", Path: "/dev/null", BlockSize: 3000}, "", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			src, err := schedule.SourceFor(tc.target, "")
			if tc.wantErr {
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.kind, src.Kind())
			if tc.target.BlockSize != 0 {
				assert.EqualValues(t, tc.target.BlockSize, src.(engine.FixedBlocks).BlockSize())
			}
		})
	}
	// The policy checks block sizes against the volume target's limits.
	assert.EqualValues(t, volume.MinBlockSize, policies.MinVolumeBlockSize)
	assert.EqualValues(t, volume.MaxBlockSize, policies.MaxVolumeBlockSize)
}
