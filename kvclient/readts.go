package kvclient

import (
	"context"
	"time"

	"github.com/shaledb/shale/internal/errs"
	"github.com/shaledb/shale/proto/errorpb"
	"github.com/shaledb/shale/proto/kvpb"
)

// Reads at a timestamp (docs/decisions.md, "Closed timestamps").
//
// A read with AsOf(ts) returns exactly the versions with timestamp <= ts,
// on every tablet it touches: a scan or a set of Gets at one ts is one
// consistent snapshot across tablets, while writes continue. A tablet
// serves it at once when ts is at or below its closed timestamp (about 3 s
// behind its leader's clock), and otherwise closes ts first (one raft
// round). With FollowerRead the read goes to any replica, spreading load;
// pick a ts a few seconds old (StaleTimestamp) so followers serve it
// without a round trip to the leader. A ts below a tablet's history floor
// (an older version was deleted or collected) fails with ErrReadTooOld.

// AsOf reads as of ts (microseconds, HLC): exactly the versions with
// timestamp <= ts. Client.Now gives a ts that includes every write this
// client was told of.
func AsOf(ts int64) ReadOption {
	return func(o *kvpb.ReadOptions) { o.ReadTimestamp = ts }
}

// FollowerRead lets a read at a timestamp (AsOf) be served by any replica
// of each tablet, chosen at random, instead of the leader.
func FollowerRead() ReadOption {
	return func(o *kvpb.ReadOptions) { o.AnyReplica = true }
}

// Now returns a timestamp for a consistent read of the present: above
// every commit timestamp this client has seen (its own writes, so it reads
// them) and at least its wall clock. Writes through other clients that
// finished before Now was called are included unless their tablet
// leader's clock runs ahead of this machine's by more than the gap (the
// maximum clock offset bounds it; docs/limits.md).
func (c *Client) Now() int64 {
	if c.clock == nil {
		return time.Now().UnixMicro()
	}
	ts, err := c.clock.Now()
	if err != nil {
		return time.Now().UnixMicro()
	}
	return ts
}

// StaleTimestamp returns Now minus staleness: a read timestamp that
// tablets have normally closed already, so any replica serves it at once.
func (c *Client) StaleTimestamp(staleness time.Duration) int64 {
	return c.Now() - staleness.Microseconds()
}

// observe takes in a commit timestamp the client was told of.
func (c *Client) observe(ts int64) {
	if c.clock != nil && ts > 0 {
		_ = c.clock.Update(ts) // a timestamp far ahead of our clock is not ours to trust
	}
}

// ReadTooOldFloor returns the history floor named by an ErrReadTooOld
// error: the earliest timestamp the tablet can serve a read at.
func ReadTooOldFloor(err error) (int64, bool) {
	rto, ok := errs.As[*errorpb.ReadTooOld](err)
	return rto.GetFloor(), ok
}

// checkReadOptions refuses a follower read without a timestamp: only a
// read at a closed timestamp may be served by a follower.
func checkReadOptions(ro *kvpb.ReadOptions) error {
	if ro == nil {
		return nil
	}
	if ro.ReadTimestamp < 0 {
		return invalidArgf("read timestamp %d is negative", ro.ReadTimestamp)
	}
	if ro.AnyReplica && ro.ReadTimestamp == 0 {
		return invalidArgf("FollowerRead needs a read timestamp (AsOf)")
	}
	return nil
}

// runRead is runKey for a single-row read with options ro (attemptRead,
// checksum.go).
func (c *Client) runRead(ctx context.Context, t *Table, key []byte, ro *kvpb.ReadOptions, f sendFunc) error {
	g := &readGuard{}
	return c.runLocated(ctx, t, key, false, "get", func(ctx context.Context, loc location) (uint64, error) {
		return c.attemptRead(ctx, loc, ro, g, f)
	})
}
