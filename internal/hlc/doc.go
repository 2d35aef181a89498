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
// value passed to Update, and is at least the wall-clock time. This holds
// under concurrent use: the clock is a single atomic word advanced with a
// compare-and-swap loop, so no two calls ever return the same timestamp.
//
// # Why correctness never depends on wall clocks
//
// Ordering comes only from the max(..., last+1) rule and from Update: a
// leader calls Update with every timestamp it applies from the raft log and
// every timestamp it serves a read at, so a new write on any replica that
// becomes leader is ordered after everything it has seen, whatever the local
// wall clock says. A wall clock that is behind only makes timestamps advance
// by the logical counter; one that is ahead (or a peer's that is ahead,
// observed through Update) only makes timestamps drift ahead of real time.
// Either way timestamps remain monotonic and unique, and no write is ordered
// before one it follows; skew only makes timestamps less meaningful to people
// reading them as dates.
//
// Usage:
//
//	clock := hlc.New(nil) // time.Now
//	ts := clock.Now()     // commit timestamp for a write
//	clock.Update(applied) // after applying an entry committed at applied
package hlc
