package sanitize

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"hash"
)

// keyedMAC is HMAC-SHA256 with one key, for many short messages. With
// SHA-NI it starts each message from the key's precomputed inner and
// outer states and calls the block function directly: two compressions
// for a message of up to 55 bytes and nothing else (crypto/hmac spends
// twice the compressions' time on restoring states, buffering and
// padding). Without SHA-NI it is crypto/hmac. Both give the same sums.
type keyedMAC struct {
	fast         bool
	inner, outer [8]uint32 // states after the ipad and opad blocks
	mac          hash.Hash // !fast
	sumBuf       [32]byte  // mac's sum (a result through the interface escapes)
}

func newKeyedMAC(key []byte) *keyedMAC {
	return newKeyedMACWith(key, haveSHANI)
}

func newKeyedMACWith(key []byte, fast bool) *keyedMAC {
	if !fast {
		return &keyedMAC{mac: hmac.New(sha256.New, key)}
	}
	k := &keyedMAC{fast: true}
	var pad [sha256.BlockSize]byte
	if len(key) > sha256.BlockSize {
		s := sha256.Sum256(key)
		key = s[:]
	}
	for i, c := range [2]byte{0x36, 0x5c} {
		st := &k.inner
		if i == 1 {
			st = &k.outer
		}
		*st = sha256IV
		for j := range pad {
			pad[j] = c
			if j < len(key) {
				pad[j] ^= key[j]
			}
		}
		blockSHANI(st, pad[:])
	}
	return k
}

var sha256IV = [8]uint32{0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19}

// sum returns HMAC-SHA256(key, msg).
func (k *keyedMAC) sum(msg []byte) (out [32]byte) {
	if !k.fast {
		k.mac.Reset()
		k.mac.Write(msg)
		k.mac.Sum(k.sumBuf[:0])
		return k.sumBuf
	}
	st := k.inner
	n := len(msg) &^ (sha256.BlockSize - 1)
	if n > 0 {
		blockSHANI(&st, msg[:n])
	}
	// The rest, 0x80, zeros and the bit length (the ipad block included)
	// in one or two blocks.
	var tail [2 * sha256.BlockSize]byte
	r := copy(tail[:], msg[n:])
	tail[r] = 0x80
	end := sha256.BlockSize
	if r >= sha256.BlockSize-8 {
		end = 2 * sha256.BlockSize
	}
	binary.BigEndian.PutUint64(tail[end-8:], uint64(sha256.BlockSize+len(msg))*8)
	blockSHANI(&st, tail[:end])
	// Outer: the inner sum, 0x80, zeros, the length of opad block + sum.
	var blk [sha256.BlockSize]byte
	for i, w := range st {
		binary.BigEndian.PutUint32(blk[4*i:], w)
	}
	blk[32] = 0x80
	binary.BigEndian.PutUint64(blk[56:], (sha256.BlockSize+32)*8)
	st = k.outer
	blockSHANI(&st, blk[:])
	for i, w := range st {
		binary.BigEndian.PutUint32(out[4*i:], w)
	}
	return out
}
