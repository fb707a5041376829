package restore

import (
	"github.com/lifeboat-backup/lifeboat/engine/snapshot"
)

// Sequential is implemented by snapshots whose files can only be read one
// at a time in tree order (a stream archive in another engine): restores
// then use one worker and open files in tree order.
type Sequential interface {
	Sequential() bool
}

// jobs is the number of files a restore of s reads at once: want, or 1
// when s is sequential.
func jobs(s snapshot.Reader, want int) int {
	if sq, ok := s.(Sequential); ok && sq.Sequential() {
		return 1
	}
	return want
}
