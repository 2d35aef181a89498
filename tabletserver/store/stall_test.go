package store_test

import (
	"testing"
	"time"

	"github.com/shaledb/shale/proto/kvpb"
	"github.com/shaledb/shale/tabletserver/store"
	"github.com/shaledb/shale/tabletserver/storetest"
)

// A store whose Ready loop is stuck for several election timeouts (an
// fsync of a multi-MiB entry on a slow disk) is alive: its followers must
// not elect around it, and a leader whose followers are both stuck must
// not step down (CheckQuorum). Either used to happen with every max-size
// value on a loaded machine (TestMaxSizeValues in kvclient/thriftgw).
func TestStuckRaftLoopKeepsLeaders(t *testing.T) {
	const stuck = 1500 * time.Millisecond // five election timeouts
	stall := map[uint64]chan time.Duration{}
	done := make(chan uint64, 3)
	for id := uint64(1); id <= 3; id++ {
		stall[id] = make(chan time.Duration, 1)
	}
	c := storetest.Start(t, 3, func(o *store.Options) {
		o.QuiesceAfterTicks = -1 // idle groups keep ticking, as busy ones do
		ch, id := stall[o.StoreID], o.StoreID
		o.Knobs.InReady = func() {
			select {
			case d := <-ch:
				time.Sleep(d) // models the slow write
				done <- id
			default:
			}
		}
	})
	c.PutSchema(storetest.TestTable)
	lo, hi := storetest.TableSpan()
	const tab = 1
	c.Bootstrap(tab, lo, hi, 1, 2, 3)
	ctx := ctxT(t, 60*time.Second)
	if err := c.Put(ctx, tab, "r", "v0"); err != nil {
		t.Fatal(err)
	}
	leader := c.WaitLeader(tab)
	st, err := c.Nodes[leader].Store.TabletStatus(tab)
	if err != nil {
		t.Fatal(err)
	}
	term := st.Term
	unchanged := func(what string) {
		t.Helper()
		for id, n := range c.Nodes {
			st, err := n.Store.TabletStatus(tab)
			if err != nil {
				t.Fatal(err)
			}
			if st.Term != term || st.LeaderReplicaId != replicaOn(st, leader) {
				t.Fatalf("%s: store %d sees term %d leader replica %d, want term %d and the replica on store %d", what, id, st.Term, st.LeaderReplicaId, term, leader)
			}
		}
	}
	stallStores := func(ids ...uint64) {
		t.Helper()
		for _, id := range ids {
			stall[id] <- stuck
		}
		for range ids {
			<-done
		}
	}

	stallStores(leader)
	unchanged("after the leader's store was stuck")

	var followers []uint64
	for id := range c.Nodes {
		if id != leader {
			followers = append(followers, id)
		}
	}
	stallStores(followers...)
	unchanged("after both followers' stores were stuck")

	if err := c.Put(ctx, tab, "r", "v1"); err != nil {
		t.Fatal(err)
	}
	unchanged("after a write")
}

// replicaOn is the ID of the tablet's replica on store (0 if none).
func replicaOn(st *kvpb.TabletStatusResponse, store uint64) uint64 {
	for _, r := range st.GetTablet().GetReplicas() {
		if r.StoreId == store {
			return r.ReplicaId
		}
	}
	return 0
}
