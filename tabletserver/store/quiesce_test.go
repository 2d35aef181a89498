package store_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/shaledb/shale/internal/testutils"
	"github.com/shaledb/shale/tabletserver/storetest"
)

// waitQuiesced waits until every replica of tab is quiesced and returns
// the tablet's term.
func waitQuiesced(t *testing.T, c *storetest.Cluster, tab uint64) (term uint64) {
	t.Helper()
	testutils.SucceedsSoon(t, func() error {
		for id, n := range c.Nodes {
			st, err := n.Store.TabletStatus(tab)
			if err != nil {
				return err
			}
			if !st.Quiesced {
				return fmt.Errorf("store %d not quiesced", id)
			}
			term = st.Term
		}
		return nil
	})
	return term
}

// An idle (quiesced) tablet whose leader's store dies elects a new leader:
// the surviving stores notice the silence and wake the tablet.
func TestQuiescedTabletElectsAfterLeaderStoreDies(t *testing.T) {
	c, tab := startTablet(t, 3)
	ctx := ctxT(t, 30*time.Second)
	if err := c.Put(ctx, tab, "r", "v"); err != nil {
		t.Fatal(err)
	}
	waitQuiesced(t, c, tab)
	old := c.Leader(tab)
	c.Stop(old)
	start := time.Now()
	testutils.SucceedsSoon(t, func() error {
		if l := c.Leader(tab); l == 0 || l == old {
			return fmt.Errorf("no new leader yet (old %d)", old)
		}
		return nil
	})
	t.Logf("new leader %d after %v", c.Leader(tab), time.Since(start))
	if err := c.MustRead(ctx, tab, "r", "v"); err != nil {
		t.Fatal(err)
	}
}

// Replica GC's look at a follower (DestroyIfRemoved, every few heartbeats
// on every store) leaves a quiesced tablet asleep. It used to wake the
// followers it looked at: their raft clocks ran while their leader slept,
// and when both followers woke together they elected a new leader an
// election timeout later, every round (about 130 leader changes a minute
// on the playground during an import, each one a whole-tablet GC read).
func TestReplicaGCCheckLeavesQuiescedTabletAsleep(t *testing.T) {
	c, tab := startTablet(t, 3)
	ctx := ctxT(t, 30*time.Second)
	if err := c.Put(ctx, tab, "r", "v"); err != nil {
		t.Fatal(err)
	}
	term := waitQuiesced(t, c, tab)
	leader := c.Leader(tab)
	for id, n := range c.Nodes {
		if id == leader {
			continue
		}
		st, err := n.Store.TabletStatus(tab)
		if err != nil {
			t.Fatal(err)
		}
		gone, err := n.Store.DestroyIfRemoved(ctx, st.Tablet)
		if err != nil || gone {
			t.Fatalf("store %d: DestroyIfRemoved of a current member = %v, %v", id, gone, err)
		}
		if st, err = n.Store.TabletStatus(tab); err != nil {
			t.Fatal(err)
		}
		if !st.Quiesced || st.Term != term {
			t.Fatalf("store %d after the replica-GC check: quiesced %v, term %d (was %d): the check woke the follower", id, st.Quiesced, st.Term, term)
		}
	}
}
