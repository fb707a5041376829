package restore_test

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/lifeboat-backup/lifeboat/engine"
	"github.com/lifeboat-backup/lifeboat/engine/repo"
	"github.com/lifeboat-backup/lifeboat/engine/repo/repotest"
	"github.com/lifeboat-backup/lifeboat/engine/snapshot"
	"github.com/lifeboat-backup/lifeboat/restore"
	"github.com/lifeboat-backup/lifeboat/targets/files"
)

// The attacks here are hostile snapshots: written through the repository
// API with the host key (what a stolen backup host holds), with crafted
// nodes, then restored by the owner. Each asserts that the attack fails.

// hostileEntry is a crafted node and, for a file, its content.
type hostileEntry struct {
	e       snapshot.Entry
	content string
}

// hostile is a Source that delivers crafted entries as they are.
type hostile struct {
	kind    string
	entries []hostileEntry
}

func (h hostile) Kind() string    { return h.kind }
func (h hostile) Paths() []string { return []string{"/srv"} }

func (h hostile) Walk(_ context.Context, _ func(string, error), fn func(snapshot.Entry, engine.Opener) error) error {
	for _, he := range h.entries {
		var open engine.Opener
		if he.e.Type == snapshot.TypeFile {
			c := he.content
			he.e.Size = int64(len(c))
			open = func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(c)), nil }
		}
		if err := fn(he.e, open); err != nil {
			return err
		}
	}
	return nil
}

// hostileSnapshot writes a snapshot of kind with the host key and returns
// the repository opened with the owner key, and the snapshot.
func hostileSnapshot(t *testing.T, kind string, entries ...hostileEntry) (*repo.Repository, *snapshot.Snapshot) {
	t.Helper()
	tr, _ := repotest.Mem(t)
	host := tr.Open(t, tr.Host)
	res, err := engine.Backup(context.Background(), host, hostile{kind, entries}, engine.BackupOptions{NoParent: true})
	require.NoError(t, err)
	owner := tr.Open(t, tr.Owner)
	sn, err := owner.FindSnapshot(context.Background(), res.Snapshot.ID.String(), nil)
	require.NoError(t, err)
	return owner, sn
}

func file(path, content string, mode fs.FileMode) hostileEntry {
	return hostileEntry{e: snapshot.Entry{Path: path, Type: snapshot.TypeFile, Mode: uint32(mode), ModTime: time.Unix(1e9, 0)}, content: content}
}

func dir(path string, mode fs.FileMode) hostileEntry {
	return hostileEntry{e: snapshot.Entry{Path: path, Type: snapshot.TypeDir, Mode: uint32(mode), ModTime: time.Unix(1e9, 0)}}
}

func symlink(path, target string) hostileEntry {
	return hostileEntry{e: snapshot.Entry{Path: path, Type: snapshot.TypeSymlink, LinkTarget: target, Mode: 0o777}}
}

// restoreHostile restores sn to a fresh dest inside a fresh parent and
// returns dest, the parent (to check that nothing appeared next to dest),
// the stats and the failures.
func restoreHostile(t *testing.T, r *repo.Repository, sn *snapshot.Snapshot, fo snapshot.EntryOptions) (string, *snapshot.RestoreStats, []snapshot.Failure) {
	t.Helper()
	dest := filepath.Join(t.TempDir(), "dest")
	st, err := restore.Files(context.Background(), r, sn, dest, snapshot.RestoreOptions{Entries: fo})
	var ie *snapshot.IncompleteError
	if err != nil {
		require.True(t, errors.As(err, &ie), "%v", err)
		return dest, st, ie.Failures
	}
	return dest, st, nil
}

func failedPaths(fs []snapshot.Failure) []string {
	var out []string
	for _, f := range fs {
		out = append(out, f.Path)
	}
	return out
}

// onlyDest asserts that the parent of dest holds dest alone.
func onlyDest(t *testing.T, dest string) {
	t.Helper()
	entries, err := os.ReadDir(filepath.Dir(dest))
	require.NoError(t, err)
	require.Len(t, entries, 1, "something was written beside --to")
}

func TestAttackFilesPathTraversal(t *testing.T) {
	outside := t.TempDir()
	r, sn := hostileSnapshot(t, "files",
		file("../escape", "x", 0o644),
		file("a/../../escape", "x", 0o644),
		file(filepath.Join(outside, "abs"), "x", 0o644),
		file("ok", "fine", 0o644),
		hostileEntry{e: snapshot.Entry{Path: "hl", Type: snapshot.TypeHardlink, HardlinkTo: "../escape"}},
	)
	dest, st, failed := restoreHostile(t, r, sn, snapshot.EntryOptions{})
	onlyDest(t, dest)
	entries, err := os.ReadDir(outside)
	require.NoError(t, err)
	assert.Empty(t, entries)
	assert.ElementsMatch(t, []string{"../escape", "a/../../escape", filepath.Join(outside, "abs"), "hl"}, failedPaths(failed))
	assert.EqualValues(t, 1, st.Files)
	got, err := os.ReadFile(filepath.Join(dest, "ok"))
	require.NoError(t, err)
	assert.Equal(t, "fine", string(got))
}

func TestAttackFilesSymlinkParent(t *testing.T) {
	outside := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(outside, "passwd"), []byte("original"), 0o644))
	r, sn := hostileSnapshot(t, "files",
		symlink("etc", outside),
		file("etc/passwd", "pwned", 0o644),
		dir("etc/sub", 0o777),
		symlink("etc/evil", "/"),
		symlink("up", ".."),
		file("up/escape", "x", 0o644),
	)
	dest, _, failed := restoreHostile(t, r, sn, snapshot.EntryOptions{})
	onlyDest(t, dest)
	assert.ElementsMatch(t, []string{"etc/passwd", "etc/sub", "etc/evil", "up/escape"}, failedPaths(failed))
	for _, f := range failed {
		assert.ErrorIs(t, f.Err, files.ErrUnsafePath)
	}
	got, err := os.ReadFile(filepath.Join(outside, "passwd"))
	require.NoError(t, err)
	assert.Equal(t, "original", string(got))
	entries, err := os.ReadDir(outside)
	require.NoError(t, err)
	assert.Len(t, entries, 1)
}

// A hardlink entry must not reach a file that was in the destination
// before the restore: linking it would hand its content to the snapshot's
// paths, and the entry's metadata used to be applied to it.
func TestAttackFilesHardlinkToPreexisting(t *testing.T) {
	r, sn := hostileSnapshot(t, "files",
		hostileEntry{e: snapshot.Entry{Path: "grab", Type: snapshot.TypeHardlink, HardlinkTo: "victim",
			Mode: 0o777 | uint32(fs.ModeSetuid), UID: 65534, GID: 65534, Links: 2}},
	)
	dest := filepath.Join(t.TempDir(), "dest")
	require.NoError(t, os.MkdirAll(dest, 0o755))
	victim := filepath.Join(dest, "victim")
	require.NoError(t, os.WriteFile(victim, []byte("the operator's file"), 0o600))
	_, err := restore.Files(context.Background(), r, sn, dest, snapshot.RestoreOptions{})
	var ie *snapshot.IncompleteError
	require.True(t, errors.As(err, &ie), "%v", err)
	assert.Equal(t, []string{"grab"}, failedPaths(ie.Failures))
	assert.ErrorIs(t, ie.Failures[0].Err, files.ErrHardlinkTarget)

	var st unix.Stat_t
	require.NoError(t, unix.Lstat(victim, &st))
	assert.Equal(t, uint32(0o600), st.Mode&0o7777, "victim's mode unchanged")
	assert.Equal(t, uint32(os.Geteuid()), st.Uid, "victim's owner unchanged")
	assert.EqualValues(t, 1, st.Nlink, "victim not linked")
	_, err = os.Lstat(filepath.Join(dest, "grab"))
	assert.ErrorIs(t, err, fs.ErrNotExist)
}

func TestAttackFilesSetuidRoot(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("owners are restored as root only")
	}
	suid := file("bin/rootshell", "#!/bin/sh\n", 0o755|fs.ModeSetuid|fs.ModeSetgid)
	suid.e.UID, suid.e.GID, suid.e.User, suid.e.Group = 0, 0, "root", "root"
	r, sn := hostileSnapshot(t, "files", dir("bin", 0o755), suid,
		dir("shared", 0o2775|fs.ModeSetgid))
	dest, _, failed := restoreHostile(t, r, sn, snapshot.EntryOptions{})
	require.Empty(t, failed)
	var st unix.Stat_t
	require.NoError(t, unix.Lstat(filepath.Join(dest, "bin/rootshell"), &st))
	assert.Equal(t, uint32(0o755), st.Mode&0o7777, "setuid/setgid cleared")
	assert.Equal(t, uint32(0), st.Uid)
	require.NoError(t, unix.Lstat(filepath.Join(dest, "shared"), &st))
	assert.Equal(t, uint32(unix.S_ISGID), st.Mode&unix.S_ISGID, "a directory keeps setgid")

	dest, _, failed = restoreHostile(t, r, sn, snapshot.EntryOptions{KeepSetuid: true})
	require.Empty(t, failed)
	require.NoError(t, unix.Lstat(filepath.Join(dest, "bin/rootshell"), &st))
	assert.Equal(t, uint32(0o6755), st.Mode&0o7777, "--keep-setuid restores them")
}

func TestAttackFilesDeviceNode(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mknod of devices needs root")
	}
	mem := hostileEntry{e: snapshot.Entry{Path: "mem", Type: snapshot.TypeCharDev, Mode: 0o666, Rdev: unix.Mkdev(1, 1)}}
	disk := hostileEntry{e: snapshot.Entry{Path: "sda", Type: snapshot.TypeDevice, Mode: 0o666, Rdev: unix.Mkdev(8, 0)}}
	r, sn := hostileSnapshot(t, "files", mem, disk, file("ok", "fine", 0o644))
	dest, st, failed := restoreHostile(t, r, sn, snapshot.EntryOptions{})
	require.Empty(t, failed)
	assert.EqualValues(t, 2, st.DevicesSkipped)
	for _, p := range []string{"mem", "sda"} {
		_, err := os.Lstat(filepath.Join(dest, p))
		assert.ErrorIs(t, err, fs.ErrNotExist, p)
	}

	dest, st, failed = restoreHostile(t, r, sn, snapshot.EntryOptions{Devices: true})
	require.Empty(t, failed)
	assert.Zero(t, st.DevicesSkipped)
	fi, err := os.Lstat(filepath.Join(dest, "mem"))
	require.NoError(t, err)
	assert.NotZero(t, fi.Mode()&fs.ModeCharDevice, "--devices creates them")
}

func TestAttackFilesPrivilegedXattrs(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("trusted.* xattrs need root")
	}
	f := file("bin/tool", "x", 0o755)
	f.e.Xattrs = []snapshot.Xattr{{Name: "trusted.lifeboat", Value: []byte("t")}, {Name: "user.lifeboat", Value: []byte("u")}}
	r, sn := hostileSnapshot(t, "files", f)
	dest, _, failed := restoreHostile(t, r, sn, snapshot.EntryOptions{})
	require.Empty(t, failed)
	p := filepath.Join(dest, "bin/tool")
	buf := make([]byte, 16)
	if _, err := unix.Lgetxattr(p, "user.lifeboat", buf); err == unix.ENOTSUP {
		t.Skip("no xattrs on this file system")
	}
	n, err := unix.Lgetxattr(p, "user.lifeboat", buf)
	require.NoError(t, err)
	assert.Equal(t, "u", string(buf[:n]))
	_, err = unix.Lgetxattr(p, "trusted.lifeboat", buf)
	assert.Equal(t, unix.ENODATA, err, "trusted.* not restored by default")

	dest, _, failed = restoreHostile(t, r, sn, snapshot.EntryOptions{Xattrs: snapshot.XattrsAll})
	require.Empty(t, failed)
	n, err = unix.Lgetxattr(filepath.Join(dest, "bin/tool"), "trusted.lifeboat", buf)
	require.NoError(t, err, "--xattrs=all restores it")
	assert.Equal(t, "t", string(buf[:n]))
}

// A bucket snapshot restored to a directory: keys are paths the host
// wrote; a symlink planted in the directory is not followed.
func TestAttackBucketToDirectory(t *testing.T) {
	outside := t.TempDir()
	r, sn := hostileSnapshot(t, "bucket",
		file("media/logo.png", "pwned", 0o644),
		file("../escape.jpg", "x", 0o644),
	)
	dest := filepath.Join(t.TempDir(), "dest")
	require.NoError(t, os.MkdirAll(dest, 0o755))
	require.NoError(t, os.Symlink(outside, filepath.Join(dest, "media")))
	_, err := restore.Bucket(context.Background(), r.SnapshotReader(sn), dest, restore.BucketOptions{Workers: 1})
	require.Error(t, err)
	onlyDest(t, dest)
	entries, err := os.ReadDir(outside)
	require.NoError(t, err)
	assert.Empty(t, entries, "nothing written through the planted symlink")
}

// Exec restore to FILE used to write through FILE.lifeboat-tmp: a symlink
// planted there redirected the write.
func TestAttackExecPlantedTempSymlink(t *testing.T) {
	r, sn := hostileSnapshot(t, "exec", file("dump.rdb", "REDIS0011 new content", 0o644))
	victim := filepath.Join(t.TempDir(), "victim")
	require.NoError(t, os.WriteFile(victim, []byte("original"), 0o644))
	dir := t.TempDir()
	to := filepath.Join(dir, "dump.rdb")
	require.NoError(t, os.Symlink(victim, to+".lifeboat-tmp"))
	_, err := restore.Exec(context.Background(), r.SnapshotReader(sn), restore.ExecOptions{To: to})
	require.NoError(t, err)
	got, err := os.ReadFile(victim)
	require.NoError(t, err)
	assert.Equal(t, "original", string(got))
	got, err = os.ReadFile(to)
	require.NoError(t, err)
	assert.Equal(t, "REDIS0011 new content", string(got))
	fi, err := os.Lstat(to)
	require.NoError(t, err)
	assert.True(t, fi.Mode().IsRegular())
}

// A volume image is created with at most mode 0644 whatever the snapshot
// says, and never written through a symlink.
func TestAttackVolumeImage(t *testing.T) {
	r, sn := hostileSnapshot(t, "volume", file("disk.img", strings.Repeat("v", 8192), 0o777|fs.ModeSetuid))
	img := filepath.Join(t.TempDir(), "disk.img")
	_, err := restore.Volume(context.Background(), r.SnapshotReader(sn), img, restore.VolumeOptions{})
	require.NoError(t, err)
	fi, err := os.Lstat(img)
	require.NoError(t, err)
	assert.Equal(t, fs.FileMode(0o644), fi.Mode(), "no group/other write, no setuid")

	victim := filepath.Join(t.TempDir(), "victim")
	require.NoError(t, os.WriteFile(victim, nil, 0o644))
	link := filepath.Join(t.TempDir(), "planted.img")
	require.NoError(t, os.Symlink(victim, link))
	_, err = restore.Volume(context.Background(), r.SnapshotReader(sn), link, restore.VolumeOptions{})
	require.ErrorContains(t, err, "symlink")
	fi, err = os.Stat(victim)
	require.NoError(t, err)
	assert.Zero(t, fi.Size(), "nothing written through the symlink")
}
