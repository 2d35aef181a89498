package placementdriver_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/shaledb/shale/internal/testutils"
	"github.com/shaledb/shale/placementdriver/pdclient"
	"github.com/shaledb/shale/proto/pdpb"
)

// TestStopLeavesNoGoroutines stops a leading member while its scheduling
// loop runs every millisecond: Run returns only once every goroutine of
// the member (servers, leadership watch, scheduling) has ended.
func TestStopLeavesNoGoroutines(t *testing.T) {
	before := goleak.IgnoreCurrent()
	c := startPD(t, 1, nil)
	cl, err := pdclient.New(c.endpoints(), 0)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	testutils.Eventually(t, "no leader took the config", func() bool {
		_, err := cl.SetConfig(ctx, &pdpb.SetConfigRequest{Key: "schedule-interval", Value: "1ms"})
		return err == nil
	})
	_, err = cl.GetTimestamp(ctx, &pdpb.GetTimestampRequest{Count: 1})
	require.NoError(t, err)
	cl.Close()

	stopped := make(chan struct{})
	go func() { c.stop("pd1"); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(20 * time.Second):
		t.Fatal("pd member did not stop in time")
	}
	goleak.VerifyNone(t, before)
}
