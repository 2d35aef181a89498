package store_test

import (
	"bytes"
	"fmt"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/shaledb/shale/internal/errs"
	"github.com/shaledb/shale/internal/testutils"
	"github.com/shaledb/shale/proto/errorpb"
	"github.com/shaledb/shale/proto/kvpb"
	"github.com/shaledb/shale/proto/metapb"
	"github.com/shaledb/shale/proto/raftcmdpb"
	"github.com/shaledb/shale/tabletserver/store"
	"github.com/shaledb/shale/tabletserver/storetest"
)

// A batch split cuts a tablet at several keys in one raft command: every
// replica gets all new tablets with exact bounds and one epoch, every row
// stays readable from the tablet that now owns it, the leader's OnSplit
// hears of all tablets at once, a duplicate of the command (or of the
// request) changes nothing, and a restart replays nothing twice.
func TestBatchSplit(t *testing.T) {
	var mu sync.Mutex
	var reported [][]*metapb.TabletDescriptor
	c := storetest.Start(t, 3, func(o *store.Options) {
		o.OnSplit = func(ts []*metapb.TabletDescriptor) {
			mu.Lock()
			reported = append(reported, ts)
			mu.Unlock()
		}
	})
	c.PutSchema(storetest.TestTable)
	lo, hi := storetest.TableSpan()
	c.Bootstrap(1, lo, hi, 1, 2, 3)
	ctx := ctxT(t, 90*time.Second)
	rows := []string{"a", "e", "f", "g", "m", "n", "s", "t", "z"}
	for _, r := range rows {
		if err := c.Put(ctx, 1, r, "v"+r); err != nil {
			t.Fatal(err)
		}
	}
	before := tabletOn(t, c, c.WaitLeader(1), 1)

	req := &kvpb.SplitTabletRequest{
		Header:        &kvpb.RequestHeader{TabletId: 1, Epoch: before.Epoch},
		SplitKeys:     [][]byte{rowKey("f"), rowKey("m"), rowKey("t")},
		NewTabletIds:  []uint64{2, 3, 4},
		NewReplicaIds: []uint64{21, 22, 23, 31, 32, 33, 41, 42, 43},
	}
	var resp *kvpb.SplitTabletResponse
	if err := c.Call(ctx, 1, func(cl kvpb.TabletClient) (err error) {
		resp, err = cl.SplitTablet(ctx, req)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	want := []struct {
		id         uint64
		start, end []byte
	}{{1, lo, rowKey("f")}, {2, rowKey("f"), rowKey("m")}, {3, rowKey("m"), rowKey("t")}, {4, rowKey("t"), hi}}
	if len(resp.Tablets) != len(want) {
		t.Fatalf("split returned %d tablets, want %d", len(resp.Tablets), len(want))
	}
	for i, w := range want {
		d := resp.Tablets[i]
		if d.TabletId != w.id || !bytes.Equal(d.StartKey, w.start) || !bytes.Equal(d.EndKey, w.end) || d.Epoch.Version != before.Epoch.Version+3 {
			t.Fatalf("tablet %d of the split is %v, want id %d [%x, %x) version %d", i, d, w.id, w.start, w.end, before.Epoch.Version+3)
		}
	}
	mu.Lock()
	if len(reported) != 1 || len(reported[0]) != 4 {
		t.Fatalf("OnSplit heard %d reports (%v), want one with 4 tablets", len(reported), reported)
	}
	mu.Unlock()

	checkTablets := func() {
		t.Helper()
		testutils.SucceedsSoon(t, func() error {
			for id, n := range c.Nodes {
				if got := len(n.Store.Tablets()); got != 4 {
					return fmt.Errorf("store %d has %d tablets, want 4", id, got)
				}
				for i, w := range want {
					st, err := n.Store.TabletStatus(w.id)
					if err != nil {
						return fmt.Errorf("store %d tablet %d: %v", id, w.id, err)
					}
					if !proto.Equal(st.Tablet, resp.Tablets[i]) {
						return fmt.Errorf("store %d has tablet %v, want %v", id, st.Tablet, resp.Tablets[i])
					}
				}
			}
			return nil
		})
		owner := func(row string) uint64 {
			k := rowKey(row)
			for i := len(want) - 1; i >= 0; i-- {
				if bytes.Compare(k, want[i].start) >= 0 {
					return want[i].id
				}
			}
			return 0
		}
		for _, r := range rows {
			if err := c.MustRead(ctx, owner(r), r, "v"+r); err != nil {
				t.Fatalf("row %s in tablet %d: %v", r, owner(r), err)
			}
			// No other tablet serves it.
			other := owner(r)%4 + 1
			_, err := c.Nodes[c.WaitLeader(other)].Client.Get(ctx, &kvpb.GetRequest{Header: &kvpb.RequestHeader{TabletId: other}, TableId: storetest.TestTable.TableId, RowKey: []byte(r)})
			if _, ok := errs.As[*errorpb.KeyNotInTablet](err); !ok {
				t.Fatalf("row %s read from tablet %d: %v, want KeyNotInTablet", r, other, err)
			}
		}
	}
	checkTablets()

	// The same request again: refused by its stale epoch.
	leader := c.WaitLeader(1)
	_, err := c.Nodes[leader].Client.SplitTablet(ctx, req)
	if _, ok := errs.As[*errorpb.EpochMismatch](err); !ok {
		t.Fatalf("repeated split request: %v, want EpochMismatch", err)
	}
	// The same raft command again (a duplicate proposal): refused at apply.
	var splits []*raftcmdpb.SplitCommand
	for i, k := range req.SplitKeys {
		var reps []*metapb.Replica
		for j, r := range before.Replicas {
			reps = append(reps, &metapb.Replica{ReplicaId: req.NewReplicaIds[i*3+j], StoreId: r.StoreId})
		}
		splits = append(splits, &raftcmdpb.SplitCommand{SplitKey: k, NewTabletId: req.NewTabletIds[i], NewReplicas: reps})
	}
	err = c.Nodes[leader].Store.ProposeBatchSplitForTest(ctx, 1, before.Epoch, splits)
	if _, ok := errs.As[*errorpb.EpochMismatch](err); !ok {
		t.Fatalf("duplicate batch split command: %v, want EpochMismatch", err)
	}
	checkTablets()

	// A restart applies nothing twice.
	for id := range c.Nodes {
		c.Stop(id)
	}
	for id := range c.Nodes {
		c.Restart(id)
	}
	checkTablets()
}

// A batch split whose keys are unsorted, duplicated, outside the tablet
// or missing is refused, by the proposer and again at apply, and leaves
// the tablet as it was on every replica.
func TestBatchSplitRefusesBadKeys(t *testing.T) {
	c := storetest.Start(t, 3, nil)
	c.PutSchema(storetest.TestTable)
	_, hi := storetest.TableSpan()
	c.Bootstrap(1, rowKey("b"), hi, 1, 2, 3)
	ctx := ctxT(t, 60*time.Second)
	leader := c.WaitLeader(1)
	before := tabletOn(t, c, leader, 1)
	st := c.Nodes[leader].Store

	cases := []struct {
		name string
		keys [][]byte
	}{
		{"unsorted", [][]byte{rowKey("m"), rowKey("f")}},
		{"duplicate", [][]byte{rowKey("f"), rowKey("f")}},
		{"below the tablet", [][]byte{rowKey("a"), rowKey("f")}},
		{"at the tablet's start", [][]byte{rowKey("b"), rowKey("f")}},
		{"beyond the tablet", [][]byte{rowKey("f"), hi}},
		{"empty key", [][]byte{{}, rowKey("f")}},
		{"no key", nil},
	}
	for _, tc := range cases {
		var ids, rids []uint64
		var splits []*raftcmdpb.SplitCommand
		for i, k := range tc.keys {
			id := uint64(10 + i)
			ids = append(ids, id)
			var reps []*metapb.Replica
			for j, r := range before.Replicas {
				rid := id*10 + uint64(j)
				rids = append(rids, rid)
				reps = append(reps, &metapb.Replica{ReplicaId: rid, StoreId: r.StoreId})
			}
			splits = append(splits, &raftcmdpb.SplitCommand{SplitKey: k, NewTabletId: id, NewReplicas: reps})
		}
		if len(tc.keys) > 0 {
			_, err := st.Split(ctx, &kvpb.SplitTabletRequest{Header: &kvpb.RequestHeader{TabletId: 1}, SplitKeys: tc.keys, NewTabletIds: ids, NewReplicaIds: rids})
			if status.Code(err) != codes.InvalidArgument {
				t.Fatalf("%s: proposer said %v, want InvalidArgument", tc.name, err)
			}
		}
		err := st.ProposeBatchSplitForTest(ctx, 1, before.Epoch, splits)
		if status.Code(err) != codes.InvalidArgument {
			t.Fatalf("%s: apply said %v, want InvalidArgument", tc.name, err)
		}
	}
	// Mismatched ID counts are refused by the proposer.
	_, err := st.Split(ctx, &kvpb.SplitTabletRequest{Header: &kvpb.RequestHeader{TabletId: 1}, SplitKeys: [][]byte{rowKey("f"), rowKey("m")}, NewTabletIds: []uint64{10}, NewReplicaIds: []uint64{1, 2, 3}})
	if status.Code(err) != codes.InvalidArgument {
		t.Fatalf("missing ids: %v, want InvalidArgument", err)
	}
	for id := range c.Nodes {
		testutils.SucceedsSoon(t, func() error {
			ds := c.Nodes[id].Store.Tablets()
			if len(ds) != 1 || !proto.Equal(ds[0], before) {
				return fmt.Errorf("store %d has %v, want only %v", id, ds, before)
			}
			return nil
		})
	}
}

// tabletOn returns store id's descriptor of a tablet.
func tabletOn(t *testing.T, c *storetest.Cluster, id, tabletID uint64) *metapb.TabletDescriptor {
	t.Helper()
	st, err := c.Nodes[id].Store.TabletStatus(tabletID)
	if err != nil {
		t.Fatal(err)
	}
	return proto.Clone(st.Tablet).(*metapb.TabletDescriptor)
}
