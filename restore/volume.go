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
	"github.com/lifeboat-backup/lifeboat/internal/blockdigest"
	"github.com/lifeboat-backup/lifeboat/internal/zeros"
	"github.com/lifeboat-backup/lifeboat/targets/files"
	"github.com/lifeboat-backup/lifeboat/targets/volume"
)

// VolumeOptions configure a volume restore.
type VolumeOptions struct {
	// Overwrite allows replacing an existing non-empty image file. Block
	// devices are always written (they are named on purpose).
	Overwrite bool
	// NoHash skips the digest of the restored content: neither verified
	// nor reported.
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
	// Digest is the block digest of the restored content, verified equal to
	// the one recorded at backup (snapshot.BlockDigest, version 1).
	Digest string `json:"digest,omitempty"`
	// SHA256 is the SHA-256 of the whole restored content, holes included:
	// computed instead for snapshots that record no digest (before it was
	// recorded, or another engine's).
	SHA256 string `json:"sha256,omitempty"`
}

// Volume restores a volume snapshot to dest: a block device (written in
// full; may be named through a symlink) or an image file (created with at
// most mode 0644, never through a symlink, ftruncated to the size,
// all-zero pieces left as holes through files.WriteAtSparse). Blobs are
// verified on load, and the content as a whole against the block digest
// recorded at backup (holes are not hashed); a snapshot without one gets
// the SHA-256 of its whole content reported, as before. A native snapshot
// is restored blob by blob, loads in parallel; another engine's is copied
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

// contentHash is the digest a restore computes over the content: the block
// digest recorded in the node, or the whole SHA-256 when it records none.
type contentHash interface {
	io.Writer
	Zeros(n int64)
	Sum() string
}

// newContentHash returns the digest to compute for n (nil with NoHash).
func newContentHash(n *snapshot.Node, opts VolumeOptions) contentHash {
	switch d := n.Digest; {
	case opts.NoHash:
		return nil
	case d != nil && d.Version == blockdigest.Version && d.BlockSize > 0:
		return blockdigest.New(d.BlockSize)
	}
	return &fullSHA256{Hash: sha256.New()}
}

// finishHash ends h: the block digest is compared with the recorded one
// (a mismatch fails the restore), the whole SHA-256 is reported.
func finishHash(h contentHash, n *snapshot.Node, st *VolumeStats) error {
	sum := h.Sum()
	if _, ok := h.(*fullSHA256); ok {
		st.SHA256 = sum
		return nil
	}
	if sum != n.Digest.SHA256 {
		return fmt.Errorf("restored content does not match the digest recorded at backup (block digest %s, recorded %s)", sum, n.Digest.SHA256)
	}
	st.Digest = sum
	return nil
}

// fullSHA256 is the SHA-256 of the whole content, zeros hashed too
// (snapshots without a recorded digest).
type fullSHA256 struct {
	hash.Hash
	zeros []byte
}

func (f *fullSHA256) Zeros(n int64) {
	for n > 0 {
		k := int(min(n, 1<<20))
		f.Write(growZeros(&f.zeros, k))
		n -= int64(k)
	}
}

func (f *fullSHA256) Sum() string { return hex.EncodeToString(f.Hash.Sum(nil)) }

var volumeBufs = sync.Pool{New: func() any { b := make([]byte, 0, 1<<20); return &b }}

// maxVolumeLoaders bounds the parallel blob loads of a volume restore.
const maxVolumeLoaders = 8

// writeVolume restores n's content into f in three stages: loaders read,
// decrypt and verify blobs ahead of the writer (in parallel, at most
// 3 x min(GOMAXPROCS, maxVolumeLoaders) blobs in flight), the caller writes them in order, and a
// hasher computes the content's digest on its own core behind the
// writes. All-zero blobs (holes) are recognized by ID after their first
// load: not loaded again, not written to images, and not hashed by the
// block digest (only counted).
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
	var hashed chan struct{}
	h := newContentHash(n, opts)
	if h != nil {
		hq, hashed = make(chan hashItem, 4), make(chan struct{})
		go func(hq <-chan hashItem) { // its own copy: the loop below sets hq to nil when done
			defer close(hashed)
			for it := range hq {
				if it.buf == nil {
					h.Zeros(int64(it.zeros))
					continue
				}
				h.Write(it.data)
				volumeBufs.Put(it.buf)
			}
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
		<-hashed
		return finishHash(h, n, st)
	}
	return nil
}

// copyVolume restores n's content into f from its content stream (a
// restic archive): read in pieces of the default block size, all-zero
// pieces left as holes in images, the digest computed on the way.
func copyVolume(ctx context.Context, s snapshot.Reader, n *snapshot.Node, f *os.File, st *VolumeStats, opts VolumeOptions) error {
	rc := s.Open(ctx, n)
	defer rc.Close()
	h := newContentHash(n, opts)
	buf := make([]byte, volume.DefaultBlockSize)
	var off int64
	for {
		k, rerr := io.ReadFull(rc, buf)
		if p := buf[:k]; k > 0 {
			zero := zeros.All(p)
			if zero {
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
			switch {
			case h == nil:
			case zero:
				h.Zeros(int64(k))
			default:
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
		return finishHash(h, n, st)
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
