package store_test

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.etcd.io/raft/v3/raftpb"

	"github.com/shaledb/shale/internal/testutils"
	"github.com/shaledb/shale/proto/kvpb"
	"github.com/shaledb/shale/proto/transportpb"
	"github.com/shaledb/shale/tabletserver/store"
	"github.com/shaledb/shale/tabletserver/storetest"
)

// getOn reads row's f:q value through one store (no re-routing).
func getOn(ctx context.Context, c *storetest.Cluster, store uint64, row string) (string, error) {
	resp, err := c.Nodes[store].Client.Get(ctx, &kvpb.GetRequest{Header: &kvpb.RequestHeader{TabletId: 1}, TableId: storetest.TestTable.TableId, RowKey: []byte(row)})
	if err != nil {
		return "", err
	}
	for _, cell := range resp.GetRow().GetCells() {
		if cell.Family == "f" && string(cell.Qualifier) == "q" {
			return string(cell.Value), nil
		}
	}
	return "", nil
}

// A leader with a lease serves reads without a raft round; cut off from
// its followers it loses the lease before they can elect another leader,
// so it never returns a value older than the new leader's writes.
func TestLeaseReads(t *testing.T) {
	c := storetest.Start(t, 3, nil)
	c.PutSchema(storetest.TestTable)
	lo, hi := storetest.TableSpan()
	c.Bootstrap(1, lo, hi, 1, 2, 3)
	ctx := ctxT(t, 60*time.Second)
	if err := c.Put(ctx, 1, "k", "old"); err != nil {
		t.Fatal(err)
	}
	old := c.WaitLeader(1)
	st := c.Nodes[old].Store
	before := st.LeaseReads()
	for i := 0; i < 50; i++ {
		if v, err := getOn(ctx, c, old, "k"); err != nil || v != "old" {
			t.Fatalf("read %d on the leader: %q, %v", i, v, err)
		}
	}
	if n := st.LeaseReads() - before; n < 25 {
		t.Fatalf("only %.0f of 50 reads used the lease", n)
	}

	// Cut the leader off; the others elect a new one and write.
	var others []uint64
	for id := range c.Nodes {
		if id != old {
			others = append(others, id)
		}
	}
	c.Net.Partition([]uint64{old}, others)
	var newLeader uint64
	testutils.SucceedsSoon(t, func() error {
		for _, id := range others {
			s, err := c.Nodes[id].Store.TabletStatus(1)
			if err != nil {
				continue
			}
			for _, rep := range s.Tablet.Replicas {
				if rep.ReplicaId == s.LeaderReplicaId && rep.StoreId == id {
					newLeader = id
					return nil
				}
			}
		}
		return context.DeadlineExceeded
	})
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	_, err := c.Nodes[newLeader].Client.MutateRow(wctx, &kvpb.MutateRowRequest{
		Header: &kvpb.RequestHeader{TabletId: 1}, TableId: storetest.TestTable.TableId, RowKey: []byte("k"),
		Mutations: []*kvpb.Mutation{storetest.SetCell("f", "q", "new")},
	})
	cancel()
	if err != nil {
		t.Fatal(err)
	}
	// The old leader may still believe it leads, but its lease is gone:
	// a read there fails or waits, and never returns "old".
	rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	v, err := getOn(rctx, c, old, "k")
	cancel()
	if err == nil && v == "old" {
		t.Fatal("the partitioned former leader served a stale read")
	}
	c.Net.Heal()
	if err := c.MustRead(ctx, 1, "k", "new"); err != nil {
		t.Fatal(err)
	}
}

// A leadership transfer that a follower asked for (raft forwards its
// MsgTransferLeader to the leader) ends the leader's lease when the leader
// sends MsgTimeoutNow. The old leader is cut off right then, so it keeps
// believing it leads; a reader hammering it never gets the value the new
// leader has overwritten. (The lease was once dropped only by the admin
// TransferLeader API.)
func TestLeaseEndsOnFollowerInitiatedTransfer(t *testing.T) {
	var cut atomic.Uint64 // a store whose inbound raft traffic is dropped
	c := storetest.Start(t, 3, func(o *store.Options) {
		// A 2s election timeout: a 1.6s lease, renewed in its last
		// third, leaves the new leader ample time to write inside it.
		o.ElectionTicks = 100
		inner := o.Knobs.Transport.SendFilter
		o.Knobs.Transport.SendFilter = func(from, to uint64, m *transportpb.RaftMessage) (bool, time.Duration) {
			var rm raftpb.Message
			if m != nil && rm.Unmarshal(m.Message) == nil && rm.Type == raftpb.MsgTimeoutNow {
				cut.Store(from)
			}
			if to == cut.Load() {
				return true, 0
			}
			return inner(from, to, m)
		}
	})
	c.PutSchema(storetest.TestTable)
	lo, hi := storetest.TableSpan()
	c.Bootstrap(1, lo, hi, 1, 2, 3)
	ctx := ctxT(t, 90*time.Second)
	if err := c.Put(ctx, 1, "k", "old"); err != nil {
		t.Fatal(err)
	}
	old := c.WaitLeader(1)
	target := old%3 + 1
	leaseReads := c.Nodes[old].Store.LeaseReads

	// Read on the old leader without pause: its lease stays fresh until
	// the cut. A read that starts after the new value was acknowledged
	// must not return the old one.
	var wrote atomic.Bool
	stale := make(chan string, 1)
	stop := make(chan struct{})
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		for {
			select {
			case <-stop:
				return
			default:
			}
			after := wrote.Load()
			rctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
			v, err := getOn(rctx, c, old, "k")
			cancel()
			if after && err == nil && v == "old" {
				stale <- v
				return
			}
		}
	}()
	defer func() { close(stop); <-readerDone }()
	before := leaseReads()
	testutils.SucceedsSoon(t, func() error {
		if n := leaseReads() - before; n < 20 {
			return fmt.Errorf("%.0f lease reads on the leader so far", n)
		}
		return nil
	})

	if err := c.Nodes[target].Store.TransferLeadershipFromForTest(ctx, 1, target); err != nil {
		t.Fatal(err)
	}
	testutils.SucceedsSoon(t, func() error {
		if cut.Load() != old {
			return fmt.Errorf("store %d sent no MsgTimeoutNow yet", old)
		}
		return nil
	})
	testutils.SucceedsSoon(t, func() error {
		wctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		_, err := c.Nodes[target].Client.MutateRow(wctx, &kvpb.MutateRowRequest{
			Header: &kvpb.RequestHeader{TabletId: 1}, TableId: storetest.TestTable.TableId, RowKey: []byte("k"),
			Mutations: []*kvpb.Mutation{storetest.SetCell("f", "q", "new")},
		})
		return err
	})
	wrote.Store(true)
	// Give the reader the rest of any lease the old leader could hold.
	select {
	case v := <-stale:
		t.Fatalf("the former leader served %q after the new leader wrote \"new\"", v)
	case <-time.After(2 * time.Second):
	}
	cut.Store(0)
	if err := c.MustRead(ctx, 1, "k", "new"); err != nil {
		t.Fatal(err)
	}
}

// A tablet frozen for a merge serves no reads, from its lease or
// otherwise: the merge's target may already own the range.
func TestFrozenTabletServesNoLeaseReads(t *testing.T) {
	recoverAfter := time.Duration(-1)
	c, _ := abandonedMerge(t, &recoverAfter, nil, nil)
	ctx := ctxT(t, 30*time.Second)
	leader := c.WaitLeader(2)
	s := c.Nodes[leader].Store
	before := s.LeaseReads()
	for i := 0; i < 10; i++ {
		_, err := c.Nodes[leader].Client.Get(ctx, &kvpb.GetRequest{Header: &kvpb.RequestHeader{TabletId: 2}, TableId: storetest.TestTable.TableId, RowKey: []byte("t")})
		if err == nil || !strings.Contains(err.Error(), "being merged") {
			t.Fatalf("read %d of the frozen tablet: %v, want a 'being merged' refusal", i, err)
		}
	}
	if n := s.LeaseReads() - before; n != 0 {
		t.Fatalf("%.0f reads of the frozen tablet used the lease", n)
	}
}
