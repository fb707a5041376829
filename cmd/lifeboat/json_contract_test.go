package main

import (
	"bufio"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/stretchr/testify/require"
)

// schemaBase is the $id prefix of the schemas in docs/json.md.
const schemaBase = "https://lifeboat-backup.github.io/json/"

// jsonSchemas compiles every schema of docs/json.md (the ```json blocks
// with an "$id"), keyed by name ("backup" for .../backup.json).
func jsonSchemas(t *testing.T) map[string]*jsonschema.Schema {
	t.Helper()
	doc, err := os.ReadFile("../../docs/json.md")
	require.NoError(t, err)
	c := jsonschema.NewCompiler()
	var names []string
	for _, m := range regexp.MustCompile("(?s)```json\n(.*?)```").FindAllStringSubmatch(string(doc), -1) {
		v, err := jsonschema.UnmarshalJSON(strings.NewReader(m[1]))
		require.NoError(t, err, "docs/json.md block %s", m[1])
		obj, ok := v.(map[string]any)
		id, _ := obj["$id"].(string)
		if !ok || !strings.HasPrefix(id, schemaBase) {
			continue // an example, not a schema
		}
		require.NoError(t, c.AddResource(id, v), id)
		names = append(names, strings.TrimSuffix(strings.TrimPrefix(id, schemaBase), ".json"))
	}
	out := map[string]*jsonschema.Schema{}
	for _, n := range names {
		s, err := c.Compile(schemaBase + n + ".json")
		require.NoError(t, err, n)
		out[n] = s
	}
	return out
}

// checkJSON validates every line of a command's --json output against
// its schema in docs/json.md; for a command that does work (workCommands)
// also the contract: exactly one summary, the last line.
func checkJSON(t *testing.T, schemas map[string]*jsonschema.Schema, name, out string) []map[string]any {
	t.Helper()
	s := schemas[name]
	require.NotNil(t, s, "docs/json.md has no schema %q", name)
	var lines []map[string]any
	summaries := 0
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(nil, 16<<20)
	for sc.Scan() {
		v, err := jsonschema.UnmarshalJSON(strings.NewReader(sc.Text()))
		require.NoError(t, err, "%s: not JSON: %q", name, sc.Text())
		if err := s.Validate(v); err != nil {
			t.Errorf("%s: line %q does not match docs/json.md: %v", name, sc.Text(), err)
		}
		if m, ok := v.(map[string]any); ok {
			lines = append(lines, m)
			if m["message_type"] == "summary" {
				summaries++
			}
		}
	}
	require.NotEmpty(t, out, "%s printed nothing", name)
	if workCommands[strings.Fields(name)[0]] {
		require.Equal(t, 1, summaries, "%s: want exactly one summary line:\n%s", name, out)
		require.Equal(t, "summary", lines[len(lines)-1]["message_type"], "%s: the summary is not last:\n%s", name, out)
	}
	return lines
}

func write(t *testing.T, path, body string) string {
	t.Helper()
	require.NoError(t, os.WriteFile(path, []byte(body), 0o600))
	return path
}

// TestJSONContract runs every command of the contract with --json on real
// repositories and checks each line against docs/json.md.
func TestJSONContract(t *testing.T) {
	schemas := jsonSchemas(t)
	c, dir, src := setup(t)
	primary := c.env["LIFEBOAT_REPO"]
	journal := filepath.Join(dir, "journal")
	policy := write(t, filepath.Join(dir, "shop.yaml"), `version: 1
name: shop
host: web-1
repositories:
  primary:
    url: `+primary+`
    key_file: `+filepath.Join(dir, "host.key")+`
  secondaries:
    - name: dr
      url: file://`+filepath.Join(dir, "dr")+`
targets:
  - name: site
    kind: files
    paths: [`+src+`]
  - name: etc
    kind: files
    paths: [`+filepath.Join(src, "sub")+`]
retention:
  keep_last: 2
objectives:
  rpo: 26h
  rto: 30m
drill:
  checks:
    - name: content present
      target: site
      path: sub
      min_files: 1
`)
	host, owner := filepath.Join(dir, "host.key"), filepath.Join(dir, "owner.key")
	type step struct {
		schema string
		args   []string
		key    string // LIFEBOAT_KEY_FILE
		fails  bool
	}
	steps := []step{
		{"init", []string{"init", "--repo", "file://" + filepath.Join(dir, "other"), "--host-key-out", filepath.Join(dir, "o.key"), "--owner-key-out", filepath.Join(dir, "oo.key")}, "", false},
		{"backup", []string{"backup", "files", src, "--dry-run"}, host, false},
		{"backup", []string{"backup", "files", src}, host, false},
		{"backup", []string{"backup", "files", "-v", src}, host, false},
		{"snapshots", []string{"snapshots"}, host, false},
		{"snapshots", []string{"snapshots", "--group-by", "host"}, host, false},
		{"ls", []string{"ls", "latest", "src/sub"}, host, false},
		{"restore", []string{"restore", "latest", "--target", "files", "--to", filepath.Join(dir, "out")}, owner, false},
		{"restore", []string{"restore", "latest", "-v", "--target", "files", "--to", filepath.Join(dir, "out2")}, owner, false},
		{"restore", []string{"restore", "0123abcd", "--to", filepath.Join(dir, "out3")}, owner, true},
		{"check", []string{"check"}, host, false},
		{"check", []string{"check", "--read-data"}, owner, false},
		{"tag", []string{"tag", "latest", "--target", "files", "--add", "kept"}, owner, false},
		{"forget", []string{"forget", "--keep-last", "1", "--dry-run"}, owner, false},
		{"forget", []string{"forget", "--keep-last", "1"}, owner, false},
		{"prune", []string{"prune"}, owner, false},
		{"run", []string{"run", policy, "--journal", journal}, "", false},
		{"replicate", []string{"replicate", policy}, "", false},
		{"drill", []string{"drill", policy, "--journal", journal}, owner, false},
		{"export", []string{"export", policy}, owner, true},
		{"status", []string{"status", policy, "--journal", journal}, "", false},
		{"history", []string{"history", policy, "--journal", journal}, "", false},
		{"version", []string{"version"}, "", false},
	}
	for _, s := range steps {
		c.env["LIFEBOAT_KEY_FILE"] = s.key
		out, errs, code := c.run(append(s.args, "--json")...)
		if s.fails {
			require.NotEqual(t, 0, code, "%v should fail", s.args)
		} else {
			require.Equal(t, 0, code, "%v: %s", s.args, errs)
		}
		t.Logf("%v:\n%s", s.args, out)
		checkJSON(t, schemas, s.schema, out)
	}
}
