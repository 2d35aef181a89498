package store_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/shaledb/shale/internal/testutils"
	"github.com/shaledb/shale/proto/pdpb"
	"github.com/shaledb/shale/tabletserver/store"
	"github.com/shaledb/shale/tabletserver/storetest"
)

// reportFor returns store's leader report for tablet, or nil.
func reportFor(s *store.Store, tablet uint64) *pdpb.TabletReport {
	for _, r := range s.LeaderReports() {
		if r.Tablet.TabletId == tablet {
			return r
		}
	}
	return nil
}

// TestLeaderReportsCarryTerm: a leader's report carries its raft term, and
// the next leader reports a higher one (PD ignores lower terms).
func TestLeaderReportsCarryTerm(t *testing.T) {
	c := storetest.Start(t, 3, storetest.FastOptions)
	c.PutSchema(storetest.TestTable)
	start, end := storetest.TableSpan()
	c.Bootstrap(1, start, end, 1, 2, 3)
	ctx := context.Background()
	var leader, term uint64
	testutils.SucceedsSoon(t, func() error {
		leader = c.WaitLeader(1)
		r := reportFor(c.Nodes[leader].Store, 1)
		if r == nil {
			return fmt.Errorf("store %d does not report tablet 1 yet", leader)
		}
		if r.Term == 0 {
			return fmt.Errorf("leader report without a term")
		}
		term = r.Term
		return nil
	})
	next := otherThan(leader)
	testutils.SucceedsSoon(t, func() error {
		r := reportFor(c.Nodes[next].Store, 1)
		if r == nil {
			// A transfer to a replica still catching up is dropped: ask again.
			if cur := c.Leader(1); cur != 0 {
				_ = c.Nodes[cur].Store.TransferLeadershipFromForTest(ctx, 1, next)
			}
			return fmt.Errorf("store %d does not lead tablet 1 yet", next)
		}
		if r.Term <= term {
			return fmt.Errorf("new leader reports term %d, old leader reported %d", r.Term, term)
		}
		return nil
	})
}
