package store

import (
	"context"
	"time"

	"github.com/shaledb/shale/internal/errs"
)

// WaitReadableAt returns nil once this store's replica of the tablet
// serves reads at ts consistently: every write with a commit timestamp <=
// ts applied, and none can still commit at or below ts.
//
// TEMPORARY, CONSERVATIVE STAND-IN until closed timestamps land (issue 18
// item 1; the merger replaces this file): only the leader answers (a
// follower gets the leader error, so callers fall back to the leader). It
// waits until this store's clock is past ts plus the maximum clock offset,
// so every proposal this leader makes from then on carries a timestamp
// above ts, then takes a raft read-index barrier and waits for its apply,
// so every entry committed before (this term's and earlier leaders') is
// applied. Commit timestamps strictly increase in log order
// (apply.go), so nothing later commits at or below ts, except a write
// whose client chose its timestamp, or an import's: closed timestamps
// cover those.
func (s *Store) WaitReadableAt(ctx context.Context, tabletID uint64, ts int64) error {
	r, err := s.replicaForRequest(tabletID)
	if err != nil {
		return err
	}
	r.mu.Lock()
	lead := r.mu.isLeader
	var lerr error
	if !lead {
		lerr = r.leaderErrorLocked()
	}
	r.mu.Unlock()
	if !lead {
		return lerr
	}
	offset := s.opts.MaxClockOffset.Microseconds()
	now, err := s.clock.Now()
	if err != nil {
		return err
	}
	if ts-now > maxReadAheadUs {
		return errs.InvalidArgument("timestamp %d is more than %v ahead of store %d's clock", ts, time.Duration(maxReadAheadUs)*time.Microsecond, s.opts.StoreID)
	}
	for now <= ts+offset {
		t := time.NewTimer(time.Duration(ts+offset-now+1) * time.Microsecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
		if now, err = s.clock.Now(); err != nil {
			return err
		}
	}
	if err := r.readIndex(ctx); err != nil {
		return err
	}
	return r.refuseFrozenRead()
}

// maxReadAheadUs bounds how far in the future a read timestamp may lie.
const maxReadAheadUs = int64(10 * time.Second / time.Microsecond)
