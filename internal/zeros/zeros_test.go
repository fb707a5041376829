package zeros

import "testing"

func TestAll(t *testing.T) {
	big := make([]byte, 200<<10)
	for _, tc := range []struct {
		p    []byte
		want bool
	}{{nil, true}, {[]byte{0}, true}, {[]byte{0, 1}, false}, {big, true}} {
		if got := All(tc.p); got != tc.want {
			t.Errorf("All(%d bytes) = %v", len(tc.p), got)
		}
	}
	big[len(big)-1] = 1
	if All(big) {
		t.Error("a one in the last block is not zero")
	}
}

func BenchmarkAll(b *testing.B) {
	p := make([]byte, 1<<20)
	b.SetBytes(int64(len(p)))
	for b.Loop() {
		All(p)
	}
}
