package sanitize

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/lifeboat-backup/lifeboat/policies"
)

// TestFakesGolden pins every fake kind for a fixed key: the same key must
// give the same fakes in every lifeboat version (developers keep data
// across exports). LIFEBOAT_UPDATE_GOLDEN=1 rewrites the file.
func TestFakesGolden(t *testing.T) {
	f := &faker{key: []byte("0123456789abcdef0123456789abcdef")}
	var b strings.Builder
	for _, kind := range policies.FakeKinds {
		for _, in := range []string{"anna.schmidt@example.de", "Müller", "+49 30 1234567", ""} {
			for _, max := range []int{0, 12} {
				fmt.Fprintf(&b, "%s\t%q\t%d\t%q\n", kind, in, max, f.fake(kind, []byte(in), max))
			}
		}
	}
	fmt.Fprintf(&b, "hash\t%q\n", f.hashHex([]byte("secret")))
	const path = "testdata/fakes.golden"
	if os.Getenv("LIFEBOAT_UPDATE_GOLDEN") == "1" {
		require.NoError(t, os.MkdirAll("testdata", 0o755))
		require.NoError(t, os.WriteFile(path, []byte(b.String()), 0o644))
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Equal(t, string(want), b.String())
}

// TestCachedFakeEqualsFake: the paths exports take (cachedFake: cache
// hits, slots overwritten by other keys, the scratch buffer once a kind
// turns its cache off after cacheTrial lookups, values too long to cache)
// give exactly the pinned uncached fake, on every call.
func TestCachedFakeEqualsFake(t *testing.T) {
	key := []byte("0123456789abcdef0123456789abcdef")
	for _, tc := range []struct {
		name    string
		unique  func(i int) bool // the i-th value is new, else one of 16 repeating ones
		wantOff bool
	}{
		{"mostly repeating: cache stays on", func(i int) bool { return i%5 == 0 }, false},
		{"mostly unique: cache turns off", func(i int) bool { return i%7 != 0 }, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &faker{key: key} // one faker for every kind, as an export worker has
			ref := &faker{key: key}
			for i := range 2*cacheTrial + 500 {
				for _, kind := range policies.FakeKinds {
					in := fmt.Sprintf("customer-%d@mail.test", i)
					if !tc.unique(i) {
						in = fmt.Sprintf("Repeat %d Müller", i%16)
					}
					if i%997 == 0 {
						in = strings.Repeat("long ", 60) + in // more than 256 bytes: never cached
					}
					max := []int{0, 12, 40}[i%3]
					got := f.cachedFake(fakeKind(kind), []byte(in), max)
					require.Equal(t, ref.fake(kind, []byte(in), max), string(got), "%s %q max %d, call %d", kind, in, max, i)
				}
			}
			for kid, kind := range policies.FakeKinds {
				require.Equal(t, tc.wantOff, f.kinds[kid].off, kind)
				if !tc.wantOff {
					require.Positive(t, f.kinds[kid].hits, kind)
				}
			}
		})
	}
}
