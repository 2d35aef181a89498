package schedule

import (
	"fmt"
	"math/rand"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// keyed returns n tablets with keys k000.. on the given stores.
func keyed(first uint64, n int, stores ...uint64) []*Tablet {
	var out []*Tablet
	for i := 0; i < n; i++ {
		id := first + uint64(i)
		out = append(out, tablet(id, fmt.Sprintf("k%05d", id), fmt.Sprintf("k%05d", id+1), stores...))
	}
	return out
}

func TestBalanceTabletPicksSourceAndTarget(t *testing.T) {
	cfg := testConfig()
	cfg.TabletScheduleLimit = 1
	// Zones z1:{1,2} z2:{3,4} z3:{5,6}. Stores 1,3,5 hold all 20 tablets;
	// 2 has 5 tablets of its own (with 4 and 6). Emptiest stores: 4 and 6
	// (5 each) vs 2 (5): tie broken by... every target is as isolated as
	// the source only within the source's zone, so store 1's replica may go
	// to store 2 only.
	tabs := keyed(1, 20, 1, 3, 5)
	tabs = append(tabs, keyed(100, 5, 2, 4, 6)...)
	stores := sixStoresThreeZones()
	f := newFixture(cfg, stores, tabs...)
	s := NewBalanceTabletScheduler(f.ctl, f.alloc, rand.New(rand.NewSource(1)))
	ops := s.Schedule(f.c, cfg)
	require.Len(t, ops, 1)
	op := ops[0]
	require.Equal(t, KindBalanceTablet, op.Kind)
	// Source: store 1 (20 replicas, lowest ID among 1,3,5). Target: store 2,
	// the only store in zone z1. Store 1 leads every tablet, so leadership
	// moves first to the follower store with the fewest leaders (3).
	add := op.Steps[len(op.Steps)-2].(AddLearner)
	ch := op.Steps[len(op.Steps)-1].(ChangeReplicas)
	require.Equal(t, uint64(2), add.Store, op.String())
	require.Equal(t, uint64(1), ch.Remove[0].Store, op.String())
	require.Equal(t, TransferLeader{From: 1, To: 3}, op.Steps[0])

	// Without labels, the emptiest store overall is chosen.
	cfg.LocationLabels = nil
	f = newFixture(cfg, []*Store{store(1, ""), store(2, ""), store(3, ""), store(4, "")}, keyed(1, 10, 1, 2, 3)...)
	f.c.PutTablet(func() *Tablet { tb := tablet(50, "z", "", 2, 3, 1); return tb }())
	ops = NewBalanceTabletScheduler(f.ctl, f.alloc, rand.New(rand.NewSource(1))).Schedule(f.c, cfg)
	require.Len(t, ops, 1)
	ch = ops[0].Steps[len(ops[0].Steps)-1].(ChangeReplicas)
	require.Equal(t, uint64(4), ch.Promote[0].Store)
	// Stores 1, 2, 3 tie at 11: the lowest ID is the source.
	require.Equal(t, uint64(1), ch.Remove[0].Store)
	// Prefers a follower: tablet 50 is the only one store 1 does not lead.
	require.Equal(t, uint64(50), ops[0].TabletID)
	require.Len(t, ops[0].Steps, 2)
}

func TestBalanceTabletWithinTolerance(t *testing.T) {
	cfg := testConfig()
	cfg.LocationLabels = nil
	tabs := append(keyed(1, 10, 1, 2, 3), keyed(20, 9, 2, 3, 4)...)
	tabs = append(tabs, keyed(40, 1, 1, 3, 4)...)
	// counts: 1:11 2:19 3:20 4:10 → moves; then a balanced cluster → none.
	f := newFixture(cfg, []*Store{store(1, ""), store(2, ""), store(3, ""), store(4, "")}, tabs...)
	require.NotEmpty(t, NewBalanceTabletScheduler(f.ctl, f.alloc, rand.New(rand.NewSource(1))).Schedule(f.c, cfg))
	bal := append(keyed(1, 5, 1, 2, 3), keyed(10, 5, 2, 3, 4)...)
	bal = append(bal, keyed(20, 5, 3, 4, 1)...)
	bal = append(bal, keyed(30, 5, 4, 1, 2)...)
	f = newFixture(cfg, []*Store{store(1, ""), store(2, ""), store(3, ""), store(4, "")}, bal...)
	require.Empty(t, NewBalanceTabletScheduler(f.ctl, f.alloc, rand.New(rand.NewSource(1))).Schedule(f.c, cfg))
}

func TestBalanceNeverTargetsBadStores(t *testing.T) {
	cfg := testConfig()
	cfg.LocationLabels = nil
	stores := []*Store{store(1, ""), store(2, ""), store(3, ""), store(4, ""), store(5, ""), store(6, "")}
	stores[3].State = StoreDisconnected
	stores[4].State = StoreOffline
	stores[5].State = StoreDown
	f := newFixture(cfg, stores, keyed(1, 30, 1, 2, 3)...)
	ops := NewBalanceTabletScheduler(f.ctl, f.alloc, rand.New(rand.NewSource(1))).Schedule(f.c, cfg)
	require.Empty(t, ops)
	lops := NewBalanceLeaderScheduler(f.ctl, rand.New(rand.NewSource(1))).Schedule(f.c, cfg)
	for _, op := range lops {
		to := op.Steps[0].(TransferLeader).To
		require.Contains(t, []uint64{2, 3}, to)
	}
}

func TestBalanceLeaderUsesTransferOnly(t *testing.T) {
	cfg := testConfig()
	cfg.LeaderScheduleLimit = 100
	f := newFixture(cfg, sixStoresThreeZones(), append(keyed(1, 30, 1, 3, 5), keyed(100, 30, 2, 4, 6)...)...)
	ops := NewBalanceLeaderScheduler(f.ctl, rand.New(rand.NewSource(1))).Schedule(f.c, cfg)
	require.NotEmpty(t, ops)
	moved := map[uint64]int{}
	for _, op := range ops {
		require.Equal(t, KindBalanceLeader, op.Kind)
		require.Len(t, op.Steps, 1)
		tl, ok := op.Steps[0].(TransferLeader)
		require.True(t, ok, op.String())
		tab := f.c.Tablet(op.TabletID)
		require.Equal(t, tab.LeaderStoreID, tl.From)
		require.True(t, tab.HasStore(tl.To))
		moved[tl.From]--
		moved[tl.To]++
	}
	// 60 leaders, 10 per store: stores 1 and 2 give 20 each.
	require.Equal(t, map[uint64]int{1: -20, 2: -20, 3: 10, 4: 10, 5: 10, 6: 10}, moved)
}

func TestHotSchedulerMovesHottestLeader(t *testing.T) {
	cfg := testConfig()
	tabs := keyed(1, 4, 1, 3, 5)
	tabs[0].ReadQPS = 5000
	tabs[1].ReadQPS = 3000
	tabs[2].ReadQPS = 50 // below HotTabletQPS
	other := keyed(10, 1, 3, 1, 5)
	other[0].WriteQPS = 1000
	f := newFixture(cfg, sixStoresThreeZones(), append(tabs, other...)...)
	hot := NewHotScheduler(f.ctl)
	// One report is not a hot spot: the store must stay hot HotRounds
	// rounds in a row.
	for range cfg.HotRounds - 1 {
		require.Empty(t, hot.Schedule(f.c, cfg))
	}
	ops := hot.Schedule(f.c, cfg)
	// Store 1 serves 8050, store 3 1000, store 5 0. The hottest tablet goes
	// to store 5; the next one would leave store 1 at 50 < 3000: moved to
	// store 3 (load 1000+3000 < 8050-5000? no: 4000 >= 3050) — refused.
	require.Len(t, ops, 1)
	require.Equal(t, uint64(1), ops[0].TabletID)
	require.Equal(t, []Step{TransferLeader{From: 1, To: 5}}, ops[0].Steps)
}

// A store that is hot in one round and not the next is noise: the count
// of hot rounds starts again.
func TestHotSchedulerNeedsConsecutiveHotRounds(t *testing.T) {
	cfg := testConfig()
	tabs := keyed(1, 2, 1, 3, 5)
	tabs[0].ReadQPS, tabs[1].ReadQPS = 3000, 2000
	f := newFixture(cfg, sixStoresThreeZones(), tabs...)
	hot := NewHotScheduler(f.ctl)
	for range cfg.HotRounds - 1 {
		require.Empty(t, hot.Schedule(f.c, cfg))
	}
	put := func(qps ...float64) {
		for i, q := range qps {
			c := tabs[i].Clone()
			c.ReadQPS = q
			_, err := f.c.PutTablet(c)
			require.NoError(t, err)
		}
	}
	put(0, 0)
	require.Empty(t, hot.Schedule(f.c, cfg), "no load: no move, and the streak ends")
	put(3000, 2000)
	for range cfg.HotRounds - 1 {
		require.Empty(t, hot.Schedule(f.c, cfg))
	}
	require.Len(t, hot.Schedule(f.c, cfg), 1)
}

// A tablet whose leader a balancing scheduler just moved is left alone by
// the hot scheduler until the cooldown ends (its QPS is not measured on
// the new leader yet), and one the hot scheduler moved is left alone by
// the leader balancer too (it would undo the move).
func TestLeaderMoveCooldown(t *testing.T) {
	cfg := testConfig()
	cfg.LeaderScheduleLimit = 100
	tabs := keyed(1, 2, 1, 3, 5)
	tabs[0].ReadQPS, tabs[1].ReadQPS = 5000, 3000
	f := newFixture(cfg, sixStoresThreeZones(), tabs...)
	// Both leaders were moved a moment ago (hot, balance-leader); the
	// operators ended (here: cancelled) with the leaders still on store 1.
	for i, k := range []OpKind{KindHot, KindBalanceLeader} {
		require.NoError(t, f.ctl.AddOperator(NewTransferLeaderOperator(tabs[i], k, 3), t0))
		require.True(t, f.ctl.Cancel(tabs[i].ID, t0))
	}
	hot := NewHotScheduler(f.ctl)
	f.ctl.Expire(t0.Add(cfg.LeaderMoveCooldown - time.Second))
	k, ok := f.ctl.RecentLeaderMove(tabs[0].ID)
	require.True(t, ok)
	require.Equal(t, KindHot, k)
	for range cfg.HotRounds {
		require.Empty(t, hot.Schedule(f.c, cfg))
	}
	ops := NewBalanceLeaderScheduler(f.ctl, rand.New(rand.NewSource(1))).Schedule(f.c, cfg)
	require.Len(t, ops, 1)
	require.Equal(t, tabs[1].ID, ops[0].TabletID, "the balancer's own move does not hold it back; hot's does")

	f.ctl.Expire(t0.Add(cfg.LeaderMoveCooldown))
	_, ok = f.ctl.RecentLeaderMove(tabs[0].ID)
	require.False(t, ok)
	require.Len(t, hot.Schedule(f.c, cfg), 1)
}

// The leader balancer evens out counts with the coldest leaders it finds,
// so that it does not move load the hot scheduler spread.
func TestBalanceLeaderShedsColdestLeader(t *testing.T) {
	cfg := testConfig()
	cfg.LeaderScheduleLimit = 1
	tabs := keyed(1, 8, 1, 3, 5)
	for i, tb := range tabs {
		tb.ReadQPS = float64(1000 - 100*i)
	}
	f := newFixture(cfg, sixStoresThreeZones(), tabs...)
	for seed := int64(1); seed <= 5; seed++ {
		ops := NewBalanceLeaderScheduler(f.ctl, rand.New(rand.NewSource(seed))).Schedule(f.c, cfg)
		require.Len(t, ops, 1)
		require.Equal(t, tabs[len(tabs)-1].ID, ops[0].TabletID, "seed %d: the coldest leader moves", seed)
	}
}

func TestSnapshotLimit(t *testing.T) {
	cfg := testConfig()
	cfg.LocationLabels = nil
	cfg.TabletScheduleLimit = 100
	cfg.MaxSnapshotsPerStore = 2
	stores := []*Store{store(1, ""), store(2, ""), store(3, ""), store(4, ""), store(5, "")}
	// Leaders on 2 and 3 (the senders); replicas to move off store 1.
	tabs := keyed(1, 20, 2, 1, 3)
	for i, tb := range tabs {
		if i%2 == 1 {
			tb.LeaderStoreID = 3
		}
	}
	f := newFixture(cfg, stores, tabs...)
	ops := NewBalanceTabletScheduler(f.ctl, f.alloc, rand.New(rand.NewSource(1))).Schedule(f.c, cfg)
	touch := map[uint64]int{}
	for _, op := range ops {
		for _, s := range op.Steps {
			if al, ok := s.(AddLearner); ok {
				touch[al.Store]++
				touch[al.Sender]++
			}
		}
		require.NoError(t, f.ctl.AddOperator(op, t0))
	}
	require.NotEmpty(t, ops)
	for st, n := range touch {
		require.LessOrEqual(t, n, 2, "store %d", st)
	}
	// Stores 1-3 hold 20 each, 4 and 5 none: 4 and 5 receive two each.
	require.Len(t, ops, 4)

	// The controller refuses what exceeds the limit.
	extra := NewMoveOperator(f.c, tabs[10], f.alloc, KindBalanceTablet, 1, 4)
	require.ErrorIs(t, f.ctl.AddOperator(extra, t0), ErrSnapshotLimit)
	require.Equal(t, 4, f.ctl.SnapshotsInFlight(2)+f.ctl.SnapshotsInFlight(3))

	// Store-reported snapshots count too.
	stores[4].ReceivingSnapshots = 2
	f = newFixture(cfg, stores, tabs...)
	for _, op := range NewBalanceTabletScheduler(f.ctl, f.alloc, rand.New(rand.NewSource(1))).Schedule(f.c, cfg) {
		require.NotEqual(t, uint64(5), op.Steps[0].(AddLearner).Store)
	}
}

func TestControllerStepProgression(t *testing.T) {
	cfg := testConfig()
	stores := []*Store{store(1, "z1"), store(2, "z2"), store(3, "z3"), store(4, "z3")}
	tab := tablet(1, "a", "b", 1, 2, 3)
	f := newFixture(cfg, stores, tab)
	op := NewMoveOperator(f.c, tab, f.alloc, KindAdmin, 1, 4)
	require.Equal(t, append([]Step{TransferLeader{From: 1, To: 2}}, move(1, 4, 101, 1001, 2)...), op.Steps)
	require.NoError(t, f.ctl.AddOperator(op, t0))
	require.ErrorIs(t, f.ctl.AddOperator(NewTransferLeaderOperator(tab, KindBalanceLeader, 3), t0), ErrOperatorExists)
	require.Equal(t, Influence{Tablets: 1}, f.ctl.Influence(4))
	require.Equal(t, Influence{Tablets: -1, Leaders: -1}, f.ctl.Influence(1))

	// Report 1: nothing done yet → transfer leader.
	cmd := f.ctl.Dispatch(tab, t0.Add(time.Second))
	require.Equal(t, uint64(2), cmd.GetTransferLeader().GetToStoreId())
	require.Equal(t, uint64(1), cmd.GetEpoch().GetConfVersion())

	// Report 2: leader moved → add learner on store 4.
	r2 := tab.Clone()
	r2.LeaderStoreID = 2
	cmd = f.ctl.Dispatch(r2, t0.Add(2*time.Second))
	ch := cmd.GetChangeReplicas().GetChanges()
	require.Len(t, ch, 1)
	require.Equal(t, "ADD_LEARNER", ch[0].GetType().String())
	require.Equal(t, uint64(4), ch[0].GetStoreId())
	require.Equal(t, uint64(1001), ch[0].GetReplicaId())

	// Report 3: learner present but still pending → nothing to send; the
	// leader is streaming the snapshot.
	r3 := r2.Clone()
	r3.ConfVersion++
	r3.Replicas = append(r3.Replicas, Replica{ID: 1001, StoreID: 4, Learner: true})
	r3.PendingReplicas = []uint64{1001}
	require.Nil(t, f.ctl.Dispatch(r3, t0.Add(3*time.Second)))
	require.Equal(t, 1, f.ctl.SnapshotsInFlight(4))

	// Report 4: caught up → one joint change: promote 4 and remove 1.
	r4 := r3.Clone()
	r4.PendingReplicas = nil
	cmd = f.ctl.Dispatch(r4, t0.Add(4*time.Second))
	ch = cmd.GetChangeReplicas().GetChanges()
	require.Len(t, ch, 2)
	require.Equal(t, "PROMOTE_LEARNER", ch[0].GetType().String())
	require.Equal(t, uint64(4), ch[0].GetStoreId())
	require.Equal(t, "REMOVE", ch[1].GetType().String())
	require.Equal(t, uint64(1), ch[1].GetStoreId())
	require.Equal(t, uint64(2), cmd.GetEpoch().GetConfVersion())
	require.Equal(t, 0, f.ctl.SnapshotsInFlight(4))

	// Report 4b: in the joint state → wait for the leader to leave it.
	r4b := r4.Clone()
	r4b.ConfVersion++
	r4b.Joint = true
	require.Nil(t, f.ctl.Dispatch(r4b, t0.Add(4*time.Second)))
	require.NotNil(t, f.ctl.Operator(1))

	// Report 5: done (joint entered and left: two conf versions) → no
	// command, operator finished.
	r5 := tablet(1, "a", "b", 2, 3, 4)
	r5.Replicas[2].ID = 1001
	r5.ConfVersion = 4
	require.Nil(t, f.ctl.Dispatch(r5, t0.Add(5*time.Second)))
	require.Nil(t, f.ctl.Operator(1))
	ended := f.ctl.TakeEnded()
	require.Len(t, ended, 1)
	require.Equal(t, OpFinished, ended[0].Status())
	require.Equal(t, Influence{}, f.ctl.Influence(1))
	require.Equal(t, Influence{}, f.ctl.Influence(4))
}

func TestControllerTimeoutAndLimits(t *testing.T) {
	cfg := testConfig()
	cfg.LeaderScheduleLimit = 1
	stores := sixStoresThreeZones()
	tabs := keyed(1, 3, 1, 3, 5)
	f := newFixture(cfg, stores, tabs...)
	op := NewTransferLeaderOperator(tabs[0], KindBalanceLeader, 3)
	require.NoError(t, f.ctl.AddOperator(op, t0))
	require.Equal(t, cfg.LeaderTimeout, op.Timeout)
	require.ErrorIs(t, f.ctl.AddOperator(NewTransferLeaderOperator(tabs[1], KindBalanceLeader, 3), t0), ErrKindLimit)
	require.NotNil(t, f.ctl.Dispatch(tabs[0], t0.Add(cfg.LeaderTimeout)))
	// The leader never moves: the operator times out.
	require.Nil(t, f.ctl.Dispatch(tabs[0], t0.Add(cfg.LeaderTimeout+time.Second)))
	require.Equal(t, OpTimedOut, op.Status())
	require.Equal(t, 1, f.ctl.EndedCount(KindBalanceLeader, OpTimedOut))
	require.NoError(t, f.ctl.AddOperator(NewTransferLeaderOperator(tabs[1], KindBalanceLeader, 3), t0))

	// Expire handles tablets that stopped reporting.
	mv := NewMoveOperator(f.c, tabs[2], f.alloc, KindBalanceTablet, 3, 4)
	require.NoError(t, f.ctl.AddOperator(mv, t0))
	exp := f.ctl.Expire(t0.Add(cfg.Timeout))
	require.Len(t, exp, 1) // the leader transfer (LeaderTimeout)
	require.Equal(t, KindBalanceLeader, exp[0].Kind)
	exp = f.ctl.Expire(t0.Add(cfg.Timeout + time.Second))
	require.Len(t, exp, 1)
	require.Equal(t, mv, exp[0])
	require.Zero(t, f.ctl.Len())
	require.Zero(t, f.ctl.SnapshotsInFlight(4))

	// Higher priority replaces lower priority.
	bal := NewMoveOperator(f.c, tabs[2], f.alloc, KindBalanceTablet, 3, 4)
	require.NoError(t, f.ctl.AddOperator(bal, t0))
	rep := NewMoveOperator(f.c, tabs[2], f.alloc, KindReplicaRepair, 3, 4)
	require.NoError(t, f.ctl.AddOperator(rep, t0))
	require.Equal(t, OpCancelled, bal.Status())
	require.Equal(t, rep, f.ctl.Operator(3))
	require.Equal(t, 1, f.ctl.SnapshotsInFlight(4))
}

// An operator planned from one membership must not act on another: here a
// stray learner is to be removed, but before the command lands the learner
// is promoted by a change the operator never saw. Resending "remove the
// replica on store 4" with the newer epoch would cut the tablet to two
// voters; the Controller must drop the operator instead.
func TestControllerStaleOperator(t *testing.T) {
	cfg := testConfig()
	stores := []*Store{store(1, "z1"), store(2, "z2"), store(3, "z3"), store(4, "z3")}
	tab := tablet(1, "a", "b", 1, 2, 3)
	tab.Replicas = append(tab.Replicas, Replica{ID: 1001, StoreID: 4, Learner: true})
	tab.ConfVersion = 6
	f := newFixture(cfg, stores, tab)
	op := NewReplicaChecker(cfg, f.ctl, f.alloc).Check(f.c, tab)
	require.NotNil(t, op)
	require.Equal(t, []Step{RemoveReplica{Store: 4, ReplicaID: 1001}}, op.Steps)
	require.NoError(t, f.ctl.AddOperator(op, t0))

	// The command carries the epoch the operator was planned from.
	cmd := f.ctl.Dispatch(tab, t0.Add(time.Second))
	require.Equal(t, uint64(6), cmd.GetEpoch().GetConfVersion())

	// Meanwhile (an earlier move's joint change) 4 became a voter and 1
	// left: conf version 6 → 8, which one RemoveReplica cannot explain.
	moved := tablet(1, "a", "b", 2, 3, 4)
	moved.Replicas[2].ID = 1001
	moved.ConfVersion = 8
	require.Nil(t, f.ctl.Dispatch(moved, t0.Add(2*time.Second)))
	require.Equal(t, OpStale, op.Status())
	require.Nil(t, f.ctl.Operator(1))

	// A range change (split) makes a membership operator stale too.
	tab2 := tablet(2, "b", "c", 1, 2, 3)
	mv := NewMoveOperator(f.c, tab2, f.alloc, KindBalanceTablet, 3, 4)
	require.NoError(t, f.ctl.AddOperator(mv, t0))
	split := tab2.Clone()
	split.Version++
	require.Nil(t, f.ctl.Dispatch(split, t0.Add(time.Second)))
	require.Equal(t, OpStale, mv.Status())
}

// An operator planned from a report that did not yet show a learner left on
// store 4 by an earlier operator wants its own learner there. The next
// report shows the other learner: the step can never finish, so the
// operator ends at once instead of holding the tablet until its timeout
// (seen in TestSplitBalanceAndRepair: a down store's replicas stayed
// unrepaired for minutes).
func TestControllerAddLearnerConflict(t *testing.T) {
	cfg := testConfig()
	stores := []*Store{store(1, "z1"), store(2, "z2"), store(3, "z3"), store(4, "z3")}
	tab := tablet(1, "a", "b", 1, 2, 3)
	f := newFixture(cfg, stores, tab)
	op := NewMoveOperator(f.c, tab, f.alloc, KindReplicaRepair, 3, 4)
	require.NotNil(t, op)
	require.NoError(t, f.ctl.AddOperator(op, t0))
	require.NotNil(t, f.ctl.Dispatch(tab, t0.Add(time.Second)))

	// Its own learner, still receiving a snapshot: the step is under way.
	own := tab.Clone()
	own.Replicas = append(own.Replicas, Replica{ID: op.Steps[0].(AddLearner).ReplicaID, StoreID: 4, Learner: true})
	own.PendingReplicas = []uint64{op.Steps[0].(AddLearner).ReplicaID}
	own.ConfVersion++
	require.Nil(t, f.ctl.Dispatch(own, t0.Add(2*time.Second)))
	require.Equal(t, OpRunning, op.Status())

	// Somebody else's learner on the same store: stale.
	other := tab.Clone()
	other.Replicas = append(other.Replicas, Replica{ID: 999, StoreID: 4, Learner: true})
	other.ConfVersion++
	require.Nil(t, f.ctl.Dispatch(other, t0.Add(3*time.Second)))
	require.Equal(t, OpStale, op.Status())
	require.Nil(t, f.ctl.Operator(1))
}

// An administrator's move that replaced a running operator can end stale
// when that operator's step in flight lands after all (its learner on the
// very store the move targets). The request stands: once PD removed the
// stray learner, the move is planned again from the tablet as it is then
// and runs. (The nemesis saw `shale ctl move` come to nothing this way,
// the membership back where it started.) A request that keeps meeting
// changes it did not plan for is replanned at most maxReplans times.
func TestControllerReplansStaleAdminMove(t *testing.T) {
	cfg := testConfig()
	stores := []*Store{store(1, "z1"), store(2, "z2"), store(3, "z3"), store(4, "z3")}
	tab := tablet(1, "a", "b", 1, 2, 3)
	tab.ConfVersion = 1
	f := newFixture(cfg, stores, tab)
	balance := NewMoveOperator(f.c, tab, f.alloc, KindBalanceTablet, 3, 4)
	require.NoError(t, f.ctl.AddOperator(balance, t0))
	require.NotNil(t, f.ctl.Dispatch(tab, t0.Add(time.Second)), "the balance move sends its learner to store 4")

	replan := func(t *Tablet) *Operator {
		if !t.HasStore(1) || t.HasStore(4) {
			return nil
		}
		return NewMoveOperator(f.c, t, f.alloc, KindAdmin, 1, 4)
	}
	admin := NewMoveOperator(f.c, tab, f.alloc, KindAdmin, 1, 4)
	admin.Replan = replan
	require.NoError(t, f.ctl.AddOperator(admin, t0.Add(2*time.Second)))
	require.Equal(t, OpCancelled, balance.Status(), "the admin move replaces it")

	// The balance move's learner lands anyway: the admin move is stale,
	// and it cannot be planned again while the stray learner is there.
	stray := tab.Clone()
	stray.Replicas = append(stray.Replicas, Replica{ID: balance.Steps[0].(AddLearner).ReplicaID, StoreID: 4, Learner: true})
	stray.ConfVersion = 2
	require.Nil(t, f.ctl.Dispatch(stray, t0.Add(3*time.Second)))
	require.Equal(t, OpStale, admin.Status())
	require.Nil(t, f.ctl.Operator(1))
	require.Nil(t, f.ctl.Dispatch(stray, t0.Add(4*time.Second)), "not plannable with a learner on the target")

	// The stray learner removed: the move is planned from this membership.
	back := tab.Clone()
	back.ConfVersion = 3
	cmd := f.ctl.Dispatch(back, t0.Add(5*time.Second))
	require.NotNil(t, cmd, "the replanned move's first command")
	again := f.ctl.Operator(1)
	require.NotNil(t, again)
	require.Equal(t, KindAdmin, again.Kind)
	require.Equal(t, uint64(3), again.OriginConfVersion)
	require.Equal(t, admin.Desc, again.Desc, "the same move")

	// Every later plan goes stale too: after maxReplans the request lapses.
	cur := back
	for i := 2; i <= maxReplans+1; i++ {
		op := f.ctl.Operator(1)
		require.NotNil(t, op, "replan %d", i-1)
		moved := cur.Clone()
		moved.ConfVersion += 2 // two changes the plan does not explain
		require.Nil(t, f.ctl.Dispatch(moved, t0.Add(time.Duration(5+2*i)*time.Second)))
		require.Equal(t, OpStale, op.Status())
		f.ctl.Dispatch(moved, t0.Add(time.Duration(6+2*i)*time.Second))
		cur = moved
	}
	require.Nil(t, f.ctl.Operator(1), "no fourth plan")

	// A pending request lapses at its operator's timeout.
	tab2 := tablet(2, "b", "c", 1, 2, 3)
	mv := NewMoveOperator(f.c, tab2, f.alloc, KindAdmin, 1, 4)
	mv.Replan = replan
	require.NoError(t, f.ctl.AddOperator(mv, t0))
	late := tab2.Clone()
	late.ConfVersion += 2
	require.Nil(t, f.ctl.Dispatch(late, t0.Add(time.Second)))
	require.Equal(t, OpStale, mv.Status())
	require.Nil(t, f.ctl.Dispatch(late, t0.Add(mv.Timeout+time.Second)))
	require.Nil(t, f.ctl.Operator(2), "lapsed")
}

// A tablet in joint consensus gets no repair or tidying: its four voters are
// a transient state the leader leaves by itself.
func TestReplicaCheckerWaitsOutJointState(t *testing.T) {
	cfg := testConfig()
	stores := []*Store{store(1, "z1"), store(2, "z2"), store(3, "z3"), store(4, "z3")}
	tab := tablet(1, "a", "b", 1, 2, 3, 4)
	tab.Joint = true
	f := newFixture(cfg, stores, tab)
	require.Nil(t, NewReplicaChecker(cfg, f.ctl, f.alloc).Check(f.c, tab))
	tab.Joint = false
	require.NotNil(t, NewReplicaChecker(cfg, f.ctl, f.alloc).Check(f.c, tab), "four plain voters are one too many")
}
