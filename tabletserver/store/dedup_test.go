package store_test

import (
	"encoding/binary"
	"testing"
	"time"

	"github.com/shaledb/shale/proto/kvpb"
	"github.com/shaledb/shale/tabletserver/storetest"
)

// A write retried with the same request ID applies once and returns the
// first response, even when the retry reaches a new leader after a
// leadership change or follows a whole-row delete by someone else.
func TestRequestIDAppliesOnce(t *testing.T) {
	c, tab := startTablet(t, 3)
	ctx := ctxT(t, 30*time.Second)
	table := storetest.TestTable.TableId
	inc := func(id *kvpb.RequestID) int64 {
		t.Helper()
		var resp *kvpb.ReadModifyWriteRowResponse
		err := c.Call(ctx, tab, func(cl kvpb.TabletClient) error {
			var err error
			resp, err = cl.ReadModifyWriteRow(ctx, &kvpb.ReadModifyWriteRowRequest{
				Header: &kvpb.RequestHeader{TabletId: tab}, TableId: table, RowKey: []byte("ctr"), RequestId: id,
				Rules: []*kvpb.ReadModifyWriteRule{{Family: "f", Qualifier: []byte("n"), Rule: &kvpb.ReadModifyWriteRule_IncrementAmount{IncrementAmount: 1}}},
			})
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return int64(binary.BigEndian.Uint64(resp.Row.Cells[0].Value))
	}
	first := &kvpb.RequestID{ClientId: 42, Seq: 1}
	if got := inc(first); got != 1 {
		t.Fatalf("first increment returned %d", got)
	}
	if got := inc(first); got != 1 {
		t.Fatalf("retry of the same request returned %d, want the original 1", got)
	}
	// The retry lands on another leader.
	old := c.WaitLeader(tab)
	to := old%3 + 1
	storetest.SucceedsSoon(t, func() error {
		if l := c.WaitLeader(tab); l != to {
			_, err := c.Nodes[l].Client.TransferLeader(ctx, &kvpb.TransferLeaderRequest{Header: &kvpb.RequestHeader{TabletId: tab}, ToStoreId: to})
			if err == nil {
				err = errNotYet
			}
			return err
		}
		return nil
	})
	if got := inc(first); got != 1 {
		t.Fatalf("retry on the new leader returned %d", got)
	}
	if got := inc(&kvpb.RequestID{ClientId: 42, Seq: 2}); got != 2 {
		t.Fatalf("a new request returned %d, want 2", got)
	}
	if got := inc(nil); got != 3 {
		t.Fatalf("a request without an ID returned %d, want 3", got)
	}
	// A whole-row delete does not forget which requests were applied.
	err := c.Call(ctx, tab, func(cl kvpb.TabletClient) error {
		_, err := cl.MutateRow(ctx, &kvpb.MutateRowRequest{Header: &kvpb.RequestHeader{TabletId: tab}, TableId: table, RowKey: []byte("ctr"),
			Mutations: []*kvpb.Mutation{{Mutation: &kvpb.Mutation_DeleteFromRow_{DeleteFromRow: &kvpb.Mutation_DeleteFromRow{}}}}})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := inc(&kvpb.RequestID{ClientId: 42, Seq: 2}); got != 2 {
		t.Fatalf("retry after a row delete returned %d, want the original 2", got)
	}
	// The hidden records never show in reads: the row is gone.
	if _, found, err := c.Read(ctx, tab, "ctr"); err != nil || found {
		t.Fatalf("deleted row read back: found=%v err=%v", found, err)
	}
	err = c.Call(ctx, tab, func(cl kvpb.TabletClient) error {
		resp, err := cl.Get(ctx, &kvpb.GetRequest{Header: &kvpb.RequestHeader{TabletId: tab}, TableId: table, RowKey: []byte("ctr")})
		if err == nil && resp.Row != nil {
			t.Errorf("row with only request-ID records is visible: %v", resp.Row)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// Each row of a retried batch returns its first result.
func TestRequestIDBatchMutate(t *testing.T) {
	c, tab := startTablet(t, 1)
	ctx := ctxT(t, 20*time.Second)
	req := &kvpb.BatchMutateRequest{Header: &kvpb.RequestHeader{TabletId: tab}, TableId: storetest.TestTable.TableId, RequestId: &kvpb.RequestID{ClientId: 7, Seq: 9}}
	for _, row := range []string{"a", "b", "c"} {
		req.Entries = append(req.Entries, &kvpb.BatchMutateRequest_Entry{RowKey: []byte(row), Mutations: []*kvpb.Mutation{storetest.SetCell("f", "q", row)}})
	}
	r1, err := c.Nodes[1].Client.BatchMutate(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	r2, err := c.Nodes[1].Client.BatchMutate(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	for i := range r1.Results {
		if r1.Results[i].Error != nil || r1.Results[i].Timestamp != r2.Results[i].Timestamp {
			t.Fatalf("row %d: first %v, retry %v", i, r1.Results[i], r2.Results[i])
		}
	}
	resp, err := c.Nodes[1].Client.Get(ctx, &kvpb.GetRequest{Header: &kvpb.RequestHeader{TabletId: tab}, TableId: storetest.TestTable.TableId, RowKey: []byte("a"), Options: &kvpb.ReadOptions{MaxVersions: 10}})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(resp.Row.Cells); n != 1 {
		t.Fatalf("row a has %d versions after a retried batch, want 1", n)
	}
}
