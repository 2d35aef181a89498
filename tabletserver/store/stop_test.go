package store_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/shaledb/shale/internal/stop"
	"github.com/shaledb/shale/internal/testutils"
	"github.com/shaledb/shale/tabletserver/store"
	"github.com/shaledb/shale/tabletserver/storetest"
)

// TestCloseLeavesNoGoroutines runs three stores with every background loop
// firing often (liveness, version GC, merge recovery), lets one of them
// catch up by snapshot (a snapshot sender), and closes them: every
// goroutine the stores started must have ended when Close returns.
func TestCloseLeavesNoGoroutines(t *testing.T) {
	before := goleak.IgnoreCurrent()
	c := storetest.Start(t, 3, func(o *store.Options) {
		o.GCInterval = 50 * time.Millisecond
		o.MergeRecoveryAfter = 200 * time.Millisecond
		o.RaftLogTruncateEntries = 10
		o.RaftLogMaxEntries = 20
	})
	c.PutSchema(storetest.TestTable)
	lo, hi := storetest.TableSpan()
	c.Bootstrap(1, lo, hi, 1, 2, 3)
	ctx := ctxT(t, 60*time.Second)

	leader := c.WaitLeader(1)
	follower := leader%3 + 1
	c.Stop(follower)
	for i := 0; i < 60; i++ {
		if err := c.Put(ctx, 1, fmt.Sprintf("row%04d", i), "v"); err != nil {
			t.Fatal(err)
		}
	}
	c.Restart(follower)
	testutils.SucceedsSoon(t, func() error {
		st, err := c.Nodes[follower].Store.TabletStatus(1)
		if err != nil {
			return err
		}
		if st.AppliedIndex < 60 {
			return fmt.Errorf("follower applied %d", st.AppliedIndex)
		}
		return nil
	})
	c.Close()
	goleak.VerifyNone(t, before)
}

// TestCloseNamesStuckTasks: a store goroutine that ignores shutdown makes
// Close give up after CloseTimeout with an error naming it, instead of
// hanging.
func TestCloseNamesStuckTasks(t *testing.T) {
	c := storetest.Start(t, 1, func(o *store.Options) { o.CloseTimeout = 200 * time.Millisecond })
	s := c.Nodes[1].Store
	release := make(chan struct{})
	if err := s.RunAsyncTaskForTest("test.stuck", func(context.Context) { <-release }); err != nil {
		t.Fatal(err)
	}
	err := s.Close()
	close(release)
	var stuck *stop.StuckError
	if !errors.As(err, &stuck) || len(stuck.Tasks) != 1 || !strings.Contains(stuck.Tasks[0], "test.stuck") {
		t.Fatalf("Close = %v, want a StuckError naming test.stuck", err)
	}
	// The engine was left open for the stuck task.
	if err := s.DB().Close(); err != nil {
		t.Fatal(err)
	}
}
