package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Drills from systemd: the drill reads with the policy's drill.key_file
// (the owner key) when no --key-file is given, and systemd install refuses
// a drill timer whose drills could not read content.
func TestCLIDrillKeyFileFromPolicy(t *testing.T) {
	c, dir, src := setup(t)
	primary := c.env["LIFEBOAT_REPO"]
	c.env["LIFEBOAT_REPO"] = ""
	journal := filepath.Join(dir, "journal")
	write := func(name, drillExtra string) string {
		p := filepath.Join(dir, name+".yaml")
		require.NoError(t, os.WriteFile(p, []byte(`version: 1
name: `+name+`
host: web-1
repositories:
  primary:
    url: `+primary+`
    key_file: `+filepath.Join(dir, "host.key")+`
targets:
  - name: site
    kind: files
    paths: [`+src+`]
schedule:
  calendar: daily
drill:
  schedule:
    calendar: "Sun *-*-* 05:00:00"
`+drillExtra+`  checks:
    - name: content present
      target: site
      path: sub
      min_files: 1
`), 0o600))
		return p
	}
	hostOnly := write("hostonly", "")
	withKey := write("withkey", "  key_file: "+filepath.Join(dir, "owner.key")+"\n")
	typo := write("typo", "  key_file: "+filepath.Join(dir, "owner.kee")+"\n")
	c.ok("run", hostOnly, "--journal", journal)

	// Without drill.key_file the drill has the host key only: exit 12.
	_, errs, code := c.run("drill", hostOnly, "--journal", journal)
	assert.Equal(t, exitWrongKey, code, errs)
	// With it, the same drill passes, no --key-file or LIFEBOAT_KEY_FILE.
	assert.Contains(t, c.ok("drill", withKey, "--journal", journal), "PASSED")
	// --key-file still wins over drill.key_file.
	_, errs, code = c.run("drill", withKey, "--journal", journal, "--key-file", filepath.Join(dir, "host.key"))
	assert.Equal(t, exitWrongKey, code, errs)

	// systemd install refuses the drill timer that would exit 12 every week.
	for _, p := range []struct{ file, want string }{
		{hostOnly, "policy hostonly: the scheduled drill cannot read content: drill.schedule is set, but the policy has no drill.key_file"},
		{typo, "policy typo: the scheduled drill cannot read content: drill.key_file: "},
	} {
		out, errs, code := c.run("systemd", "install", p.file, "--dir", filepath.Join(dir, "units"))
		assert.Equal(t, exitUsage, code, out)
		assert.Contains(t, errs, p.want)
		assert.NoDirExists(t, filepath.Join(dir, "units"), "nothing is written")
	}
	out := c.ok("systemd", "install", withKey, "--dry-run", "--binary", "/usr/bin/lifeboat")
	assert.Contains(t, out, "# lifeboat-withkey-drill.timer\n")
	assert.Contains(t, out, "ExecStart=/usr/bin/lifeboat drill "+withKey)
}
