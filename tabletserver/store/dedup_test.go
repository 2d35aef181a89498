package store_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/shaledb/shale/internal/errs"
	"github.com/shaledb/shale/internal/testutils"
	"github.com/shaledb/shale/proto/kvpb"
	"github.com/shaledb/shale/proto/raftcmdpb"
	"github.com/shaledb/shale/tabletserver/store"
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
	testutils.SucceedsSoon(t, func() error {
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

// Request-ID records are kept for DedupRetention of the tablet's HLC time
// and then collected by version GC, which reads their age from the record
// (their key has one fixed version so that lookups are point reads).
func TestRequestIDRecordsExpire(t *testing.T) {
	var skew atomic.Int64
	c := storetest.Start(t, 1, func(o *store.Options) {
		o.WallClock = func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }
	})
	c.PutSchema(storetest.TestTable)
	lo, hi := storetest.TableSpan()
	c.Bootstrap(1, lo, hi, 1)
	ctx := ctxT(t, 30*time.Second)
	id := &kvpb.RequestID{ClientId: 5, Seq: 1}
	inc := func() int64 {
		t.Helper()
		resp, err := c.Nodes[1].Client.ReadModifyWriteRow(ctx, &kvpb.ReadModifyWriteRowRequest{
			Header: &kvpb.RequestHeader{TabletId: 1}, TableId: storetest.TestTable.TableId, RowKey: []byte("ctr"), RequestId: id,
			Rules: []*kvpb.ReadModifyWriteRule{{Family: "f", Qualifier: []byte("n"), Rule: &kvpb.ReadModifyWriteRule_IncrementAmount{IncrementAmount: 1}}},
		})
		if err != nil {
			t.Fatal(err)
		}
		return int64(binary.BigEndian.Uint64(resp.Row.Cells[0].Value))
	}
	if got := inc(); got != 1 {
		t.Fatalf("first increment returned %d", got)
	}
	if _, err := c.Nodes[1].Store.GCTablet(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if got := inc(); got != 1 {
		t.Fatalf("retry within the retention returned %d, want the original 1", got)
	}
	// A wall clock that jumps ahead expires nothing: records age by the
	// tablet's HLC time, which moves only with the tablet's writes.
	skew.Store(int64(store.DedupRetention + time.Minute))
	n, err := c.Nodes[1].Store.GCTablet(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Fatalf("GC after a wall-clock jump deleted %d cells, want none (the tablet's time has not moved)", n)
	}
	if got := inc(); got != 1 {
		t.Fatalf("retry after a wall-clock jump returned %d, want the original 1", got)
	}
	// A write at the new time moves the tablet's HLC past the retention.
	if err := c.Put(ctx, 1, "other", "v"); err != nil {
		t.Fatal(err)
	}
	n, err = c.Nodes[1].Store.GCTablet(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Fatalf("GC after the retention deleted %d cells, want the one request-ID record", n)
	}
	if versions, dedup := c.Nodes[1].Store.GCDeleted(); versions != 0 || dedup != 1 {
		t.Fatalf("GC metrics count %v versions and %v request-ID records, want 0 and 1", versions, dedup)
	}
	if got := inc(); got != 2 {
		t.Fatalf("request replayed after its record expired returned %d, want a fresh apply (2)", got)
	}
}

// Reads step over a row's request-ID records, also when a hot row holds
// many of them (scans then seek past the rest), in both directions.
func TestReadsSkipRequestIDRecords(t *testing.T) {
	c, tab := startTablet(t, 1)
	ctx := ctxT(t, 20*time.Second)
	table := storetest.TestTable.TableId
	writes := map[string]int{"a": 1, "b": 25, "c": 5, "d": 0}
	seq := uint64(0)
	for row, n := range writes {
		for i := 0; i < max(n, 1); i++ {
			seq++
			req := &kvpb.MutateRowRequest{Header: &kvpb.RequestHeader{TabletId: tab}, TableId: table, RowKey: []byte(row),
				Mutations: []*kvpb.Mutation{storetest.SetCell("f", "q", fmt.Sprintf("%s%d", row, i))}}
			if n > 0 {
				req.RequestId = &kvpb.RequestID{ClientId: 3, Seq: seq}
			}
			if _, err := c.Nodes[1].Client.MutateRow(ctx, req); err != nil {
				t.Fatal(err)
			}
		}
	}
	want := []string{"a=a0", "b=b24", "c=c4", "d=d0"}
	for _, reverse := range []bool{false, true} {
		stream, err := c.Nodes[1].Client.Scan(ctx, &kvpb.ScanRequest{Header: &kvpb.RequestHeader{TabletId: tab}, TableId: table, Reverse: reverse})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for {
			resp, err := stream.Recv()
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range resp.Rows {
				if len(r.Cells) != 1 || r.Cells[0].Family != "f" {
					t.Fatalf("row %q returned cells %v, want only its one user cell", r.Key, r.Cells)
				}
				got = append(got, fmt.Sprintf("%s=%s", r.Key, r.Cells[0].Value))
			}
			if resp.Last {
				break
			}
		}
		exp := slices.Clone(want)
		if reverse {
			slices.Reverse(exp)
		}
		if !slices.Equal(got, exp) {
			t.Fatalf("scan (reverse=%v) returned %v, want %v", reverse, got, exp)
		}
	}
	resp, err := c.Nodes[1].Client.Get(ctx, &kvpb.GetRequest{Header: &kvpb.RequestHeader{TabletId: tab}, TableId: table, RowKey: []byte("b"), Options: &kvpb.ReadOptions{MaxVersions: 100}})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, cell := range resp.Row.Cells {
		got = append(got, cell.Family+":"+string(cell.Value))
	}
	// Family f keeps 3 versions; no request-ID record shows.
	if want := []string{"f:b24", "f:b23", "f:b22"}; !slices.Equal(got, want) {
		t.Fatalf("get of b returned %v, want %v", got, want)
	}
}

func batchEntry(index uint32, row string, muts ...*kvpb.Mutation) *kvpb.BatchMutateRequest_Entry {
	return &kvpb.BatchMutateRequest_Entry{Index: index, RowKey: []byte(row), Mutations: muts}
}

func deleteColumn(family, qualifier string) *kvpb.Mutation {
	return &kvpb.Mutation{Mutation: &kvpb.Mutation_DeleteFromColumn_{DeleteFromColumn: &kvpb.Mutation_DeleteFromColumn{Family: family, Qualifier: []byte(qualifier)}}}
}

func deleteRow() *kvpb.Mutation {
	return &kvpb.Mutation{Mutation: &kvpb.Mutation_DeleteFromRow_{DeleteFromRow: &kvpb.Mutation_DeleteFromRow{}}}
}

// versions returns the f:q values of a row, newest first.
func versions(t *testing.T, ctx context.Context, c *storetest.Cluster, tab uint64, row string) []string {
	t.Helper()
	resp, err := c.Nodes[1].Client.Get(ctx, &kvpb.GetRequest{Header: &kvpb.RequestHeader{TabletId: tab}, TableId: storetest.TestTable.TableId, RowKey: []byte(row), Options: &kvpb.ReadOptions{MaxVersions: 10}})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, cell := range resp.GetRow().GetCells() {
		out = append(out, string(cell.Value))
	}
	return out
}

// Entries of one batch for the same row all apply, in order (the later
// write of a cell wins, a delete after a set removes it, a set after a
// delete survives), and a retry of the batch applies none of them again
// and returns each entry's first result.
func TestBatchMutateSameRowTwice(t *testing.T) {
	c, tab := startTablet(t, 1)
	ctx := ctxT(t, 20*time.Second)
	req := &kvpb.BatchMutateRequest{Header: &kvpb.RequestHeader{TabletId: tab}, TableId: storetest.TestTable.TableId,
		RequestId: &kvpb.RequestID{ClientId: 7, ClientIdHi: 8, Seq: 1}, Entries: []*kvpb.BatchMutateRequest_Entry{
			batchEntry(0, "a", storetest.SetCell("f", "q", "a1")),
			batchEntry(1, "b", storetest.SetCell("f", "q", "b1")),
			batchEntry(2, "a", storetest.SetCell("f", "q", "a2")),
			batchEntry(3, "c", storetest.SetCell("f", "q", "c1")),
			batchEntry(4, "c", deleteColumn("f", "q")),
			batchEntry(5, "d", storetest.SetCell("f", "q", "d1")),
			batchEntry(6, "d", deleteRow()),
			batchEntry(7, "d", storetest.SetCell("f", "q", "d2")),
		}}
	want := map[string][]string{"a": {"a2"}, "b": {"b1"}, "c": nil, "d": {"d2"}}
	var first *kvpb.BatchMutateResponse
	for attempt := 0; attempt < 2; attempt++ {
		resp, err := c.Nodes[1].Client.BatchMutate(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		for i, res := range resp.Results {
			if res.Error != nil || res.Timestamp == 0 {
				t.Fatalf("attempt %d entry %d: %v", attempt, i, res)
			}
			if first != nil && res.Timestamp != first.Results[i].Timestamp {
				t.Fatalf("retry of entry %d returned timestamp %d, first application %d", i, res.Timestamp, first.Results[i].Timestamp)
			}
		}
		first = resp
		for row, w := range want {
			if got := versions(t, ctx, c, tab, row); !slices.Equal(got, w) {
				t.Fatalf("attempt %d: row %s has f:q versions %q, want %q", attempt, row, got, w)
			}
		}
	}
}

// Two entries of one request naming the same (row, index) cannot both be
// remembered: the second is refused rather than taken for a retry. Without
// a request ID nothing is remembered and both apply.
func TestBatchMutateDuplicateEntryIndex(t *testing.T) {
	c, tab := startTablet(t, 1)
	ctx := ctxT(t, 20*time.Second)
	req := &kvpb.BatchMutateRequest{Header: &kvpb.RequestHeader{TabletId: tab}, TableId: storetest.TestTable.TableId,
		RequestId: &kvpb.RequestID{ClientId: 7, Seq: 2}, Entries: []*kvpb.BatchMutateRequest_Entry{
			batchEntry(0, "a", storetest.SetCell("f", "q", "a1")),
			batchEntry(0, "a", storetest.SetCell("f", "q", "a2")),
		}}
	resp, err := c.Nodes[1].Client.BatchMutate(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Results[0].Error != nil || status.Code(errs.FromProto(resp.Results[1].Error)) != codes.InvalidArgument {
		t.Fatalf("results %v, want the first applied and the second refused as invalid", resp.Results)
	}
	req.RequestId = nil
	if _, err := c.Nodes[1].Client.BatchMutate(ctx, req); err != nil {
		t.Fatal(err)
	}
	if got := versions(t, ctx, c, tab, "a"); len(got) == 0 || got[0] != "a2" {
		t.Fatalf("row a has %q after a batch without request ID, want a2 newest", got)
	}
}

// Request IDs that differ only in the high half of the client ID are
// different requests.
func TestRequestID128BitClientID(t *testing.T) {
	c, tab := startTablet(t, 1)
	ctx := ctxT(t, 20*time.Second)
	for hi, want := range []int64{1, 2} {
		resp, err := c.Nodes[1].Client.ReadModifyWriteRow(ctx, &kvpb.ReadModifyWriteRowRequest{
			Header: &kvpb.RequestHeader{TabletId: tab}, TableId: storetest.TestTable.TableId, RowKey: []byte("ctr"),
			RequestId: &kvpb.RequestID{ClientId: 9, ClientIdHi: uint64(hi), Seq: 1},
			Rules:     []*kvpb.ReadModifyWriteRule{{Family: "f", Qualifier: []byte("n"), Rule: &kvpb.ReadModifyWriteRule_IncrementAmount{IncrementAmount: 1}}},
		})
		if err != nil {
			t.Fatal(err)
		}
		if got := int64(binary.BigEndian.Uint64(resp.Row.Cells[0].Value)); got != want {
			t.Fatalf("client %d:9 increment returned %d, want %d", hi, got, want)
		}
	}
}

// An entry proposed by another incarnation (an earlier run of the store,
// whose proposal IDs may repeat, or another store) that commits while a
// caller of this run waits under the same proposal ID does not complete
// that caller with its result.
func TestForeignProposalIDDoesNotCompleteWaiter(t *testing.T) {
	c, tab := startTablet(t, 1)
	ctx := ctxT(t, 20*time.Second)
	cmd := &raftcmdpb.RaftCommand{Epoch: c.Nodes[1].Store.Tablets()[0].Epoch, Cmd: &raftcmdpb.RaftCommand_MutateRow{MutateRow: &kvpb.MutateRowRequest{
		TableId: storetest.TestTable.TableId, RowKey: []byte("x"), Mutations: []*kvpb.Mutation{storetest.SetCell("f", "q", "old run")}}}}
	completed, err := c.Nodes[1].Store.ForeignEntryCompletesWaiterForTest(ctx, tab, cmd)
	if err != nil {
		t.Fatal(err)
	}
	if completed {
		t.Fatal("an entry of another incarnation completed a waiter of this one")
	}
	if err := c.MustRead(ctx, tab, "x", "old run"); err != nil {
		t.Fatal(err)
	}
}
