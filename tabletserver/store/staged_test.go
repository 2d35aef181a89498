package store_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/shaledb/shale/importer"
	"github.com/shaledb/shale/internal/errs"
	"github.com/shaledb/shale/internal/testutils"
	"github.com/shaledb/shale/proto/errorpb"
	"github.com/shaledb/shale/proto/kvpb"
	"github.com/shaledb/shale/tabletserver/store"
	"github.com/shaledb/shale/tabletserver/storetest"
)

// TestStagedFileMissingOnFollower: a follower's staged copy of a file is
// lost before the by-reference entry naming it applies. The follower
// does not stop: it stops applying at that entry, serves nothing, and
// fetches the file from a peer. While no peer has it, it waits (and the
// sweep keeps a staged file that one of its held, unapplied entries
// names, even past the TTL); once a peer has it, the follower applies
// everything and holds the same cells as its peers.
func TestStagedFileMissingOnFollower(t *testing.T) {
	fatal := &fatalLog{errs: map[uint64][]error{}}
	c := storetest.Start(t, 3, fatal.tweak)
	c.PutSchema(storetest.TestTable)
	desc := c.Bootstrap(1, rowKey("b"), rowKey("m"), 1, 2, 3)
	ctx := ctxT(t, 90*time.Second)
	leader := c.WaitLeader(1)
	victim := followerOf(leader)
	x, xCells := buildSST(t, "c", 100, "f")
	y, yCells := buildSST(t, "d", 100, "f")
	for id, n := range c.Nodes {
		for _, sst := range []*importer.SST{x, y} {
			if _, err := importer.UploadSST(ctx, n.Client, 1, sst); err != nil {
				t.Fatalf("upload to store %d: %v", id, err)
			}
		}
	}
	ingest := func(sst *importer.SST) {
		t.Helper()
		req := importer.IngestRequest(1, desc.Epoch, storetest.TestTable.TableId, sst)
		req.StagedStoreIds = []uint64{1, 2, 3}
		if _, err := c.Nodes[leader].Client.IngestSST(ctx, req); err != nil {
			t.Fatalf("ingest by reference: %v", err)
		}
	}
	// The victim loses x and is down while x, then y, are ingested.
	c.Nodes[victim].Store.RemoveStagedForTest(x.Checksum)
	c.Stop(victim)
	ingest(x)
	var others []uint64
	for id := range c.Nodes {
		if id != victim {
			others = append(others, id)
		}
	}
	testutils.SucceedsSoon(t, func() error {
		for _, id := range others {
			if ok, err := c.Nodes[id].Store.HasCellForTest(xCells[0]); err != nil || !ok {
				return fmt.Errorf("store %d has not ingested x yet (%v)", id, err)
			}
		}
		return nil
	})
	// Then its peers lose x too: nobody can serve it for now.
	for _, id := range others {
		c.Nodes[id].Store.RemoveStagedForTest(x.Checksum)
	}
	ingest(y)
	if err := c.Put(ctx, 1, "e000", "v"); err != nil {
		t.Fatal(err)
	}
	c.Restart(victim)
	testutils.SucceedsSoon(t, func() error {
		if !c.Nodes[victim].Store.ApplyBlockedForTest(1) {
			return fmt.Errorf("store %d not waiting for its staged file", victim)
		}
		return nil
	})
	// The tablet goes on (two of three replicas apply).
	if err := c.Put(ctx, 1, "e001", "v"); err != nil {
		t.Fatal(err)
	}
	// A write sent to the waiting replica is refused with NotLeader.
	_, err := c.Nodes[victim].Client.MutateRow(ctx, &kvpb.MutateRowRequest{Header: &kvpb.RequestHeader{TabletId: 1},
		TableId: storetest.TestTable.TableId, RowKey: []byte("e002"), Mutations: []*kvpb.Mutation{storetest.SetCell("f", "q", "v")}})
	if _, ok := errs.As[*errorpb.NotLeader](err); !ok {
		t.Fatalf("write to a replica waiting for a staged file: want NotLeader, got %v", err)
	}
	// y is staged on the victim and named by an entry it holds, unapplied:
	// the sweep keeps it, even past the TTL.
	if err := c.Nodes[victim].Store.AgeStagedForTest(y.Checksum, 2*store.StagedTTL); err != nil {
		t.Fatal(err)
	}
	c.Nodes[victim].Store.SweepStagedForTest()
	if !c.Nodes[victim].Store.HasStagedForTest(y.Checksum) {
		t.Fatal("the sweep deleted a staged file that an unapplied entry names")
	}
	// A peer has x again: the victim fetches it and catches up.
	if err := c.Nodes[leader].Store.StageForTest(x.Checksum, x.Data); err != nil {
		t.Fatal(err)
	}
	testutils.SucceedsSoon(t, func() error {
		for _, k := range append(append([][]byte{}, xCells...), yCells...) {
			if ok, err := c.Nodes[victim].Store.HasCellForTest(k); err != nil || !ok {
				return fmt.Errorf("store %d lacks cell %x (err %v)", victim, k, err)
			}
		}
		rows, err := c.Nodes[victim].Store.LocalRowsForTest(1)
		if err != nil {
			return err
		}
		if len(rows) != len(xCells)+len(yCells)+2 {
			return fmt.Errorf("store %d holds %d rows, want %d", victim, len(rows), len(xCells)+len(yCells)+2)
		}
		return nil
	})
	if c.Nodes[victim].Store.ApplyBlockedForTest(1) {
		t.Fatal("still blocked after catching up")
	}
	for id := range c.Nodes {
		if errs := fatal.get(id); len(errs) > 0 {
			t.Fatalf("store %d stopped: %v", id, errs)
		}
	}
}
