package store_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shaledb/shale/internal/testutils"
	"github.com/shaledb/shale/proto/kvpb"
	"github.com/shaledb/shale/tabletserver/store"
	"github.com/shaledb/shale/tabletserver/storetest"
)

func ctxT(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func startTablet(t *testing.T, n int) (*storetest.Cluster, uint64) {
	c := storetest.Start(t, n, nil)
	c.PutSchema(storetest.TestTable)
	lo, hi := storetest.TableSpan()
	stores := []uint64{1, 2, 3}[:min(n, 3)]
	c.Bootstrap(1, lo, hi, stores...)
	return c, 1
}

func TestReplicatedWriteRead(t *testing.T) {
	c, tab := startTablet(t, 3)
	ctx := ctxT(t, 30*time.Second)
	for i := 0; i < 50; i++ {
		if err := c.Put(ctx, tab, fmt.Sprintf("row%03d", i), fmt.Sprintf("v%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < 50; i++ {
		if err := c.MustRead(ctx, tab, fmt.Sprintf("row%03d", i), fmt.Sprintf("v%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	// Every replica applied the same data.
	testutils.SucceedsSoon(t, func() error {
		for id := range c.Nodes {
			if st, err := c.Nodes[id].Store.TabletStatus(tab); err != nil || st.AppliedIndex < 50 {
				return fmt.Errorf("store %d behind: %v %v", id, st, err)
			}
		}
		return nil
	})
}

// Raft entries stay cached in memory only until applied: once every replica
// applied the writes, no replica holds any.
func TestReplicatedWriteReadEmptiesEntryCache(t *testing.T) {
	c, tab := startTablet(t, 3)
	ctx := ctxT(t, 30*time.Second)
	for i := 0; i < 20; i++ {
		if err := c.Put(ctx, tab, fmt.Sprintf("row%03d", i), "v"); err != nil {
			t.Fatal(err)
		}
	}
	testutils.SucceedsSoon(t, func() error {
		for id := range c.Nodes {
			if n := c.Nodes[id].Store.RaftCacheBytesForTest(tab); n != 0 {
				return fmt.Errorf("store %d caches %d bytes of raft entries", id, n)
			}
		}
		return nil
	})
}

// (a) Every write acknowledged before the leader is killed is readable after
// re-election.
func TestLeaderKillKeepsAcknowledgedWrites(t *testing.T) {
	c, tab := startTablet(t, 3)
	ctx := ctxT(t, 60*time.Second)
	acked := map[string]string{}
	for round := 0; round < 3; round++ {
		for i := 0; i < 10; i++ {
			row, val := fmt.Sprintf("r%d-%d", round, i), fmt.Sprintf("v%d-%d", round, i)
			if err := c.Put(ctx, tab, row, val); err != nil {
				t.Fatal(err)
			}
			acked[row] = val
		}
		leader := c.WaitLeader(tab)
		c.Stop(leader)
		newLeader := c.WaitLeader(tab)
		if newLeader == leader {
			t.Fatalf("leader %d still reported after stop", leader)
		}
		for row, val := range acked {
			if err := c.MustRead(ctx, tab, row, val); err != nil {
				t.Fatalf("round %d: %v", round, err)
			}
		}
		c.Restart(leader)
	}
}

// (c) A restarted store recovers all its tablets.
func TestRestartRecoversTablets(t *testing.T) {
	c := storetest.Start(t, 3, nil)
	c.PutSchema(storetest.TestTable)
	ctx := ctxT(t, 60*time.Second)
	// Five tablets over disjoint row ranges of the test table.
	bounds := []string{"", "b", "d", "f", "h", ""}
	lo, hi := storetest.TableSpan()
	for i := 0; i < 5; i++ {
		s, e := lo, hi
		if bounds[i] != "" {
			s = rowKey(bounds[i])
		}
		if bounds[i+1] != "" {
			e = rowKey(bounds[i+1])
		}
		c.Bootstrap(uint64(10+i), s, e, 1, 2, 3)
	}
	rows := map[string]uint64{"a1": 10, "c1": 11, "e1": 12, "g1": 13, "z1": 14}
	for row, tab := range rows {
		if err := c.Put(ctx, tab, row, "val-"+row); err != nil {
			t.Fatal(err)
		}
	}
	for id := range c.Nodes {
		c.Stop(id)
	}
	for id := range c.Nodes {
		c.Restart(id)
	}
	for id := range c.Nodes {
		if got := len(c.Nodes[id].Store.Tablets()); got != 5 {
			t.Fatalf("store %d recovered %d tablets, want 5", id, got)
		}
	}
	for row, tab := range rows {
		if err := c.MustRead(ctx, tab, row, "val-"+row); err != nil {
			t.Fatal(err)
		}
	}
}

// A write to a row outside the tablet is refused without being applied.
func TestKeyNotInTablet(t *testing.T) {
	c := storetest.Start(t, 1, nil)
	c.PutSchema(storetest.TestTable)
	c.Bootstrap(1, rowKey("a"), rowKey("m"), 1)
	ctx := ctxT(t, 10*time.Second)
	_, err := c.Nodes[1].Client.MutateRow(ctx, &kvpb.MutateRowRequest{
		Header: &kvpb.RequestHeader{TabletId: 1}, TableId: storetest.TestTable.TableId, RowKey: []byte("x"),
		Mutations: []*kvpb.Mutation{storetest.SetCell("f", "q", "v")},
	})
	if err == nil {
		t.Fatal("write outside the tablet succeeded")
	}
}

// Closing a store while requests are in flight neither panics nor leaks
// engine iterators: requests finish or fail with ErrClosed first.
func TestCloseDuringRequests(t *testing.T) {
	for round := 0; round < 5; round++ {
		c, tab := startTablet(t, 1)
		ctx := ctxT(t, 20*time.Second)
		if err := c.Put(ctx, tab, "row", "v"); err != nil {
			t.Fatal(err)
		}
		s := c.Nodes[1].Store
		var wg sync.WaitGroup
		var ops atomic.Int64
		stop := make(chan struct{})
		for g := 0; g < 8; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					select {
					case <-stop:
						return
					default:
					}
					ops.Add(1)
					_, _ = s.Get(ctx, &kvpb.GetRequest{Header: &kvpb.RequestHeader{TabletId: tab}, TableId: storetest.TestTable.TableId, RowKey: []byte("row")})
					_, _ = s.MutateRow(ctx, &kvpb.MutateRowRequest{Header: &kvpb.RequestHeader{TabletId: tab}, TableId: storetest.TestTable.TableId, RowKey: []byte("row"),
						Mutations: []*kvpb.Mutation{storetest.SetCell("f", "q", "w")}})
				}
			}()
		}
		// Requests are in flight: the goroutines have started 16.
		testutils.SucceedsSoon(t, func() error {
			if n := ops.Load(); n < 16 {
				return fmt.Errorf("%d requests started, want 16", n)
			}
			return nil
		})
		c.Stop(1) // fails the test if Close reports leaked iterators
		close(stop)
		wg.Wait()
		if _, err := s.Get(ctx, &kvpb.GetRequest{Header: &kvpb.RequestHeader{TabletId: tab}, TableId: storetest.TestTable.TableId, RowKey: []byte("row")}); !errors.Is(err, store.ErrClosed) {
			t.Fatalf("Get on a closed store: %v, want ErrClosed", err)
		}
	}
}

// ReadLocal serves a follower's applied state without a lease or
// ReadIndex, where Get on a follower is refused with NotLeader.
func TestReadLocalOnFollower(t *testing.T) {
	c, tab := startTablet(t, 3)
	ctx := ctxT(t, 30*time.Second)
	if err := c.Put(ctx, tab, "row", "v1"); err != nil {
		t.Fatal(err)
	}
	leader := c.WaitLeader(tab)
	follower := uint64(1)
	if follower == leader {
		follower = 2
	}
	req := &kvpb.GetRequest{Header: &kvpb.RequestHeader{TabletId: tab}, TableId: storetest.TestTable.TableId, RowKey: []byte("row")}
	if _, err := c.Nodes[follower].Store.Get(ctx, req); err == nil {
		t.Fatal("Get on a follower succeeded; want NotLeader")
	}
	testutils.SucceedsSoon(t, func() error {
		resp, err := c.Nodes[follower].Store.ReadLocal(ctx, req)
		if err != nil {
			return err
		}
		if resp.Row == nil || len(resp.Row.Cells) != 1 || string(resp.Row.Cells[0].Value) != "v1" {
			return fmt.Errorf("follower %d read %v, want v1", follower, resp.Row)
		}
		return nil
	})
	other := &kvpb.GetRequest{Header: &kvpb.RequestHeader{TabletId: 999}, TableId: storetest.TestTable.TableId, RowKey: []byte("row")}
	if _, err := c.Nodes[follower].Store.ReadLocal(ctx, other); err == nil {
		t.Fatal("ReadLocal of an unknown tablet succeeded")
	}
}
