package store_test

import (
	"math"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/shaledb/shale/importer"
	"github.com/shaledb/shale/proto/kvpb"
	"github.com/shaledb/shale/proto/raftcmdpb"
	"github.com/shaledb/shale/tabletserver/store"
	"github.com/shaledb/shale/tabletserver/storetest"
)

// nearNow fails unless ts lies within a minute of the wall clock: the
// store's clock was not moved into the future.
func nearNow(t *testing.T, what string, ts int64) {
	t.Helper()
	if d := time.Duration(ts-time.Now().UnixMicro()) * time.Microsecond; d > time.Minute || d < -time.Minute {
		t.Fatalf("%s: timestamp %d is %v away from now; the clock was moved", what, ts, d)
	}
}

// TestFutureCellTimestampRefused: a client-chosen cell timestamp beyond
// the leader's clock plus MaxClockOffset (or negative) is refused with
// InvalidArgument before it is proposed, by every write API; one within
// the offset is accepted; and the clock stays near now.
func TestFutureCellTimestampRefused(t *testing.T) {
	e := newAPIEnv(t, nil)
	hour := time.Now().Add(time.Hour).UnixMicro()
	for _, ts := range []int64{hour, math.MaxInt64, math.MaxInt64 - 1, -1} {
		_, err := e.mutateErr("fut", apiSetTS("c", "q", ts, "x"))
		apiWantCode(t, err, codes.InvalidArgument, "timestamp")
		res, err := e.batchErr(apiLimitEntry("fut", apiSetTS("c", "q", ts, "x")), apiLimitEntry("ok", apiSetC("c", "q", "y")))
		if err != nil {
			t.Fatal(err)
		}
		apiWantRowError(t, res.Results[0], codes.InvalidArgument, "timestamp")
		if res.Results[1].Error != nil {
			t.Fatalf("valid row of the batch failed: %v", res.Results[1].Error)
		}
		nearNow(t, "batch row", res.Results[1].Timestamp)
		err = e.camErr("fut", &kvpb.Condition{Family: "c", Qualifier: []byte("q"), Op: kvpb.Condition_NOT_EXISTS}, []*kvpb.Mutation{apiSetTS("c", "q", ts, "x")}, nil)
		apiWantCode(t, err, codes.InvalidArgument, "timestamp")
	}
	if cells := apiCells(e.get("fut", apiAllVersions())); len(cells) != 0 {
		t.Fatalf("refused writes left cells: %v", cells)
	}
	// A following server-timestamped write is stamped near now.
	nearNow(t, "server-timestamped write", e.mutate("fut", apiSetC("c", "q", "now")))

	// Within the offset (500ms by default) is accepted and stored as given.
	soon := time.Now().Add(100 * time.Millisecond).UnixMicro()
	e.mutate("soon", apiSetTS("c", "q", soon, "s"))
	row := e.get("soon", nil)
	if len(row.Cells) != 1 || row.Cells[0].Timestamp != soon {
		t.Fatalf("cell within the offset: got %v, want one at %d", row.Cells, soon)
	}
}

// TestMaxClockOffsetOption: the bound follows the MaxClockOffset option.
func TestMaxClockOffsetOption(t *testing.T) {
	e := newAPIEnv(t, func(o *store.Options) { o.MaxClockOffset = time.Hour })
	e.mutate("r", apiSetTS("c", "q", time.Now().Add(30*time.Minute).UnixMicro(), "x"))
	_, err := e.mutateErr("r", apiSetTS("c", "q", time.Now().Add(2*time.Hour).UnixMicro(), "x"))
	apiWantCode(t, err, codes.InvalidArgument, "maximum clock offset")
}

// TestFutureCellTimestampRefusedAtApply: a command that reached the log
// with a far-future cell timestamp (bypassing the leader's check) is
// refused at apply against its own proposal timestamp, on every replica.
func TestFutureCellTimestampRefusedAtApply(t *testing.T) {
	c, desc, ctx := ingestEnv(t)
	leader := c.WaitLeader(1)
	s := c.Nodes[leader].Store
	for _, ts := range []int64{time.Now().Add(time.Hour).UnixMicro(), math.MaxInt64} {
		_, err := s.ProposeMutateRowForTest(ctx, 1, desc.Epoch, &kvpb.MutateRowRequest{
			TableId: storetest.TestTable.TableId, RowKey: []byte("fut"),
			Mutations: []*kvpb.Mutation{{Mutation: &kvpb.Mutation_SetCell_{SetCell: &kvpb.Mutation_SetCell{Family: "f", Qualifier: []byte("q"), Timestamp: ts, Value: []byte("x")}}}},
		})
		if status.Code(err) != codes.InvalidArgument {
			t.Fatalf("cell at %d: got %v, want InvalidArgument", ts, err)
		}
	}
	if _, ok, err := c.Read(ctx, 1, "fut"); err != nil || ok {
		t.Fatalf("refused command left a cell (found %v, err %v)", ok, err)
	}
	resp, err := s.ProposeMutateRowForTest(ctx, 1, desc.Epoch, &kvpb.MutateRowRequest{
		TableId: storetest.TestTable.TableId, RowKey: []byte("fut"), Mutations: []*kvpb.Mutation{storetest.SetCell("f", "q", "now")},
	})
	if err != nil {
		t.Fatal(err)
	}
	nearNow(t, "server-timestamped write", resp.Timestamp)
}

// TestIngestFutureMaxTimestampRefused: an ingest whose max_timestamp lies
// beyond the leader's clock plus the offset is refused before proposing
// (and, if proposed anyway, at apply), so it moves neither the tablet's
// max timestamp nor the clock; the next write is stamped near now.
func TestIngestFutureMaxTimestampRefused(t *testing.T) {
	c, desc, ctx := ingestEnv(t)
	leader := c.WaitLeader(1)
	cl := c.Nodes[leader].Client
	s := c.Nodes[leader].Store
	sst, cells := buildSST(t, "c", 3, "f")
	for id, n := range c.Nodes {
		if _, err := importer.UploadSST(ctx, n.Client, 1, sst); err != nil {
			t.Fatalf("upload to store %d: %v", id, err)
		}
	}
	for _, ts := range []int64{time.Now().Add(time.Hour).UnixMicro(), math.MaxInt64, -1} {
		req := importer.IngestRequest(1, desc.Epoch, storetest.TestTable.TableId, sst)
		req.MaxTimestamp = ts
		if _, err := cl.IngestSST(ctx, req); status.Code(err) != codes.InvalidArgument {
			t.Fatalf("max_timestamp %d: got %v, want InvalidArgument", ts, err)
		}
		cmd := &raftcmdpb.IngestSSTCommand{TableId: storetest.TestTable.TableId, Checksum: sst.Checksum, Data: sst.Data,
			Smallest: sst.Smallest, Largest: sst.Largest, KeyCount: sst.KeyCount, MaxTimestamp: ts}
		if ts < 0 {
			continue // at apply, a negative max timestamp cannot move anything
		}
		if err := s.ProposeIngestForTest(ctx, 1, desc.Epoch, cmd); status.Code(err) != codes.InvalidArgument {
			t.Fatalf("max_timestamp %d proposed as is: got %v, want InvalidArgument at apply", ts, err)
		}
	}
	for id, n := range c.Nodes {
		for _, k := range cells {
			if ok, err := n.Store.HasCellForTest(k); err != nil || ok {
				t.Fatalf("store %d holds cell %x of a refused ingest (err %v)", id, k, err)
			}
		}
		if last := n.Store.ClockLastForTest(); last > time.Now().Add(time.Minute).UnixMicro() {
			t.Fatalf("store %d: clock moved to %d", id, last)
		}
	}
	var ts int64
	if err := c.Call(ctx, 1, func(cl kvpb.TabletClient) error {
		resp, err := cl.MutateRow(ctx, &kvpb.MutateRowRequest{Header: &kvpb.RequestHeader{TabletId: 1}, TableId: storetest.TestTable.TableId,
			RowKey: []byte("d"), Mutations: []*kvpb.Mutation{storetest.SetCell("f", "q", "v")}})
		if err == nil {
			ts = resp.Timestamp
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	nearNow(t, "write after the refused ingests", ts)
	// The file itself, with its true max timestamp, still ingests.
	if _, err := cl.IngestSST(ctx, importer.IngestRequest(1, desc.Epoch, storetest.TestTable.TableId, sst)); err != nil {
		t.Fatal(err)
	}
}
