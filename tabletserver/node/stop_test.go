package node_test

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/shaledb/shale/internal/testcluster"
)

// TestStopLeavesNoGoroutines runs a cluster (PD and three tablet servers,
// each heartbeating the PD) and stops it: every goroutine the servers
// started must have ended when their Run returns.
func TestStopLeavesNoGoroutines(t *testing.T) {
	before := goleak.IgnoreCurrent()
	c := testcluster.Start(t, testcluster.Options{})
	c.Close()
	goleak.VerifyNone(t, before)
}
