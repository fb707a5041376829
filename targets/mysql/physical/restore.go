package physical

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"

	"github.com/lifeboat-backup/lifeboat/engine/snapshot"
	"github.com/lifeboat-backup/lifeboat/targets/physicalbase"
)

// Owner is who the restored data directory belongs to (the server's user).
type Owner = physicalbase.Owner

// OwnerFor is the owner a data directory restored to dir gets: the owner
// of dir when it exists, else (as root) the mysql system user, else the
// current user.
func OwnerFor(dir string) (Owner, error) { return physicalbase.OwnerFor(dir, "mysql") }

// PrepareDir makes dir an empty data directory (mode 0750) owned by o;
// a directory that holds anything is refused.
func PrepareDir(dir string, o Owner) error { return physicalbase.PrepareDir(dir, 0o750, o) }

// ExtractStats counts what Extract wrote.
type ExtractStats struct {
	Files int
	Bytes int64 // payload bytes written
}

// xbstream chunks (MariaDB extra/mariabackup/xbstream.h): magic, flags,
// type, path length (LE32), path; then, unless EOF, payload length
// (LE64), offset (LE64), CRC-32 (IEEE, LE32) and the payload.
const (
	xbMagic      = "XBSTCK01"
	xbIgnorable  = 0x01
	xbPayload    = 'P'
	xbEOF        = 'E'
	maxXBPath    = 4096
	maxXBPayload = 1 << 30
)

// Extract unpacks an xbstream (what mariabackup --stream=xbstream wrote)
// into dir, made by PrepareDir. It does what mbstream -x does, with the
// checks a stream read back from a repository needs: every path stays
// inside dir (os.Root; "..", absolute paths and links are refused), every
// chunk's CRC-32 is verified, and errors name the file at fault. progress
// (may be nil) counts the files and payload bytes written so far.
func Extract(ctx context.Context, r io.Reader, dir string, progress *snapshot.Progress) (ExtractStats, error) {
	if progress == nil {
		progress = &snapshot.Progress{}
	}
	var st ExtractStats
	root, err := os.OpenRoot(dir)
	if err != nil {
		return st, fmt.Errorf("restore: %w", err)
	}
	defer root.Close()
	files := map[string]*os.File{} // open: written to
	closed := map[string]bool{}    // complete
	defer func() {
		for _, f := range files {
			f.Close()
		}
	}()
	br := bufio.NewReaderSize(r, 1<<20)
	var hdr [14]byte
	var buf []byte
	for chunk := 0; ; chunk++ {
		if err := ctx.Err(); err != nil {
			return st, err
		}
		if _, err := io.ReadFull(br, hdr[:]); err != nil {
			if err == io.EOF {
				break
			}
			return st, fmt.Errorf("restore: %s: chunk %d: %w", Entry, chunk, err)
		}
		if string(hdr[:8]) != xbMagic {
			return st, fmt.Errorf("restore: %s: chunk %d: not an xbstream chunk (magic %q)", Entry, chunk, hdr[:8])
		}
		flags, typ := hdr[8], hdr[9]
		plen := binary.LittleEndian.Uint32(hdr[10:])
		if plen == 0 || plen > maxXBPath {
			return st, fmt.Errorf("restore: %s: chunk %d: path length %d", Entry, chunk, plen)
		}
		raw := make([]byte, plen)
		if _, err := io.ReadFull(br, raw); err != nil {
			return st, fmt.Errorf("restore: %s: chunk %d: %w", Entry, chunk, noEOF(err))
		}
		name := path.Clean(strings.TrimPrefix(string(raw), "./"))
		if !fs.ValidPath(name) || name == "." || strings.ContainsRune(string(raw), 0) {
			return st, fmt.Errorf("restore: %s: file %q leaves the data directory", Entry, raw)
		}
		if typ == xbEOF {
			f := files[name]
			if f == nil && !closed[name] {
				// An empty file has no payload chunk, only its end.
				if f, err = create(root, name); err != nil {
					return st, err
				}
				st.Files++
				progress.Files.Add(1)
			}
			if f != nil {
				if err := f.Close(); err != nil {
					return st, fmt.Errorf("restore: %s: %w", name, err)
				}
				delete(files, name)
				closed[name] = true
			}
			continue
		}
		if typ != xbPayload {
			if flags&xbIgnorable != 0 {
				return st, fmt.Errorf("restore: %s: file %s: ignorable chunk type %q has no length to skip", Entry, name, typ)
			}
			return st, fmt.Errorf("restore: %s: file %s: unknown chunk type %q (a newer mariabackup? restore with its mbstream -x)", Entry, name, typ)
		}
		var ph [20]byte
		if _, err := io.ReadFull(br, ph[:]); err != nil {
			return st, fmt.Errorf("restore: %s: file %s: %w", Entry, name, noEOF(err))
		}
		n := binary.LittleEndian.Uint64(ph[0:])
		off := binary.LittleEndian.Uint64(ph[8:])
		sum := binary.LittleEndian.Uint32(ph[16:])
		if n > maxXBPayload || off > 1<<50 {
			return st, fmt.Errorf("restore: %s: file %s: chunk of %d bytes at offset %d", Entry, name, n, off)
		}
		if uint64(cap(buf)) < n {
			buf = make([]byte, n)
		}
		data := buf[:n]
		if _, err := io.ReadFull(br, data); err != nil {
			return st, fmt.Errorf("restore: %s: file %s: %w", Entry, name, noEOF(err))
		}
		if crc32.ChecksumIEEE(data) != sum {
			return st, fmt.Errorf("restore: %s: file %s: chunk at offset %d fails its checksum", Entry, name, off)
		}
		f := files[name]
		if f == nil {
			if closed[name] {
				return st, fmt.Errorf("restore: %s: file %s: data after its end", Entry, name)
			}
			if f, err = create(root, name); err != nil {
				return st, err
			}
			files[name] = f
			st.Files++
			progress.Files.Add(1)
		}
		if _, err := f.WriteAt(data, int64(off)); err != nil {
			return st, fmt.Errorf("restore: %s: %w", name, err)
		}
		st.Bytes += int64(n)
		progress.Bytes.Add(int64(n))
	}
	for name, f := range files {
		delete(files, name)
		if err := f.Close(); err != nil {
			return st, fmt.Errorf("restore: %s: %w", name, err)
		}
	}
	if st.Files == 0 {
		return st, fmt.Errorf("restore: %s: empty stream", Entry)
	}
	return st, nil
}

// create makes a new file name (and its directories) under root.
func create(root *os.Root, name string) (*os.File, error) {
	if d := path.Dir(name); d != "." {
		if err := root.MkdirAll(d, 0o750); err != nil {
			return nil, fmt.Errorf("restore: %s: %w", d, err)
		}
	}
	f, err := root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o640)
	if err != nil {
		return nil, fmt.Errorf("restore: %s: %w", name, err)
	}
	return f, nil
}

func noEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// Prepare runs mariabackup --prepare on an extracted backup in dir, which
// makes it a data directory a server can start on (the redo log applied).
func Prepare(ctx context.Context, binDir, dir string) error {
	bin, err := Binary(binDir, "mariabackup")
	if err != nil {
		return err
	}
	for _, f := range []string{"xtrabackup_checkpoints", "backup-my.cnf"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			return fmt.Errorf("restore: %s: %s is missing: not a mariabackup backup", dir, f)
		}
	}
	cmd := exec.CommandContext(ctx, bin, "--prepare", "--target-dir="+dir)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("restore: mariabackup --prepare of %s failed (%v): %s", dir, err, lastLines(out.String(), 15))
	}
	if !strings.Contains(out.String(), "completed OK!") {
		return fmt.Errorf("restore: mariabackup --prepare of %s did not report success: %s", dir, lastLines(out.String(), 15))
	}
	return nil
}

// Chown gives everything under dir to o (as root; a no-op otherwise):
// the server's user must own its data directory.
func Chown(dir string, o Owner) error { return physicalbase.Chown(dir, o) }

// RestoreOptions tune Restore.
type RestoreOptions struct {
	BinDir   string             // mariabackup; default PATH
	Owner    Owner              // owner of the data directory (OwnerFor)
	Progress *snapshot.Progress // files and bytes unpacked so far (may be nil)
}

// Restore makes dir (empty or absent) a data directory from the
// xbstream r: unpacked (Extract), prepared (mariabackup --prepare),
// owned by o.Owner with mode 0750. A plain mariadbd started as the owner
// with --datadir=dir starts on it (InnoDB settings the backup was taken
// with are in dir/backup-my.cnf).
func Restore(ctx context.Context, r io.Reader, dir string, o RestoreOptions) (ExtractStats, error) {
	if err := PrepareDir(dir, o.Owner); err != nil {
		return ExtractStats{}, err
	}
	st, err := Extract(ctx, r, dir, o.Progress)
	if err != nil {
		return st, err
	}
	if err := Prepare(ctx, o.BinDir, dir); err != nil {
		return st, err
	}
	return st, Chown(dir, o.Owner)
}

// RestoreSnapshot restores the physical base s into dir (Restore).
func RestoreSnapshot(ctx context.Context, s snapshot.Reader, dir string, o RestoreOptions) (ExtractStats, error) {
	sn := s.Info()
	if !IsBase(sn) {
		return ExtractStats{}, fmt.Errorf("snapshot %s is not a physical mysql base (method: physical): restore it with --to mysql://", sn.ID.Short())
	}
	tr := s.Tree(ctx)
	for {
		n, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return ExtractStats{}, fmt.Errorf("snapshot %s has no %s: not a physical base", sn.ID.Short(), Entry)
		}
		if err != nil {
			return ExtractStats{}, fmt.Errorf("snapshot %s: %w", sn.ID.Short(), err)
		}
		if n.Path != Entry {
			continue
		}
		rd := s.Open(ctx, n)
		defer rd.Close()
		return Restore(ctx, rd, dir, o)
	}
}

// IsBase tells whether sn is a physical mysql base.
func IsBase(sn *snapshot.Snapshot) bool {
	return sn.Kind == "mysql" && sn.RecoveryPoint.Details["method"] == Method
}
