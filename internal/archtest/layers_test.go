// Package archtest keeps the package structure of docs/architecture.md
// true: every package has a layer, imports only its own layer and those
// below, and is described in the document.
package archtest

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path"
	"strings"
	"testing"
)

const module = "github.com/lifeboat-backup/lifeboat"

// layers, bottom first: a package may import packages of its own layer
// and of the layers below (docs/architecture.md draws them). A package is
// placed by the longest entry that is its path or a parent of it; test
// helper packages (…test, internal/testutil) sit with what they test.
var layers = [][]string{
	// 0: the model and small utilities
	{"engine/snapshot", "retention", "targets", "targets/physicalbase", "internal/atomicfile", "internal/inflight", "internal/jsonl",
		"internal/redact", "internal/zeros", "internal/blockdigest", "internal/scratch", "internal/humanize", "internal/report"},
	// 1: storage, configuration, chunking
	{"engine/storage", "policies", "engine/repo/chunker"},
	// 2: the native repository and what lives beside it
	{"engine/repo", "engine/logarchive", "engine/replicate"},
	// 3: sources: what is backed up and how it is read
	{"targets/files", "targets/mysql", "targets/mysql/physical", "targets/postgres", "targets/exec", "targets/bucket", "targets/volume"},
	// 4: pipelines over snapshots
	{"restore", "sanitize", "engine/pitr"},
	// 5: repository engines: the Engine interface, the native adapter and backup pipeline, restic
	{"engine", "engine/restic"},
	// 6: operations on engines: schedules, notifications, drills, browsing
	{"engine/notify", "engine/schedule", "restore/drill", "restore/browse", "restore/mount"},
	// 7: the console
	{"engine/console"},
	// 8: commands and test harnesses
	{"cmd", "internal/torture", "internal/testutil", "internal/archtest"},
}

// layerOf returns the layer of a package path relative to the module
// (-1: none) and the entry that placed it.
func layerOf(rel string) (int, string) {
	best, at := "", -1
	for i, l := range layers {
		for _, p := range l {
			if (rel == p || strings.HasPrefix(rel, p+"/")) && len(p) > len(best) {
				best, at = p, i
			}
		}
	}
	return at, best
}

type pkg struct {
	ImportPath   string
	Imports      []string
	TestImports  []string
	XTestImports []string
}

func packages(t *testing.T) []pkg {
	t.Helper()
	cmd := exec.Command("go", "list", "-json", module+"/...")
	cmd.Dir = "../.."
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("go list: %v\n%s", err, errb.String())
	}
	var ps []pkg
	dec := json.NewDecoder(&out)
	for dec.More() {
		var p pkg
		if err := dec.Decode(&p); err != nil {
			t.Fatal(err)
		}
		ps = append(ps, p)
	}
	return ps
}

func rel(ip string) (string, bool) {
	if ip == module {
		return "", true
	}
	r, ok := strings.CutPrefix(ip, module+"/")
	return r, ok
}

// helper reports whether a package is a test helper (repotest,
// miniotest, ...): those may import what they help test.
func helper(r string) bool {
	return strings.HasSuffix(path.Base(r), "test") || strings.HasPrefix(r, "internal/testutil/")
}

// TestLayers fails when a package imports a layer above its own (test
// files included), or when a package has no layer.
func TestLayers(t *testing.T) {
	for _, p := range packages(t) {
		r, _ := rel(p.ImportPath)
		l, _ := layerOf(r)
		if l < 0 {
			t.Errorf("%s has no layer: place it in internal/archtest and docs/architecture.md", r)
			continue
		}
		check := func(imports []string, what string) {
			for _, ip := range imports {
				ir, ours := rel(ip)
				if !ours || ir == r {
					continue
				}
				il, _ := layerOf(ir)
				if helper(ir) && what != "imports" {
					continue // test helpers serve the tests of any layer
				}
				if il > l && !helper(r) {
					t.Errorf("%s (layer %d) %s %s (layer %d): a layer above", r, l, what, ir, il)
				}
			}
		}
		check(p.Imports, "imports")
		check(p.TestImports, "tests import")
	}
}

// TestModelImportsNothingOfOurs keeps engine/snapshot the bottom.
func TestModelImportsNothingOfOurs(t *testing.T) {
	for _, p := range packages(t) {
		if p.ImportPath != module+"/engine/snapshot" {
			continue
		}
		for _, ip := range p.Imports {
			if _, ours := rel(ip); ours {
				t.Errorf("engine/snapshot imports %s", ip)
			}
		}
	}
}

// TestDocumented keeps docs/architecture.md listing every package.
func TestDocumented(t *testing.T) {
	doc, err := os.ReadFile("../../docs/architecture.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range packages(t) {
		r, _ := rel(p.ImportPath)
		if helper(r) || r == "internal/archtest" {
			continue
		}
		if !bytes.Contains(doc, []byte("`"+r+"`")) {
			t.Errorf("docs/architecture.md does not describe `%s`", r)
		}
	}
}
