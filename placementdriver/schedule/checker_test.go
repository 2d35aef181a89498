package schedule

import (
	"math/rand"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func sixStoresThreeZones() []*Store {
	return []*Store{store(1, "z1"), store(2, "z1"), store(3, "z2"), store(4, "z2"), store(5, "z3"), store(6, "z3")}
}

func TestReplicaCheckerRepair(t *testing.T) {
	cfg := testConfig()
	down := func(s *Store, d time.Duration) *Store { s.State, s.DownFor = StoreDown, d; return s }
	state := func(s *Store, st StoreState) *Store { s.State = st; return s }
	full := func(s *Store) *Store { s.DiskFull = true; return s }
	for _, tc := range []struct {
		name   string
		stores []*Store
		tab    *Tablet
		want   []Step // nil: no operator
	}{
		{
			name:   "down store replaced",
			stores: []*Store{store(1, "z1"), store(2, "z2"), down(store(3, "z3"), time.Hour), store(4, "z3"), store(5, "z1")},
			tab:    tablet(1, "a", "b", 1, 2, 3),
			want:   move(3, 4, 103, 1001, 1),
		},
		{
			name:   "down store not yet past MaxStoreDownTime",
			stores: []*Store{store(1, "z1"), store(2, "z2"), down(store(3, "z3"), time.Minute), store(4, "z3")},
			tab:    tablet(1, "a", "b", 1, 2, 3),
		},
		{
			name:   "disconnected store left alone",
			stores: []*Store{store(1, "z1"), store(2, "z2"), state(store(3, "z3"), StoreDisconnected), store(4, "z3")},
			tab: func() *Tablet {
				t := tablet(1, "a", "b", 1, 2, 3)
				t.DownReplicas = []uint64{103} // the leader cannot reach it either
				return t
			}(),
		},
		{
			name:   "down replica on an up store",
			stores: []*Store{store(1, "z1"), store(2, "z2"), store(3, "z3"), store(4, "z3")},
			tab: func() *Tablet {
				t := tablet(1, "a", "b", 1, 2, 3)
				t.DownReplicas = []uint64{103}
				return t
			}(),
			want: move(3, 4, 103, 1001, 1),
		},
		{
			name:   "bad replica on an up store replaced",
			stores: []*Store{store(1, "z1"), store(2, "z2"), store(3, "z3"), store(4, "z3")},
			tab: func() *Tablet {
				t := tablet(1, "a", "b", 1, 2, 3)
				t.BadReplicas = []uint64{103}
				return t
			}(),
			want: move(3, 4, 103, 1001, 1),
		},
		{
			name:   "bad leader: leadership to a good replica first, then move",
			stores: []*Store{store(1, "z1"), store(2, "z2"), store(3, "z3"), store(4, "z1")},
			tab: func() *Tablet {
				t := tablet(1, "a", "b", 1, 2, 3)
				t.BadReplicas = []uint64{101}
				return t
			}(),
			want: append([]Step{TransferLeader{From: 1, To: 2}}, move(1, 4, 101, 1001, 2)...),
		},
		{
			name:   "inconsistent tablet without a majority: nothing replaced",
			stores: []*Store{store(1, "z1"), store(2, "z2"), store(3, "z3"), store(4, "z3")},
			tab: func() *Tablet {
				t := tablet(1, "a", "b", 1, 2, 3)
				t.Inconsistent = true
				return t
			}(),
		},
		{
			name:   "offline leader: transfer first, then move",
			stores: []*Store{state(store(1, "z1"), StoreOffline), store(2, "z2"), store(3, "z3"), store(4, "z1")},
			tab:    tablet(1, "a", "b", 1, 2, 3),
			want:   append([]Step{TransferLeader{From: 1, To: 2}}, move(1, 4, 101, 1001, 2)...),
		},
		{
			name:   "disk-full leader: transfer to a voter with room, then move",
			stores: []*Store{full(store(1, "z1")), store(2, "z2"), store(3, "z3"), store(4, "z1")},
			tab:    tablet(1, "a", "b", 1, 2, 3),
			want:   append([]Step{TransferLeader{From: 1, To: 2}}, move(1, 4, 101, 1001, 2)...),
		},
		{
			name:   "disk-full follower moved; never onto another full store",
			stores: []*Store{store(1, "z1"), store(2, "z2"), full(store(3, "z3")), full(store(4, "z3")), store(5, "z3")},
			tab:    tablet(1, "a", "b", 1, 2, 3),
			want:   move(3, 5, 103, 1001, 1),
		},
		{
			name:   "disk-full leader, no target store: leadership still moves",
			stores: []*Store{full(store(1, "z1")), store(2, "z2"), store(3, "z3")},
			tab:    tablet(1, "a", "b", 1, 2, 3),
			want:   []Step{TransferLeader{From: 1, To: 2}},
		},
		{
			name:   "tombstone store",
			stores: []*Store{store(1, "z1"), store(2, "z2"), state(store(3, "z3"), StoreTombstone), store(4, "z3")},
			tab:    tablet(1, "a", "b", 1, 2, 3),
			want:   move(3, 4, 103, 1001, 1),
		},
		{
			name:   "missing replica added in the missing zone",
			stores: []*Store{store(1, "z1"), store(2, "z2"), store(3, "z2"), store(4, "z3")},
			tab:    tablet(1, "a", "b", 1, 2),
			want:   []Step{AddLearner{Store: 4, ReplicaID: 1001, Sender: 1}, PromoteLearner{Store: 4, ReplicaID: 1001}},
		},
		{
			name:   "excess replica removed: the worst placed follower",
			stores: []*Store{store(1, "z1"), store(2, "z2"), store(3, "z3"), store(4, "z3")},
			tab:    tablet(1, "a", "b", 1, 2, 3, 4),
			want:   []Step{RemoveReplica{Store: 3, ReplicaID: 103}},
		},
		{
			name:   "no healthy target: nothing",
			stores: []*Store{store(1, "z1"), store(2, "z2"), down(store(3, "z3"), time.Hour)},
			tab:    tablet(1, "a", "b", 1, 2, 3),
		},
		{
			name:   "down store replaced by promoting a caught-up learner",
			stores: []*Store{store(1, "z1"), store(2, "z2"), down(store(3, "z3"), time.Hour), store(4, "z3"), store(5, "z3")},
			tab: func() *Tablet {
				t := tablet(1, "a", "b", 1, 2, 3)
				t.Replicas = append(t.Replicas, Replica{ID: 104, StoreID: 4, Learner: true})
				return t
			}(),
			want: []Step{ChangeReplicas{Promote: []PromoteLearner{{Store: 4, ReplicaID: 104}}, Remove: []RemoveReplica{{Store: 3, ReplicaID: 103}}}},
		},
		{
			name:   "a learner still receiving its snapshot is not promoted",
			stores: []*Store{store(1, "z1"), store(2, "z2"), down(store(3, "z3"), time.Hour), store(4, "z3"), store(5, "z3")},
			tab: func() *Tablet {
				t := tablet(1, "a", "b", 1, 2, 3)
				t.Replicas = append(t.Replicas, Replica{ID: 104, StoreID: 4, Learner: true})
				t.PendingReplicas = []uint64{104}
				return t
			}(),
			want: move(3, 5, 103, 1001, 1),
		},
		{
			name:   "a learner in a worse place than the best target is not promoted",
			stores: []*Store{store(1, "z1"), store(2, "z2"), down(store(3, "z3"), time.Hour), store(4, "z1"), store(5, "z3")},
			tab: func() *Tablet {
				t := tablet(1, "a", "b", 1, 2, 3)
				t.Replicas = append(t.Replicas, Replica{ID: 104, StoreID: 4, Learner: true})
				return t
			}(),
			want: move(3, 5, 103, 1001, 1),
		},
		{
			name:   "stray learner removed",
			stores: []*Store{store(1, "z1"), store(2, "z2"), store(3, "z3"), store(4, "z3")},
			tab: func() *Tablet {
				t := tablet(1, "a", "b", 1, 2, 3)
				t.Replicas = append(t.Replicas, Replica{ID: 104, StoreID: 4, Learner: true})
				return t
			}(),
			want: []Step{RemoveReplica{Store: 4, ReplicaID: 104}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(cfg, tc.stores, tc.tab)
			op := NewReplicaChecker(cfg, f.ctl, f.alloc).Check(f.c, tc.tab)
			if tc.want == nil {
				require.Nil(t, op)
				return
			}
			require.NotNil(t, op)
			require.Equal(t, KindReplicaRepair, op.Kind)
			require.Equal(t, tc.want, op.Steps, op.String())
		})
	}
}

func TestOfflineStoreDrained(t *testing.T) {
	cfg := testConfig()
	stores := sixStoresThreeZones()
	stores[0].State = StoreOffline // store 1, z1
	var tabs []*Tablet
	for i := uint64(1); i <= 6; i++ {
		tabs = append(tabs, tablet(i, string(rune('a'+i)), string(rune('a'+i+1)), 1, 3, 5))
	}
	tabs = append(tabs, tablet(7, "x", "y", 2, 4, 6)) // untouched
	f := newFixture(cfg, stores, tabs...)
	co := NewCoordinator(cfg, f.alloc, nil)
	co.Schedulers = nil
	f.ctl = co.Controller
	res := co.Round(f.c, t0)
	// Snapshot limit 4 per store: the senders (stores 3 and 5 after the
	// leader moves off 1) and the only z1 target, store 2, bound it.
	require.Equal(t, 4, res.AddedOf(KindReplicaRepair))
	for _, op := range f.ctl.Operators() {
		require.NotEqual(t, uint64(7), op.TabletID)
		require.Equal(t, TransferLeader{From: 1, To: 3}, op.Steps[0], op.String())
		require.Equal(t, uint64(2), op.Steps[1].(AddLearner).Store, op.String())
	}
}

func TestPlacementSixStoresThreeZones(t *testing.T) {
	cfg := testConfig()
	zone := map[uint64]string{1: "z1", 2: "z1", 3: "z2", 4: "z2", 5: "z3", 6: "z3"}
	t.Run("exact", func(t *testing.T) {
		tab := tablet(1, "a", "b", 1, 2, 3) // z1, z1, z2
		f := newFixture(cfg, sixStoresThreeZones(), tab)
		op := NewPlacementChecker(cfg, f.ctl, f.alloc).Check(f.c, tab)
		require.NotNil(t, op)
		require.Equal(t, KindPlacement, op.Kind)
		// Store 2 (a follower in the doubled zone) goes to z3; the emptiest
		// z3 store (ties: lowest ID) is 5.
		require.Equal(t, move(2, 5, 102, 1001, 1), op.Steps)
	})
	t.Run("every layout", func(t *testing.T) {
		// All 3-store layouts: the checker fixes every collision in one move
		// and never proposes a move that creates one.
		for a := uint64(1); a <= 6; a++ {
			for b := a + 1; b <= 6; b++ {
				for c := b + 1; c <= 6; c++ {
					tab := tablet(1, "a", "b", a, b, c)
					f := newFixture(cfg, sixStoresThreeZones(), tab)
					op := NewPlacementChecker(cfg, f.ctl, f.alloc).Check(f.c, tab)
					distinct := zone[a] != zone[b] && zone[b] != zone[c] && zone[a] != zone[c]
					if distinct {
						require.Nil(t, op, "%d,%d,%d", a, b, c)
						continue
					}
					require.NotNil(t, op, "%d,%d,%d", a, b, c)
					ch := op.Steps[len(op.Steps)-1].(ChangeReplicas)
					after := map[string]bool{}
					for _, s := range []uint64{a, b, c} {
						if s != ch.Remove[0].Store {
							after[zone[s]] = true
						}
					}
					after[zone[ch.Promote[0].Store]] = true
					require.Len(t, after, 3, "%d,%d,%d: %s", a, b, c, op)
				}
			}
		}
	})
	t.Run("no alternative: no move", func(t *testing.T) {
		stores := sixStoresThreeZones()
		stores[4].State, stores[5].State = StoreDisconnected, StoreDisconnected // z3 unavailable
		tab := tablet(1, "a", "b", 1, 2, 3)
		f := newFixture(cfg, stores, tab)
		require.Nil(t, NewPlacementChecker(cfg, f.ctl, f.alloc).Check(f.c, tab))
	})
}

func TestSplitChecker(t *testing.T) {
	cfg := testConfig()
	big := tablet(1, "a", "m", 1, 2, 3)
	big.Size = cfg.SplitSize + 1
	hot := tablet(2, "m", "z", 1, 2, 3)
	hot.ReadQPS, hot.WriteQPS, hot.HotReports, hot.LoadSplitKey = 4000, 1000, 3, []byte("q")
	briefly := tablet(3, "z", "zz", 1, 2, 3)
	briefly.ReadQPS, briefly.HotReports, briefly.LoadSplitKey = 5000, 1, []byte("zy")
	outside := tablet(4, "zz", "", 1, 2, 3)
	outside.ReadQPS, outside.HotReports, outside.LoadSplitKey = 5000, 5, []byte("zz") // = StartKey
	f := newFixture(cfg, sixStoresThreeZones(), big, hot, briefly, outside)
	sc := NewSplitChecker(cfg, f.ctl, f.alloc)

	op := sc.Check(f.c, big)
	require.Equal(t, KindSplit, op.Kind)
	require.Equal(t, []Step{Split{Key: nil, NewTabletID: 1001, NewReplicaIDs: []uint64{1002, 1003, 1004}, FromVersion: 1}}, op.Steps)
	cmd := op.Steps[0].Command(big)
	require.Empty(t, cmd.GetSplit().GetSplitKey())
	require.Equal(t, uint64(1001), cmd.GetSplit().GetNewTabletId())

	op = sc.Check(f.c, hot)
	require.Equal(t, KindSplitLoad, op.Kind)
	require.Equal(t, []Step{Split{Key: []byte("q"), NewTabletID: 1005, NewReplicaIDs: []uint64{1006, 1007, 1008}, FromVersion: 1}}, op.Steps)

	require.Nil(t, sc.Check(f.c, briefly))
	require.Nil(t, sc.Check(f.c, outside))
}

func TestMergeChecker(t *testing.T) {
	cfg := testConfig()
	small := func(tb *Tablet) *Tablet { tb.Size = 1 << 20; tb.RangeAge = 2 * time.Hour; return tb }
	// Row keys of one table: 8-byte table prefix plus a row.
	row := func(r string) string { return "\x00\x00\x00\x00\x00\x00\x00\x07" + r }
	t.Run("aligned neighbours merge", func(t *testing.T) {
		l, r := small(tablet(1, row("a"), row("b"), 1, 3, 5)), small(tablet(2, row("b"), row("c"), 1, 3, 5))
		big := tablet(3, row("c"), row("d"), 1, 3, 5)
		f := newFixture(cfg, sixStoresThreeZones(), l, r, big)
		mc := NewMergeChecker(cfg, f.ctl, f.alloc)
		op := mc.Check(f.c, l)
		require.NotNil(t, op)
		require.Equal(t, KindMerge, op.Kind)
		require.Equal(t, []Step{Merge{Right: 2, FromVersion: 1}}, op.Steps)
		require.Equal(t, []uint64{2}, op.Related)
		require.Equal(t, uint64(2), op.Steps[0].Command(l).GetMerge().GetRightTabletId())
		require.Nil(t, mc.Check(f.c, r), "right neighbour is big")

		// Both tablets are locked by the merge.
		require.NoError(t, f.ctl.AddOperator(op, t0))
		require.True(t, f.ctl.HasOperator(2))
		require.Nil(t, f.ctl.Dispatch(r, t0))
		merged := tablet(1, row("a"), row("c"), 1, 3, 5)
		merged.Version = 2
		require.Nil(t, f.ctl.Dispatch(merged, t0.Add(time.Second)))
		require.False(t, f.ctl.HasOperator(2))
		require.Equal(t, 1, f.ctl.EndedCount(KindMerge, OpFinished))
	})
	t.Run("misaligned: align right first", func(t *testing.T) {
		l, r := small(tablet(1, row("a"), row("b"), 1, 3, 5)), small(tablet(2, row("b"), row("c"), 4, 3, 6))
		f := newFixture(cfg, sixStoresThreeZones(), l, r)
		op := NewMergeChecker(cfg, f.ctl, f.alloc).Check(f.c, l)
		require.NotNil(t, op)
		require.Equal(t, uint64(2), op.TabletID)
		require.Equal(t, []uint64{1}, op.Related)
		want := []Step{TransferLeader{From: 4, To: 3}}
		want = append(want, move(4, 1, 204, 1001, 3)...)
		want = append(want, move(6, 5, 206, 1002, 3)...)
		want = append(want, TransferLeader{From: 3, To: 1})
		require.Equal(t, want, op.Steps, op.String())
	})
	t.Run("hot tablets do not merge", func(t *testing.T) {
		l, r := small(tablet(1, row("a"), row("b"), 1, 3, 5)), small(tablet(2, row("b"), row("c"), 1, 3, 5))
		r.HotReports = 1
		f := newFixture(cfg, sixStoresThreeZones(), l, r)
		require.Nil(t, NewMergeChecker(cfg, f.ctl, f.alloc).Check(f.c, l))
	})
	t.Run("young tablets do not merge", func(t *testing.T) {
		l, r := small(tablet(1, row("a"), row("b"), 1, 3, 5)), small(tablet(2, row("b"), row("c"), 1, 3, 5))
		r.RangeAge = time.Minute
		f := newFixture(cfg, sixStoresThreeZones(), l, r)
		require.Nil(t, NewMergeChecker(cfg, f.ctl, f.alloc).Check(f.c, l))
	})
	t.Run("no merge across a table boundary", func(t *testing.T) {
		next := "\x00\x00\x00\x00\x00\x00\x00\x08"
		l, r := small(tablet(1, row("a"), next, 1, 3, 5)), small(tablet(2, next, next+"z", 1, 3, 5))
		f := newFixture(cfg, sixStoresThreeZones(), l, r)
		require.Nil(t, NewMergeChecker(cfg, f.ctl, f.alloc).Check(f.c, l))
	})
}

// A running lower-priority operator is preempted only to replace replicas
// on unhealthy stores, never to tidy a learner the operator itself added.
func TestRepairPreemptsOnlyForUnhealthyStores(t *testing.T) {
	cfg := testConfig()
	stores := sixStoresThreeZones()
	tb := tablet(1, "a", "b", 1, 3, 5)
	tb.Replicas = append(tb.Replicas, Replica{ID: 199, StoreID: 2, Learner: true})
	f := newFixture(cfg, stores, tb)
	balance := &Operator{TabletID: 1, Kind: KindBalanceTablet, Desc: "move 1 to 2", Steps: []Step{TransferLeader{From: 1, To: 3}}}
	require.NoError(t, f.ctl.AddOperator(balance, t0))
	rc := NewReplicaChecker(cfg, f.ctl, f.alloc)
	require.Nil(t, rc.Check(f.c, tb), "the learner belongs to the running move")

	stores[2].State = StoreDown // store 3
	stores[2].DownFor = time.Hour
	f = newFixture(cfg, stores, tb)
	require.NoError(t, f.ctl.AddOperator(balance, t0))
	op := NewReplicaChecker(cfg, f.ctl, f.alloc).Check(f.c, tb)
	require.NotNil(t, op, "a replica on a down store is replaced even during a move")
	require.Equal(t, KindReplicaRepair, op.Kind)
}

// An operator whose next step needs a store that went down is cancelled
// at the next round, freeing its snapshot slots for repair.
func TestStrandedOperatorCancelled(t *testing.T) {
	cfg := testConfig()
	stores := sixStoresThreeZones()
	tb := tablet(1, "a", "b", 1, 3, 5)
	f := newFixture(cfg, stores, tb)
	co := NewCoordinator(cfg, f.alloc, rand.New(rand.NewSource(1)))
	op := &Operator{TabletID: 1, Kind: KindBalanceTablet, Desc: "move to 2", Steps: []Step{AddLearner{Store: 2, ReplicaID: 900}}}
	require.NoError(t, co.Controller.AddOperator(op, t0))
	co.Round(f.c, t0)
	require.True(t, co.Controller.HasOperator(1), "store 2 is up: the move goes on")

	stores[1].State = StoreDown
	f.c.PutStore(stores[1])
	co.Round(f.c, t0.Add(time.Second))
	require.Equal(t, OpCancelled, op.Status(), "the learner's store is down")
}
