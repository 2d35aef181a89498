package importer_test

import (
	"context"
	"testing"
	"time"

	"github.com/shaledb/shale/importer"
)

// TestWaitForTimestamp: the import timestamp may lead this machine's clock
// by a few seconds (a new PD leader serves from above its persisted
// window); the job waits until it does not, so tablet servers do not
// refuse the ingests as being from the future, and fails on a timestamp
// no clock explains.
func TestWaitForTimestamp(t *testing.T) {
	ctx := context.Background()
	now := time.Now()
	if err := importer.WaitForTimestampForTest(ctx, now.Add(-time.Hour).UnixMicro(), time.Now); err != nil {
		t.Fatalf("past timestamp: %v", err)
	}
	start := time.Now()
	ahead := start.Add(200 * time.Millisecond).UnixMicro()
	if err := importer.WaitForTimestampForTest(ctx, ahead, time.Now); err != nil {
		t.Fatalf("timestamp 200ms ahead: %v", err)
	}
	if got := time.Now().UnixMicro(); got < ahead {
		t.Fatalf("returned at %d, before the timestamp %d", got, ahead)
	}
	for _, ts := range []int64{now.Add(time.Hour).UnixMicro(), 1<<63 - 1, -1} {
		if err := importer.WaitForTimestampForTest(ctx, ts, time.Now); err == nil {
			t.Fatalf("timestamp %d accepted", ts)
		}
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := importer.WaitForTimestampForTest(cctx, time.Now().Add(5*time.Second).UnixMicro(), time.Now); err == nil {
		t.Fatal("wait ignored a cancelled context")
	}
}
