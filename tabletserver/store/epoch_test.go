package store_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/shaledb/shale/internal/errs"
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
		storetest.SucceedsSoon(t, func() error {
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
