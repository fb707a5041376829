package sanitize

import (
	"crypto/hmac"
	"crypto/sha256"
	"math/rand/v2"
	"testing"
)

// TestKeyedMAC: the SHA-NI path gives crypto/hmac's sums for keys and
// messages of every length around the block and padding boundaries.
func TestKeyedMAC(t *testing.T) {
	if !haveSHANI {
		t.Skip("no SHA-NI: keyedMAC is crypto/hmac")
	}
	rng := rand.New(rand.NewPCG(1, 2))
	rnd := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		return b
	}
	for _, kl := range []int{0, 1, 16, 32, 63, 64, 65, 100, 200} {
		key := rnd(kl)
		fast, slow := newKeyedMACWith(key, true), newKeyedMACWith(key, false)
		ref := hmac.New(sha256.New, key)
		for ml := range 300 {
			msg := rnd(ml)
			ref.Reset()
			ref.Write(msg)
			want := ref.Sum(nil)
			if got := fast.sum(msg); string(got[:]) != string(want) {
				t.Fatalf("key %d bytes, message %d bytes: SHA-NI %x, crypto/hmac %x", kl, ml, got, want)
			}
			if got := slow.sum(msg); string(got[:]) != string(want) {
				t.Fatalf("key %d bytes, message %d bytes: fallback %x, crypto/hmac %x", kl, ml, got, want)
			}
		}
	}
}

// BenchmarkKeyedMAC: one fake's HMAC (a 30-byte message).
func BenchmarkKeyedMAC(b *testing.B) {
	msg := []byte("email\x00customer12345@mail.example")
	for _, c := range []struct {
		name string
		fast bool
	}{{"crypto-hmac", false}, {"sha-ni", true}} {
		if c.fast && !haveSHANI {
			continue
		}
		b.Run(c.name, func(b *testing.B) {
			k := newKeyedMACWith(goldenKey, c.fast)
			for range b.N {
				k.sum(msg)
			}
		})
	}
}
