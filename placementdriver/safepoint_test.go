package placementdriver_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/shaledb/shale/internal/testutils"
	"github.com/shaledb/shale/placementdriver"
	"github.com/shaledb/shale/proto/pdpb"
)

// The cluster GC safe point trails the clock by the GC life time, never
// passes a live service safe point, moves on when the service's TTL runs
// out, never moves back (across a PD restart too), and refuses a service
// safe point below it.
func TestGCSafePoints(t *testing.T) {
	life := func(o *placementdriver.Options) { o.GCLifeTime = time.Second }
	c := startPD(t, 1, life)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cl := c.client()
	gcSafePoint := func() int64 {
		resp, err := cl.GetGCSafePoint(ctx, &pdpb.GetGCSafePointRequest{})
		require.NoError(t, err)
		return resp.GcSafePoint
	}
	var first int64
	testutils.SucceedsSoon(t, func() error {
		if first = gcSafePoint(); first == 0 {
			return fmt.Errorf("no gc safe point yet")
		}
		return nil
	})
	require.Less(t, first, time.Now().Add(-time.Second).UnixMicro()+1, "the safe point trails the clock by the life time")

	// A backup pins the safe point (at its current value, which may
	// move between reading and registering: then it is refused).
	var held int64
	testutils.SucceedsSoon(t, func() error {
		held = gcSafePoint()
		resp, err := cl.UpdateServiceSafePoint(ctx, &pdpb.UpdateServiceSafePointRequest{ServiceId: "backup-1", SafePoint: held, TtlSeconds: 3})
		if err != nil {
			return err
		}
		require.Equal(t, held, resp.MinServiceSafePoint)
		return nil
	})
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) {
		require.LessOrEqual(t, gcSafePoint(), held, "the safe point passed a live service safe point")
		time.Sleep(100 * time.Millisecond) // models time passing: the invariant is watched for 2 s
	}
	// Below the cluster safe point: refused.
	_, err := cl.UpdateServiceSafePoint(ctx, &pdpb.UpdateServiceSafePointRequest{ServiceId: "late", SafePoint: first - 1, TtlSeconds: 60})
	require.Equal(t, codes.FailedPrecondition, status.Code(err), "%v", err)
	// The TTL runs out: the safe point moves on.
	testutils.SucceedsSoon(t, func() error {
		if sp := gcSafePoint(); sp <= held {
			return fmt.Errorf("safe point %d still held at %d", sp, held)
		}
		return nil
	})
	before := gcSafePoint()
	c.stop("pd1")
	// Restarted with a life time of an hour, the leader advances to no
	// earlier than an hour ago: only the persisted value can be >= before.
	c.start("pd1", func(o *placementdriver.Options) { o.GCLifeTime = time.Hour })
	cl2 := c.client()
	testutils.SucceedsSoon(t, func() error {
		resp, err := cl2.GetGCSafePoint(ctx, &pdpb.GetGCSafePointRequest{})
		if err != nil {
			return err
		}
		if resp.GcSafePoint == 0 {
			return fmt.Errorf("not loaded yet")
		}
		if resp.GcSafePoint < before {
			return fmt.Errorf("safe point went back from %d to %d after a restart", before, resp.GcSafePoint)
		}
		return nil
	})
	// Removing a registration (ttl 0) is accepted.
	_, err = cl2.UpdateServiceSafePoint(ctx, &pdpb.UpdateServiceSafePointRequest{ServiceId: "backup-1"})
	require.NoError(t, err)
}
