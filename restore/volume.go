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
	"runtime"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/lifeboat-backup/lifeboat/engine/repo"
	"github.com/lifeboat-backup/lifeboat/engine/snapshot"
	"github.com/lifeboat-backup/lifeboat/internal/zeros"
	"github.com/lifeboat-backup/lifeboat/targets/files"
	"github.com/lifeboat-backup/lifeboat/targets/volume"
)

// VolumeOptions configure a volume restore.
type VolumeOptions struct {
	// Overwrite allows replacing an existing non-empty image file. Block
	// devices are always written (they are named on purpose).
	Overwrite bool
	// NoHash skips the SHA-256 of the restored content.
	NoHash   bool
	Progress *snapshot.Progress
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
// full; may be named through a symlink) or an image file (created with at
// most mode 0644, never through a symlink, ftruncated to the size,
// all-zero pieces left as holes through files.WriteAtSparse). Blobs are verified on load;
// the SHA-256 of the whole content is reported. A native snapshot is
// restored blob by blob, loads in parallel; another engine's is copied
// from its content stream.
func Volume(ctx context.Context, s snapshot.Reader, dest string, opts VolumeOptions) (*VolumeStats, error) {
	sn := s.Info()
	if sn.Kind != "volume" {
		return nil, fmt.Errorf("snapshot %s is a %s snapshot, not volume", sn.ID.Short(), sn.Kind)
	}
	if opts.Progress == nil {
		opts.Progress = &snapshot.Progress{}
	}
	n, err := singleFile(ctx, s)
	if err != nil {
		return nil, err
	}
	st := &VolumeStats{Name: n.Path, Bytes: n.Size}
	var f *os.File
	fi, err := os.Lstat(dest)
	if err == nil && fi.Mode()&os.ModeSymlink != 0 {
		// Block devices are often named through links (/dev/mapper,
		// /dev/disk/by-id); an image file is not written through one.
		if fi, err = os.Stat(dest); err == nil && fi.Mode()&os.ModeDevice == 0 {
			return nil, fmt.Errorf("restore: %s is a symlink to a non-device; name the image file itself", dest)
		}
	}
	switch {
	case err == nil && fi.Mode()&os.ModeDevice != 0:
		st.Device = true
		if f, err = os.OpenFile(dest, os.O_WRONLY, 0); err != nil {
			return nil, err
		}
		if fi, err := f.Stat(); err != nil || fi.Mode()&os.ModeDevice == 0 {
			f.Close()
			return nil, fmt.Errorf("restore: %s changed while opened: not a device any more", dest)
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
		// At most rw-r--r--: the stored mode is the backup host's claim.
		mode := os.FileMode(n.Mode&0o644) | 0o600
		if f, err = os.OpenFile(dest, os.O_CREATE|os.O_WRONLY|os.O_TRUNC|unix.O_NOFOLLOW, mode); err != nil {
			return nil, err
		}
		if err := f.Truncate(n.Size); err != nil {
			f.Close()
			return nil, err
		}
	default:
		return nil, err
	}
	if ns, ok := s.(interface{ Repository() *repo.Repository }); ok {
		err = writeVolume(ctx, ns.Repository(), n, f, st, opts)
	} else {
		err = copyVolume(ctx, s, n, f, st, opts)
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("restore %s to %s: %w", n.Path, dest, err)
	}
	if !st.Device { // through the descriptor: dest may have been swapped meanwhile
		tv := unix.NsecToTimeval(n.ModTime.UnixNano())
		_ = unix.Futimes(int(f.Fd()), []unix.Timeval{tv, tv})
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return nil, err
	}
	if err := f.Close(); err != nil {
		return nil, err
	}
	opts.Progress.Files.Add(1)
	return st, nil
}

// blobLoad is one blob of the volume on its way from the loaders to the
// writer: a future, done when data (or err) is set. zero: all zeros, size
// bytes (data is nil when it was known by its ID and not loaded).
type blobLoad struct {
	id   snapshot.ID
	buf  *[]byte
	data []byte
	zero bool
	size int
	err  error
	done chan struct{}
}

// hashItem is a piece of the content for the hasher: data (buf returned to
// the pool after) or zeros bytes of zeros.
type hashItem struct {
	buf   *[]byte
	data  []byte
	zeros int
}

var volumeBufs = sync.Pool{New: func() any { b := make([]byte, 0, 1<<20); return &b }}

// maxVolumeLoaders bounds the parallel blob loads of a volume restore.
const maxVolumeLoaders = 8

// writeVolume restores n's content into f in three stages: loaders read,
// decrypt and verify blobs ahead of the writer (in parallel, at most
// 3 x min(GOMAXPROCS, maxVolumeLoaders) blobs in flight), the caller writes them in order, and a
// hasher computes the SHA-256 of the content on its own core behind the
// writes. All-zero blobs (holes) are recognized by ID after their first
// load: not loaded again, not written to images, hashed from a shared
// zero buffer.
func writeVolume(ctx context.Context, r *repo.Repository, n *snapshot.Node, f *os.File, st *VolumeStats, opts VolumeOptions) (err error) {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() {
		cancel()
		wg.Wait()
	}()
	// Bounded whatever the core count: at most 3 x maxVolumeLoaders + 4
	// blobs in memory (7 MiB with the default 256 KiB blocks).
	workers := min(max(2, runtime.GOMAXPROCS(0)), maxVolumeLoaders)
	ordered := make(chan *blobLoad, 2*workers)
	jobs := make(chan *blobLoad)
	var zmu sync.Mutex
	zeroIDs := map[snapshot.ID]int{}

	wg.Add(1)
	go func() { // in content order: to the writer, and to a loader unless known zeros
		defer wg.Done()
		defer close(ordered)
		defer close(jobs)
		for _, id := range n.Content {
			l := &blobLoad{id: id, done: make(chan struct{})}
			zmu.Lock()
			l.size, l.zero = zeroIDs[id]
			zmu.Unlock()
			if l.zero {
				close(l.done)
			}
			select {
			case ordered <- l:
			case <-ctx.Done():
				return
			}
			if !l.zero {
				select {
				case jobs <- l:
				case <-ctx.Done():
					return
				}
			}
		}
	}()
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for l := range jobs {
				l.buf = volumeBufs.Get().(*[]byte)
				l.data, l.err = r.LoadBlob(ctx, l.id, (*l.buf)[:0])
				if l.err == nil {
					*l.buf = l.data[:0]
					if l.zero = zeros.All(l.data); l.zero {
						l.size = len(l.data)
						zmu.Lock()
						zeroIDs[l.id] = l.size
						zmu.Unlock()
					}
				}
				close(l.done)
			}
		}()
	}

	var hq chan hashItem
	var hashed chan string
	if !opts.NoHash {
		hq, hashed = make(chan hashItem, 4), make(chan string, 1)
		go func(hq <-chan hashItem) { // its own copy: the loop below sets hq to nil when done
			h := sha256.New()
			var zeros []byte
			for it := range hq {
				if it.buf == nil {
					hashZeros(h, &zeros, it.zeros)
					continue
				}
				h.Write(it.data)
				volumeBufs.Put(it.buf)
			}
			hashed <- hex.EncodeToString(h.Sum(nil))
		}(hq)
		defer func() {
			if hq != nil { // an error: stop the hasher
				close(hq)
				<-hashed
			}
		}()
	}

	var zeros []byte
	var off int64
	for l := range ordered {
		select {
		case <-l.done:
		case <-ctx.Done():
			return ctx.Err()
		}
		if l.err != nil {
			return l.err
		}
		item := hashItem{zeros: l.size}
		if l.zero {
			if st.Device {
				if err := writeZeros(f, &zeros, off, l.size); err != nil {
					return err
				}
			}
			st.ZeroBytes += int64(l.size)
			if l.buf != nil {
				volumeBufs.Put(l.buf)
			}
		} else {
			l.size = len(l.data)
			if st.Device {
				_, err = f.WriteAt(l.data, off)
			} else {
				err = files.WriteAtSparse(f, l.data, off)
			}
			if err != nil {
				volumeBufs.Put(l.buf)
				return err
			}
			st.Written += int64(l.size)
			item = hashItem{buf: l.buf, data: l.data}
		}
		off += int64(l.size)
		opts.Progress.Bytes.Add(int64(l.size))
		switch {
		case hq != nil:
			hq <- item
		case item.buf != nil:
			volumeBufs.Put(item.buf)
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if off != n.Size {
		return fmt.Errorf("content is %d bytes, metadata says %d", off, n.Size)
	}
	if hq != nil {
		close(hq)
		hq = nil
		st.SHA256 = <-hashed
	}
	return nil
}

// copyVolume restores n's content into f from its content stream (a
// restic archive): read in pieces of the default block size, all-zero
// pieces left as holes in images, the SHA-256 computed on the way.
func copyVolume(ctx context.Context, s snapshot.Reader, n *snapshot.Node, f *os.File, st *VolumeStats, opts VolumeOptions) error {
	rc := s.Open(ctx, n)
	defer rc.Close()
	var h hash.Hash
	if !opts.NoHash {
		h = sha256.New()
	}
	buf := make([]byte, volume.DefaultBlockSize)
	var off int64
	for {
		k, rerr := io.ReadFull(rc, buf)
		if p := buf[:k]; k > 0 {
			if zeros.All(p) {
				st.ZeroBytes += int64(k)
			} else {
				st.Written += int64(k)
			}
			var err error
			if st.Device {
				_, err = f.WriteAt(p, off)
			} else {
				err = files.WriteAtSparse(f, p, off) // zeros stay holes
			}
			if err != nil {
				return err
			}
			if h != nil {
				h.Write(p)
			}
			off += int64(k)
			opts.Progress.Bytes.Add(int64(k))
		}
		if rerr == io.EOF || rerr == io.ErrUnexpectedEOF {
			break
		}
		if rerr != nil {
			return rerr
		}
	}
	if off != n.Size {
		return fmt.Errorf("content is %d bytes, metadata says %d", off, n.Size)
	}
	if h != nil {
		st.SHA256 = hex.EncodeToString(h.Sum(nil))
	}
	return nil
}

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
