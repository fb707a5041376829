// Package zeros tells whether a buffer holds only zero bytes (sparse
// regions of volumes and files, the chunker's zero runs).
package zeros

import "bytes"

var block [64 << 10]byte

// All reports whether p holds only zero bytes (true for an empty p).
func All(p []byte) bool {
	for len(p) > 0 {
		n := min(len(p), len(block))
		if !bytes.Equal(p[:n], block[:n]) {
			return false
		}
		p = p[n:]
	}
	return true
}
