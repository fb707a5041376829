package policies

import (
	"bytes"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// minimal is a valid policy the malformed cases start from (line numbers
// in the cases below count from its first line).
const minimal = `version: 1
name: t
repositories:
  primary:
    url: file:///tmp/repo
    key_file: /etc/lifeboat/host.key
targets:
  - name: db
    kind: mysql
    dsn: root@tcp(127.0.0.1:3306)/
  - name: media
    kind: files
    paths: [/srv/media]
`

func problems(t *testing.T, err error) ValidationErrors {
	t.Helper()
	var ve ValidationErrors
	require.True(t, errors.As(err, &ve), "want ValidationErrors, got %v", err)
	return ve
}

func lines(es ValidationErrors) []string {
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = e.Error()
	}
	return out
}

func TestReferenceExample(t *testing.T) {
	// The shared reference example (kept byte-identical below) holds a
	// placeholder recipient that is no age recipient: the one problem.
	_, err := Load("testdata/policy-example.yaml")
	assert.Equal(t, []string{`testdata/policy-example.yaml:89:18: sanitize.export.recipients[0]: "age1developerpublickey..." is not an age recipient (age1..., ssh-ed25519 ..., ssh-rsa ...): malformed recipient "age1developerpublickey...": invalid character data part: s[5]=111`},
		lines(problems(t, err)))
	data, err := os.ReadFile("testdata/policy-example.yaml")
	require.NoError(t, err)
	data = bytes.Replace(data, []byte("age1developerpublickey..."), []byte("age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p"), 1)
	p, err := Parse("testdata/policy-example.yaml", data)
	require.NoError(t, err)
	assert.Equal(t, "shop-prod", p.Name)
	assert.Equal(t, "shop-db-1", p.Host)
	assert.Equal(t, "s3://lifeboat-eu-central-1/shop?region=eu-central-1", p.Repositories.Primary.URL)
	assert.Equal(t, SecretRef("/etc/lifeboat/host.key"), p.Repositories.Primary.KeyFile)
	assert.Equal(t, "native", p.Repositories.Primary.Engine)
	require.Len(t, p.Repositories.Secondaries, 1)
	assert.Equal(t, 26*time.Hour, p.Repositories.Secondaries[0].MaxLag.D())
	require.Len(t, p.Targets, 3)
	db := p.Targets[0]
	assert.Equal(t, KindMySQL, db.Kind)
	assert.Equal(t, []string{"magento"}, db.Databases)
	assert.Equal(t, []string{"magento.cache*", "magento.session"}, db.ExcludeTables)
	assert.Equal(t, 2, db.Jobs)
	assert.Equal(t, "ftwrl", db.LockMode)
	assert.Equal(t, []string{"redis-cli", "--rdb", "-"}, p.Targets[2].Command)
	assert.Equal(t, "*-*-* 02:30:00", p.Schedule.Calendar.String())
	assert.Equal(t, 15*time.Minute, p.Schedule.RandomizedDelay.D())
	assert.Equal(t, "first", p.Retention.PeriodPick)
	assert.Equal(t, time.Monday, p.Retention.WeekStart())
	assert.Equal(t, "Europe/Berlin", p.Retention.Location().String())
	assert.Equal(t, []int{7, 4, 3}, []int{p.Retention.KeepDaily, p.Retention.KeepWeekly, p.Retention.KeepMonthly})
	assert.Equal(t, 7*24*time.Hour, p.Retention.PruneEvery.D())
	assert.Equal(t, 30*time.Minute, p.Objectives.RTO.D())
	assert.Equal(t, "mariadbd", p.Drill.MySQL.ServerBinary)
	require.Len(t, p.Drill.Checks, 4)
	assert.Equal(t, CheckSQL, p.Drill.Checks[0].Kind())
	assert.Equal(t, 1000.0, *p.Drill.Checks[0].Min)
	assert.Equal(t, 26.0, *p.Drill.Checks[1].Max)
	assert.Equal(t, CheckPath, p.Drill.Checks[2].Kind())
	assert.Equal(t, 100, p.Drill.Checks[2].MinFiles)
	assert.Equal(t, CheckCommand, p.Drill.Checks[3].Kind())
	assert.Equal(t, time.Minute, p.Drill.Checks[3].Timeout.D())
	assert.Equal(t, 5*time.Minute, p.Drill.Checks[0].Timeout.D())
	rules := p.Sanitize.Rules
	assert.Equal(t, "fake:email", rules["magento.customer_entity"].Columns["email"])
	assert.Equal(t, "null", rules["magento.customer_entity"].Columns["dob"])
	assert.Equal(t, "created_at > NOW() - INTERVAL 90 DAY", rules["magento.sales_order"].Where)
	assert.Equal(t, TableTruncate, rules["magento.customer_grid_flat"].Action)
	assert.True(t, strings.HasPrefix(rules["magento.admin_user"].Columns["password"], "fixed:$2y$10$"))
	assert.Equal(t, []string{"failure", "objective_violation", "lag"}, p.Notify.On)
	assert.Equal(t, SecretRef("/etc/lifeboat/smtp.pass"), p.Notify.Email.PasswordFile)
	assert.Equal(t, "/var/lib/prometheus/node-exporter/lifeboat.prom", p.Metrics.Textfile)

	// The shared copy, when present, is the same contract.
	if shared, err := os.ReadFile("../../shared/policy-example.yaml"); err == nil {
		mine, _ := os.ReadFile("testdata/policy-example.yaml")
		assert.Equal(t, string(shared), string(mine), "testdata/policy-example.yaml is stale")
	}
}

func TestMalformed(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want []string
	}{
		{"unknown key at depth", strings.Replace(minimal, "    url: file:///tmp/repo\n",
			"    url: file:///tmp/repo\n    key_fil: /k\n", 1), []string{
			`policy.yaml:6:5: repositories.primary.key_fil: unknown key (did you mean "key_file"?) (allowed: url, engine, key_file, password_file, password)`,
		}},
		{"bad duration", minimal + "objectives:\n  rpo: 26 hours\n", []string{
			`policy.yaml:15:8: objectives.rpo: "26 hours" is not a duration (e.g. 15m, 26h, 7d, 2w)`,
		}},
		{"bad calendar", minimal + "schedule:\n  calendar: \"Mon..Fri 2:61\"\n", []string{
			`policy.yaml:15:13: schedule.calendar: "Mon..Fri 2:61" is not a supported calendar expression: minute: "61" is out of range 0..59 (e.g. daily, "*-*-* 02:30:00", "Mon..Fri 02:00")`,
		}},
		{"bad lock_mode", strings.Replace(minimal, "    dsn: root@tcp(127.0.0.1:3306)/\n",
			"    dsn: root@tcp(127.0.0.1:3306)/\n    lock_mode: ftwr\n", 1), []string{
			`policy.yaml:11:16: targets[0].lock_mode: "ftwr" is not allowed (allowed: ftwrl, backup_lock, single)`,
		}},
		{"inline password", strings.Replace(minimal, "    dsn: root@tcp(127.0.0.1:3306)/\n",
			"    dsn: root@tcp(127.0.0.1:3306)/\n    password: hunter2\n", 1), []string{
			`policy.yaml:11:15: targets[0].password: inline secrets are not allowed: use password_file: PATH or env:NAME`,
		}},
		{"password in DSN", strings.Replace(minimal, "root@", "root:hunter2@", 1), []string{
			`policy.yaml:10:10: targets[0].dsn: the DSN holds a password: inline secrets are not allowed (use password_file: PATH or env:NAME)`,
		}},
		{"unknown secret key", minimal + "notify:\n  webhook:\n    url: https://h.example.com/x\n    token: abc\n", []string{
			`policy.yaml:17:5: notify.webhook.token: inline secrets are not allowed: use password_file: PATH or env:NAME`,
		}},
		{"duplicate target names", strings.Replace(minimal, "name: media", "name: db", 1), []string{
			`policy.yaml:11:11: targets[1].name: duplicate target name "db" (first at line 8)`,
		}},
		{"check referencing unknown target", minimal + "drill:\n  checks:\n    - name: rows\n      target: shop\n      sql: SELECT 1\n", []string{
			`policy.yaml:17:15: drill.checks[0].target: unknown target "shop" (allowed: db, media)`,
		}},
		{"bad timezone", minimal + "retention:\n  timezone: Europe/Berlinn\n", []string{
			`policy.yaml:15:13: retention.timezone: unknown time zone "Europe/Berlinn" (use an IANA name such as Europe/Berlin, or UTC)`,
		}},
		{"missing kind", strings.Replace(minimal, "    kind: mysql\n", "", 1), []string{
			`policy.yaml:8:5: targets[0].kind: required (allowed: mysql, postgres, files, bucket, volume, exec)`,
		}},
		{"missing primary url", strings.Replace(minimal, "    url: file:///tmp/repo\n", "    engine: native\n", 1), []string{
			`policy.yaml:5:5: repositories.primary.url: required`,
		}},
		{"missing repositories", strings.Replace(minimal, "repositories:\n  primary:\n    url: file:///tmp/repo\n    key_file: /etc/lifeboat/host.key\n", "", 1), []string{
			`policy.yaml:1:1: repositories: required`,
		}},
		{"string where list expected", strings.Replace(minimal, "paths: [/srv/media]", "paths: /srv/media", 1), []string{
			`policy.yaml:13:12: targets[1].paths: expected a list, got the string "/srv/media" (write [a, b] or one "- item" per line)`,
		}},
		{"list where mapping expected", minimal + "retention: [7d]\n", []string{
			`policy.yaml:14:12: retention: expected a mapping, got a list`,
		}},
		{"key of another kind", strings.Replace(minimal, "paths: [/srv/media]", "paths: [/srv/media]\n    jobs: 4", 1), []string{
			`policy.yaml:14:5: targets[1].jobs: not allowed for kind files (allowed: name, kind, tags, hooks, paths, exclude, iexclude, exclude_file, exclude_if_present, exclude_caches, one_file_system)`,
		}},
		{"files exclude options", strings.Replace(minimal, "paths: [/srv/media]", "paths: [/srv/media]\n    exclude_file: [excludes.txt]\n    exclude_if_present: [a/.nobackup]\n    iexclude: [\"[\"]", 1), []string{
			`policy.yaml:14:20: targets[1].exclude_file[0]: "excludes.txt" is not an absolute path`,
			`policy.yaml:15:26: targets[1].exclude_if_present[0]: "a/.nobackup" is not a file name`,
			`policy.yaml:16:16: targets[1].iexclude[0]: "[" is not a glob pattern`,
		}},
		{"yaml syntax error", minimal + "schedule:\n  calendar: \"daily\n", []string{
			`policy.yaml:15: YAML syntax: found unexpected end of stream`,
		}},
		{"bad url scheme", strings.Replace(minimal, "file:///tmp/repo", "ftp://x/repo", 1), []string{
			`policy.yaml:5:10: repositories.primary.url: scheme "ftp" is not supported (allowed: file, mem, s3, gs, azblob)`,
		}},
		{"duplicate key", minimal + "name: u\n", []string{
			`policy.yaml:14:1: name: duplicate key (first at line 2)`,
		}},
		{"negative count", minimal + "retention:\n  keep_daily: -1\n", []string{
			`policy.yaml:15:15: retention.keep_daily: must not be negative`,
		}},
		{"check with two kinds", minimal + "drill:\n  checks:\n    - name: c\n      command: [true]\n      http: http://x/\n", []string{
			`policy.yaml:18:13: drill.checks[0].http: a check has one of sql, path, command or http, not both command and http`,
		}},
		{"check database on a mysql target", minimal + "drill:\n  checks:\n    - name: c\n      target: db\n      sql: SELECT 1\n      database: shop\n", []string{
			`policy.yaml:19:17: drill.checks[0].database: database applies to sql checks on a postgres target (mysql queries name their database)`,
		}},
		{"check database on a path check", minimal + "drill:\n  checks:\n    - name: c\n      target: media\n      path: x\n      database: shop\n", []string{
			`policy.yaml:19:17: drill.checks[0].database: database does not apply to a path check`,
		}},
		{"check database the postgres target does not back up", strings.Replace(strings.Replace(minimal, "kind: mysql", "kind: postgres\n    databases: [oro]", 1), "root@tcp(127.0.0.1:3306)/", "postgres://root@127.0.0.1:5432/", 1) +
			"drill:\n  checks:\n    - name: c\n      target: db\n      sql: SELECT 1\n      database: shop\n", []string{
			`policy.yaml:20:17: drill.checks[0].database: target "db" does not back up database "shop" (allowed: oro)`,
		}},
		{"volume block size", minimal + "  - name: disk\n    kind: volume\n    path: /dev/vdb\n    block_size: 100KiB\n", []string{
			`policy.yaml:17:17: targets[2].block_size: must be a power of two from 4KiB to 16MiB`,
		}},
		{"sanitize rule", minimal + "sanitize:\n  rules:\n    customer:\n      email: fake:mail\n", []string{
			`policy.yaml:17:14: sanitize.rules.customer.email: "fake:mail": unknown fake kind "mail" (allowed: ` + strings.Join(FakeKinds, ", ") + `)`,
		}},
		{"age recipient", minimal + "sanitize:\n  export:\n    recipients: [AGE-SECRET-KEY-1XYZ]\n", []string{
			`policy.yaml:16:18: sanitize.export.recipients[0]: "AGE-SECRET-KEY-1XYZ" is not an age recipient (age1..., ssh-ed25519 ..., ssh-rsa ...): malformed recipient "AGE-SECRET-KEY-1XYZ": separator '1' at invalid position: pos=15, len=19`,
		}},
		{"bogus age1 recipient", minimal + "sanitize:\n  export:\n    recipients: [age1notarecipient]\n", []string{
			`policy.yaml:16:18: sanitize.export.recipients[0]: "age1notarecipient" is not an age recipient (age1..., ssh-ed25519 ..., ssh-rsa ...): malformed recipient "age1notarecipient": invalid character data part: s[1]=111`,
		}},
		{"no key for the primary", strings.Replace(minimal, "    key_file: /etc/lifeboat/host.key\n", "", 1), []string{
			`policy.yaml:4:3: repositories.primary: no key: give key_file (an age identity file: the host key on backup hosts) or password_file (passphrase mode)`,
		}},
		{"no password for a restic primary", strings.Replace(minimal, "    key_file: /etc/lifeboat/host.key\n", "    engine: restic\n", 1), []string{
			`policy.yaml:4:3: repositories.primary: no password: give password_file (the restic repository's password, a file or env:NAME)`,
		}},
		{"restic repository string on the native engine", strings.Replace(minimal, "file:///tmp/repo", "sftp:u@h:/srv/repo", 1), []string{
			`policy.yaml:5:10: repositories.primary.url: scheme "sftp" is not supported (allowed: file, mem, s3, gs, azblob)`,
		}},
		{"restic rest: with a password", strings.Replace(minimal, "    url: file:///tmp/repo\n    key_file: /etc/lifeboat/host.key\n", "    url: rest:https://u:pw@h:8000/repo\n    engine: restic\n    password_file: /p\n", 1), []string{
			`policy.yaml:5:10: repositories.primary.url: the repository string holds a password: inline secrets are not allowed (restic reads a REST server's credentials from RESTIC_REST_USERNAME and RESTIC_REST_PASSWORD)`,
		}},
		{"restic: not a repository", strings.Replace(minimal, "    url: file:///tmp/repo\n    key_file: /etc/lifeboat/host.key\n", "    url: ftp:h/repo\n    engine: restic\n    password_file: /p\n", 1), []string{
			`policy.yaml:5:10: repositories.primary.url: "ftp:h/repo" is not a restic repository: give file:///path, s3://bucket/prefix?endpoint=..., or restic's own form (/srv/restic-repo, sftp:, rest:, s3:, b2:, azure:, gs:, rclone:)`,
		}},
		{"secondary password on a native repository", strings.Replace(minimal, "    url: file:///tmp/repo\n    key_file: /etc/lifeboat/host.key\n",
			"    url: file:///tmp/repo\n    key_file: /etc/lifeboat/host.key\n  secondaries:\n    - name: dr\n      url: file:///tmp/dr\n      password_file: /p\n", 1), []string{
			`policy.yaml:10:22: repositories.secondaries[0].password_file: a native secondary is a byte copy of the primary and opens with its keys: password_file is for restic secondaries`,
		}},
		{"drill key file on a restic repository", strings.Replace(minimal, "    key_file: /etc/lifeboat/host.key\n", "    engine: restic\n    password_file: /p\n", 1) +
			"drill:\n  key_file: /etc/lifeboat/owner.key\n", []string{
			`policy.yaml:16:13: drill.key_file: the restic engine has no age keys: the drill reads with the repository's password`,
		}},
		{"empty", "", []string{`policy.yaml: empty policy`}},
		{"two documents", minimal + "---\nversion: 1\n", []string{
			`policy.yaml:14:1: a policy is one YAML document: remove the second`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("policy.yaml", []byte(tt.yaml))
			require.Error(t, err)
			assert.Equal(t, tt.want, lines(problems(t, err)))
		})
	}
}

func TestMinimalIsValid(t *testing.T) {
	_, err := Parse("policy.yaml", []byte(minimal))
	require.NoError(t, err)
}

func TestEveryProblemAtOnce(t *testing.T) {
	y := `version: 2
name: shop
repositories:
  primary:
    url: s3://b/p
    engine: borg
targets:
  - name: db
    kind: mysql
    dsn: root@tcp(db:3306)/
    lock_mode: ftwr
    jobs: many
  - name: db
    kind: files
    paths: [relative/dir]
  - kind: tape
schedule:
  calendar: every night
retention:
  keep_daily: 7
  timezon: UTC
drill:
  checks:
    - name: orders
      target: shopdb
      sql: SELECT 1
notify:
  email:
    smtp: mail:587
    from: a@example.com
    to: [b@example.com]
    password: secret
`
	_, err := Parse("policy.yaml", []byte(y))
	want := []string{
		`policy.yaml:1:10: version: version 2 is not supported (allowed: 1)`,
		`policy.yaml:4:3: repositories.primary: no key: give key_file (an age identity file: the host key on backup hosts) or password_file (passphrase mode)`,
		`policy.yaml:6:13: repositories.primary.engine: "borg" is not allowed (allowed: native, restic)`,
		`policy.yaml:11:16: targets[0].lock_mode: "ftwr" is not allowed (allowed: ftwrl, backup_lock, single)`,
		`policy.yaml:12:11: targets[0].jobs: expected an integer, got the string "many"`,
		`policy.yaml:13:11: targets[1].name: duplicate target name "db" (first at line 8)`,
		`policy.yaml:15:13: targets[1].paths[0]: "relative/dir" is not an absolute path`,
		`policy.yaml:16:5: targets[2].name: required`,
		`policy.yaml:16:11: targets[2].kind: "tape" is not allowed (allowed: mysql, postgres, files, bucket, volume, exec)`,
		`policy.yaml:18:13: schedule.calendar: "every night" is not a supported calendar expression: unknown time zone "night" (e.g. daily, "*-*-* 02:30:00", "Mon..Fri 02:00")`,
		`policy.yaml:21:3: retention.timezon: unknown key (did you mean "timezone"?) (allowed: timezone, week_starts, period_pick, keep_last, keep_hourly, keep_daily, keep_weekly, keep_monthly, keep_yearly, keep_within, keep_tags, prune_every)`,
		`policy.yaml:25:15: drill.checks[0].target: unknown target "shopdb" (allowed: db)`,
		`policy.yaml:32:15: notify.email.password: inline secrets are not allowed: use password_file: PATH or env:NAME`,
	}
	assert.Equal(t, want, lines(problems(t, err)))
	// The secret value appears nowhere.
	assert.NotContains(t, err.Error(), "secret\n")
	for _, e := range problems(t, err) {
		assert.NotEqual(t, "secret", e.Value)
	}
}

func TestNoSecretInErrors(t *testing.T) {
	for _, y := range []string{
		strings.Replace(minimal, "root@", "root:S3cr3tPw@", 1),
		minimal + "notify:\n  email:\n    password: S3cr3tPw\n",
		minimal + "notify:\n  api_token: S3cr3tPw\n",
		strings.Replace(minimal, "file:///tmp/repo", "s3://key:S3cr3tPw@bucket/x", 1),
		minimal + "notify:\n  webhook:\n    url: https://u:S3cr3tPw@h.example.com/\n",
		minimal + "drill:\n  postgres:\n    dsn: host=db user=x password=S3cr3tPw\n",
		strings.Replace(strings.Replace(minimal, "kind: mysql", "kind: postgres", 1), "root@tcp(127.0.0.1:3306)/",
			"postgres://x:S3cr3tPw@db/app", 1),
	} {
		_, err := Parse("policy.yaml", []byte(y))
		require.Error(t, err, y)
		assert.NotContains(t, err.Error(), "S3cr3tPw")
		for _, e := range problems(t, err) {
			assert.NotContains(t, e.Value, "S3cr3tPw")
		}
	}
}

func TestSecretReferences(t *testing.T) {
	y := strings.Replace(minimal, "    dsn: root@tcp(127.0.0.1:3306)/\n",
		"    dsn: root@tcp(127.0.0.1:3306)/\n    password: env:DB_PASSWORD\n", 1) +
		"notify:\n  email:\n    smtp: mail:25\n    from: a@example.com\n    to: [b@example.com]\n    username: u\n    password_file: env:SMTP_PW\n"
	p, err := Parse("policy.yaml", []byte(y))
	require.NoError(t, err)
	assert.Equal(t, SecretRef("env:DB_PASSWORD"), p.Targets[0].PasswordFile, "password: env:NAME lands in PasswordFile")
	assert.Equal(t, "DB_PASSWORD", p.Targets[0].PasswordFile.EnvName())
	t.Setenv("DB_PASSWORD", "pw\n")
	got, err := p.Targets[0].PasswordFile.Read()
	require.NoError(t, err)
	assert.Equal(t, "pw", string(got))

	f := t.TempDir() + "/pw"
	require.NoError(t, os.WriteFile(f, []byte("filepw\n"), 0o600))
	got, err = SecretRef(f).Read()
	require.NoError(t, err)
	assert.Equal(t, "filepw", string(got))
	_, err = SecretRef("env:LIFEBOAT_TEST_UNSET_VAR").Read()
	assert.Error(t, err)

	_, err = Parse("policy.yaml", []byte(strings.Replace(y, "env:DB_PASSWORD", "env:1BAD", 1)))
	assert.ErrorContains(t, err, `targets[0].password: "env:1BAD" is not a valid env:NAME reference`)
	_, err = Parse("policy.yaml", []byte(strings.Replace(y, "env:DB_PASSWORD\n", "env:DB_PASSWORD\n    password_file: /x\n", 1)))
	assert.ErrorContains(t, err, "give password_file or password, not both")
}

func TestDefaults(t *testing.T) {
	p, err := Parse("policy.yaml", []byte(minimal), withHostname(func() (string, error) { return "box-1", nil }))
	require.NoError(t, err)
	assert.Equal(t, "box-1", p.Host)
	assert.Equal(t, "native", p.Repositories.Primary.Engine)
	assert.Equal(t, 2, p.Targets[0].Jobs)
	assert.Equal(t, "ftwrl", p.Targets[0].LockMode)
	assert.Equal(t, 0, p.Targets[1].Jobs, "jobs is for databases only")
	assert.Equal(t, "", p.Targets[1].LockMode)
	assert.Equal(t, "UTC", p.Retention.Timezone)
	assert.Equal(t, "monday", p.Retention.WeekStarts)
	assert.Equal(t, "last", p.Retention.PeriodPick)
	assert.Equal(t, 7*24*time.Hour, p.Retention.PruneEvery.D())
	assert.True(t, p.Schedule.Calendar.IsZero())
	assert.Empty(t, p.Notify.On, "no channel, no events")

	p, err = Parse("policy.yaml", []byte(minimal+"notify:\n  ping_url: https://hc.example.com/x\n"))
	require.NoError(t, err)
	assert.Equal(t, []string{"failure", "partial", "objective_violation", "lag"}, p.Notify.On)
	h, _ := os.Hostname()
	if h != "" {
		p, err = Parse("policy.yaml", []byte(minimal))
		require.NoError(t, err)
		assert.Equal(t, h, p.Host)
	}
}

func TestTargetLookup(t *testing.T) {
	p, err := Parse("policy.yaml", []byte(minimal))
	require.NoError(t, err)
	tg, err := p.Target("media")
	require.NoError(t, err)
	assert.Equal(t, KindFiles, tg.Kind)
	_, err = p.Target("")
	assert.ErrorIs(t, err, ErrTargetRequired)
	assert.ErrorContains(t, err, "db|media")
	_, err = p.Target("nope")
	assert.ErrorIs(t, err, ErrUnknownTarget)

	one := strings.SplitAfter(minimal, "    dsn: root@tcp(127.0.0.1:3306)/\n")[0]
	p, err = Parse("policy.yaml", []byte(one))
	require.NoError(t, err)
	tg, err = p.Target("")
	require.NoError(t, err, "with one target, the name may be left out")
	assert.Equal(t, "db", tg.Name)

	_, err = p.Secondary("")
	assert.ErrorIs(t, err, ErrUnknownSecondary)
}

func TestEnvOverrides(t *testing.T) {
	env := []string{"PATH=/bin", "LIFEBOAT_REPOSITORIES_PRIMARY_URL=mem://override",
		"LIFEBOAT_REPOSITORIES_PRIMARY_KEY_FILE=/root/owner.key", "LIFEBOAT_HOST=restore-1"}
	p, err := Parse("policy.yaml", []byte(minimal), WithEnviron(env))
	require.NoError(t, err)
	assert.Equal(t, "mem://override", p.Repositories.Primary.URL)
	assert.Equal(t, SecretRef("/root/owner.key"), p.Repositories.Primary.KeyFile)
	assert.Equal(t, "restore-1", p.Host)

	// The environment may supply a required value the file leaves out.
	noURL := strings.Replace(minimal, "    url: file:///tmp/repo\n", "    engine: native\n", 1)
	p, err = Parse("policy.yaml", []byte(noURL), WithEnviron(env))
	require.NoError(t, err)
	assert.Equal(t, "mem://override", p.Repositories.Primary.URL)

	// Bad values name the variable.
	_, err = Parse("policy.yaml", []byte(minimal), WithEnviron([]string{"LIFEBOAT_REPOSITORIES_PRIMARY_URL=ftp://x/y"}))
	assert.Equal(t, []string{`policy.yaml: repositories.primary.url: set by LIFEBOAT_REPOSITORIES_PRIMARY_URL: scheme "ftp" is not supported (allowed: file, mem, s3, gs, azblob)`},
		lines(problems(t, err)))

	// ApplyEnv on a loaded policy.
	p, err = Parse("policy.yaml", []byte(minimal))
	require.NoError(t, err)
	require.NoError(t, ApplyEnv(p, []string{"LIFEBOAT_METRICS_TEXTFILE=/tmp/x.prom"}))
	assert.Equal(t, "/tmp/x.prom", p.Metrics.Textfile)
	err = ApplyEnv(p, []string{"LIFEBOAT_METRICS_TEXTFILE=/tmp/x.txt"})
	assert.ErrorContains(t, err, "set by LIFEBOAT_METRICS_TEXTFILE: node-exporter reads only files ending in .prom")
	assert.Equal(t, "/tmp/x.prom", p.Metrics.Textfile, "a failed ApplyEnv leaves the policy alone")
}

func TestPresetsParse(t *testing.T) {
	for _, preset := range append([]string{""}, Presets...) {
		t.Run(preset, func(t *testing.T) {
			y, err := Example(preset)
			require.NoError(t, err)
			assert.True(t, strings.HasPrefix(y, "# lifeboat policy"), "commented")
			p, err := Parse(preset+".yaml", []byte(y))
			require.NoError(t, err)
			assert.NotEmpty(t, p.Targets)
		})
	}
	y, _ := Example("orocommerce")
	p, err := Parse("oro.yaml", []byte(y))
	require.NoError(t, err)
	assert.Equal(t, KindPostgres, p.Targets[0].Kind)
	assert.Equal(t, SecretRef("env:LIFEBOAT_SMTP_PASSWORD"), p.Notify.Email.PasswordFile)
	_, err = Example("wordpress")
	assert.Error(t, err)
}

func TestValidationErrorFormat(t *testing.T) {
	e := ValidationError{File: "policy.yaml", Line: 23, Column: 15, Field: "targets[1].lock_mode", Value: "ftwr",
		Msg: `"ftwr" is not allowed`, Allowed: []string{"ftwrl", "backup_lock", "single"}}
	assert.Equal(t, `policy.yaml:23:15: targets[1].lock_mode: "ftwr" is not allowed (allowed: ftwrl, backup_lock, single)`, e.Error())
	assert.Equal(t, "p.yaml: empty policy", ValidationError{File: "p.yaml", Msg: "empty policy"}.Error())
	es := ValidationErrors{e, {File: "p.yaml", Line: 3, Msg: "x"}}
	assert.Equal(t, e.Error()+"\np.yaml:3: x", es.Error())
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(minimal))
	for _, p := range append([]string{""}, Presets...) {
		y, _ := Example(p)
		f.Add([]byte(y))
	}
	ref, _ := os.ReadFile("testdata/policy-example.yaml")
	f.Add(ref)
	f.Add([]byte("a: &a [*a, *a]\nb: *a\n"))
	f.Add([]byte("targets: [{kind: mysql, <<: {x: 1}}]"))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := Parse("fuzz.yaml", data)
		if err != nil {
			var ve ValidationErrors
			if !errors.As(err, &ve) || len(ve) == 0 {
				t.Fatalf("not ValidationErrors: %v", err)
			}
			return
		}
		if p == nil || len(p.Targets) == 0 {
			t.Fatal("valid policy without targets")
		}
	})
}

// TestResticRepositoryStrings: a restic user's RESTIC_REPOSITORY works
// verbatim with engine: restic.
func TestResticRepositoryStrings(t *testing.T) {
	for _, u := range []string{
		"/srv/restic-repo", "local:/srv/restic-repo", "sftp:backup@host.example.com:/srv/restic-repo",
		"sftp://backup@host.example.com:2222//srv/restic-repo", "rest:https://host.example.com:8000/shop",
		"rest:http://127.0.0.1:8000/", "s3:s3.amazonaws.com/bucket/shop", "s3:http://127.0.0.1:9000/bucket",
		"b2:bucket:shop", "azure:container:/shop", "gs:bucket:/shop", "rclone:remote:shop",
		"file:///srv/restic-repo", "s3://bucket/shop?endpoint=http://127.0.0.1:9000",
	} {
		y := strings.Replace(minimal, "    url: file:///tmp/repo\n    key_file: /etc/lifeboat/host.key\n",
			"    url: "+u+"\n    engine: restic\n    password_file: /etc/lifeboat/restic.pass\n", 1)
		p, err := Parse("policy.yaml", []byte(y))
		if assert.NoError(t, err, u) {
			assert.Equal(t, u, p.Repositories.Primary.URL)
		}
	}
}

// TestHooks: a hook is one shell command line or a list of them, per
// policy and per target (any kind), with a default timeout; a wrong
// shape is an error at its line and column.
func TestHooks(t *testing.T) {
	y := minimal + "hooks:\n  before: systemctl stop cron\n  on_error: [\"logger failed\", \"systemctl start cron\"]\n  timeout: 30s\n"
	y = strings.Replace(y, "    paths: [/srv/media]\n", "    paths: [/srv/media]\n    hooks:\n      after: touch /tmp/done\n", 1)
	p, err := Parse("policy.yaml", []byte(y))
	require.NoError(t, err)
	assert.Equal(t, Commands{"systemctl stop cron"}, p.Hooks.Before)
	assert.Equal(t, Commands{"logger failed", "systemctl start cron"}, p.Hooks.OnError)
	assert.Equal(t, 30*time.Second, p.Hooks.Timeout.D())
	assert.Equal(t, Commands{"touch /tmp/done"}, p.Targets[1].Hooks.After)
	assert.Equal(t, DefaultHookTimeout, p.Targets[1].Hooks.Timeout)
	assert.Empty(t, p.Targets[0].Hooks.Before)

	for _, tt := range []struct{ hooks, want string }{
		{"hooks:\n  before: {cmd: x}\n", `policy.yaml:15:11: hooks.before: expected a shell command line (a string, or a list of them), got a mapping`},
		{"hooks:\n  after: [ok, 3]\n", `policy.yaml:15:15: hooks.after[1]: expected a shell command line (a string, or a list of them), got the number 3`},
		{"hooks:\n  on_error: \" \"\n", `policy.yaml:15:13: hooks.on_error: empty command`},
		{"hooks:\n  before: x\n  timeout: 0s\n", `policy.yaml:16:12: hooks.timeout: must be greater than 0`},
		{"hooks:\n  befor: x\n", `policy.yaml:15:3: hooks.befor: unknown key (did you mean "before"?) (allowed: before, after, on_error, timeout)`},
	} {
		_, err := Parse("policy.yaml", []byte(minimal+tt.hooks))
		assert.Equal(t, []string{tt.want}, lines(problems(t, err)), tt.hooks)
	}
}
