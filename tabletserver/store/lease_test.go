package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/shaledb/shale/proto/kvpb"
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
	storetest.SucceedsSoon(t, func() error {
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
