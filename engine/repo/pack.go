package repo

import (
	"bytes"
	"context"
	"crypto/cipher"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"io"
	"sync/atomic"

	"filippo.io/age"
	"gocloud.dev/blob"

	"golang.org/x/crypto/chacha20poly1305"
	"golang.org/x/crypto/hkdf"

	"github.com/lifeboat-backup/lifeboat/engine/snapshot"
	"github.com/lifeboat-backup/lifeboat/engine/storage"
)

// BlobType says what a blob holds. Data blobs (file and table contents) are
// encrypted to the owner only; tree blobs (the metadata stream of a
// snapshot) to owner and host, so a backup host can read its parent
// snapshot.
type BlobType uint8

// Blob types.
const (
	DataBlob BlobType = 1
	TreeBlob BlobType = 2
)

func (t BlobType) String() string {
	switch t {
	case DataBlob:
		return "data"
	case TreeBlob:
		return "tree"
	}
	return fmt.Sprintf("blobtype(%d)", uint8(t))
}

// Pack plaintext layout (the whole pack is one age file):
//
//	blob 0 | blob 1 | ... | header | uint32 header length | "LBPACK01"
//
// header: one packEntrySize record per blob:
//
//	type(1) flags(1) id(32) offset(4) length(4) rawLength(4)   (big endian)
const (
	packMagic      = "LBPACK01"
	packEntrySize  = 1 + 1 + 32 + 4 + 4 + 4
	packTrailerLen = 4 + len(packMagic)
	flagCompressed = 1
)

// BlobInfo locates one blob inside a pack (plaintext coordinates).
type BlobInfo struct {
	Type       BlobType
	ID         snapshot.ID
	Offset     uint32
	Length     uint32 // stored length (compressed or raw)
	RawLength  uint32 // plaintext length
	Compressed bool
}

// PackInfo describes one stored pack: its object size and SHA-256 (of the
// stored, encrypted bytes: what replication verifies) and its blobs.
type PackInfo struct {
	ID    snapshot.ID
	Size  int64
	Hash  [32]byte
	Blobs []BlobInfo
}

func packKey(id snapshot.ID) string {
	s := id.String()
	return "data/" + s[:2] + "/" + s
}

func encodePackHeader(entries []BlobInfo) []byte {
	buf := make([]byte, 0, len(entries)*packEntrySize+packTrailerLen)
	for _, e := range entries {
		var flags byte
		if e.Compressed {
			flags |= flagCompressed
		}
		buf = append(buf, byte(e.Type), flags)
		buf = append(buf, e.ID[:]...)
		buf = binary.BigEndian.AppendUint32(buf, e.Offset)
		buf = binary.BigEndian.AppendUint32(buf, e.Length)
		buf = binary.BigEndian.AppendUint32(buf, e.RawLength)
	}
	buf = binary.BigEndian.AppendUint32(buf, uint32(len(entries)*packEntrySize))
	return append(buf, packMagic...)
}

// parsePackHeader reads the header from the end of a pack's plaintext.
func parsePackHeader(plain []byte) ([]BlobInfo, error) {
	if len(plain) < packTrailerLen || string(plain[len(plain)-len(packMagic):]) != packMagic {
		return nil, errors.New("pack trailer missing (truncated pack?)")
	}
	hl := int(binary.BigEndian.Uint32(plain[len(plain)-packTrailerLen:]))
	end := len(plain) - packTrailerLen
	if hl%packEntrySize != 0 || hl > end {
		return nil, fmt.Errorf("pack header length %d invalid", hl)
	}
	hdr := plain[end-hl : end]
	entries := make([]BlobInfo, 0, hl/packEntrySize)
	for p := hdr; len(p) > 0; p = p[packEntrySize:] {
		e := BlobInfo{Type: BlobType(p[0]), Compressed: p[1]&flagCompressed != 0}
		copy(e.ID[:], p[2:34])
		e.Offset = binary.BigEndian.Uint32(p[34:])
		e.Length = binary.BigEndian.Uint32(p[38:])
		e.RawLength = binary.BigEndian.Uint32(p[42:])
		if int64(e.Offset)+int64(e.Length) > int64(end-hl) {
			return nil, fmt.Errorf("blob %s extends past the pack data", e.ID.Short())
		}
		entries = append(entries, e)
	}
	return entries, nil
}

// countingHash counts and hashes what passes through to the stored object.
type countingHash struct {
	w io.Writer
	h hash.Hash
	n int64
}

func (c *countingHash) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.h.Write(p[:n])
	c.n += int64(n)
	return n, err
}

// packWriter streams one pack into storage while blobs are added: the
// encrypted bytes go straight to the bucket writer, nothing is buffered
// beyond age's 64 KiB chunk and the driver's upload buffer. Closing the
// writer commits the object; cancel aborts it and leaves nothing behind.
type packWriter struct {
	id      snapshot.ID
	w       *storage.Writer
	ch      *countingHash
	enc     io.WriteCloser
	off     uint32
	entries []BlobInfo
}

func newPackWriter(ctx context.Context, b *blob.Bucket, recips []age.Recipient) (*packWriter, error) {
	id := snapshot.NewRandomID()
	// A pack outlives the call that opened it (it is finished by a later
	// SaveBlob or by Flush); abort, not the caller's context, cancels it.
	w, err := storage.NewWriter(context.WithoutCancel(ctx), b, packKey(id))
	if err != nil {
		return nil, fmt.Errorf("create pack %s: %w", packKey(id), err)
	}
	ch := &countingHash{w: w, h: sha256.New()}
	enc, err := age.Encrypt(ch, recips...)
	if err != nil {
		w.Abort()
		return nil, fmt.Errorf("encrypt pack: %w", err)
	}
	return &packWriter{id: id, w: w, ch: ch, enc: enc}, nil
}

func (p *packWriter) add(t BlobType, id snapshot.ID, stored []byte, rawLen int, compressed bool) error {
	if _, err := p.enc.Write(stored); err != nil {
		return fmt.Errorf("write pack %s: %w", packKey(p.id), err)
	}
	p.entries = append(p.entries, BlobInfo{Type: t, ID: id, Offset: p.off, Length: uint32(len(stored)),
		RawLength: uint32(rawLen), Compressed: compressed})
	p.off += uint32(len(stored))
	return nil
}

func (p *packWriter) size() int { return int(p.off) }

func (p *packWriter) finish() (PackInfo, error) {
	if _, err := p.enc.Write(encodePackHeader(p.entries)); err != nil {
		p.w.Abort()
		return PackInfo{}, fmt.Errorf("write pack %s: %w", packKey(p.id), err)
	}
	if err := p.enc.Close(); err != nil {
		p.w.Abort()
		return PackInfo{}, fmt.Errorf("write pack %s: %w", packKey(p.id), err)
	}
	if err := p.w.Close(); err != nil {
		return PackInfo{}, fmt.Errorf("upload pack %s: %w", packKey(p.id), err)
	}
	info := PackInfo{ID: p.id, Size: p.ch.n, Blobs: p.entries}
	p.ch.h.Sum(info.Hash[:0])
	return info, nil
}

func (p *packWriter) abort() { p.w.Abort() }

// age STREAM parameters (age-encryption.org/v1): the payload is a 16-byte
// nonce followed by 64 KiB plaintext chunks sealed with ChaCha20-Poly1305.
const (
	ageChunk    = 64 << 10
	ageEncChunk = ageChunk + chacha20poly1305.Overhead
	ageNonceLen = 16
)

// packReader decrypts byte ranges of one pack with a single ranged read per
// range. The age header is decrypted once per pack (the file key is cached
// in the AEAD); the payload is standard age STREAM, so `age -d` can still
// decrypt a whole pack by hand.
type packReader struct {
	key        string
	aead       cipher.AEAD
	payloadOff int64
	encSize    int64 // payload size
	chunks     int64
	// window caches the plaintext of the last read-ahead: small blobs
	// (small files) sit next to each other in a pack and are restored in
	// that order, so one read and one decryption serve many of them.
	window atomic.Pointer[plainWindow]
}

// plainWindow is decrypted plaintext starting at age chunk first.
type plainWindow struct {
	first int64
	plain []byte
}

// readAhead is how many age chunks a small read fetches and caches.
const readAhead = 4

func openPackReader(ctx context.Context, b *blob.Bucket, id snapshot.ID, size int64, ids []age.Identity) (*packReader, error) {
	key := packKey(id)
	head := min(size, 64<<10)
	for {
		buf := make([]byte, head)
		if err := readRange(ctx, b, key, 0, buf); err != nil {
			return nil, err
		}
		hdr, err := age.ExtractHeader(bytes.NewReader(buf))
		if err != nil {
			if head < size && head < 16<<20 {
				head = min(size, head*4)
				continue
			}
			return nil, corrupt(key, "age header: %v", err)
		}
		if int64(len(hdr)+ageNonceLen) > int64(len(buf)) {
			return nil, corrupt(key, "truncated after age header")
		}
		fileKey, err := age.DecryptHeader(hdr, ids...)
		if err != nil {
			var nm *age.NoIdentityMatchError
			if errors.As(err, &nm) {
				return nil, fmt.Errorf("%s: %w", key, ErrNoDataKey)
			}
			return nil, corrupt(key, "age header: %v", err)
		}
		nonce := buf[len(hdr) : len(hdr)+ageNonceLen]
		sk := make([]byte, chacha20poly1305.KeySize)
		if _, err := io.ReadFull(hkdf.New(sha256.New, fileKey, nonce, []byte("payload")), sk); err != nil {
			return nil, err
		}
		aead, err := chacha20poly1305.New(sk)
		if err != nil {
			return nil, err
		}
		pr := &packReader{key: key, aead: aead, payloadOff: int64(len(hdr) + ageNonceLen)}
		pr.encSize = size - pr.payloadOff
		pr.chunks = (pr.encSize + ageEncChunk - 1) / ageEncChunk
		if pr.chunks == 0 {
			return nil, corrupt(key, "empty payload")
		}
		return pr, nil
	}
}

// readAt returns plaintext bytes [off, off+n) of the pack. They are a
// sub-slice of the returned buffer, which reuses buf when it is big enough.
// The covering ciphertext is fetched with one ranged read and decrypted in
// place; reads of at most two age chunks fetch readAhead chunks and keep
// their plaintext for the next small read.
func (p *packReader) readAt(ctx context.Context, b *blob.Bucket, off, n int64, buf []byte) (data, full []byte, err error) {
	if n == 0 {
		return buf[:0], buf, nil
	}
	first, last := off/ageChunk, (off+n-1)/ageChunk
	if last >= p.chunks {
		return nil, nil, corrupt(p.key, "range %d+%d beyond the pack (truncated?)", off, n)
	}
	if w := p.window.Load(); w != nil && first >= w.first && off+n <= w.first*ageChunk+int64(len(w.plain)) {
		if int64(cap(buf)) < n {
			buf = make([]byte, n)
		}
		s := off - w.first*ageChunk
		return buf[:copy(buf[:n], w.plain[s:s+n])], buf, nil
	}
	small := last-first < 2
	if small {
		last = min(first+readAhead-1, p.chunks-1)
	}
	encStart := first * ageEncChunk
	encEnd := min((last+1)*ageEncChunk, p.encSize)
	if int64(cap(buf)) < encEnd-encStart {
		buf = make([]byte, encEnd-encStart)
	}
	enc := buf[:encEnd-encStart]
	if err := readRange(ctx, b, p.key, p.payloadOff+encStart, enc); err != nil {
		return nil, nil, err
	}
	var nonce [chacha20poly1305.NonceSize]byte
	plainLen := int64(0)
	for i := first; i <= last; i++ {
		c := enc[(i-first)*ageEncChunk : min((i-first+1)*ageEncChunk, int64(len(enc)))]
		binary.BigEndian.PutUint64(nonce[3:11], uint64(i))
		nonce[11] = 0
		if i == p.chunks-1 {
			nonce[11] = 1
		}
		plain, err := p.aead.Open(c[:0], nonce[:], c, nil)
		if err != nil {
			return nil, nil, corrupt(p.key, "chunk %d fails authentication (damaged or truncated pack)", i)
		}
		// compact: plaintext chunks are 16 bytes shorter than their ciphertext
		plainLen += int64(copy(enc[plainLen:], plain))
	}
	s := off - first*ageChunk
	if s+n > plainLen {
		return nil, nil, corrupt(p.key, "range %d+%d beyond the pack (truncated?)", off, n)
	}
	if small {
		p.window.Store(&plainWindow{first: first, plain: bytes.Clone(enc[:plainLen])})
	}
	return enc[s : s+n], buf, nil
}

func readRange(ctx context.Context, b *blob.Bucket, key string, off int64, buf []byte) error {
	r, err := b.NewRangeReader(ctx, key, off, int64(len(buf)), nil)
	if err != nil {
		return fmt.Errorf("read %s: %w", key, err)
	}
	defer r.Close()
	if _, err := io.ReadFull(r, buf); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
			return corrupt(key, "object shorter than expected (truncated?)")
		}
		return fmt.Errorf("read %s: %w", key, err)
	}
	return nil
}

// readWholePack downloads and decrypts a pack, checks its stored hash when
// want is non-nil, and returns the plaintext and its parsed header.
func readWholePack(ctx context.Context, b *blob.Bucket, id snapshot.ID, ids []age.Identity, want *[32]byte) ([]byte, []BlobInfo, error) {
	key := packKey(id)
	data, err := b.ReadAll(ctx, key)
	if err != nil {
		return nil, nil, fmt.Errorf("read %s: %w", key, err)
	}
	if want != nil && sha256.Sum256(data) != *want {
		return nil, nil, corrupt(key, "stored bytes do not match the hash in the index")
	}
	return decodePack(key, data, ids)
}

// decodePack decrypts a pack's stored bytes and parses its header.
func decodePack(key string, data []byte, ids []age.Identity) ([]byte, []BlobInfo, error) {
	rd, err := age.Decrypt(bytes.NewReader(data), ids...)
	if err != nil {
		var nm *age.NoIdentityMatchError
		if errors.As(err, &nm) {
			return nil, nil, fmt.Errorf("%s: %w", key, ErrNoDataKey)
		}
		return nil, nil, corrupt(key, "%v", err)
	}
	plain, err := io.ReadAll(rd)
	if err != nil {
		return nil, nil, corrupt(key, "%v", err)
	}
	entries, err := parsePackHeader(plain)
	if err != nil {
		return nil, nil, corrupt(key, "%v", err)
	}
	return plain, entries, nil
}
