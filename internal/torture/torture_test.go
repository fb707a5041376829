package torture_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lifeboat-backup/lifeboat/engine/storage/miniotest"
	"github.com/lifeboat-backup/lifeboat/internal/torture"
)

// testOps are the operations make test schedules: all of them (replicate
// since the copy fixes its snapshots before it reloads the index).
var testOps = []string{"backup", "forget", "forget-keep", "prune", "prune-race", "check", "check-read", "restore",
	"replicate", "stall", "minio-restart", "disk-full", "damage", "kill", "retry-lock"}

var (
	binDir   string
	buildBin sync.Once
	binErr   error
)

func TestMain(m *testing.M) {
	var err error
	if binDir, err = os.MkdirTemp("", "torture-bin-"); err != nil {
		panic(err)
	}
	code := m.Run()
	os.RemoveAll(binDir)
	os.Exit(code)
}

// lifeboat builds the binary once for all tests.
func lifeboat(t *testing.T) string {
	bin := filepath.Join(binDir, "lifeboat")
	buildBin.Do(func() {
		if out, err := exec.Command("go", "build", "-o", bin, "github.com/lifeboat-backup/lifeboat/cmd/lifeboat").CombinedOutput(); err != nil {
			binErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return bin
}

// seed is TORTURE_SEED, or a random one (printed with the summary).
func seed(t *testing.T) uint64 {
	if s := os.Getenv("TORTURE_SEED"); s != "" {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("TORTURE_SEED=%s: %v", s, err)
		}
		return n
	}
	return rand.Uint64N(1 << 40)
}

func run(t *testing.T, store string, d time.Duration) {
	var ops []string
	for _, k := range testOps {
		if k != "minio-restart" || store == "minio" {
			if k != "disk-full" || store == "file" {
				ops = append(ops, k)
			}
		}
	}
	var out strings.Builder
	sum, err := torture.Run(context.Background(), torture.Config{
		Duration: d, Store: store, Seed: seed(t), Dir: t.TempDir(), Binary: lifeboat(t), Ops: ops, Out: &out,
		Lease: 10 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Log(out.String())
	if len(sum.Violations) > 0 {
		t.Fatalf("%d violations (replay with TORTURE_SEED=%d)", len(sum.Violations), sum.Seed)
	}
	if sum.Verified == 0 {
		t.Fatalf("no snapshot verified: %s", sum)
	}
}

// TestTortureFile runs the workload for about a minute on a file://
// repository (on a tmpfs when the test may mount one).
func TestTortureFile(t *testing.T) {
	if testing.Short() {
		t.Skip("torture: a minute of work")
	}
	run(t, "file", 30*time.Second)
}

// TestTortureMinIO runs a shorter workload on MinIO, with restarts.
func TestTortureMinIO(t *testing.T) {
	if testing.Short() {
		t.Skip("torture: half a minute of work")
	}
	if _, err := miniotest.Binary(); err != nil {
		if miniotest.Required() {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	run(t, "minio", 15*time.Second)
}

// TestTortureCatchesWrongRestore runs the harness against a lifeboat whose
// restores append a byte to one restored file: the oracle must say so.
func TestTortureCatchesWrongRestore(t *testing.T) {
	if testing.Short() {
		t.Skip("torture: builds lifeboat")
	}
	dir := t.TempDir()
	real := lifeboat(t)
	liar := filepath.Join(dir, "lifeboat")
	script := `#!/bin/sh
"` + real + `" "$@"; rc=$?
to=; prev=
for a in "$@"; do [ "$prev" = --to ] && to=$a; prev=$a; done
if [ -n "$to" ] && [ $rc = 0 ]; then
	f=$(find "$to" -type f -name '*.sql' | sort | head -n 1)
	[ -n "$f" ] && printf x >> "$f"
fi
exit $rc
`
	if err := os.WriteFile(liar, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	sum, err := torture.Run(context.Background(), torture.Config{
		Duration: 3 * time.Second, Store: "file", Seed: 1, Dir: filepath.Join(dir, "w"), Binary: liar,
		Ops: []string{"backup", "restore"}, Out: &out,
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(sum.Violations) == 0 {
		t.Fatalf("no violation found:\n%s", out.String())
	}
	if !strings.Contains(sum.Violations[0], "differs from the tree it was given") || !strings.Contains(sum.Violations[0], ".sql: want file") {
		t.Errorf("violation %q", sum.Violations[0])
	}
	if !strings.Contains(out.String(), "seed 1 (replay: --seed 1 --store file)") {
		t.Errorf("no replay line:\n%s", out.String())
	}
}
