package repo

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gocloud.dev/blob/memblob"
)

// TestScryptWorkFactor: outside tests, passphrase key files are sealed
// with age's default scrypt cost (2^18); export_test.go lowers it for the
// rest of this package's tests. The stanza in a key file names the factor.
func TestScryptWorkFactor(t *testing.T) {
	assert.Equal(t, 18, productionScryptWorkFactor, "age's default cost outside tests")

	// A key file names the factor it was sealed with: the lowered one here.
	ctx := context.Background()
	b := memblob.OpenBucket(nil)
	_, err := Init(ctx, b, InitOptions{Passphrase: "correct horse"})
	require.NoError(t, err)
	it := b.List(nil)
	found := false
	for {
		obj, err := it.Next(ctx)
		if err != nil {
			break
		}
		if !strings.HasPrefix(obj.Key, "keys/") {
			continue
		}
		data, err := b.ReadAll(ctx, obj.Key)
		require.NoError(t, err)
		if bytes.Contains(data, []byte("-> scrypt ")) {
			found = true
			assert.Regexp(t, `-> scrypt \S+ 10\n`, string(data))
		}
	}
	assert.True(t, found, "a passphrase key file")
}
