package store_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/shaledb/shale/internal/testutils"
	"github.com/shaledb/shale/proto/kvpb"
	"github.com/shaledb/shale/tabletserver/storetest"
)

// A replica removed while its store was down never applies its removal;
// told the current descriptor, the store destroys it.
func TestDestroyIfRemoved(t *testing.T) {
	c := storetest.Start(t, 4, nil)
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
	c.Stop(victim)
	var current *kvpb.ChangeReplicasResponse
	for _, ch := range [][]*kvpb.ReplicaChange{
		{{Type: kvpb.ReplicaChange_ADD_LEARNER, StoreId: 4, ReplicaId: 4}},
		{{Type: kvpb.ReplicaChange_PROMOTE_LEARNER, StoreId: 4}, {Type: kvpb.ReplicaChange_REMOVE, StoreId: victim}},
	} {
		err := c.Call(ctx, 1, func(cl kvpb.TabletClient) error {
			var err error
			current, err = cl.ChangeReplicas(ctx, &kvpb.ChangeReplicasRequest{Header: &kvpb.RequestHeader{TabletId: 1}, Changes: ch})
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	c.Restart(victim)
	s := c.Nodes[victim].Store
	if _, err := s.TabletStatus(1); err != nil {
		t.Fatalf("the stale replica should still exist before GC: %v", err)
	}
	// A descriptor that still lists the store, or is not newer, changes
	// nothing.
	st, _ := s.TabletStatus(1)
	if gone, err := s.DestroyIfRemoved(ctx, st.Tablet); err != nil || gone {
		t.Fatalf("destroyed on its own descriptor: %v %v", gone, err)
	}
	gone, err := s.DestroyIfRemoved(ctx, current.Tablet)
	if err != nil || !gone {
		t.Fatalf("stale replica not destroyed: %v %v", gone, err)
	}
	testutils.SucceedsSoon(t, func() error {
		if _, err := s.TabletStatus(1); err == nil {
			return fmt.Errorf("still there")
		}
		return nil
	})
	if err := c.MustRead(ctx, 1, "r", "v"); err != nil {
		t.Fatal(err)
	}
}

// A learner being added is created uninitialized by the leader's first
// message and waits for its snapshot. PD may not have heard of it yet, so
// its descriptor does not list the store; replica GC must not destroy (and
// tombstone) such a replica while its group is talking to it, or the
// addition could never finish.
func TestReplicaGCSparesLearnerAwaitingSnapshot(t *testing.T) {
	c := storetest.Start(t, 4, nil)
	c.PutSchema(storetest.TestTable)
	lo, hi := storetest.TableSpan()
	before := c.Bootstrap(1, lo, hi, 1, 2, 3)
	ctx := ctxT(t, 60*time.Second)
	if err := c.Put(ctx, 1, "r", "v"); err != nil {
		t.Fatal(err)
	}
	c.Net.BlockSnapshots(4, true)
	err := c.Call(ctx, 1, func(cl kvpb.TabletClient) error {
		_, err := cl.ChangeReplicas(ctx, &kvpb.ChangeReplicasRequest{Header: &kvpb.RequestHeader{TabletId: 1},
			Changes: []*kvpb.ReplicaChange{{Type: kvpb.ReplicaChange_ADD_LEARNER, StoreId: 4, ReplicaId: 44}}})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	s4 := c.Nodes[4].Store
	testutils.SucceedsSoon(t, func() error {
		if ids := s4.FollowerTablets(); len(ids) != 1 || ids[0] != 1 {
			return fmt.Errorf("store 4 holds %v, want an uninitialized replica of tablet 1", ids)
		}
		return nil
	})
	// PD's (stale) view: the descriptor from before the learner.
	if gone, err := s4.DestroyIfRemoved(ctx, before); err != nil || gone {
		t.Fatalf("learner awaiting its snapshot destroyed by replica GC: gone=%v err=%v", gone, err)
	}
	c.Net.BlockSnapshots(4, false)
	testutils.SucceedsSoon(t, func() error {
		st, err := s4.TabletStatus(1)
		if err != nil || st.Tablet == nil {
			return fmt.Errorf("learner not initialized yet: %v", err)
		}
		return nil
	})
}

// A replica removed while its store was down, whose store was then added
// back under a new replica ID, is stale although PD's descriptor lists the
// store: replica GC destroys it (tombstoning only its own ID), so that the
// new replica can come into being. kvnemesis: the old replica kept the
// slot, every message to the new learner was dropped, and the tablet
// waited for a learner that never caught up.
func TestDestroyIfRemovedAndReAdded(t *testing.T) {
	c := storetest.Start(t, 3, nil)
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
	c.Stop(victim)
	var current *kvpb.ChangeReplicasResponse
	for _, ch := range [][]*kvpb.ReplicaChange{
		{{Type: kvpb.ReplicaChange_REMOVE, StoreId: victim}},
		{{Type: kvpb.ReplicaChange_ADD_LEARNER, StoreId: victim, ReplicaId: 30}},
	} {
		err := c.Call(ctx, 1, func(cl kvpb.TabletClient) error {
			var err error
			current, err = cl.ChangeReplicas(ctx, &kvpb.ChangeReplicasRequest{Header: &kvpb.RequestHeader{TabletId: 1}, Changes: ch})
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	c.Restart(victim)
	s := c.Nodes[victim].Store
	gone, err := s.DestroyIfRemoved(ctx, current.Tablet)
	if err != nil || !gone {
		t.Fatalf("the replica removed and re-added under a new ID was not destroyed: %v %v", gone, err)
	}
	testutils.SucceedsSoon(t, func() error {
		st, err := s.TabletStatus(1)
		if err != nil {
			return err
		}
		for _, r := range st.Tablet.Replicas {
			if r.StoreId == victim && r.ReplicaId == 30 {
				return nil
			}
		}
		return fmt.Errorf("store %d has %v, want the new learner 30", victim, st.Tablet)
	})
}
