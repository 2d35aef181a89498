package store

import (
	"time"

	"github.com/shaledb/shale/internal/hlc"
	"github.com/shaledb/shale/proto/raftcmdpb"
)

// Timestamps from outside (docs/decisions.md, "Commit timestamps").
// A client may choose a cell's timestamp and an importer an ingest's max
// timestamp. The leader refuses one beyond its wall clock plus
// MaxClockOffset before proposing; apply refuses one beyond the command's
// own timestamp plus the offset the command carries (deterministic on
// every replica). So no request can move a tablet's max timestamp, or the
// store's clock, into the far future or to overflow.

// checkClientTimestamp refuses a timestamp a request chose (0 means "the
// server's") that is negative or beyond the leader's clock.
func (s *Store) checkClientTimestamp(ts int64) error {
	return s.clock.Check(ts)
}

// applyBound is the largest client-chosen timestamp a command may carry:
// its proposal timestamp plus the offset it recorded. Apply checks against
// it, never against the local clock, so every replica decides alike. A
// zero bound (an entry of an older proposer, which recorded no offset)
// checks nothing.
type applyBound struct {
	limit  int64
	offset time.Duration
}

func newApplyBound(cmd *raftcmdpb.RaftCommand) applyBound {
	if cmd.MaxClockOffsetUs <= 0 {
		return applyBound{}
	}
	off := time.Duration(cmd.MaxClockOffsetUs) * time.Microsecond
	return applyBound{limit: hlc.LimitFrom(max(cmd.Timestamp, 0), off), offset: off}
}

func (b applyBound) check(ts int64) error {
	if b.limit == 0 {
		return nil
	}
	return hlc.CheckTimestamp(ts, b.limit, b.offset)
}

// observeTimestamp moves the store's clock to a timestamp applied (or
// loaded) on a replica. The tablet's own max timestamp already orders its
// later writes, so a timestamp the clock refuses (a peer's clock is more
// than MaxClockOffset ahead of ours) is counted and logged at most once a
// minute, not fatal.
func (s *Store) observeTimestamp(ts int64, tabletID uint64) {
	err := s.clock.Update(ts)
	if err == nil {
		return
	}
	s.metrics.clockRefused.Inc()
	now := s.opts.Clock.Now().UnixNano()
	if last := s.clockWarn.Load(); now-last >= int64(time.Minute) && s.clockWarn.CompareAndSwap(last, now) {
		s.log.Warn("store clock did not take in an applied timestamp; is this server's clock behind its peers'?",
			"tablet", tabletID, "err", err)
	}
}
