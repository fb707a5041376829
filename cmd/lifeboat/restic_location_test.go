package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lifeboat-backup/lifeboat/engine/storage/miniotest"
)

// A restic user's repository string works verbatim with engine: restic,
// as RESTIC_REPOSITORY would: a plain path and restic's own s3:http://...
// form (on MinIO). The repository is the one restic itself initialized.
func TestResticRepositoryStringVerbatim(t *testing.T) {
	if testing.Short() {
		t.Skip("restic and MinIO")
	}
	bin := useRestic(t)
	srv := miniotest.Start(t)
	srv.CreateBucket(t, "restic-verbatim")
	dir := t.TempDir()
	pass := filepath.Join(dir, "restic.pass")
	require.NoError(t, os.WriteFile(pass, []byte("correct horse\n"), 0o600))
	src := filepath.Join(dir, "www")
	require.NoError(t, os.MkdirAll(src, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(src, "index.html"), []byte("hello"), 0o644))

	for name, repo := range map[string]string{
		"path": filepath.Join(dir, "restic-repo"),
		"s3":   "s3:" + srv.Endpoint + "/restic-verbatim/shop",
	} {
		t.Run(name, func(t *testing.T) {
			init := exec.Command(bin, "init")
			init.Env = append(os.Environ(), "RESTIC_REPOSITORY="+repo, "RESTIC_PASSWORD_FILE="+pass)
			out, err := init.CombinedOutput()
			require.NoError(t, err, "restic init: %s", out)

			policy := filepath.Join(dir, name+".yaml")
			require.NoError(t, os.WriteFile(policy, []byte(`version: 1
name: verbatim
host: web-1
repositories:
  primary:
    url: `+repo+`
    engine: restic
    password_file: `+pass+`
targets:
  - name: www
    kind: files
    paths: [`+src+`]
`), 0o600))
			c := &cli{t: t, env: map[string]string{"LIFEBOAT_REPO": "", "LIFEBOAT_ENGINE": "", "LIFEBOAT_PASSPHRASE_FILE": ""}}
			assert.Equal(t, "ok\n", c.ok("config", "validate", policy))
			c.ok("run", policy, "--journal", filepath.Join(dir, name+"-journal"))
			assert.Contains(t, c.ok("snapshots", "--policy", policy), "www")

			// restic itself sees the snapshot lifeboat wrote there.
			ls := exec.Command(bin, "snapshots", "--json")
			ls.Env = append(os.Environ(), "RESTIC_REPOSITORY="+repo, "RESTIC_PASSWORD_FILE="+pass)
			out, err = ls.Output()
			require.NoError(t, err)
			assert.True(t, strings.Contains(string(out), src), "restic snapshots: %s", out)
		})
	}
}
