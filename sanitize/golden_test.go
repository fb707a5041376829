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
