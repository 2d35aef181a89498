package hlc

import (
	"math"
	"sync/atomic"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/shaledb/shale/internal/errs"
)

// DefaultMaxOffset is the default bound on how far a timestamp observed
// from elsewhere may lie ahead of the local wall clock (CockroachDB's
// default maximum clock offset).
const DefaultMaxOffset = 500 * time.Millisecond

// ErrExhausted is returned by Now when the clock reached math.MaxInt64:
// wrapping around would silently break ordering. Update refuses any
// timestamp beyond the wall clock plus the maximum offset, so only a wall
// clock set to the year 294247 gets here.
// It is a gRPC Internal status, so a request failing on it is reported as
// failed (not as of unknown outcome).
var ErrExhausted = status.Error(codes.Internal, "hlc: clock exhausted (timestamp at math.MaxInt64); check the server's wall clock")

// Clock is a hybrid logical clock producing microsecond timestamps. It is safe
// for concurrent use and never blocks: all state is one atomic word.
type Clock struct {
	wall      func() time.Time
	maxOffset int64 // microseconds
	// last is the largest timestamp returned by Now or accepted by Update.
	last atomic.Int64
}

// New returns a Clock reading physical time from wall; a nil wall means
// time.Now. Tests pass a manual wall clock. Update refuses timestamps more
// than maxOffset ahead of the wall clock; maxOffset <= 0 means
// DefaultMaxOffset.
func New(wall func() time.Time, maxOffset time.Duration) *Clock {
	if wall == nil {
		wall = time.Now
	}
	if maxOffset <= 0 {
		maxOffset = DefaultMaxOffset
	}
	return &Clock{wall: wall, maxOffset: maxOffset.Microseconds()}
}

// Now returns a timestamp strictly greater than every timestamp previously
// returned by Now or accepted by Update, and at least the current
// wall-clock time in microseconds. It never goes backward, even if the wall
// clock does. It returns ErrExhausted instead of overflowing.
func (c *Clock) Now() (int64, error) {
	wall := c.wall().UnixMicro()
	for {
		last := c.last.Load()
		if last == math.MaxInt64 {
			return 0, ErrExhausted
		}
		next := max(wall, last+1)
		if c.last.CompareAndSwap(last, next) {
			return next, nil
		}
	}
}

// Limit is the largest timestamp Update accepts now: the wall clock plus
// the maximum offset (saturating at math.MaxInt64). Timestamps that clients
// choose are checked against it before they are written.
func (c *Clock) Limit() int64 {
	return LimitFrom(c.wall().UnixMicro(), c.MaxOffset())
}

// LimitFrom is the largest timestamp allowed against clock reading ts:
// ts + maxOffset, saturating at math.MaxInt64.
func LimitFrom(ts int64, maxOffset time.Duration) int64 {
	off := maxOffset.Microseconds()
	if ts > math.MaxInt64-off {
		return math.MaxInt64
	}
	return ts + off
}

// MaxOffset is the bound Update enforces.
func (c *Clock) MaxOffset() time.Duration {
	return time.Duration(c.maxOffset) * time.Microsecond
}

// Update records a timestamp observed elsewhere (an applied log entry, a
// read served at ts), so that every later Now returns a greater value.
// Timestamps at or below the current Last are ignored. A negative timestamp,
// or one beyond Limit, is refused with an InvalidArgument error and leaves
// the clock unchanged: nothing may move the clock into the far future.
func (c *Clock) Update(ts int64) error {
	if err := c.Check(ts); err != nil {
		return err
	}
	for {
		last := c.last.Load()
		if ts <= last || c.last.CompareAndSwap(last, ts) {
			return nil
		}
	}
}

// Check reports whether Update would accept ts.
func (c *Clock) Check(ts int64) error {
	return CheckTimestamp(ts, c.Limit(), c.MaxOffset())
}

// CheckTimestamp refuses a negative ts or one beyond limit, the largest
// timestamp allowed (a clock reading plus maxOffset, named in the message).
func CheckTimestamp(ts, limit int64, maxOffset time.Duration) error {
	switch {
	case ts < 0:
		return errs.InvalidArgument("timestamp %d is negative", ts)
	case ts > limit:
		return errs.InvalidArgument("timestamp %d (%s) is more than the maximum clock offset %v ahead of the server's clock (limit %d)",
			ts, describe(ts), maxOffset, limit)
	}
	return nil
}

// describe renders a microsecond timestamp as a UTC date when it is one.
func describe(ts int64) string {
	if ts > 253402300799999999 { // after 9999-12-31
		return "beyond year 9999"
	}
	return time.UnixMicro(ts).UTC().Format(time.RFC3339Nano)
}

// Last returns the largest timestamp returned by Now or accepted by
// Update, or 0 if there is none.
func (c *Clock) Last() int64 {
	return c.last.Load()
}
