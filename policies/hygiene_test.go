package policies

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestEmptyURLIsAProblem(t *testing.T) {
	for _, tt := range []struct{ yaml, want string }{
		{strings.Replace(minimal, "url: file:///tmp/repo", `url: ""`, 1),
			"policy.yaml:5:10: repositories.primary.url: empty: give a URL"},
		{minimal + "  - name: b\n    kind: bucket\n    url: ''\n",
			"policy.yaml:16:10: targets[2].url: empty: give a URL"},
		{minimal + "notify:\n  ping_url: \"\"\n", "policy.yaml:15:13: notify.ping_url: empty: give an http(s) URL"},
	} {
		_, err := Parse("policy.yaml", []byte(tt.yaml))
		require.Error(t, err, tt.yaml)
		assert.Contains(t, strings.Join(lines(problems(t, err)), "\n"), tt.want)
	}
}

func TestDSNFromEnvironment(t *testing.T) {
	y := strings.Replace(minimal, "dsn: root@tcp(127.0.0.1:3306)/", "dsn: env:SHOP_DSN", 1)
	_, err := Parse("policy.yaml", []byte(y), WithEnviron([]string{"HOME=/root"}))
	assert.Equal(t, []string{"policy.yaml:10:10: targets[0].dsn: environment variable SHOP_DSN is not set (dsn: env:SHOP_DSN)"},
		lines(problems(t, err)))
	_, err = Parse("policy.yaml", []byte(y), WithEnviron([]string{"SHOP_DSN= "}))
	assert.Equal(t, []string{"policy.yaml:10:10: targets[0].dsn: environment variable SHOP_DSN is empty (dsn: env:SHOP_DSN)"},
		lines(problems(t, err)))

	// The variable's value is the DSN; a password in it is fine (the
	// environment is where secrets go), and errors never show it.
	p, err := Parse("policy.yaml", []byte(y), WithEnviron([]string{"SHOP_DSN=app:hunter2@tcp(db:3306)/"}))
	require.NoError(t, err)
	assert.Equal(t, "app:hunter2@tcp(db:3306)/", p.Targets[0].DSN)
	require.NoError(t, ApplyEnv(p, []string{"LIFEBOAT_HOST=box"}), "validated again after resolution")

	drill := minimal + "drill:\n  postgres:\n    dsn: env:SCRATCH_PG\n"
	_, err = Parse("policy.yaml", []byte(drill), WithEnviron([]string{}))
	assert.Equal(t, []string{"policy.yaml:16:10: drill.postgres.dsn: environment variable SCRATCH_PG is not set (dsn: env:SCRATCH_PG)"},
		lines(problems(t, err)))
}

func TestNoSecretInURLProblems(t *testing.T) {
	y := strings.Replace(minimal, "url: file:///tmp/repo", "url: ftp://bucket?secret_access_key=hunter2", 1)
	_, err := Parse("policy.yaml", []byte(y))
	es := problems(t, err)
	require.Len(t, es, 1)
	assert.NotContains(t, es[0].Error()+es[0].Value, "hunter2")
	assert.Contains(t, es[0].Value, "secret_access_key=REDACTED")
}

func TestDurationOverflow(t *testing.T) {
	for in, want := range map[string]time.Duration{
		"9223372036854775807ns":      math.MaxInt64,
		"106751d23h47m16.854775807s": math.MaxInt64,
		"15250w":                     15250 * 7 * 24 * time.Hour,
		"1.5h":                       90 * time.Minute,
		"0.5d1.25s":                  12*time.Hour + 1250*time.Millisecond,
	} {
		got, err := ParseDuration(in)
		require.NoError(t, err, in)
		assert.Equal(t, want, got, in)
	}
	// Each of these once wrapped around to a negative duration.
	for _, in := range []string{"9223372036854775808ns", "106751d23h47m16.854775808s", "15251w", "2562048h",
		"99999999999999999999s", "106751d106751d", "1w" + strings.Repeat("9", 30) + "ns"} {
		d, err := ParseDuration(in)
		require.Error(t, err, "%s read as %v", in, d)
		assert.Contains(t, err.Error(), "too long", in)
	}
	y := minimal + "objectives:\n  rpo: 9223372036854775808ns\n"
	_, err := Parse("policy.yaml", []byte(y))
	assert.Equal(t, []string{`policy.yaml:15:8: objectives.rpo: "9223372036854775808ns" is too long (at most 106751d, about 292 years)`},
		lines(problems(t, err)))
}

func TestPostgresDSNForm(t *testing.T) {
	y := strings.Replace(minimal, "kind: mysql\n    dsn: root@tcp(127.0.0.1:3306)/", "kind: postgres\n    dsn: host=db user=app dbname=shop", 1)
	_, err := Parse("policy.yaml", []byte(y))
	assert.Equal(t, []string{"policy.yaml:10:10: targets[0].dsn: not a postgres:// URL (key=value connection strings are not supported): postgres://user@host:5432/db"},
		lines(problems(t, err)))
	_, err = Parse("policy.yaml", []byte(strings.Replace(y, "host=db user=app dbname=shop", "postgres://app@db:5432/shop", 1)))
	require.NoError(t, err)
}
