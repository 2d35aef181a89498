package storetest

import (
	"context"
	"errors"
	"time"

	"github.com/shaledb/shale/internal/errs"
	"github.com/shaledb/shale/internal/retry"
	"github.com/shaledb/shale/proto/errorpb"
	"github.com/shaledb/shale/proto/kvpb"
)

// LiveClient returns the gRPC client of store id, or nil while it is
// stopped. Safe to call concurrently with Stop and Restart.
func (c *Cluster) LiveClient(id uint64) kvpb.TabletClient {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := c.Nodes[id]
	if n == nil || n.Store == nil {
		return nil
	}
	return n.Client
}

// ErrNoLiveStore is returned by CallWrite when no store was running to
// send the request to; nothing was sent.
var ErrNoLiveStore = errors.New("no live store to try")

// CallWrite is Call for non-idempotent writes: it follows NotLeader hints
// and retries only errors that guarantee the request was not applied
// (notApplied). Any other error (Unknown "result unknown", a gRPC
// Unavailable without a routable detail, DeadlineExceeded, Canceled, ...)
// is returned at once: the write may or may not have been applied, and
// sending it again could apply it twice. When ctx ends while retrying, the
// last (retryable) error is returned; WriteNotApplied tells the two apart.
func (c *Cluster) CallWrite(ctx context.Context, tabletID uint64, op func(kvpb.TabletClient) error) error {
	try := c.Leader(tabletID)
	bo := retry.NewExponential(5*time.Millisecond, 100*time.Millisecond)
	for {
		var err error
		client := c.LiveClient(try)
		if client == nil {
			err = ErrNoLiveStore
		} else {
			err = op(client)
			if err == nil || !notApplied(err) {
				return err
			}
		}
		if nl, ok := errs.As[*errorpb.NotLeader](err); ok && nl.LeaderStoreId != 0 && nl.LeaderStoreId != try {
			try = nl.LeaderStoreId
			continue
		}
		if bo.Wait(ctx, 0) != nil {
			return err
		}
		if l := c.Leader(tabletID); l != 0 {
			try = l
		} else {
			try = c.anyLive()
		}
	}
}

// WriteNotApplied reports whether an error returned by CallWrite proves the
// write was not applied (every attempt failed before being proposed).
func WriteNotApplied(err error) bool {
	return err != nil && (notApplied(err) || errors.Is(err, ErrNoLiveStore))
}
