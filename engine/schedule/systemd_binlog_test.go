package schedule

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestSystemdBinlogUnit(t *testing.T) {
	db := "  - name: db\n    kind: mysql\n    dsn: backup@tcp(127.0.0.1:3306)/\n    archive:\n      max_delay: 10s\n"
	units, err := SystemdUnits(parseUnitPolicy(t, "targets:\n"+db), unitOpts)
	require.NoError(t, err)
	require.Len(t, units, 3)
	u := units[2]
	assert.Equal(t, "lifeboat-binlog@shop.service", u.Name)
	lines := strings.Split(u.Text, "\n")
	for _, l := range []string{
		"ExecStart=/usr/local/bin/lifeboat binlog archive /etc/lifeboat/shop.yaml --target db --spool /var/lib/lifeboat/binlog/shop-db",
		"Type=simple", "Restart=always", "StartLimitIntervalSec=0", "SuccessExitStatus=130", "ProtectSystem=strict",
		"ReadWritePaths=-/var/lib/lifeboat/binlog", "WantedBy=multi-user.target",
	} {
		assert.Contains(t, lines, l)
	}

	two := db + strings.ReplaceAll(db, "name: db", "name: db2")
	units, err = SystemdUnits(parseUnitPolicy(t, "targets:\n"+two), unitOpts)
	require.NoError(t, err)
	require.Len(t, units, 4)
	assert.Equal(t, "lifeboat-binlog@shop.db.service", units[2].Name)
	assert.Equal(t, "lifeboat-binlog@shop.db2.service", units[3].Name)

	units, err = SystemdUnits(parseUnitPolicy(t, "targets:\n"+strings.Replace(db, "    archive:\n      max_delay: 10s\n", "", 1)), unitOpts)
	require.NoError(t, err)
	assert.Len(t, units, 2, "no archive block, no binlog unit")
}

func TestSystemdWALReceiveUnit(t *testing.T) {
	pg := "  - name: pg\n    kind: postgres\n    dsn: postgres://backup@127.0.0.1:5432/postgres\n    method: physical\n    archive:\n      max_delay: 10s\n"
	units, err := SystemdUnits(parseUnitPolicy(t, "targets:\n"+pg), unitOpts)
	require.NoError(t, err)
	require.Len(t, units, 3)
	u := units[2]
	assert.Equal(t, "lifeboat-walreceive@shop.service", u.Name)
	lines := strings.Split(u.Text, "\n")
	for _, l := range []string{
		"Description=lifeboat WAL receiver of pg (policy shop)",
		"ExecStart=/usr/local/bin/lifeboat wal receive --policy /etc/lifeboat/shop.yaml --target pg --spool /var/lib/lifeboat/walreceive/shop-pg",
		"Type=simple", "Restart=always", "StartLimitIntervalSec=0", "SuccessExitStatus=130",
		"ReadWritePaths=-/var/lib/lifeboat/walreceive",
	} {
		assert.Contains(t, lines, l)
	}
}
