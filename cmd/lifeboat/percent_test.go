package main

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParsePercent(t *testing.T) {
	for in, want := range map[string]float64{"100": 100, "10": 10, "2.5": 2.5, "100%": 100, "0.001": 0.001, "007": 7} {
		got, err := parsePercent(in)
		require.NoError(t, err, in)
		assert.Equal(t, want, got, in)
	}
	for _, in := range []string{"NaN", "nan", "Inf", "+Inf", "-1", "0", "0.0", "100.5", "101", "1e2", "0x1p6", "", "%", "ten", " 5", "5 ", "1,5", "1_0"} {
		_, err := parsePercent(in)
		assert.Error(t, err, in)
	}
}

// TestCheckReadDataUsage: a bad --read-data is a usage error (exit 2)
// before the repository is touched, never a structure-only check.
func TestCheckReadDataUsage(t *testing.T) {
	c, _, _ := setup(t)
	for _, v := range []string{"NaN", "-5", "101", "garbage", "Inf"} {
		out, errs, code := c.run("check", "--read-data="+v)
		assert.Equal(t, exitUsage, code, "%s: %s%s", v, out, errs)
		assert.Contains(t, errs, "--read-data=")
	}
}
