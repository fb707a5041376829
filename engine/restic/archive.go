package restic

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/lifeboat-backup/lifeboat/engine/repo/chunker"
	"github.com/lifeboat-backup/lifeboat/engine/snapshot"
)

// The stream archive: how the entries of a database, exec, bucket or
// volume target become the one file restic backs up from stdin. Dump sizes
// are not known before they are read, so content goes in length-prefixed
// frames:
//
//	magic "LIFEBOAT-ARCHIVE-1\n"
//	records: type byte, uvarint length, payload
//	  'H' entry header: JSON of targets.Entry (Size as announced, may be 0)
//	  'D' content frame of the entry last opened (at most frameSize bytes,
//	      cut where the content says: see frameParams)
//	  'Z' end: JSON of archiveEnd; nothing may follow
//
// An archive without its end record was cut short and is refused.
const archiveMagic = "LIFEBOAT-ARCHIVE-1\n"

// Frames are cut content-defined (FastCDC over a fixed, public gear table),
// not every frameSize bytes: a frame header then sits at the same place
// relative to the content around it after an insert or delete earlier in
// the entry, and restic's own content-defined chunking finds its old
// chunks again. With fixed-size frames every chunk after a change held a
// shifted header and was stored anew (measured: 11.2 of 16.8 MB added for
// a 30-byte insert; 2.0-4.4 MB with these frames, TestStreamDedupAfterInsert).
var (
	frameParams = chunker.Params{Min: 128 << 10, Avg: 256 << 10, Max: frameSize}
	frameGear   = chunker.NewGear([32]byte{'l', 'i', 'f', 'e', 'b', 'o', 'a', 't', '-', 'f', 'r', 'a', 'm', 'e', 's'})
)

const (
	recHeader = 'H'
	recData   = 'D'
	recEnd    = 'Z'
	frameSize = 1 << 20
	// maxHeader bounds a header record (an entry's JSON with xattrs).
	maxHeader = 16 << 20
)

// archiveEnd closes an archive: counts to verify and the source's
// recovery point.
type archiveEnd struct {
	Entries       int               `json:"entries"`
	Bytes         int64             `json:"bytes"`
	RecoveryPoint time.Time         `json:"recovery_point"`
	Details       map[string]string `json:"details,omitempty"`
}

// archiveWriter writes an archive.
type archiveWriter struct {
	w       *bufio.Writer
	ch      *chunker.Chunker
	entries int
	bytes   int64
	hdr     [1 + binary.MaxVarintLen64]byte
}

func newArchiveWriter(w io.Writer) (*archiveWriter, error) {
	aw := &archiveWriter{w: bufio.NewWriterSize(w, 256<<10)}
	_, err := aw.w.WriteString(archiveMagic)
	return aw, err
}

func (a *archiveWriter) record(typ byte, payload []byte) error {
	a.hdr[0] = typ
	n := binary.PutUvarint(a.hdr[1:], uint64(len(payload)))
	if _, err := a.w.Write(a.hdr[:1+n]); err != nil {
		return err
	}
	_, err := a.w.Write(payload)
	return err
}

// Entry writes e's header, then its content read from r (nil: none).
func (a *archiveWriter) Entry(e snapshot.Entry, r io.Reader) error {
	h, err := json.Marshal(e)
	if err != nil {
		return err
	}
	if err := a.record(recHeader, h); err != nil {
		return err
	}
	a.entries++
	if r == nil {
		return nil
	}
	if a.ch == nil {
		a.ch = chunker.New(r, frameGear, frameParams)
	} else {
		a.ch.Reset(r)
	}
	for {
		frame, err := a.ch.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read %s: %w", e.Path, err)
		}
		if err := a.record(recData, frame); err != nil {
			return err
		}
		a.bytes += int64(len(frame))
	}
}

// End writes the end record and flushes.
func (a *archiveWriter) End(rp time.Time, details map[string]string) error {
	b, err := json.Marshal(archiveEnd{Entries: a.entries, Bytes: a.bytes, RecoveryPoint: rp.UTC(), Details: details})
	if err != nil {
		return err
	}
	if err := a.record(recEnd, b); err != nil {
		return err
	}
	return a.w.Flush()
}

// errTruncated: the archive ended before its end record.
var errTruncated = errors.New("archive is cut short (no end record): the backup that wrote it did not finish")

// archiveReader reads an archive record by record.
type archiveReader struct {
	r       *bufio.Reader
	pending int64 // bytes of the current data frame not yet read
	entries int
	bytes   int64 // content bytes read or skipped
	end     *archiveEnd
}

func newArchiveReader(r io.Reader) (*archiveReader, error) {
	br := bufio.NewReaderSize(r, 256<<10)
	magic := make([]byte, len(archiveMagic))
	n, err := io.ReadFull(br, magic)
	if err != nil && err != io.EOF && err != io.ErrUnexpectedEOF {
		return nil, err
	}
	if string(magic[:n]) != archiveMagic {
		return nil, fmt.Errorf("not a lifeboat archive (bad magic %q)", magic[:n])
	}
	return &archiveReader{r: br}, nil
}

// Next skips what is left of the current entry's content and returns the
// next entry's header, or io.EOF after the end record.
func (a *archiveReader) Next() (*snapshot.Entry, error) {
	if a.end != nil {
		return nil, io.EOF
	}
	for {
		if a.pending > 0 {
			if _, err := a.r.Discard(int(a.pending)); err != nil {
				return nil, a.cut(err)
			}
			a.bytes += a.pending
			a.pending = 0
		}
		typ, err := a.r.ReadByte()
		if err != nil {
			return nil, a.cut(err)
		}
		n, err := binary.ReadUvarint(a.r)
		if err != nil {
			return nil, a.cut(err)
		}
		switch typ {
		case recData:
			if n > frameSize {
				return nil, fmt.Errorf("archive: data frame of %d bytes (max %d)", n, frameSize)
			}
			a.pending = int64(n)
		case recHeader, recEnd:
			if n > maxHeader {
				return nil, fmt.Errorf("archive: record of %d bytes (max %d)", n, maxHeader)
			}
			b := make([]byte, n)
			if _, err := io.ReadFull(a.r, b); err != nil {
				return nil, a.cut(err)
			}
			if typ == recEnd {
				return nil, a.finish(b)
			}
			var e snapshot.Entry
			if err := json.Unmarshal(b, &e); err != nil {
				return nil, fmt.Errorf("archive: entry %d header: %v", a.entries+1, err)
			}
			a.entries++
			return &e, nil
		default:
			return nil, fmt.Errorf("archive: unknown record type %q after entry %d", typ, a.entries)
		}
	}
}

func (a *archiveReader) finish(b []byte) error {
	var end archiveEnd
	if err := json.Unmarshal(b, &end); err != nil {
		return fmt.Errorf("archive: end record: %v", err)
	}
	if end.Entries != a.entries || end.Bytes != a.bytes {
		return fmt.Errorf("archive: end record counts %d entries, %d bytes; read %d entries, %d bytes", end.Entries, end.Bytes, a.entries, a.bytes)
	}
	if _, err := a.r.ReadByte(); err != io.EOF {
		return errors.New("archive: data after the end record")
	}
	a.end = &end
	return io.EOF
}

func (a *archiveReader) cut(err error) error {
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		return errTruncated
	}
	return err
}

// Read reads the content of the entry Next returned last; io.EOF at its end.
func (a *archiveReader) Read(p []byte) (int, error) {
	for a.pending == 0 {
		typ, err := a.r.Peek(1)
		if err != nil {
			return 0, a.cut(err)
		}
		if typ[0] != recData {
			return 0, io.EOF
		}
		_, _ = a.r.ReadByte()
		n, err := binary.ReadUvarint(a.r)
		if err != nil {
			return 0, a.cut(err)
		}
		if n > frameSize {
			return 0, fmt.Errorf("archive: data frame of %d bytes (max %d)", n, frameSize)
		}
		a.pending = int64(n)
	}
	if int64(len(p)) > a.pending {
		p = p[:a.pending]
	}
	n, err := a.r.Read(p)
	a.pending -= int64(n)
	a.bytes += int64(n)
	if err != nil {
		return n, a.cut(err)
	}
	return n, nil
}
