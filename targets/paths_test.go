package targets

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestDatabasePaths(t *testing.T) {
	for _, tc := range []struct {
		dbs  []string
		want []string
	}{
		{nil, []string{"mysql://u@h:3306/"}},
		{[]string{"shop", "crm"}, []string{"mysql://u@h:3306/crm", "mysql://u@h:3306/shop"}},
	} {
		in := append([]string(nil), tc.dbs...)
		assert.Equal(t, tc.want, DatabasePaths("mysql://u@h:3306/", tc.dbs))
		assert.Equal(t, in, tc.dbs, "the caller's list is not reordered")
	}
}
