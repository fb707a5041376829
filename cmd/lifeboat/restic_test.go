package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lifeboat-backup/lifeboat/engine/restic/restictest"
	"github.com/lifeboat-backup/lifeboat/engine/storage/miniotest"
	"github.com/lifeboat-backup/lifeboat/internal/testutil/gentree"
	"github.com/lifeboat-backup/lifeboat/internal/testutil/shop"
	"github.com/lifeboat-backup/lifeboat/internal/testutil/treecmp"
	"github.com/lifeboat-backup/lifeboat/targets/mysql/mysqltest"
)

// useRestic returns the restic binary the tests drive (skipping without
// one, unless LIFEBOAT_REQUIRE_RESTIC=1) and points lifeboat at it, with
// a cache of the test's own.
func useRestic(t *testing.T) string {
	t.Helper()
	bin := restictest.BinaryOrSkip(t)
	t.Setenv("RESTIC_CACHE_DIR", t.TempDir())
	t.Setenv("LIFEBOAT_RESTIC", bin)
	return bin
}

// The same policy (files + MySQL) run once on the native engine and once
// on restic: both restore identical content, and `lifeboat snapshots`
// lists both alike. On local disk and on MinIO.
func TestResticEngineSamePolicy(t *testing.T) {
	if testing.Short() {
		t.Skip("MariaDB, MinIO and restic")
	}
	useRestic(t)
	db := mysqltest.Shared(t)
	conn := db.DB(t, "")
	ctx := context.Background()
	_, err := shop.Generate(ctx, conn, shop.Options{Database: "rs_shop", Rows: 300, Replace: true})
	require.NoError(t, err)

	var seq strings.Builder
	for i := 1; i <= 200000; i++ {
		fmt.Fprintln(&seq, i)
	}
	wantStream := seq.String()

	for _, where := range []string{"local", "minio"} {
		t.Run(where, func(t *testing.T) {
			dir := t.TempDir()
			repoURL := func(name string) string { return "file://" + filepath.Join(dir, name) }
			if where == "minio" {
				srv := miniotest.Start(t)
				srv.CreateBucket(t, "lifeboat-restic")
				repoURL = func(name string) string { return srv.URL("lifeboat-restic", name) }
			}
			src := filepath.Join(dir, "media")
			_, err := gentree.Generate(src, gentree.Options{Size: 3 << 20, Seed: 11, NoSpecial: true})
			require.NoError(t, err)
			mysqlPass := filepath.Join(dir, "mysql.pass")
			require.NoError(t, os.WriteFile(mysqlPass, []byte(db.Password+"\n"), 0o600))
			resticPass := filepath.Join(dir, "restic.pass")
			require.NoError(t, os.WriteFile(resticPass, []byte("correct horse battery\n"), 0o600))

			targets := `targets:
  - name: media
    kind: files
    paths: [` + src + `]
  - name: shopdb
    kind: mysql
    dsn: ` + db.DSN() + `
    password_file: ` + mysqlPass + `
    databases: [rs_shop]
  - name: stream
    kind: exec
    command: [sh, -c, "seq 1 200000"]
retention:
  keep_last: 1
`
			c := &cli{t: t, env: map[string]string{"LIFEBOAT_REPO": repoURL("native")}}
			c.ok("init", "--owner-key-out", filepath.Join(dir, "owner.key"), "--host-key-out", filepath.Join(dir, "host.key"))
			c.env["LIFEBOAT_REPO"] = ""
			native := filepath.Join(dir, "native.yaml")
			require.NoError(t, os.WriteFile(native, []byte(`version: 1
name: shop
host: shop-1
repositories:
  primary:
    url: `+repoURL("native")+`
    key_file: `+filepath.Join(dir, "owner.key")+`
`+targets), 0o600))
			rpolicy := filepath.Join(dir, "restic.yaml")
			require.NoError(t, os.WriteFile(rpolicy, []byte(`version: 1
name: shop
host: shop-1
repositories:
  primary:
    url: `+repoURL("restic")+`
    engine: restic
    password_file: `+resticPass+`
  secondaries:
    - name: dr
      url: `+repoURL("restic-dr")+`
`+targets), 0o600))
			journal := filepath.Join(dir, "journal")
			c.ok("init", "--policy", rpolicy)

			c.ok("run", native, "--journal", journal)
			for range 2 { // the second run forgets the first run's snapshots (keep_last: 1)
				out := c.ok("run", rpolicy, "--journal", journal)
				assert.Contains(t, out, "target media")
				assert.Contains(t, out, "target shopdb")
				assert.Contains(t, out, "replicate dr: 3 objects")
			}
			data, err := os.ReadFile(filepath.Join(journal, "shop.jsonl"))
			require.NoError(t, err)
			lines := strings.Split(strings.TrimSpace(string(data)), "\n")
			require.Len(t, lines, 3)
			var last map[string]any
			require.NoError(t, json.Unmarshal([]byte(lines[2]), &last))
			assert.Len(t, last["forgotten"], 3, "retention forgot the first restic run")

			// snapshots lists both alike
			list := func(policy string) []map[string]any {
				var l []map[string]any
				require.NoError(t, json.Unmarshal([]byte(c.ok("snapshots", "--policy", policy, "--json")), &l))
				return l
			}
			nl, rl := list(native), list(rpolicy)
			require.Len(t, nl, 3)
			require.Len(t, rl, 3)
			for i := range nl {
				for _, k := range []string{"target", "kind", "host", "tags"} {
					assert.Equal(t, nl[i][k], rl[i][k], "%s of snapshot %d", k, i)
				}
				assert.Len(t, rl[i]["id"], 64)
			}
			assert.Equal(t, "mysql", rl[1]["kind"])
			text := c.ok("snapshots", "--policy", rpolicy)
			assert.Contains(t, text, "ID        Time")
			assert.Contains(t, text, "policy:shop")
			assert.Contains(t, text, "3 snapshots")

			// both restore identical content
			for _, p := range []struct{ name, policy string }{{"native", native}, {"restic", rpolicy}} {
				out := filepath.Join(dir, "out-"+p.name)
				c.ok("restore", "latest", "--policy", p.policy, "--target", "media", "--to", out, "--keep-setuid", "--devices")
				diffs, err := treecmp.Compare(src, filepath.Join(out, "media"), treecmp.Options{})
				require.NoError(t, err)
				require.Empty(t, diffs, p.name)
				c.ok("restore", "latest", "--policy", p.policy, "--target", "shopdb", "--to", db.URL(),
					"--rename", "rs_shop=rs_shop_"+p.name+"_"+where)
				assert.Equal(t, checksums(t, conn, "rs_shop"), checksums(t, conn, "rs_shop_"+p.name+"_"+where), p.name)
				// one table alone (--tables), under yet another name
				one := "rs_shop_1_" + p.name + "_" + where
				c.ok("restore", "latest", "--policy", p.policy, "--target", "shopdb", "--to", db.URL(),
					"--rename", "rs_shop="+one, "--tables", "rs_shop.quote")
				assert.Equal(t, map[string]int64{"quote": checksums(t, conn, "rs_shop")["quote"]}, checksums(t, conn, one), p.name)
				stream := filepath.Join(dir, "stream-"+p.name)
				c.ok("restore", "latest", "--policy", p.policy, "--target", "stream", "--to", stream)
				got, err := os.ReadFile(stream)
				require.NoError(t, err)
				require.Equal(t, wantStream, string(got), p.name)
			}

			// ls reads a stream snapshot's tree from restic
			assert.Contains(t, c.ok("ls", "latest", "--policy", rpolicy, "--target", "shopdb"), "rs_shop")
			// so do diff, find and stats; restic's own file trees are skipped by find, refused by diff
			rsns := []map[string]any{}
			require.NoError(t, json.Unmarshal([]byte(c.ok("snapshots", "--policy", rpolicy, "--target", "shopdb", "--json")), &rsns))
			require.NotEmpty(t, rsns)
			id := rsns[len(rsns)-1]["id"].(string)
			assert.Contains(t, c.ok("diff", id, id, "--policy", rpolicy), "0 new")
			out, errs, code := c.run("find", "quote*", "--policy", rpolicy)
			assert.Equal(t, 0, code, errs)
			assert.Contains(t, out, "/rs_shop/quote")
			assert.Contains(t, errs, "restic's own file tree")
			assert.Contains(t, c.ok("stats", "--policy", rpolicy, "--target", "shopdb"), "Total File Count")
			media := []map[string]any{}
			require.NoError(t, json.Unmarshal([]byte(c.ok("snapshots", "--policy", rpolicy, "--target", "media", "--json")), &media))
			_, errs, code = c.run("diff", media[0]["id"].(string), id, "--policy", rpolicy)
			assert.Equal(t, exitUsage, code, errs)

			// the secondary holds both targets, restorable
			c.env["LIFEBOAT_REPO"], c.env["LIFEBOAT_ENGINE"], c.env["LIFEBOAT_PASSPHRASE_FILE"] = repoURL("restic-dr"), "restic", resticPass
			var dr []map[string]any
			require.NoError(t, json.Unmarshal([]byte(c.ok("snapshots", "--json")), &dr))
			assert.Len(t, dr, 6, "copies are not forgotten on the secondary by the primary's retention")
			c.ok("check")
			c.env["LIFEBOAT_REPO"], c.env["LIFEBOAT_ENGINE"], c.env["LIFEBOAT_PASSPHRASE_FILE"] = "", "", ""

			// retention dry run on the restic policy: same decisions table
			assert.Contains(t, c.ok("forget", "--policy", rpolicy, "--dry-run"), "would remove 0 of 3 snapshots")
		})
	}
}

// What an operator does by hand on a restic policy: backups of files,
// exec and volume targets, replication to a secondary with its own
// password, status with the lag, failover restores from the secondary,
// a volume restore.
func TestResticEngineOperatorCommands(t *testing.T) {
	if testing.Short() {
		t.Skip("restic")
	}
	useRestic(t)
	dir := t.TempDir()
	src := filepath.Join(dir, "media")
	_, err := gentree.Generate(src, gentree.Options{Size: 1 << 20, Seed: 5, NoSpecial: true})
	require.NoError(t, err)
	img := filepath.Join(dir, "disk.img")
	data := make([]byte, 4<<20) // 4 MiB: 1 MiB of data, the rest zeros
	for i := range 1 << 20 {
		data[i+(2<<20)] = byte(i*7 + i>>9)
	}
	require.NoError(t, os.WriteFile(img, data, 0o600))
	pass, drPass := filepath.Join(dir, "restic.pass"), filepath.Join(dir, "dr.pass")
	require.NoError(t, os.WriteFile(pass, []byte("primary pw\n"), 0o600))
	require.NoError(t, os.WriteFile(drPass, []byte("dr pw\n"), 0o600))
	policy := filepath.Join(dir, "p.yaml")
	writePolicy := func(drPassFile string) {
		require.NoError(t, os.WriteFile(policy, []byte(`version: 1
name: ops
host: ops-1
repositories:
  primary:
    url: file://`+filepath.Join(dir, "repo")+`
    engine: restic
    password_file: `+pass+`
  secondaries:
    - name: dr
      url: file://`+filepath.Join(dir, "dr")+`
      password_file: `+drPassFile+`
targets:
  - name: media
    kind: files
    paths: [`+src+`]
  - name: disk
    kind: volume
    path: `+img+`
  - name: stream
    kind: exec
    command: [sh, -c, "seq 1 5000"]
`), 0o600))
	}
	writePolicy(drPass)
	c := &cli{t: t, env: map[string]string{}}
	c.ok("init", "--policy", policy)
	p := []string{"--policy", policy, "--host", "ops-1"}
	c.ok(append([]string{"backup", "files", src, "--target", "media"}, p...)...)
	out := c.ok(append([]string{"backup", "files", src, "--target", "media", "--force", "--json"}, p...)...)
	assert.Equal(t, "media", lastJSON(t, out)["target"])
	c.ok(append([]string{"backup", "volume", img, "--target", "disk"}, p...)...)
	c.ok(append([]string{"backup", "exec", "--name", "seq", "--target", "stream"}, append(p, "--", "sh", "-c", "seq 1 5000")...)...)

	// the secondary gets its own password (restic init --from-repo)
	out = c.ok("replicate", policy)
	assert.Contains(t, out, "4 snapshots copied")
	status := func() (map[string]any, int) {
		o, errs, code := c.run("status", policy, "--json")
		var st map[string]any
		require.NoError(t, json.Unmarshal([]byte(o), &st), errs)
		return st, code
	}
	st, code := status()
	require.Equal(t, 0, code, st)
	repos := st["repositories"].([]any)
	dr := repos[1].(map[string]any)
	assert.Equal(t, true, dr["reachable"])
	assert.Equal(t, 0.0, dr["lag"].(map[string]any)["snapshots_missing"])
	assert.Len(t, dr["newest_per_target"], 3)
	c.ok(append([]string{"backup", "exec", "--name", "seq", "--target", "stream"}, append(p, "--", "sh", "-c", "seq 1 6000")...)...)
	st, _ = status()
	assert.Equal(t, 1.0, st["repositories"].([]any)[1].(map[string]any)["lag"].(map[string]any)["snapshots_missing"])

	// failover from the secondary: files, volume, exec
	c.ok("failover", policy, "--target", "media", "--to", filepath.Join(dir, "fo"))
	diffs, err := treecmp.Compare(src, filepath.Join(dir, "fo", "media"), treecmp.Options{})
	require.NoError(t, err)
	assert.Empty(t, diffs)
	out = c.ok("failover", policy, "--target", "disk", "--to", filepath.Join(dir, "fo.img"), "--json")
	got, err := os.ReadFile(filepath.Join(dir, "fo.img"))
	require.NoError(t, err)
	require.True(t, bytes.Equal(data, got), "volume restored from the secondary")
	assert.Equal(t, float64(3<<20), lastJSON(t, out)["zero_bytes"])
	c.ok("failover", policy, "--target", "stream", "--to", filepath.Join(dir, "fo.seq"))
	got, err = os.ReadFile(filepath.Join(dir, "fo.seq"))
	require.NoError(t, err)
	assert.True(t, strings.HasSuffix(string(got), "\n5000\n"), "the secondary's stream is the replicated one")

	// volume restore from the primary
	c.ok("restore", "latest", "--policy", policy, "--target", "disk", "--to", filepath.Join(dir, "p.img"))
	got, err = os.ReadFile(filepath.Join(dir, "p.img"))
	require.NoError(t, err)
	require.True(t, bytes.Equal(data, got))

	// a wrong secondary password: status names the secondary, exit 1; failover exit 12
	wrong := filepath.Join(dir, "wrong.pass")
	require.NoError(t, os.WriteFile(wrong, []byte("nope\n"), 0o600))
	writePolicy(wrong)
	st, code = status()
	assert.Equal(t, exitFailure, code)
	assert.Contains(t, st["problems"].([]any)[0], "dr: ")
	assert.Contains(t, st["problems"].([]any)[0], "wrong password")
	_, errs, code := c.run("failover", policy, "--target", "stream", "--to", filepath.Join(dir, "x"))
	assert.Equal(t, exitWrongKey, code, errs)
	assert.Contains(t, errs, "secondary dr")
	assert.NotContains(t, errs, "nope")
}

func TestResticEngineCLIErrors(t *testing.T) {
	bin := useRestic(t)
	dir := t.TempDir()
	pass := filepath.Join(dir, "pass")
	require.NoError(t, os.WriteFile(pass, []byte("right\n"), 0o600))
	wrong := filepath.Join(dir, "wrong")
	require.NoError(t, os.WriteFile(wrong, []byte("wrong\n"), 0o600))
	old := filepath.Join(dir, "old-restic")
	require.NoError(t, os.WriteFile(old, []byte("#!/bin/sh\necho 'restic 0.16.0 compiled with go1.21'\n"), 0o755))
	c := &cli{t: t, env: map[string]string{"LIFEBOAT_REPO": "file://" + filepath.Join(dir, "repo"), "LIFEBOAT_ENGINE": "restic",
		"LIFEBOAT_PASSPHRASE_FILE": pass, "LIFEBOAT_RESTIC": bin}}

	_, errs, code := c.run("snapshots")
	assert.Equal(t, exitNoRepo, code, errs)
	assert.Contains(t, errs, "no restic repository at this location")
	c.ok("init")

	tests := []struct {
		name string
		env  map[string]string
		args []string
		code int
		msg  string
	}{
		{"wrong password", map[string]string{"LIFEBOAT_PASSPHRASE_FILE": wrong}, []string{"snapshots"}, exitWrongKey, "wrong password for the restic repository"},
		{"restic missing", map[string]string{"LIFEBOAT_RESTIC": filepath.Join(dir, "nope")}, []string{"snapshots"}, exitFailure, "restic executable not found"},
		{"restic too old", map[string]string{"LIFEBOAT_RESTIC": old}, []string{"snapshots"}, exitFailure, "restic is too old"},
		{"no password", map[string]string{"LIFEBOAT_PASSPHRASE_FILE": ""}, []string{"snapshots"}, exitUsage, "needs its password"},
		{"bad engine", map[string]string{"LIFEBOAT_ENGINE": "borg"}, []string{"snapshots"}, exitUsage, `--engine "borg"`},
		{"native-only option", nil, []string{"replicate", "--to", "file://" + filepath.Join(dir, "dr"), "--verify-all"}, exitUsage, "works on native repositories"},
		{"keys on restic init", nil, []string{"init", "--host-key-out", filepath.Join(dir, "k")}, exitUsage, "password, not age keys"},
		{"unknown snapshot", nil, []string{"restore", "abcdef12", "--to", dir}, exitFailure, `snapshot "abcdef12"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, errs, code := c.with(t, tt.env).run(tt.args...)
			assert.Equal(t, tt.code, code, errs)
			assert.Contains(t, errs, tt.msg)
			assert.NotContains(t, errs, "right")
		})
	}

	// a lock held by another restic: exit 11
	lockDir := filepath.Join(dir, "repo", "locks")
	hold := fmt.Sprintf("sleep 20 | RESTIC_PASSWORD_FILE=%s %s -r %s backup --stdin --stdin-filename hold", pass, bin, filepath.Join(dir, "repo"))
	newShell(t, hold)
	require.Eventually(t, func() bool { e, _ := os.ReadDir(lockDir); return len(e) > 0 }, 20*time.Second, 50*time.Millisecond)
	_, errs, code = c.run("prune")
	assert.Equal(t, exitLocked, code, errs)
	assert.Contains(t, errs, "locked by another process")
}

// newShell runs a shell command in its own process group, killed when t ends.
func newShell(t *testing.T, script string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command("sh", "-c", script)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		_ = cmd.Wait()
	})
	return cmd
}
