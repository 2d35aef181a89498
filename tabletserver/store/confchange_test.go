package store_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"go.etcd.io/raft/v3/raftpb"

	"github.com/shaledb/shale/internal/testutils"
	"github.com/shaledb/shale/proto/kvpb"
	"github.com/shaledb/shale/tabletserver/store"
	"github.com/shaledb/shale/tabletserver/storetest"
)

// A membership change raft drops without a word (it turns a conf change
// into an empty entry while an earlier one may be unapplied, as right
// after every election, or when the joint state does not fit) must not
// block the tablet's later changes: PD's replica repair stayed stuck on
// "add learner" (tests/pdcluster TestSplitBalanceAndRepair), every attempt
// refused as "another membership change of this tablet is in progress",
// until the tablet's leadership moved.
func TestDroppedConfChangeDoesNotBlockLaterOnes(t *testing.T) {
	c := storetest.Start(t, 4, nil)
	c.PutSchema(storetest.TestTable)
	lo, hi := storetest.TableSpan()
	c.Bootstrap(1, lo, hi, 1, 2, 3)
	ctx := ctxT(t, 60*time.Second)
	if err := c.Put(ctx, 1, "r", "v"); err != nil {
		t.Fatal(err)
	}
	leader := c.WaitLeader(1)
	// Leaving a joint state the tablet is not in: raft drops it. The
	// proposal can only time out (ProposalTimeout, 5 s here).
	pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := c.Nodes[leader].Store.ProposeLeaveJointForTest(pctx, 1); err == nil {
		t.Fatal("a conf change raft dropped reported success")
	}
	err := c.Call(ctx, 1, func(cl kvpb.TabletClient) error {
		_, err := cl.ChangeReplicas(ctx, &kvpb.ChangeReplicasRequest{Header: &kvpb.RequestHeader{TabletId: 1},
			Changes: []*kvpb.ReplicaChange{{Type: kvpb.ReplicaChange_ADD_LEARNER, StoreId: 4, ReplicaId: 44}}})
		return err
	})
	if err != nil {
		t.Fatalf("adding a learner after a dropped conf change: %v", err)
	}
}

// A learner is made a voter only once it has caught up: promoted before
// it has any data, it counts against the quorum at once. kvnemesis ended
// with a tablet in a joint configuration whose incoming half had two such
// voters (learners that could never be created on their stores) and no
// quorum left.
func TestLearnerPromotedOnlyOnceCaughtUp(t *testing.T) {
	c := storetest.Start(t, 4, nil)
	c.PutSchema(storetest.TestTable)
	lo, hi := storetest.TableSpan()
	c.Bootstrap(1, lo, hi, 1, 2, 3)
	ctx := ctxT(t, 60*time.Second)
	if err := c.Put(ctx, 1, "r", "v"); err != nil {
		t.Fatal(err)
	}
	c.Net.BlockSnapshots(4, true) // the learner cannot get its data
	change := func(typ kvpb.ReplicaChange_Type) error {
		leader := c.WaitLeader(1)
		_, err := c.Nodes[leader].Store.ChangeReplicas(ctx, &kvpb.ChangeReplicasRequest{Header: &kvpb.RequestHeader{TabletId: 1},
			Changes: []*kvpb.ReplicaChange{{Type: typ, StoreId: 4, ReplicaId: 44}}})
		return err
	}
	testutils.SucceedsSoon(t, func() error { return change(kvpb.ReplicaChange_ADD_LEARNER) })
	err := change(kvpb.ReplicaChange_PROMOTE_LEARNER)
	if err == nil || !strings.Contains(err.Error(), "not caught up") {
		t.Fatalf("promoting a learner without its data: got %v, want a refusal saying it has not caught up", err)
	}
	c.Net.BlockSnapshots(4, false)
	testutils.SucceedsSoon(t, func() error { return change(kvpb.ReplicaChange_PROMOTE_LEARNER) })
}

// A message that reaches a store while it destroys its removed replica
// must not bring the replica back: an uninitialized replica created then
// loaded the dying replica's raft state, which was deleted under it, and
// raft panicked ("requested index is unavailable due to compaction";
// kvnemesis).
func TestMessageDuringDestroyDoesNotResurrect(t *testing.T) {
	var stores map[uint64]*store.Store
	c := storetest.Start(t, 3, func(o *store.Options) {
		id := o.StoreID
		o.Knobs.BeforeDestroyData = func(tablet uint64) {
			// The leader's heartbeat, arriving in between.
			stores[id].DeliverRaftMessageForTest(tablet, 1, raftpb.Message{Type: raftpb.MsgHeartbeat, From: 1, To: id, Term: 100})
		}
	})
	stores = map[uint64]*store.Store{}
	for id, n := range c.Nodes {
		stores[id] = n.Store
	}
	c.PutSchema(storetest.TestTable)
	lo, hi := storetest.TableSpan()
	c.Bootstrap(1, lo, hi, 1, 2, 3)
	ctx := ctxT(t, 60*time.Second)
	if err := c.Put(ctx, 1, "r", "v"); err != nil {
		t.Fatal(err)
	}
	victim := uint64(3)
	if c.WaitLeader(1) == victim {
		victim = 2
	}
	testutils.SucceedsSoon(t, func() error {
		leader := c.WaitLeader(1)
		_, err := c.Nodes[leader].Store.ChangeReplicas(ctx, &kvpb.ChangeReplicasRequest{Header: &kvpb.RequestHeader{TabletId: 1},
			Changes: []*kvpb.ReplicaChange{{Type: kvpb.ReplicaChange_REMOVE, StoreId: victim}}})
		return err
	})
	testutils.SucceedsSoon(t, func() error {
		if stores[victim].HasReplicaForTest(1) {
			return fmt.Errorf("store %d still holds a replica of tablet 1", victim)
		}
		return nil
	})
}
