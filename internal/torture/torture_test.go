package torture_test

import (
	"context"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lifeboat-backup/lifeboat/engine/repo/storage/miniotest"
	"github.com/lifeboat-backup/lifeboat/internal/torture"
)

// testOps are the operations make test schedules: all but those that still
// break the promise on main (docs/torture.md, "Found").
var testOps = []string{"backup", "forget", "forget-keep", "prune", "check", "check-read", "restore",
	"replicate", "stall", "minio-restart", "disk-full", "damage", "kill"}

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
		Duration: d, Store: store, Seed: seed(t), Dir: t.TempDir(), Ops: ops, Out: &out,
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
	run(t, "file", 35*time.Second)
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
