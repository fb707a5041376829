package policies

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestUsersKey: users: true is a mysql target key (backup the accounts);
// another kind may not have it, and it must be a bool.
func TestUsersKey(t *testing.T) {
	mysqlTarget := "    dsn: root@tcp(127.0.0.1:3306)/\n"
	p, err := Parse("policy.yaml", []byte(strings.Replace(minimal, mysqlTarget, mysqlTarget+"    users: true\n", 1)))
	require.NoError(t, err)
	assert.True(t, p.Targets[0].Users)
	assert.False(t, p.Targets[1].Users)
	p, err = Parse("policy.yaml", []byte(minimal))
	require.NoError(t, err)
	assert.False(t, p.Targets[0].Users, "default off")

	for _, tc := range []struct{ name, yaml, want string }{
		{"files target", strings.Replace(minimal, "paths: [/srv/media]", "paths: [/srv/media]\n    users: true", 1),
			"policy.yaml:14:5: targets[1].users: not allowed for kind files"},
		{"not a bool", strings.Replace(minimal, mysqlTarget, mysqlTarget+"    users: all\n", 1),
			"targets[0].users"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("policy.yaml", []byte(tc.yaml))
			require.Error(t, err)
			assert.Contains(t, strings.Join(lines(problems(t, err)), "\n"), tc.want)
		})
	}
}
