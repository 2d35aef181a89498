package store_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/shaledb/shale/internal/errs"
	"github.com/shaledb/shale/internal/testutils"
	"github.com/shaledb/shale/proto/errorpb"
	"github.com/shaledb/shale/proto/kvpb"
	"github.com/shaledb/shale/proto/metapb"
	"github.com/shaledb/shale/proto/raftcmdpb"
	"github.com/shaledb/shale/tabletserver/storetest"
)

// Commands planned against one membership must not apply to another. The
// proposer checks the epoch, but another change can be committed ahead of
// a command in the log, so the apply-time checks are what keeps a split
// from creating a tablet with the wrong replicas, a stale membership change
// from undoing a newer one, and a frozen (merging) tablet's membership from
// changing under the merge.
func TestApplyTimeEpochChecks(t *testing.T) {
	c := storetest.Start(t, 4, nil)
	c.PutSchema(storetest.TestTable)
	lo, hi := storetest.TableSpan()
	c.Bootstrap(1, lo, hi, 1, 2, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	leader := c.WaitLeader(1)
	st := c.Nodes[leader].Store
	desc := func() *metapb.TabletDescriptor {
		for _, d := range st.Tablets() {
			if d.TabletId == 1 {
				return proto.Clone(d).(*metapb.TabletDescriptor)
			}
		}
		t.Fatal("tablet 1 not on its leader")
		return nil
	}
	before := desc()
	wantMismatch := func(what string, err error) {
		t.Helper()
		if _, ok := errs.As[*errorpb.EpochMismatch](err); !ok {
			t.Fatalf("%s: got %v, want an epoch mismatch", what, err)
		}
	}

	// A membership change planned from an older conf version.
	stale := proto.Clone(before).(*metapb.TabletDescriptor)
	stale.Epoch.ConfVersion--
	wantMismatch("stale add learner", st.ProposeAddLearnerForTest(ctx, 1, 40, 4, stale))

	// A split whose replicas were planned from an older conf version.
	splitEpoch := proto.Clone(before.Epoch).(*metapb.Epoch)
	splitEpoch.ConfVersion--
	reps := []*metapb.Replica{{ReplicaId: 21, StoreId: 1}, {ReplicaId: 22, StoreId: 2}, {ReplicaId: 23, StoreId: 3}}
	wantMismatch("stale split", st.ProposeSplitForTest(ctx, 1, splitEpoch, &raftcmdpb.SplitCommand{SplitKey: rowKey("m"), NewTabletId: 2, NewReplicas: reps}))

	// A freeze with a stale epoch is refused; with the current one it
	// holds, and then membership changes are refused until it is lifted.
	wantMismatch("stale freeze", st.ProposeFreezeForTest(ctx, 1, 99, splitEpoch))
	if err := st.ProposeFreezeForTest(ctx, 1, 99, before.Epoch); err != nil {
		t.Fatal(err)
	}
	_, err := st.ChangeReplicas(ctx, &kvpb.ChangeReplicasRequest{
		Header:  &kvpb.RequestHeader{TabletId: 1, Epoch: before.Epoch},
		Changes: []*kvpb.ReplicaChange{{Type: kvpb.ReplicaChange_ADD_LEARNER, StoreId: 4, ReplicaId: 41}},
	})
	if err == nil || !strings.Contains(err.Error(), "being merged") {
		t.Fatalf("membership change of a frozen tablet: got %v, want a refusal naming the merge", err)
	}

	// Nothing of the above changed the tablet, on any replica.
	for _, id := range []uint64{1, 2, 3} {
		testutils.SucceedsSoon(t, func() error {
			for _, d := range c.Nodes[id].Store.Tablets() {
				if d.TabletId == 1 && !proto.Equal(d, before) {
					t.Fatalf("store %d: tablet 1 is %v, want unchanged %v", id, d, before)
				}
			}
			return nil
		})
	}
	if n := len(c.Nodes[4].Store.Tablets()); n != 0 {
		t.Fatalf("store 4 holds %d tablets; no learner was to be added", n)
	}
}

// A follower that was cut off catches up by applying several membership
// changes in one apply batch. Each must build on the one before it (not on
// the descriptor published before the batch), or the follower's descriptor
// ends up with another conf version than the leader's, and every
// apply-time epoch check on it would then disagree with the other replicas.
func TestCatchUpAppliesChangesInOrder(t *testing.T) {
	c := storetest.Start(t, 4, nil)
	c.PutSchema(storetest.TestTable)
	lo, hi := storetest.TableSpan()
	boot := c.Bootstrap(1, lo, hi, 1, 2, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	lagging := uint64(3)
	if c.WaitLeader(1) == lagging {
		lagging = 2
	}
	c.Net.Partition([]uint64{1, 2, 3, 4}, []uint64{lagging})
	for _, ch := range [][]*kvpb.ReplicaChange{
		{{Type: kvpb.ReplicaChange_ADD_LEARNER, StoreId: 4, ReplicaId: 44}},
		{{Type: kvpb.ReplicaChange_PROMOTE_LEARNER, StoreId: 4}},
	} {
		err := c.Call(ctx, 1, func(cl kvpb.TabletClient) error {
			_, err := cl.ChangeReplicas(ctx, &kvpb.ChangeReplicasRequest{Header: &kvpb.RequestHeader{TabletId: 1}, Changes: ch})
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	c.Net.Heal()
	var want *metapb.TabletDescriptor
	testutils.SucceedsSoon(t, func() error {
		leader := c.WaitLeader(1)
		st, err := c.Nodes[leader].Store.TabletStatus(1)
		if err != nil {
			return err
		}
		want = st.Tablet
		for _, id := range []uint64{1, 2, 3, 4} {
			got, err := c.Nodes[id].Store.TabletStatus(1)
			if err != nil {
				return fmt.Errorf("store %d: %v", id, err)
			}
			if !proto.Equal(got.Tablet, want) {
				return fmt.Errorf("store %d has %v, leader has %v", id, got.Tablet, want)
			}
		}
		return nil
	})
	if len(want.Replicas) != 4 || want.Epoch.ConfVersion != boot.Epoch.ConfVersion+2 {
		t.Fatalf("final descriptor %v: want 4 voters, conf version raised by 2", want)
	}
}
