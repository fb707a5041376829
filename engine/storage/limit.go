package storage

import (
	"context"
	"fmt"
	"sync/atomic"

	"golang.org/x/time/rate"
)

// limits are the process's bandwidth limits (SetLimits): one token bucket
// per direction, shared by every connection to every s3:// bucket.
type limits struct {
	up, down *rate.Limiter // nil: unlimited
}

var curLimits atomic.Pointer[limits]

// SetLimits limits the bytes this process sends to (upKiBs) and receives
// from (downKiBs) s3:// object stores, in KiB/s, over all connections
// together (HTTP headers included); 0 means unlimited. It applies to
// connections made before and after the call. file://, mem://, gs:// and
// azblob:// are not limited.
func SetLimits(upKiBs, downKiBs int) error {
	if upKiBs < 0 || downKiBs < 0 {
		return fmt.Errorf("storage: bandwidth limit must be 0 (none) or a positive number of KiB/s, not %d/%d", upKiBs, downKiBs)
	}
	curLimits.Store(&limits{up: newLimiter(upKiBs), down: newLimiter(downKiBs)})
	return nil
}

func newLimiter(kibs int) *rate.Limiter {
	if kibs == 0 {
		return nil
	}
	bps := kibs << 10
	// A burst of at most 32 KiB (a tenth of a second at 320 KiB/s and
	// more): the limit holds over short spans too.
	return rate.NewLimiter(rate.Limit(bps), min(32<<10, max(1<<10, bps/10)))
}

// take waits until n bytes may pass l (n <= l.Burst()).
func take(l *rate.Limiter, n int) {
	if l != nil && n > 0 {
		_ = l.WaitN(context.Background(), n)
	}
}

// chunk is how many bytes of a want-byte read or write may go at once
// under l.
func chunk(l *rate.Limiter, want int) int {
	if l == nil {
		return want
	}
	return min(want, l.Burst())
}
