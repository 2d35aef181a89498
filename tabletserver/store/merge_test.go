package store_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/shaledb/shale/proto/kvpb"
	"github.com/shaledb/shale/tabletserver/storetest"
)

// Split a tablet, write to both halves, merge them back under writes and
// after a restart of every store: every acknowledged row is served by the
// merged tablet and the absorbed tablet is gone everywhere.
func TestMergeUnderWrites(t *testing.T) {
	c := storetest.Start(t, 3, nil)
	c.PutSchema(storetest.TestTable)
	lo, hi := storetest.TableSpan()
	c.Bootstrap(1, lo, hi, 1, 2, 3)
	ctx := ctxT(t, 90*time.Second)

	err := c.Call(ctx, 1, func(cl kvpb.TabletClient) error {
		_, err := cl.SplitTablet(ctx, &kvpb.SplitTabletRequest{Header: &kvpb.RequestHeader{TabletId: 1}, SplitKey: rowKey("m"), NewTabletId: 2, NewReplicaIds: []uint64{11, 12, 13}})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	// After the split the left's leader campaigns for the right, so both
	// are usually led from the same store; make sure of it.
	leader := c.WaitLeader(1)
	storetest.SucceedsSoon(t, func() error {
		if l := c.WaitLeader(2); l != leader {
			_, err := c.Nodes[l].Client.TransferLeader(ctx, &kvpb.TransferLeaderRequest{Header: &kvpb.RequestHeader{TabletId: 2}, ToStoreId: leader})
			return fmt.Errorf("tablet 2 led by %d, want %d (%v)", l, leader, err)
		}
		return nil
	})

	var mu sync.Mutex
	merged := false
	route := func(row string) uint64 {
		mu.Lock()
		defer mu.Unlock()
		if !merged && row >= "m" {
			return 2
		}
		return 1
	}
	w := &writer{acked: map[string]string{}}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for _, p := range []string{"c", "t"} {
		wg.Add(1)
		go func(p string) { defer wg.Done(); w.run(ctx, c, route, p, stop) }(p)
	}
	storetest.SucceedsSoon(t, func() error {
		if w.n.Load() < 40 {
			return fmt.Errorf("%d writes", w.n.Load())
		}
		return nil
	})
	resp, err := c.Nodes[leader].Client.MergeTablets(ctx, &kvpb.MergeTabletsRequest{Header: &kvpb.RequestHeader{TabletId: 1}, RightTabletId: 2})
	if err != nil {
		t.Fatal(err)
	}
	if string(resp.Tablet.StartKey) != string(lo) || string(resp.Tablet.EndKey) != string(hi) {
		t.Fatalf("merged tablet covers [%x, %x)", resp.Tablet.StartKey, resp.Tablet.EndKey)
	}
	mu.Lock()
	merged = true
	mu.Unlock()
	before := w.n.Load()
	storetest.SucceedsSoon(t, func() error {
		if w.n.Load() < before+40 {
			return fmt.Errorf("%d writes after merge", w.n.Load()-before)
		}
		return nil
	})
	close(stop)
	wg.Wait()

	check := func(phase string) {
		t.Helper()
		storetest.SucceedsSoon(t, func() error {
			for id, n := range c.Nodes {
				if _, err := n.Store.TabletStatus(2); err == nil {
					return fmt.Errorf("%s: store %d still has tablet 2", phase, id)
				}
				st, err := n.Store.TabletStatus(1)
				if err != nil {
					return err
				}
				if string(st.Tablet.EndKey) != string(hi) {
					return fmt.Errorf("%s: store %d: tablet 1 ends at %x", phase, id, st.Tablet.EndKey)
				}
			}
			return nil
		})
		for row, val := range w.acked {
			if err := c.MustRead(ctx, 1, row, val); err != nil {
				t.Fatalf("%s: %v", phase, err)
			}
		}
	}
	check("after merge")
	for id := range c.Nodes {
		c.Stop(id)
	}
	for id := range c.Nodes {
		c.Restart(id)
	}
	check("after restart")
	// The merged tablet takes writes in both former halves.
	for _, row := range []string{"a-new", "z-new"} {
		if err := c.Put(ctx, 1, row, "x"); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("%d acknowledged writes verified across the merge", len(w.acked))
}

// Merging tablets that are not neighbours is refused and changes nothing.
func TestMergeRejectsNonAdjacent(t *testing.T) {
	c := storetest.Start(t, 1, nil)
	c.PutSchema(storetest.TestTable)
	c.Bootstrap(1, rowKey("a"), rowKey("c"), 1)
	c.Bootstrap(2, rowKey("d"), rowKey("f"), 1)
	ctx := ctxT(t, 10*time.Second)
	if _, err := c.Nodes[1].Client.MergeTablets(ctx, &kvpb.MergeTabletsRequest{Header: &kvpb.RequestHeader{TabletId: 1}, RightTabletId: 2}); err == nil {
		t.Fatal("merge of non-adjacent tablets succeeded")
	}
	if err := c.Put(ctx, 2, "e", "still-writable"); err != nil {
		t.Fatal(err)
	}
}
