package files

import (
	"bytes"
	"io"
)

// SparseBlock is the granularity of WriteAtSparse.
const SparseBlock = 4096

var zeroBlock [SparseBlock]byte

// WriteAtSparse writes p at offset off of f like f.WriteAt, but skips
// all-zero pieces: every all-zero 4 KiB-aligned block (and all-zero
// partial blocks at the edges of p), so that a file created by
// Restorer.File (sized by File.Commit, reading as zeros where nothing was
// written) keeps its holes. It must therefore only be used where the
// skipped ranges read as zeros. Non-zero runs are written with one WriteAt
// each.
func WriteAtSparse(f io.WriterAt, p []byte, off int64) error {
	start := -1 // start in p of the pending non-zero run
	i := 0
	for i < len(p) {
		// Piece from i to the next block boundary of the file offset.
		n := SparseBlock - int((off+int64(i))%SparseBlock)
		if n > len(p)-i {
			n = len(p) - i
		}
		zero := bytes.Equal(p[i:i+n], zeroBlock[:n])
		if zero && start >= 0 {
			if _, err := f.WriteAt(p[start:i], off+int64(start)); err != nil {
				return err
			}
			start = -1
		} else if !zero && start < 0 {
			start = i
		}
		i += n
	}
	if start >= 0 {
		if _, err := f.WriteAt(p[start:], off+int64(start)); err != nil {
			return err
		}
	}
	return nil
}
