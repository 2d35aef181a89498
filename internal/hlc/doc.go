// Package hlc provides the hybrid logical clock that tablet leaders use to
// assign commit timestamps.
//
// A timestamp is an int64 count of microseconds since the Unix epoch with the
// logical counter folded into the low digits: instead of a separate
// (wall, logical) pair, the clock hands out
//
//	ts = max(wall, last+1)
//
// where wall is the current wall-clock time in microseconds and last is the
// largest timestamp the clock has returned or observed through Update. While
// the wall clock advances faster than timestamps are requested, timestamps are
// simply wall-clock microseconds. When requests outpace it, or the wall clock
// stalls or jumps backward, the clock ticks forward one microsecond per call,
// borrowing from the future until the wall clock catches up.
//
// # Guarantees
//
// Clock.Now is strictly greater than every value Now has returned and every
// value Update accepted, and is at least the wall-clock time. This holds
// under concurrent use: the clock is a single atomic word advanced with a
// compare-and-swap loop, so no two calls ever return the same timestamp.
//
// # Bounded: nothing moves the clock into the far future
//
// Update refuses (with an InvalidArgument error, leaving the clock as it
// was) a negative timestamp or one more than the maximum clock offset
// (DefaultMaxOffset, 500 ms as in CockroachDB) ahead of the local wall
// clock; Limit is that bound, and servers check timestamps clients choose
// against it before writing them. Without the bound one timestamp near
// math.MaxInt64 would exhaust the clock for good. Now returns ErrExhausted
// rather than wrapping around; it never panics.
//
// # Why correctness never depends on wall clocks
//
// Ordering comes only from the max(..., last+1) rule and from Update: a
// leader calls Update with every timestamp it applies from the raft log, so
// a new write on any replica that becomes leader is ordered after
// everything it has seen, whatever the local wall clock says. A wall clock
// that is behind only makes timestamps advance by the logical counter; one
// that is ahead (or a peer's that is ahead, observed through Update) only
// makes timestamps drift ahead of real time. A peer's timestamp beyond the
// maximum offset is not taken in; the tablet store still orders a tablet's
// writes after it, because apply assigns max(proposed, tablet's max
// timestamp + 1). Either way timestamps remain monotonic and unique per
// tablet, and no write is ordered before one it follows; skew only makes
// timestamps less meaningful to people reading them as dates.
//
// Usage:
//
//	clock := hlc.New(nil, 0)            // time.Now, DefaultMaxOffset
//	ts, err := clock.Now()              // commit timestamp for a write
//	err = clock.Update(applied)         // after applying an entry committed at applied
//	err = hlc.CheckTimestamp(ts, clock.Limit(), clock.MaxOffset()) // a client's timestamp
package hlc
