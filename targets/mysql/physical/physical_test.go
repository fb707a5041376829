package physical

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/lifeboat-backup/lifeboat/engine/snapshot"
	"github.com/lifeboat-backup/lifeboat/internal/scratch/mariadb"
	"github.com/lifeboat-backup/lifeboat/targets/mysql/mysqltest"
)

// backup runs the Source like the backup pipeline does: one entry, read
// to the end, then the recovery point.
func backup(t *testing.T, dsn, password string) ([]byte, time.Time, map[string]string) {
	t.Helper()
	src, err := New(Options{DSN: dsn, Password: password})
	require.NoError(t, err)
	require.Equal(t, "mysql", src.Kind())
	require.NotContains(t, strings.Join(src.Paths(), " "), password)
	var buf bytes.Buffer
	err = src.Walk(context.Background(), nil, func(e snapshot.Entry, open func() (io.ReadCloser, error)) error {
		require.Equal(t, Entry, e.Path)
		rc, err := open()
		if err != nil {
			return err
		}
		if _, err := io.Copy(&buf, rc); err != nil {
			rc.Close()
			return err
		}
		return rc.Close()
	})
	require.NoError(t, err)
	rp, d := src.RecoveryPoint()
	return buf.Bytes(), rp, d
}

func needMariabackup(t *testing.T) {
	if _, err := Binary("", "mariabackup"); err != nil {
		if mysqltest.Required() {
			t.Fatal(err)
		}
		t.Skip(err)
	}
}

// TestBackupRestoreStart: a physical base of a real server records the
// server's binlog coordinates, unpacks exactly as mbstream -x does,
// prepares, and a plain mariadbd starts on it with every committed row.
func TestBackupRestoreStart(t *testing.T) {
	needMariabackup(t)
	srv := mysqltest.Start(t)
	db := srv.DB(t, "")
	for _, q := range []string{"CREATE DATABASE shop", "CREATE TABLE shop.orders (id INT PRIMARY KEY, note TEXT) ENGINE=InnoDB",
		"CREATE TABLE shop.log (id INT PRIMARY KEY) ENGINE=Aria",
		"INSERT INTO shop.orders SELECT seq, CONCAT('order ', seq) FROM shop.seq_1_to_5000", "INSERT INTO shop.log SELECT seq FROM shop.seq_1_to_10"} {
		_, err := db.Exec(q)
		require.NoError(t, err, q)
	}
	var file, pos, gtid string
	var skip any
	require.NoError(t, db.QueryRow("SHOW MASTER STATUS").Scan(&file, &pos, &skip, &skip))
	require.NoError(t, db.QueryRow("SELECT @@gtid_binlog_pos").Scan(&gtid))

	stream, rp, d := backup(t, srv.DSN(), srv.Password)
	require.Equal(t, map[string]string{"method": Method, "binlog_file": file, "binlog_position": pos, "gtid_binlog_pos": gtid},
		map[string]string{"method": d["method"], "binlog_file": d["binlog_file"], "binlog_position": d["binlog_position"], "gtid_binlog_pos": d["gtid_binlog_pos"]})
	require.WithinDuration(t, time.Now(), rp, time.Minute)
	require.Contains(t, d["tool"], "mariabackup")

	// The same tree as mbstream -x.
	mb := filepath.Join(t.TempDir(), "mb")
	require.NoError(t, os.Mkdir(mb, 0o700))
	if bin, err := Binary("", "mbstream"); err == nil {
		cmd := exec.Command(bin, "-x", "-C", mb)
		cmd.Stdin = bytes.NewReader(stream)
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, string(out))
	}
	dir := filepath.Join(t.TempDir(), "datadir")
	o := Owner{UID: os.Geteuid(), GID: os.Getegid()}
	require.NoError(t, PrepareDir(dir, o))
	var prog snapshot.Progress
	st, err := Extract(context.Background(), bytes.NewReader(stream), dir, &prog)
	require.NoError(t, err)
	require.Equal(t, st.Bytes, prog.Bytes.Load())
	require.Equal(t, int64(st.Files), prog.Files.Load())
	require.Greater(t, st.Files, 10)
	if ents, _ := os.ReadDir(mb); len(ents) > 0 {
		require.Equal(t, treeOf(t, mb), treeOf(t, dir))
	}
	require.NoError(t, Prepare(context.Background(), "", dir))
	fi, err := os.Stat(dir)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o750), fi.Mode().Perm())

	// A plain server on the restored directory.
	m, err := mariadb.StartOn(context.Background(), mariadb.Options{Dir: t.TempDir()}, dir)
	require.NoError(t, err)
	rdb, err := m.DB()
	require.NoError(t, err)
	var n, logs int
	var sum string
	require.NoError(t, rdb.QueryRow("SELECT COUNT(*), MD5(GROUP_CONCAT(id, note ORDER BY id)) FROM shop.orders").Scan(&n, &sum))
	require.NoError(t, rdb.QueryRow("SELECT COUNT(*) FROM shop.log").Scan(&logs))
	rdb.Close()
	var want string
	require.NoError(t, db.QueryRow("SELECT MD5(GROUP_CONCAT(id, note ORDER BY id)) FROM shop.orders").Scan(&want))
	require.Equal(t, 5000, n)
	require.Equal(t, want, sum)
	require.Equal(t, 10, logs)
	require.NoError(t, m.DropUser(context.Background()))
	require.NoError(t, m.Shutdown(time.Minute))

	require.ErrorContains(t, PrepareDir(dir, o), "not empty")
}

func treeOf(t *testing.T, dir string) map[string]string {
	out := map[string]string{}
	require.NoError(t, filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil || fi.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		rel, _ := filepath.Rel(dir, p)
		out[rel] = fmt.Sprintf("%d bytes, crc %08x", len(b), crc32.ChecksumIEEE(b))
		return err
	}))
	return out
}

// chunk builds one xbstream payload chunk (and its EOF chunk).
func chunk(path string, data []byte, sum uint32) []byte {
	var b bytes.Buffer
	b.WriteString(xbMagic)
	b.Write([]byte{0, xbPayload})
	binary.Write(&b, binary.LittleEndian, uint32(len(path)))
	b.WriteString(path)
	binary.Write(&b, binary.LittleEndian, uint64(len(data)))
	binary.Write(&b, binary.LittleEndian, uint64(0))
	binary.Write(&b, binary.LittleEndian, sum)
	b.Write(data)
	b.WriteString(xbMagic)
	b.Write([]byte{0, xbEOF})
	binary.Write(&b, binary.LittleEndian, uint32(len(path)))
	b.WriteString(path)
	return b.Bytes()
}

// TestExtractRefuses: a stream read back from a repository is checked:
// paths outside the data directory, damaged chunks and truncated streams
// fail, naming the file.
func TestExtractRefuses(t *testing.T) {
	good := chunk("shop/t.ibd", []byte("page"), crc32.ChecksumIEEE([]byte("page")))
	for name, tc := range map[string]struct {
		stream []byte
		want   string
	}{
		"escape":    {chunk("../etc/passwd", []byte("x"), crc32.ChecksumIEEE([]byte("x"))), `"../etc/passwd" leaves the data directory`},
		"absolute":  {chunk("/etc/passwd", []byte("x"), crc32.ChecksumIEEE([]byte("x"))), `"/etc/passwd" leaves the data directory`},
		"checksum":  {chunk("shop/t.ibd", []byte("page"), 1), "file shop/t.ibd: chunk at offset 0 fails its checksum"},
		"truncated": {good[:14+len("shop/t.ibd")+20+2], "file shop/t.ibd: unexpected EOF"},
		"magic":     {[]byte("not a stream at all"), "not an xbstream chunk"},
		"empty":     {nil, "empty stream"},
	} {
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "d")
			require.NoError(t, PrepareDir(dir, Owner{UID: os.Geteuid(), GID: os.Getegid()}))
			_, err := Extract(context.Background(), bytes.NewReader(tc.stream), dir, nil)
			require.ErrorContains(t, err, tc.want)
		})
	}
	dir := t.TempDir()
	st, err := Extract(context.Background(), bytes.NewReader(good), dir, nil)
	require.NoError(t, err)
	require.Equal(t, ExtractStats{Files: 1, Bytes: 4}, st)
	b, err := os.ReadFile(filepath.Join(dir, "shop", "t.ibd"))
	require.NoError(t, err)
	require.Equal(t, "page", string(b))
	require.ErrorContains(t, Prepare(context.Background(), "", dir), "xtrabackup_checkpoints is missing")
}

func TestParseBinlogInfo(t *testing.T) {
	d := ParseBinlogInfo("[00] 2026-12-07 13:02:30 MySQL binlog position: filename 'binlog.000003', position '1560', GTID of the last change '0-1-7,1-2-9'\n")
	require.Equal(t, map[string]string{"method": Method, "binlog_file": "binlog.000003", "binlog_position": "1560", "gtid_binlog_pos": "0-1-7,1-2-9"}, d)
	require.Equal(t, map[string]string{"method": Method, "binlog": "off"}, ParseBinlogInfo("completed OK!"))
}
