package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func runConfig(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	code := newApp(strings.NewReader(""), &out, &errb).run(context.Background(), args)
	return out.String(), errb.String(), code
}

func TestCLIConfig(t *testing.T) {
	dir := t.TempDir()
	for _, preset := range []string{"", "magento2", "orocommerce"} {
		args := []string{"config", "example"}
		if preset != "" {
			args = append(args, "--preset", preset)
		}
		y, errs, code := runConfig(t, args...)
		require.Equal(t, 0, code, errs)
		f := filepath.Join(dir, "p"+preset+".yaml")
		require.NoError(t, os.WriteFile(f, []byte(y), 0o644))
		out, errs, code := runConfig(t, "config", "validate", f)
		assert.Equal(t, 0, code, errs)
		assert.Equal(t, "ok\n", out)
	}
	_, _, code := runConfig(t, "config", "example", "--preset", "wordpress")
	assert.Equal(t, 2, code)

	bad := filepath.Join(dir, "bad.yaml")
	require.NoError(t, os.WriteFile(bad, []byte("version: 1\nname: x\ntargets:\n  - name: a\n    kind: mysql\n    dsn: u@tcp(h)/\n    lock_mode: ftwr\nfoo: 1\n"), 0o644))
	out, errs, code := runConfig(t, "config", "validate", bad)
	assert.Equal(t, 2, code)
	assert.Equal(t, bad+":1:1: repositories: required\n"+
		bad+":7:16: targets[0].lock_mode: \"ftwr\" is not allowed (allowed: ftwrl, backup_lock, single)\n"+
		bad+":8:1: foo: unknown key (allowed: version, name, host, repositories, targets, schedule, retention, replication, objectives, drill, sanitize, notify, metrics, hooks)\n", out)
	assert.Contains(t, errs, "3 problems")

	out, _, code = runConfig(t, "config", "validate", "--json", bad)
	assert.Equal(t, 2, code)
	var res struct {
		OK       bool             `json:"ok"`
		Problems []map[string]any `json:"problems"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &res))
	assert.False(t, res.OK)
	require.Len(t, res.Problems, 3)
	assert.Equal(t, "targets[0].lock_mode", res.Problems[1]["field"])
	assert.EqualValues(t, 7, res.Problems[1]["line"])
	assert.Equal(t, []any{"ftwrl", "backup_lock", "single"}, res.Problems[1]["allowed"])

	_, _, code = runConfig(t, "config", "validate", filepath.Join(dir, "missing.yaml"))
	assert.Equal(t, 2, code)
	_, _, code = runConfig(t, "config", "validate")
	assert.Equal(t, 2, code)

	out, _, code = runConfig(t, "config", "schema")
	require.Equal(t, 0, code)
	var schema map[string]any
	require.NoError(t, json.Unmarshal([]byte(out), &schema))
	assert.Contains(t, schema["properties"], "targets")
}
