package wal

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Querier runs a statement returning one value (postgres.Session).
type Querier interface {
	Query(stmt string) (string, error)
}

// Switcher forces WAL segment switches so that no committed WAL waits in
// an unfinished segment longer than Every: what archive_timeout promises,
// which PostgreSQL 15 does not keep on a busy host (docs/pitr.md, "RPO").
type Switcher struct {
	DB    Querier
	Every time.Duration
	// OnSwitch is told each switch (the segment closed); may be nil.
	OnSwitch func(segment string)
}

// Run asks for a switch every Every (pg_switch_wal, which does nothing
// when no WAL was written since the last switch) until ctx ends or a
// query fails.
func (s *Switcher) Run(ctx context.Context) error {
	v, err := s.DB.Query("SELECT setting FROM pg_settings WHERE name = 'wal_segment_size'")
	if err != nil {
		return err
	}
	segSize, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
	if err != nil || segSize == 0 {
		return fmt.Errorf("wal switch: wal_segment_size %q", v)
	}
	t := time.NewTicker(s.Every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		v, err := s.DB.Query("SELECT l || ' ' || pg_walfile_name(l) FROM pg_switch_wal() AS l")
		if err != nil {
			return err
		}
		f := strings.Fields(v)
		if len(f) != 2 {
			return fmt.Errorf("wal switch: unexpected answer %q", v)
		}
		lsn, err := ParseLSN(f[0])
		if err != nil {
			return err
		}
		// At a segment boundary: nothing was written, nothing switched.
		if lsn%segSize != 0 && s.OnSwitch != nil {
			s.OnSwitch(f[1])
		}
	}
}
