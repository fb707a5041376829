package restore

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/lifeboat-backup/lifeboat/targets/mysql"
)

func TestTriggerTable(t *testing.T) {
	for _, tc := range []struct{ stmt, want, err string }{
		{"CREATE DEFINER=`root`@`localhost` TRIGGER `quote_touch` BEFORE UPDATE ON `quote` FOR EACH ROW SET NEW.x = 1", "quote", ""},
		{"CREATE TRIGGER t AFTER INSERT ON orders FOR EACH ROW SET @a = 1", "orders", ""},
		{"CREATE TRIGGER `on before` AFTER delete\n ON `shop`.`odd ``name` FOR EACH ROW SET @a = 1", "odd `name", ""},
		{"CREATE TRIGGER x BEFORE UPDATE ON shop.t FOR EACH ROW FOLLOWS y SET @a = 1", "t", ""},
		{"CREATE VIEW v AS SELECT 1", "", "no table in the trigger's CREATE statement"},
	} {
		o := &mysql.Object{Kind: "trigger", Name: "x", Stmt: tc.stmt}
		got, err := triggerTable(o.Format())
		if tc.err != "" {
			require.ErrorContains(t, err, tc.err)
			continue
		}
		require.NoError(t, err, tc.stmt)
		require.Equal(t, tc.want, got, tc.stmt)
	}
}
