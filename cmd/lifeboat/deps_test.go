package main

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// The release binary links no test helpers: package testing (and with it
// the test flags) stays out of `go list -deps ./cmd/lifeboat`.
func TestBinaryLinksNoTesting(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go list")
	}
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	require.NoError(t, err)
	for _, p := range strings.Fields(string(out)) {
		require.NotEqual(t, "testing", p, "the lifeboat binary imports package testing (a test helper in a non-test package?)")
	}
}
