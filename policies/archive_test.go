package policies

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestArchiveBlock(t *testing.T) {
	with := func(block string) string {
		return strings.Replace(minimal, "    dsn: root@tcp(127.0.0.1:3306)/\n", "    dsn: root@tcp(127.0.0.1:3306)/\n"+block, 1)
	}
	p, err := Parse("policy.yaml", []byte(with("    archive:\n      max_delay: 10s\n")))
	require.NoError(t, err)
	require.NotNil(t, p.Targets[0].Archive)
	assert.Equal(t, 10*time.Second, p.Targets[0].Archive.MaxDelay.D())
	assert.Equal(t, Size(16<<20), p.Targets[0].Archive.SegmentSize, "default segment size")
	assert.Nil(t, p.Targets[1].Archive)

	p, err = Parse("policy.yaml", []byte(with("    archive: {}\n")))
	require.NoError(t, err)
	assert.Equal(t, 30*time.Second, p.Targets[0].Archive.MaxDelay.D(), "default max_delay")

	_, err = Parse("policy.yaml", []byte(with("    archive:\n      max_delay: 500ms\n      segment_size: 1KiB\n      server_id: 0\n")))
	assert.Equal(t, []string{
		`policy.yaml:12:18: targets[0].archive.max_delay: must be from 1s to 1h`,
		`policy.yaml:13:21: targets[0].archive.segment_size: must be from 64KiB to 1GiB`,
		`policy.yaml:14:18: targets[0].archive.server_id: must be from 1 to 4294967295`,
	}, lines(problems(t, err)))

	_, err = Parse("policy.yaml", []byte(strings.Replace(minimal, "    paths: [/srv/media]\n", "    paths: [/srv/media]\n    archive:\n      max_delay: 10s\n", 1)))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "targets[1].archive")
}
