package kvclient

import (
	"context"
	"errors"
	"fmt"

	"github.com/shaledb/shale/internal/errs"
	"github.com/shaledb/shale/internal/retry"
	"github.com/shaledb/shale/proto/errorpb"
	"github.com/shaledb/shale/proto/kvpb"
	"github.com/shaledb/shale/proto/metapb"
)

// Route is where the client believes one tablet is: its descriptor and the
// store leading it (0: unknown). It is for Shale's own tools that speak the
// Tablet API themselves (the importer): they share the client's routing
// cache, connections and retry policy instead of keeping their own.
type Route struct {
	Desc   *metapb.TabletDescriptor
	Leader uint64
}

// Contains reports whether the encoded key lies in the route's tablet.
func (r Route) Contains(key []byte) bool { return location{desc: r.Desc}.contains(key) }

// RouteKey returns the route of the tablet holding the encoded key, from
// the routing cache or (with refresh, or on a miss) the placement driver,
// retrying the placement driver as kvclient's own operations do.
func (c *Client) RouteKey(ctx context.Context, key []byte, refresh bool) (Route, error) {
	if c.closed.Load() {
		return Route{}, ErrClosed
	}
	ctx, cancel := c.opContext(ctx)
	defer cancel()
	if refresh {
		if l, ok := c.cache.cached(key); ok {
			c.cache.drop(l.tabletID())
		}
	}
	r := c.newRetrier(nil, false, "route")
	for {
		l, err := c.cache.locate(ctx, key)
		if err == nil {
			return Route{Desc: l.desc, Leader: l.leader}, nil
		}
		if err := r.handlePD(ctx, err); err != nil {
			return Route{}, err
		}
	}
}

// TabletConn returns a Tablet API client for a store from the client's
// connection pool. Its errors wrap retry.ErrNotSent (nothing was sent) or
// are ErrClosed.
func (c *Client) TabletConn(ctx context.Context, storeID uint64) (kvpb.TabletClient, error) {
	cl, _, err := c.pool.tablet(ctx, storeID)
	if err != nil && !errors.Is(err, ErrClosed) {
		err = fmt.Errorf("%w: %v", retry.ErrNotSent, err)
	}
	return cl, err
}

// Reroute applies the shared retry policy after a request for route r sent
// to store failed with err: it classifies err (retry.Classify) and fixes
// the routing cache and connection pool as kvclient's own retries do. It
// returns the action and the store to send to next when the error named
// the leader (retry at once); 0 otherwise (back off, then RouteKey: after
// RetryElsewhere or Ambiguous the cache points at the next replica).
func (c *Client) Reroute(r Route, store uint64, err error) (retry.Action, uint64) {
	act := retry.Classify(err)
	l := location{desc: r.Desc, leader: r.Leader}
	hinted, elsewhere := c.reroute(act, l, store, err)
	if hinted {
		nl, _ := errs.As[*errorpb.NotLeader](err)
		return act, nl.GetLeaderStoreId()
	}
	if elsewhere {
		c.cache.setLeader(l.tabletID(), nextVoter(r.Desc, store))
	}
	return act, 0
}

// nextVoter returns the voter after store in the descriptor's order
// (round robin), 0 when there is none.
func nextVoter(d *metapb.TabletDescriptor, store uint64) uint64 {
	var voters []uint64
	at := -1
	for _, rep := range d.GetReplicas() {
		if isVoter(rep) {
			if rep.StoreId == store {
				at = len(voters)
			}
			voters = append(voters, rep.StoreId)
		}
	}
	if len(voters) == 0 {
		return 0
	}
	return voters[(at+1)%len(voters)]
}
