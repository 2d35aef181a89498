package store_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/shaledb/shale/internal/testutils"
)

// An idle (quiesced) tablet whose leader's store dies elects a new leader:
// the surviving stores notice the silence and wake the tablet.
func TestQuiescedTabletElectsAfterLeaderStoreDies(t *testing.T) {
	c, tab := startTablet(t, 3)
	ctx := ctxT(t, 30*time.Second)
	if err := c.Put(ctx, tab, "r", "v"); err != nil {
		t.Fatal(err)
	}
	testutils.SucceedsSoon(t, func() error {
		for id, n := range c.Nodes {
			st, err := n.Store.TabletStatus(tab)
			if err != nil {
				return err
			}
			if !st.Quiesced {
				return fmt.Errorf("store %d not quiesced", id)
			}
		}
		return nil
	})
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
