package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lifeboat-backup/lifeboat/engine"
	"github.com/lifeboat-backup/lifeboat/engine/schedule"
)

// Hooks in `lifeboat run`, as borgmatic users expect: per policy and per
// target before/after/on_error, a failing before hook fails its target
// without a snapshot, after runs after success with the snapshot's ID,
// on_error after failure with what failed, a timeout kills a hook, and
// every command's output is in the journal, redacted and bounded.
func TestCLIRunHooks(t *testing.T) {
	c, dir, src := setup(t)
	journal := filepath.Join(dir, "journal")
	log := filepath.Join(dir, "hooks.log")
	// Each hook appends what it was told to the log.
	say := func(what string) string {
		return `echo "` + what + ` $LIFEBOAT_HOOK policy=$LIFEBOAT_POLICY host=$LIFEBOAT_HOST target=$LIFEBOAT_TARGET kind=$LIFEBOAT_TARGET_KIND snap=$LIFEBOAT_SNAPSHOT err=$LIFEBOAT_ERROR" >> ` + log
	}
	repoURL := c.env["LIFEBOAT_REPO"]
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, []byte(`version: 1
name: hooked
host: web-1
repositories:
  primary:
    url: `+repoURL+`
    key_file: `+filepath.Join(dir, "host.key")+`
`+body), 0o600))
		return p
	}
	c.env["LIFEBOAT_REPO"] = ""
	readLog := func() []string {
		b, _ := os.ReadFile(log)
		_ = os.Remove(log)
		return strings.Split(strings.TrimSpace(string(b)), "\n")
	}
	lastRun := func() engine.RunResult {
		runs, err := schedule.Journal(journal).Read("hooked")
		require.NoError(t, err)
		require.NotEmpty(t, runs)
		return runs[len(runs)-1]
	}
	snapshots := func(p string) []map[string]any {
		var list []map[string]any
		require.NoError(t, json.Unmarshal([]byte(c.ok("snapshots", "--policy", p, "--json")), &list))
		return list
	}

	// A failing before hook of one target: that target fails without a
	// snapshot, the other is backed up; after, on_error of each target and
	// the policy's on_error run, told what they need.
	p := write("p1.yaml", `hooks:
  before: '`+say("P")+`'
  after: '`+say("P")+`'
  on_error: ['`+say("P")+`', 'echo second on_error >> `+log+`']
targets:
  - name: site
    kind: files
    paths: [`+src+`]
    hooks:
      before: '`+say("T")+`'
      after: ['`+say("T")+`']
      on_error: '`+say("T")+`'
  - name: db
    kind: exec
    command: [echo, dump]
    hooks:
      before: ['`+say("T")+`', 'echo "mysql://root:hunter2@db:3306/ PASSWORD=hunter2 failing"; exit 7', 'echo never >> `+log+`']
      on_error: '`+say("T")+`'
`)
	out, errs, code := c.run("run", p, "--journal", journal)
	assert.Equal(t, exitFailure, code, out+errs)
	list := snapshots(p)
	require.Len(t, list, 1, "the db target has no snapshot")
	assert.Equal(t, "site", list[0]["target"])
	site := list[0]["id"].(string)
	got := readLog()
	require.Len(t, got, 7, "%q", got)
	assert.Equal(t, "P before policy=hooked host=web-1 target= kind= snap= err=", got[0])
	assert.Equal(t, "T before policy=hooked host=web-1 target=site kind=files snap= err=", got[1])
	assert.Equal(t, "T after policy=hooked host=web-1 target=site kind=files snap="+site+" err=", got[2])
	assert.Equal(t, "T before policy=hooked host=web-1 target=db kind=exec snap= err=", got[3])
	assert.True(t, strings.HasPrefix(got[4], `T on_error policy=hooked host=web-1 target=db kind=exec snap= err=before hook "echo \"mysql://root:REDACTED@db:3306/ PASSWORD=REDACTED failing\"; exit 7": exit status 7`), got[4])
	assert.True(t, strings.HasPrefix(got[5], "P on_error policy=hooked host=web-1 target= kind= snap= err=target db: before hook"), got[5])
	assert.Equal(t, "second on_error", got[6])
	assert.NotContains(t, strings.Join(got, "\n"), "hunter2")
	assert.NotContains(t, got, "never", "the first failing command stops the list")

	run := lastRun()
	assert.False(t, run.OK())
	require.Len(t, run.Targets, 2)
	assert.Equal(t, site, run.Targets[0].Snapshot)
	assert.Empty(t, run.Targets[1].Snapshot)
	assert.Contains(t, run.Targets[1].Error, "exit status 7")
	var failed *engine.HookResult
	for i, h := range run.Hooks {
		if h.ExitCode == 7 {
			failed = &run.Hooks[i]
		}
	}
	require.NotNil(t, failed, "%+v", run.Hooks)
	assert.Equal(t, "before", failed.Hook)
	assert.Equal(t, "db", failed.Target)
	assert.Equal(t, "mysql://root:REDACTED@db:3306/ PASSWORD=REDACTED failing\n", failed.Output)
	assert.Len(t, run.Hooks, 8)
	raw, err := os.ReadFile(filepath.Join(journal, "hooked.jsonl"))
	require.NoError(t, err)
	assert.NotContains(t, string(raw), "hunter2", "the journal holds no secret")

	// A failing policy before hook: no target runs, no snapshot; a hook
	// over its timeout is killed (with its children) and fails; a long
	// output is bounded.
	p = write("p2.yaml", `hooks:
  before: 'head -c 100000 /dev/zero | tr "\0" x; sleep 30'
  on_error: '`+say("P")+`'
  timeout: 1s
targets:
  - name: site
    kind: files
    paths: [`+src+`]
    hooks:
      before: '`+say("T")+`'
`)
	start := time.Now()
	_, _, code = c.run("run", p, "--journal", journal)
	assert.Equal(t, exitFailure, code)
	assert.Less(t, time.Since(start), 20*time.Second, "the timeout killed the sleep")
	assert.Len(t, snapshots(p), 1, "no new snapshot")
	got = readLog()
	require.Len(t, got, 1, "%q", got)
	assert.Contains(t, got[0], "P on_error policy=hooked")
	assert.Contains(t, got[0], "timed out after 1s (killed)")
	run = lastRun()
	require.Len(t, run.Targets, 1)
	assert.Contains(t, run.Targets[0].Error, "not run: policy before hook")
	require.NotEmpty(t, run.Hooks)
	assert.Equal(t, "timed out after 1s (killed)", run.Hooks[0].Error)
	assert.LessOrEqual(t, len(run.Hooks[0].Output), 4<<10+len("[...]"))
	assert.True(t, strings.HasPrefix(run.Hooks[0].Output, "[...]xxx"), run.Hooks[0].Output[:20])

	// All well: the policy's after hook gets the run's snapshots.
	p = write("p3.yaml", `hooks:
  after: '`+say("P")+`'
  on_error: 'echo wrong >> `+log+`'
targets:
  - name: site
    kind: files
    paths: [`+src+`]
`)
	c.ok("run", p, "--journal", journal)
	got = readLog()
	require.Len(t, got, 1, "%q", got)
	last := lastRun()
	assert.True(t, last.OK())
	require.Len(t, last.Targets, 1)
	assert.Len(t, snapshots(p), 2)
	assert.Equal(t, "P after policy=hooked host=web-1 target= kind= snap="+last.Targets[0].Snapshot+" err=", got[0])
}
