package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/lifeboat-backup/lifeboat/targets/mysql/mysqltest"
)

// ordersSummary is what the drill's check reads of shop.orders in a
// state of the commit log: rows, highest id, sum of the amounts.
func ordersSummary(st map[string]map[int64]string) string {
	var maxID int64
	cents := 0
	for id, row := range st["orders"] {
		maxID = max(maxID, id)
		amount := strings.Split(row, "|")[2]
		whole, frac, _ := strings.Cut(amount, ".")
		w, _ := strconv.Atoi(whole)
		f, _ := strconv.Atoi(frac)
		cents += w*100 + f
	}
	return fmt.Sprintf("%d/%d/%s", len(st["orders"]), maxID, money(cents))
}

// A drill with drill.pitr of a mysql target with a binlog archive: the
// newest snapshot is loaded into the scratch server and the archived
// binary log replayed to a random second between the snapshot and the
// archive's end, the checks run there (the orders table is the commit
// log's at that second), and the drill record reports the point, what
// the replay reached, and the RPO as drill start minus the newest
// archived event.
func TestPITRDrill(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary, runs MariaDB")
	}
	srv := mysqltest.Start(t)
	db := srv.DB(t, "")
	for _, q := range shopSchema {
		_, err := db.Exec(q)
		require.NoError(t, err, q)
	}
	e := newPITREnv(t, srv, "2s")
	pol, err := os.ReadFile(e.policy)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(e.policy, append(pol, []byte(`drill:
  pitr: true
  checks:
    - name: orders
      target: shop
      sql: SELECT CONCAT(COUNT(*), '/', MAX(id), '/', SUM(amount)) FROM shop.orders
`)...), 0o600))
	stop, _ := e.archiver()
	gen := newOrderGen(srv.DB(t, ""))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	genErr := make(chan error, 1)
	go func() { genErr <- gen.run(ctx, 50) }()
	time.Sleep(3 * time.Second)
	e.must(nil, "run", e.policy, "--journal", e.journal)
	time.Sleep(6 * time.Second)
	cancel()
	require.NoError(t, <-genErr)
	e.waitCaughtUp(db, 20*time.Second)
	code, out := stop()
	require.Contains(t, []int{0, 130}, code, out)
	log := gen.commits()
	newest := newestArchived(e.segments())

	report := filepath.Join(e.dir, "drill.json")
	dout := e.must([]string{"LIFEBOAT_KEY_FILE=" + e.owner}, "drill", e.policy, "--journal", e.journal, "-o", report)
	rep, b := readDrillReport(t, report)
	require.Equal(t, "passed", rep.Status, "%s\n%s", dout, b)
	require.Len(t, rep.Targets, 1)
	dt := rep.Targets[0]
	pt, err := time.Parse(time.RFC3339, dt.PITRPoint)
	require.NoError(t, err, "a random point, not latest: %s", b)
	require.True(t, pt.Equal(dt.RecoveryPoint), "%s", b)
	require.False(t, pt.Before(dt.SnapshotTime.Truncate(time.Second)), "the point is after the snapshot: %s", b)
	require.False(t, pt.After(newest), "the point is within the archive (newest event %s): %s", newest, b)
	require.True(t, dt.ArchivedUntil.Equal(newest), "%s", b)
	require.Contains(t, dt.Reached, "replayed")
	require.Contains(t, dout, "shop: point-in-time to "+dt.PITRPoint, "the drill's summary names the point")
	require.InDelta(t, time.Since(newest).Seconds(), dt.RPOSeconds, 30, "RPO = drill start - newest archived event")
	require.Equal(t, dt.RPOSeconds, rep.RPO.Seconds)
	require.Len(t, rep.Checks, 1)
	got := rep.Checks[0].Value
	lo, hi := committedBy(log, pt)
	var want []string
	for n := lo; n <= hi; n++ {
		s := ordersSummary(state(log, n))
		if s == got {
			t.Logf("drill replayed to %s: %s = commit %d of %d; %s; RPO %.1fs; drill output:\n%s", dt.PITRPoint, got, n, len(log),
				dt.Reached, dt.RPOSeconds, strings.TrimSpace(dout))
			return
		}
		want = append(want, s)
	}
	t.Fatalf("orders at %s: %s, the commit log says one of %v (commits %d..%d)", pt, got, want, lo, hi)
}

// drillReport is what a PITR drill's -o report says (the fields the
// drill tests look at).
type drillReport struct {
	Status  string
	RPO     struct{ Seconds float64 }
	Targets []struct {
		Name, Snapshot, Reached string
		SnapshotTime            time.Time `json:"snapshot_time"`
		PITRPoint               string    `json:"pitr_point"`
		RecoveryPoint           time.Time `json:"recovery_point"`
		ArchivedUntil           time.Time `json:"archived_until"`
		RPOSeconds              float64   `json:"rpo_seconds"`
	}
	Checks []struct {
		Name, Value string
		OK          bool
	}
}

// readDrillReport reads a drill report, and returns its bytes for
// failure messages.
func readDrillReport(t *testing.T, path string) (drillReport, []byte) {
	t.Helper()
	var rep drillReport
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(b, &rep), "%s", b)
	return rep, b
}
