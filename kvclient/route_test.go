package kvclient

import (
	"context"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/shaledb/shale/internal/errs"
	"github.com/shaledb/shale/internal/retry"
	"github.com/shaledb/shale/proto/metapb"
)

// Reroute is the routing half of the shared policy for callers that send
// to tablets themselves (the importer): each action fixes the one routing
// cache the way kvclient's own retries do.
func TestReroute(t *testing.T) {
	f := &fakePD{}
	f.set(td(7, "", "", 1, 1, 1, 2, 3))
	c := testClient(f)
	ctx := context.Background()
	route := func() Route {
		r, err := c.RouteKey(ctx, []byte("x"), false)
		require.NoError(t, err)
		return r
	}
	r := route()
	require.Equal(t, uint64(1), r.Leader)

	// NotLeader naming a replica: go there at once, and the cache knows.
	act, next := c.Reroute(r, 1, errs.NotLeader(7, 3, "addr3"))
	require.Equal(t, retry.RetryElsewhere, act)
	require.Equal(t, uint64(3), next)
	require.Equal(t, uint64(3), route().Leader)

	// Not sent (store 3 unreachable): the cache moves to the next voter.
	act, next = c.Reroute(route(), 3, fmt.Errorf("%w: dial", retry.ErrNotSent))
	require.Equal(t, retry.RetryElsewhere, act)
	require.Zero(t, next)
	require.Equal(t, uint64(1), route().Leader)

	// A lost connection: ambiguous, and the next voter too.
	act, next = c.Reroute(route(), 1, status.Error(codes.Unavailable, "reset"))
	require.Equal(t, retry.Ambiguous, act)
	require.Zero(t, next)
	require.Equal(t, uint64(2), route().Leader)

	// A split: the cache takes the shapes the tablet reported, without
	// asking the PD (which still reports the old one).
	left := &metapb.TabletDescriptor{TabletId: 7, StartKey: nil, EndKey: []byte("m"), Epoch: &metapb.Epoch{Version: 2, ConfVersion: 1}, Replicas: r.Desc.Replicas}
	right := &metapb.TabletDescriptor{TabletId: 8, StartKey: []byte("m"), Epoch: &metapb.Epoch{Version: 2, ConfVersion: 1}, Replicas: r.Desc.Replicas}
	act, _ = c.Reroute(route(), 2, errs.EpochMismatch(left, right))
	require.Equal(t, retry.RefreshRoute, act)
	got := route()
	require.Equal(t, uint64(8), got.Desc.TabletId)
	require.Equal(t, []byte("m"), got.Desc.StartKey)

	// A lagging replica answers with an older descriptor than the cache
	// holds: the cache keeps what it has and moves on to another replica
	// (kvnemesis: a removed replica that was not yet collected kept the
	// client asking it until the deadline).
	stale := &metapb.TabletDescriptor{TabletId: 8, StartKey: []byte("m"), Epoch: &metapb.Epoch{Version: 1, ConfVersion: 1}, Replicas: r.Desc.Replicas}
	c.cache.setLeader(8, 2)
	act, _ = c.Reroute(route(), 2, errs.EpochMismatch(stale))
	require.Equal(t, retry.RefreshRoute, act)
	got = route()
	require.Equal(t, uint64(2), got.Desc.GetEpoch().GetVersion(), "the older descriptor must not replace the newer")
	require.NotEqual(t, uint64(2), got.Leader, "the lagging replica's store must not be asked again first")

	// A bad request: fail, the cache untouched.
	act, _ = c.Reroute(got, 2, errs.InvalidArgument("empty row key"))
	require.Equal(t, retry.Fail, act)
	require.Equal(t, uint64(8), route().Desc.TabletId)
}
