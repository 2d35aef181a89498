package hlc

import (
	"fmt"
	"math"
	"sync/atomic"
	"time"
)

// Clock is a hybrid logical clock producing microsecond timestamps. It is safe
// for concurrent use and never blocks: all state is one atomic word.
type Clock struct {
	wall func() time.Time
	// last is the largest timestamp returned by Now or passed to Update.
	last atomic.Int64
}

// New returns a Clock reading physical time from wall; a nil wall means
// time.Now. Tests pass a manual wall clock.
func New(wall func() time.Time) *Clock {
	if wall == nil {
		wall = time.Now
	}
	return &Clock{wall: wall}
}

// Now returns a timestamp strictly greater than every timestamp previously
// returned by Now or passed to Update, and at least the current wall-clock
// time in microseconds. It never goes backward, even if the wall clock does.
//
// Now panics if the clock has reached math.MaxInt64, which can only happen
// after Update with a corrupt timestamp; wrapping around would silently break
// ordering.
func (c *Clock) Now() int64 {
	wall := c.wall().UnixMicro()
	for {
		last := c.last.Load()
		if last == math.MaxInt64 {
			panic(fmt.Sprintf("hlc: clock exhausted (last timestamp %d)", last))
		}
		next := max(wall, last+1)
		if c.last.CompareAndSwap(last, next) {
			return next
		}
	}
}

// Update records a timestamp observed elsewhere (an applied log entry, a read
// served at ts), so that every later Now returns a greater value. Timestamps
// at or below the current Last are ignored.
func (c *Clock) Update(ts int64) {
	for {
		last := c.last.Load()
		if ts <= last || c.last.CompareAndSwap(last, ts) {
			return
		}
	}
}

// Last returns the largest timestamp returned by Now or passed to Update, or
// 0 if there is none.
func (c *Clock) Last() int64 {
	return c.last.Load()
}
