package main

import (
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

	"github.com/lifeboat-backup/lifeboat/engine/repo/storage/miniotest"
	"github.com/lifeboat-backup/lifeboat/engine/restic/restictest"
	"github.com/lifeboat-backup/lifeboat/targets/mysql/mysqltest"
	"github.com/lifeboat-backup/lifeboat/testdata/gentree"
	"github.com/lifeboat-backup/lifeboat/testdata/shop"
	"github.com/lifeboat-backup/lifeboat/testdata/treecmp"
)

// The same policy (files + MySQL) run once on the native engine and once
// on restic: both restore identical content, and `lifeboat snapshots`
// lists both alike. On local disk and on MinIO.
func TestResticEngineSamePolicy(t *testing.T) {
	if testing.Short() {
		t.Skip("MariaDB, MinIO and restic")
	}
	bin := restictest.BinaryOrSkip(t)
	t.Setenv("RESTIC_CACHE_DIR", t.TempDir())
	t.Setenv("LIFEBOAT_RESTIC", bin)
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
				c.ok("restore", "latest", "--policy", p.policy, "--target", "media", "--to", out)
				diffs, err := treecmp.Compare(src, filepath.Join(out, "media"), treecmp.Options{})
				require.NoError(t, err)
				require.Empty(t, diffs, p.name)
				c.ok("restore", "latest", "--policy", p.policy, "--target", "shopdb", "--to", db.URL(),
					"--rename", "rs_shop=rs_shop_"+p.name+"_"+where)
				assert.Equal(t, checksums(t, conn, "rs_shop"), checksums(t, conn, "rs_shop_"+p.name+"_"+where), p.name)
				stream := filepath.Join(dir, "stream-"+p.name)
				c.ok("restore", "latest", "--policy", p.policy, "--target", "stream", "--to", stream)
				got, err := os.ReadFile(stream)
				require.NoError(t, err)
				require.Equal(t, wantStream, string(got), p.name)
			}

			// ls reads a stream snapshot's tree from restic
			assert.Contains(t, c.ok("ls", "latest", "--policy", rpolicy, "--target", "shopdb"), "rs_shop")

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

func TestResticEngineCLIErrors(t *testing.T) {
	bin := restictest.BinaryOrSkip(t)
	t.Setenv("RESTIC_CACHE_DIR", t.TempDir())
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
		{"native-only command", nil, []string{"backup", "files", dir}, exitUsage, "native repositories only"},
		{"keys on restic init", nil, []string{"init", "--host-key-out", filepath.Join(dir, "k")}, exitUsage, "password, not age keys"},
		{"unknown snapshot", nil, []string{"restore", "abcdef12", "--to", dir}, exitFailure, `snapshot "abcdef12"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cc := &cli{t: t, env: map[string]string{}}
			for k, v := range c.env {
				cc.env[k] = v
			}
			for k, v := range tt.env {
				cc.env[k] = v
			}
			_, errs, code := cc.run(tt.args...)
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
