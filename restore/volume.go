package restore

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"

	"github.com/lifeboat-backup/lifeboat/engine/repo"
	"github.com/lifeboat-backup/lifeboat/targets/files"
)

// VolumeOptions configure a volume restore.
type VolumeOptions struct {
	// Overwrite allows replacing an existing non-empty image file. Block
	// devices are always written (they are named on purpose).
	Overwrite bool
	// NoHash skips the SHA-256 of the restored content.
	NoHash   bool
	Progress *Progress
}

// VolumeStats summarize a volume restore.
type VolumeStats struct {
	Name      string `json:"name"`
	Bytes     int64  `json:"bytes"`      // apparent size
	Written   int64  `json:"written"`    // bytes in non-zero blobs written
	ZeroBytes int64  `json:"zero_bytes"` // bytes of all-zero blobs (holes in an image)
	Device    bool   `json:"device"`
	SHA256    string `json:"sha256,omitempty"`
}

// Volume restores a volume snapshot to dest: a block device (written in
// full) or an image file (created, ftruncated to the size, all-zero pieces
// left as holes through files.WriteAtSparse). Blobs are verified on load;
// the SHA-256 of the whole content is reported.
func Volume(ctx context.Context, r *repo.Repository, sn *repo.Snapshot, dest string, opts VolumeOptions) (*VolumeStats, error) {
	if sn.Kind != "volume" {
		return nil, fmt.Errorf("snapshot %s is a %s snapshot, not volume", sn.ID.Short(), sn.Kind)
	}
	if opts.Progress == nil {
		opts.Progress = &Progress{}
	}
	n, err := singleFile(ctx, FromRepository(r, sn))
	if err != nil {
		return nil, err
	}
	st := &VolumeStats{Name: n.Path, Bytes: n.Size}
	var f *os.File
	fi, err := os.Stat(dest)
	switch {
	case err == nil && fi.Mode()&os.ModeDevice != 0:
		st.Device = true
		if f, err = os.OpenFile(dest, os.O_WRONLY, 0); err != nil {
			return nil, err
		}
		size, err := f.Seek(0, io.SeekEnd)
		if err != nil {
			f.Close()
			return nil, err
		}
		if size < n.Size {
			f.Close()
			return nil, fmt.Errorf("restore: device %s has %d bytes, the volume %d", dest, size, n.Size)
		}
	case err == nil && !fi.Mode().IsRegular():
		return nil, fmt.Errorf("restore: %s is neither a block device nor a regular file", dest)
	case err == nil && fi.Size() > 0 && !opts.Overwrite:
		return nil, fmt.Errorf("restore: %s exists and is not empty (overwrite it explicitly)", dest)
	case err == nil || errors.Is(err, os.ErrNotExist):
		if f, err = os.OpenFile(dest, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, os.FileMode(n.Mode&0o777)|0o600); err != nil {
			return nil, err
		}
		if err := f.Truncate(n.Size); err != nil {
			f.Close()
			return nil, err
		}
	default:
		return nil, err
	}
	if err := writeVolume(ctx, r, n, f, st, opts); err != nil {
		f.Close()
		return nil, fmt.Errorf("restore %s to %s: %w", n.Path, dest, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return nil, err
	}
	if err := f.Close(); err != nil {
		return nil, err
	}
	if !st.Device {
		_ = os.Chtimes(dest, n.ModTime, n.ModTime)
	}
	opts.Progress.Files.Add(1)
	return st, nil
}

func writeVolume(ctx context.Context, r *repo.Repository, n *repo.Node, f *os.File, st *VolumeStats, opts VolumeOptions) error {
	var h hash.Hash
	if !opts.NoHash {
		h = sha256.New()
	}
	// All-zero blobs (holes) are recognized by ID after the first load:
	// not loaded, hashed from a shared zero buffer, not written to images.
	zeroIDs := map[repo.ID]int{}
	var zeros []byte
	var buf []byte
	var off int64
	for _, id := range n.Content {
		if size, ok := zeroIDs[id]; ok {
			if st.Device {
				if err := writeZeros(f, &zeros, off, size); err != nil {
					return err
				}
			}
			if h != nil {
				hashZeros(h, &zeros, size)
			}
			off += int64(size)
			st.ZeroBytes += int64(size)
			opts.Progress.Bytes.Add(int64(size))
			continue
		}
		data, err := r.LoadBlob(ctx, id, buf)
		if err != nil {
			return err
		}
		if allZero(data) {
			zeroIDs[id] = len(data)
			st.ZeroBytes += int64(len(data))
		} else {
			st.Written += int64(len(data))
		}
		if st.Device {
			_, err = f.WriteAt(data, off)
		} else {
			err = files.WriteAtSparse(f, data, off)
		}
		if err != nil {
			return err
		}
		if h != nil {
			h.Write(data)
		}
		off += int64(len(data))
		opts.Progress.Bytes.Add(int64(len(data)))
		buf = data[:0]
	}
	if off != n.Size {
		return fmt.Errorf("content is %d bytes, metadata says %d", off, n.Size)
	}
	if h != nil {
		st.SHA256 = hex.EncodeToString(h.Sum(nil))
	}
	return nil
}

func allZero(p []byte) bool {
	for len(p) >= files.SparseBlock {
		if !isZero(p[:files.SparseBlock]) {
			return false
		}
		p = p[files.SparseBlock:]
	}
	return isZero(p)
}

var zeroPage [files.SparseBlock]byte

func isZero(p []byte) bool { return string(p) == string(zeroPage[:len(p)]) }

func growZeros(z *[]byte, n int) []byte {
	if len(*z) < n {
		*z = make([]byte, n)
	}
	return (*z)[:n]
}

func writeZeros(f *os.File, z *[]byte, off int64, n int) error {
	_, err := f.WriteAt(growZeros(z, n), off)
	return err
}

func hashZeros(h hash.Hash, z *[]byte, n int) {
	h.Write(growZeros(z, n))
}
