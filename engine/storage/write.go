package storage

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"time"

	"gocloud.dev/blob"
)

// TempDir is the directory, relative to a file:// repository's root, where
// WriteNew and NewWriter stage objects before linking them into place. A
// crash can leave files there; they are never part of the repository.
const TempDir = ".tmp"

var tempKey = regexp.MustCompile(`\.[0-9a-f]+\.tmp$`)

// IsTempKey tells whether a listed key is a file:// staging file rather
// than an object: one under TempDir/, or fileblob's own "<key>.<hex>.tmp"
// left by a plain (non-WriteNew) write that crashed.
func IsTempKey(key string) bool {
	return strings.HasPrefix(key, TempDir+"/") || tempKey.MatchString(key)
}

// WriteNew writes data as the new object key. If key already exists it
// returns an error for which errors.Is(err, ErrExist) holds, and the
// existing object is left as it was. See NewWriter for the guarantees per
// driver.
func WriteNew(ctx context.Context, b *blob.Bucket, key string, data []byte) error {
	w, err := NewWriter(ctx, b, key)
	if err != nil {
		return err
	}
	if _, err := w.Write(data); err != nil {
		w.Abort()
		return err
	}
	return w.Close()
}

// Writer streams a new write-once object. Nothing is visible under the key
// before Close returns nil; Abort, a canceled context or a failed Close
// leave no object behind.
type Writer struct {
	ctx    context.Context // the caller's
	b      *blob.Bucket
	key    string
	cancel context.CancelFunc
	bw     *blob.Writer // drivers that honour IfNotExist
	fw     *fileWriter  // file:// buckets opened by Open
	closed bool

	// For bw: whether a request of the upload was retried, and a checksum
	// and the size of what was written, to recognize our own object when
	// a retried upload finds the key taken (see Close).
	ws  *writeState
	crc hash.Hash32
	n   int64
}

// NewWriter starts a write-once object key (blob.WriterOptions.IfNotExist).
//
//   - mem://, s3:// (AWS S3 and MinIO, which honour If-None-Match: *, also
//     for multipart uploads), gs:// (generation precondition) and azblob://
//     (If-None-Match: *) enforce it in the store, atomically.
//   - file:// as opened by Open: gocloud's fileblob checks with a stat and
//     then renames, which races with a concurrent writer of the same key.
//     lifeboat therefore stages the data in <root>/.tmp/, fsyncs it and
//     publishes it with link(2), which fails atomically if the key exists,
//     also across processes and hosts sharing the directory (NFS). On file
//     systems without hard links it falls back to a stat and rename under
//     a process-wide lock (safe within one process only).
func NewWriter(ctx context.Context, b *blob.Bucket, key string) (*Writer, error) {
	w := &Writer{ctx: ctx, b: b, key: key}
	ctx, cancel := context.WithCancel(ctx)
	w.cancel = cancel
	if root, ok := fileRootOf(b); ok && plainKey(root.prefix+key) {
		fw, err := newFileWriter(ctx, root, key)
		if err != nil {
			cancel()
			return nil, err
		}
		w.fw = fw
		return w, nil
	}
	w.ws = &writeState{}
	w.crc = crc32.New(crc32.MakeTable(crc32.Castagnoli))
	ctx = context.WithValue(ctx, writeStateKey{}, w.ws)
	bw, err := b.NewWriter(ctx, key, &blob.WriterOptions{
		IfNotExist:  true,
		ContentType: "application/octet-stream", // no sniffing, no buffering
	})
	if err != nil {
		cancel()
		return nil, Wrap(err)
	}
	w.bw = bw
	return w, nil
}

// Write writes p to the object.
func (w *Writer) Write(p []byte) (int, error) {
	if w.closed {
		return 0, fmt.Errorf("storage: write %s: writer closed", w.key)
	}
	if w.fw != nil {
		return w.fw.Write(p)
	}
	n, err := w.bw.Write(p)
	w.crc.Write(p[:n])
	w.n += int64(n)
	return n, Wrap(err)
}

// Close publishes the object. It fails with ErrExist if the key exists.
func (w *Writer) Close() error {
	if w.closed {
		return fmt.Errorf("storage: close %s: writer already closed", w.key)
	}
	w.closed = true
	defer w.cancel()
	if w.fw != nil {
		return w.fw.Close()
	}
	err := Wrap(w.bw.Close())
	if err == nil || w.ctx.Err() != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(w.ctx), 2*time.Minute)
	defer cancel()
	if errors.Is(err, ErrExist) {
		// A retried request finds the object there: if it holds what was
		// written, the first attempt made it and only its answer was lost.
		if w.ws.retried.Load() && w.isOurs(ctx) {
			return nil
		}
		return err
	}
	// A store may refuse a conditional upload before it has read the body
	// (MinIO answers 412 at once and closes the connection); the client,
	// still sending, then sees only a reset. A failed upload leaves no
	// object, so if the key exists now, it was taken by another writer,
	// or it is ours and the answer was lost.
	if ok, xerr := w.b.Exists(ctx, w.key); xerr == nil && ok {
		if w.isOurs(ctx) {
			return nil
		}
		return &kindError{ErrExist, fmt.Errorf("storage: object %s already exists (the write failed: %w)", w.key, err)}
	}
	return err
}

// isOurs tells whether the object at w.key has the size and checksum of
// what w wrote.
func (w *Writer) isOurs(ctx context.Context) bool {
	rd, err := w.b.NewReader(ctx, w.key, nil)
	if err != nil {
		return false
	}
	defer rd.Close()
	if rd.Size() != w.n {
		return false
	}
	h := crc32.New(crc32.MakeTable(crc32.Castagnoli))
	n, err := io.Copy(h, rd)
	return err == nil && n == w.n && h.Sum32() == w.crc.Sum32()
}

// Abort discards the object; it is a no-op after Close.
func (w *Writer) Abort() {
	if w.closed {
		return
	}
	w.closed = true
	w.cancel()
	if w.fw != nil {
		w.fw.abort()
		return
	}
	_ = w.bw.Close() // fails: the context is canceled, nothing is written
}

// plainKey tells whether fileblob stores key unescaped at dir/key, so that
// the link(2) path applies; other keys take the generic path.
func plainKey(key string) bool {
	if key == "" || strings.HasSuffix(key, ".attrs") || strings.ContainsRune(key, '\\') {
		return false
	}
	for _, seg := range strings.Split(key, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return false
		}
	}
	for i := 0; i < len(key); i++ {
		if key[i] < 0x20 || key[i] == 0x7f {
			return false
		}
	}
	return true
}

type fileWriter struct {
	ctx  context.Context
	f    *os.File
	tmp  string
	path string
}

func newFileWriter(ctx context.Context, root fileRoot, key string) (*fileWriter, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	tmpDir := filepath.Join(root.dir, TempDir)
	if err := os.MkdirAll(tmpDir, 0o777); err != nil {
		return nil, fmt.Errorf("storage: write %s: %w", key, err)
	}
	var rnd [12]byte
	_, _ = rand.Read(rnd[:])
	tmp := filepath.Join(tmpDir, hex.EncodeToString(rnd[:])+".tmp")
	f, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o666)
	if err != nil {
		return nil, fmt.Errorf("storage: write %s: %w", key, err)
	}
	return &fileWriter{ctx: ctx, f: f, tmp: tmp, path: filepath.Join(root.dir, filepath.FromSlash(root.prefix+key))}, nil
}

func (w *fileWriter) Write(p []byte) (int, error) {
	if err := w.ctx.Err(); err != nil {
		return 0, err
	}
	return w.f.Write(p)
}

func (w *fileWriter) abort() {
	_ = w.f.Close()
	_ = os.Remove(w.tmp)
}

// fallbackMu serializes the stat+rename fallback within this process.
var fallbackMu sync.Mutex

func (w *fileWriter) Close() error {
	defer os.Remove(w.tmp) // after a link, or on any failure
	if err := w.ctx.Err(); err != nil {
		_ = w.f.Close()
		return err
	}
	if err := w.f.Sync(); err != nil {
		_ = w.f.Close()
		return fmt.Errorf("storage: write %s: %w", w.path, err)
	}
	if err := w.f.Close(); err != nil {
		return fmt.Errorf("storage: write %s: %w", w.path, err)
	}
	dir := filepath.Dir(w.path)
	if err := os.MkdirAll(dir, 0o777); err != nil {
		return fmt.Errorf("storage: write %s: %w", w.path, err)
	}
	if err := w.ctx.Err(); err != nil {
		return err
	}
	err := os.Link(w.tmp, w.path)
	switch {
	case err == nil:
	case errors.Is(err, fs.ErrExist):
		return &kindError{ErrExist, fmt.Errorf("storage: object %s already exists", w.path)}
	case errors.Is(err, syscall.EPERM), errors.Is(err, syscall.ENOTSUP), errors.Is(err, syscall.EOPNOTSUPP),
		errors.Is(err, syscall.EMLINK), errors.Is(err, syscall.ENOSYS), errors.Is(err, syscall.EXDEV):
		// No hard links here: stat + rename, atomic within this process only.
		fallbackMu.Lock()
		defer fallbackMu.Unlock()
		if _, err := os.Lstat(w.path); err == nil {
			return &kindError{ErrExist, fmt.Errorf("storage: object %s already exists", w.path)}
		}
		if err := os.Rename(w.tmp, w.path); err != nil {
			return fmt.Errorf("storage: write %s: %w", w.path, err)
		}
	default:
		return fmt.Errorf("storage: write %s: %w", w.path, err)
	}
	syncDir(dir)
	return nil
}

// syncDir makes a new directory entry durable (best effort).
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
}
