package sim

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/shaledb/shale/internal/testutils"
	"github.com/shaledb/shale/placementdriver/schedule"
)

// TestSimStaleLeaderClaimsIgnored models the playground report: 4 stores,
// 12 idle tablets, heartbeats every 10 s, and for every tablet a second
// store that still claims leadership at an older term (a quiesced old
// leader that has not heard of the new term; after a leader transfer it is
// the previous leader). Each tick the real leader reports, then the stale
// one. PD's view must keep the real leaders, and the leader balancer must
// not keep moving leaders back and forth.
func TestSimStaleLeaderClaimsIgnored(t *testing.T) {
	seed := int64(testutils.SeedOr(t, 7))
	s, err := New(Options{Stores: 4, Tablets: 12, Zones: 4, Balanced: true, Seed: seed})
	require.NoError(t, err)
	type claim struct{ store, term uint64 }
	real, stale := map[uint64]claim{}, map[uint64]claim{}
	for _, tab := range s.Cluster.Tablets() {
		c := tab.Clone()
		c.Term = 5
		s.mustPut(c)
		real[tab.ID] = claim{tab.LeaderStoreID, 5}
		for _, r := range tab.Replicas {
			if r.StoreID != tab.LeaderStoreID {
				stale[tab.ID] = claim{r.StoreID, 4}
				break
			}
		}
	}
	transfers, flips := 0, 0
	s.Trace = func(op *schedule.Operator) {
		if s.Tick > 6 && op.Kind == schedule.KindBalanceLeader {
			transfers++
		}
	}
	for s.Tick < 60 {
		for _, tab := range s.Cluster.Tablets() {
			// A transfer the sim carried out: the old leader goes stale.
			if cur := real[tab.ID]; tab.Term > cur.term {
				stale[tab.ID] = cur
				real[tab.ID] = claim{tab.LeaderStoreID, tab.Term}
			}
			for _, cl := range []claim{real[tab.ID], stale[tab.ID]} {
				c := tab.Clone()
				c.LeaderStoreID, c.Term = cl.store, cl.term
				if _, err := s.Cluster.PutTablet(c); err != nil && !errors.Is(err, schedule.ErrStaleTablet) {
					t.Fatal(err)
				}
			}
			if got := s.Cluster.Tablet(tab.ID).LeaderStoreID; got != real[tab.ID].store {
				flips++
			}
		}
		s.Step()
	}
	b := s.Measure()
	t.Logf("seed %d: %d leader flips in the view, %d balance-leader moves after the first minute; %s", seed, flips, transfers, b)
	require.Zero(t, flips, "a stale leader's report changed PD's view")
	require.Zero(t, transfers, "leaders moved back and forth")
	require.LessOrEqual(t, b.MaxLeaders-b.MinLeaders, 2, "leaders stay balanced: %s", b)
}
