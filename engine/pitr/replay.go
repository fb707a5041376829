package pitr

import (
	"context"
	"io"

	"github.com/lifeboat-backup/lifeboat/targets/mysql/binlog"
)

// Replay applies the plan's archived transactions to the server at dsn
// (whose data must be the plan's base snapshot, restored).
func Replay(ctx context.Context, pl *Plan, f binlog.Fetcher, o binlog.ApplyOptions) (binlog.Replay, error) {
	return binlog.Apply(ctx, o, func(w io.Writer) (binlog.Replay, error) {
		return binlog.Stream(ctx, w, f, pl.Chain, pl.From, pl.Point)
	})
}

// DryRun reads the plan's segments and says what Replay would apply.
func DryRun(ctx context.Context, pl *Plan, f binlog.Fetcher) (binlog.Replay, error) {
	return binlog.Stream(ctx, io.Discard, f, pl.Chain, pl.From, pl.Point)
}
