package physical

import (
	"archive/tar"
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/lifeboat-backup/lifeboat/engine/logarchive"
	"github.com/lifeboat-backup/lifeboat/engine/repo"
	"github.com/lifeboat-backup/lifeboat/engine/snapshot"
)

func base(id byte, target string, rp time.Time, endLSN string) *snapshot.Snapshot {
	return &snapshot.Snapshot{ID: snapshot.ID{id}, Target: target, Kind: "postgres",
		RecoveryPoint: snapshot.RecoveryPoint{Time: rp, Details: map[string]string{"method": Method, "end_lsn": endLSN}}}
}

func TestChooseBase(t *testing.T) {
	t0 := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	logical := &snapshot.Snapshot{ID: snapshot.ID{9}, Target: "pg", Kind: "postgres", RecoveryPoint: snapshot.RecoveryPoint{Time: t0.Add(time.Hour)}}
	snaps := []*snapshot.Snapshot{base(1, "pg", t0, "0/3000000"), base(2, "pg", t0.Add(2*time.Hour), "0/9000000"), logical,
		base(3, "other", t0.Add(time.Hour), "0/5000000")}
	pick := func(until string) (byte, error) {
		sn, err := ChooseBase(snaps, "pg", ParseTarget(logarchive.ParseUntil(until, time.UTC)))
		if err != nil {
			return 0, err
		}
		return sn.ID[0], nil
	}
	for until, want := range map[string]byte{"latest": 2, "2026-12-07 11:30:00": 1, "2026-12-07T12:00:00Z": 2, "0/8000000": 1, "0/9000000": 2, "before-upgrade": 2} {
		got, err := pick(until)
		require.NoError(t, err, until)
		require.Equal(t, want, got, until)
	}
	_, err := pick("2026-12-07 09:00:00")
	require.ErrorIs(t, err, repo.ErrNotFound)
	require.Contains(t, err.Error(), "no physical base from before")
	_, err = ChooseBase([]*snapshot.Snapshot{logical}, "pg", ParseTarget(logarchive.Until{Latest: true}))
	require.ErrorContains(t, err, "has no physical base")
}

func tarOf(t *testing.T, entries map[string]string, extra ...*tar.Header) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for name, body := range entries {
		require.NoError(t, tw.WriteHeader(&tar.Header{Name: name, Mode: 0o600, Size: int64(len(body)), Typeflag: tar.TypeReg}))
		_, err := tw.Write([]byte(body))
		require.NoError(t, err)
	}
	for _, h := range extra {
		require.NoError(t, tw.WriteHeader(h))
	}
	require.NoError(t, tw.Close())
	return buf.Bytes()
}

func TestUntarAndRecoverySettings(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "data")
	o := Owner{UID: os.Geteuid(), GID: os.Getegid()}
	require.NoError(t, PrepareDir(dir, o))
	st, err := Untar(ctx, bytes.NewReader(tarOf(t, map[string]string{"PG_VERSION": "15\n", "base/1/1259": "page", "pg_wal/000000010000000000000002": "wal"})), dir, o)
	require.NoError(t, err)
	require.Equal(t, 3, st.Files)
	b, err := os.ReadFile(filepath.Join(dir, "base", "1", "1259"))
	require.NoError(t, err)
	require.Equal(t, "page", string(b))
	require.ErrorContains(t, PrepareDir(dir, o), "not empty")

	for _, h := range []*tar.Header{
		{Name: "../escape", Typeflag: tar.TypeReg},
		{Name: "pg_tblspc/16384", Typeflag: tar.TypeSymlink, Linkname: "/etc"},
	} {
		d := filepath.Join(t.TempDir(), "data")
		require.NoError(t, PrepareDir(d, o))
		_, err := Untar(ctx, bytes.NewReader(tarOf(t, nil, h)), d, o)
		require.Error(t, err, h.Name)
		require.Contains(t, err.Error(), h.Name)
	}
	_, err = os.Stat(filepath.Join(filepath.Dir(dir), "escape"))
	require.True(t, os.IsNotExist(err))

	rc := ParseTarget(logarchive.ParseUntil("2026-12-07T10:14:59.5Z", nil)).Recovery(
		ShellQuote("/usr/bin/lifeboat")+" --policy "+ShellQuote("/etc/life boat/p.yaml")+" wal fetch %f %p", true)
	require.NoError(t, WriteRecovery(dir, rc, o))
	conf, err := os.ReadFile(filepath.Join(dir, "postgresql.auto.conf"))
	require.NoError(t, err)
	for _, want := range []string{
		`restore_command = '/usr/bin/lifeboat --policy ''/etc/life boat/p.yaml'' wal fetch %f %p'`,
		`recovery_target_time = '2026-12-07 10:14:59.5+00'`,
		`recovery_target_action = 'promote'`, `recovery_target_timeline = 'latest'`, `archive_mode = 'off'`,
	} {
		require.Contains(t, string(conf), want)
	}
	require.False(t, strings.Contains(string(conf), "recovery_target_lsn"))
	_, err = os.Stat(filepath.Join(dir, "recovery.signal"))
	require.NoError(t, err)
	require.Equal(t, `'a'\''b'`, ShellQuote("a'b"))
}
