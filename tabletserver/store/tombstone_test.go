package store_test

import (
	"errors"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/stretchr/testify/require"

	"github.com/shaledb/shale/internal/cellvalue"
	"github.com/shaledb/shale/internal/errs"
	"github.com/shaledb/shale/internal/keys"
	"github.com/shaledb/shale/proto/errorpb"
	"github.com/shaledb/shale/proto/kvpb"
	"github.com/shaledb/shale/tabletserver/store"
)

func apiAt(ts int64, versions uint32) *kvpb.ReadOptions {
	return &kvpb.ReadOptions{ReadTimestamp: ts, MaxVersions: versions}
}

// Column, family and row deletes write tombstones: reads at a timestamp
// before a delete see what it deleted, reads at or after it do not, at
// every version count; a put after a delete shows only itself.
func TestTombstoneReadsAsOf(t *testing.T) {
	e := newAPIEnv(t, nil)
	row := "tomb"
	t1 := e.mutate(row, apiSetC("c", "x", "x1"))
	t2 := e.mutate(row, apiSetC("c", "x", "x2"), apiSetC("c", "y", "y1"), apiSetC("ab", "z", "z1"))
	t3 := e.mutate(row, apiDelCol("c", "x", nil))
	apiEq(t, "at t2", apiVals(e.get(row, apiAt(t2, 1))), []string{"ab:z=z1", "c:x=x2", "c:y=y1"})
	apiEq(t, "at t2, all versions", apiVals(e.get(row, apiAt(t2, 100))), []string{"ab:z=z1", "c:x=x2", "c:x=x1", "c:y=y1"})
	apiEq(t, "at t1", apiVals(e.get(row, apiAt(t1, 100))), []string{"c:x=x1"})
	apiEq(t, "after column delete", apiVals(e.get(row, apiAllVersions())), []string{"ab:z=z1", "c:y=y1"})
	apiEq(t, "at the column delete", apiVals(e.get(row, apiAt(t3, 100))), []string{"ab:z=z1", "c:y=y1"})
	// A time range below the delete does not bring its versions back.
	apiEq(t, "time range", apiVals(e.get(row, &kvpb.ReadOptions{MaxVersions: 100, TimeRange: &kvpb.TimeRange{StartTs: t1, EndTs: t2 + 1}})), []string{"ab:z=z1", "c:y=y1"})

	t4 := e.mutate(row, apiDelFam("c"))
	apiEq(t, "before family delete", apiVals(e.get(row, apiAt(t4-1, 1))), []string{"ab:z=z1", "c:y=y1"})
	apiEq(t, "after family delete", apiVals(e.get(row, nil)), []string{"ab:z=z1"})

	t5 := e.mutate(row, apiDelRow())
	if r := e.get(row, apiAllVersions()); r != nil {
		t.Fatalf("after row delete: %v", apiCells(r))
	}
	apiEq(t, "before row delete", apiVals(e.get(row, apiAt(t5-1, 1))), []string{"ab:z=z1"})
	apiEq(t, "at t2 after every delete", apiVals(e.get(row, apiAt(t2, 1))), []string{"ab:z=z1", "c:x=x2", "c:y=y1"})

	// Delete, then put again: the new version alone, at every version count.
	t6 := e.mutate(row, apiSetC("c", "x", "x3"))
	apiEq(t, "re-put", apiCells(e.get(row, apiAllVersions())), []string{"c:x@" + itoa(t6) + "=x3"})
	// Conditions and increments do not see deleted cells.
	resp, err := e.cl.CheckAndMutateRow(e.ctx, &kvpb.CheckAndMutateRowRequest{Header: apiHdr(apiTablet), TableId: apiTableID, RowKey: []byte(row),
		Condition:     &kvpb.Condition{Family: "c", Qualifier: []byte("y"), Op: kvpb.Condition_EXISTS},
		TrueMutations: []*kvpb.Mutation{apiSetC("c", "bad", "1")}})
	if err != nil || resp.PredicateMatched {
		t.Fatalf("EXISTS on a deleted cell: %v, %v", resp, err)
	}
	e.mutate(row, apiSetB("c", "n", 0, apiI64(40)))
	e.mutate(row, apiDelCol("c", "n", nil))
	rmw, err := e.cl.ReadModifyWriteRow(e.ctx, &kvpb.ReadModifyWriteRowRequest{Header: apiHdr(apiTablet), TableId: apiTableID, RowKey: []byte(row), Rules: []*kvpb.ReadModifyWriteRule{apiIncr("c", "n", 2)}})
	if err != nil || len(rmw.Row.Cells) != 1 || string(rmw.Row.Cells[0].Value) != string(apiI64(2)) {
		t.Fatalf("increment of a deleted cell: %v, %v (want 2)", rmw, err)
	}
	// Scans at a timestamp see the row as it was.
	sc, err := e.cl.Scan(e.ctx, &kvpb.ScanRequest{Header: apiHdr(apiTablet), TableId: apiTableID, StartRow: []byte(row), EndRow: []byte(row + "\x00"), Options: apiAt(t4, 1)})
	require.NoError(t, err)
	var rows []*kvpb.Row
	for {
		r, err := sc.Recv()
		require.NoError(t, err)
		rows = append(rows, r.Rows...)
		if r.Last {
			break
		}
	}
	if len(rows) != 1 {
		t.Fatalf("scan at t4: %d rows", len(rows))
	}
	apiEq(t, "scan at t4", apiVals(rows[0]), []string{"ab:z=z1"})
	// A filter on a deleted column sees it absent.
	f := &kvpb.RowFilter{Filter: &kvpb.RowFilter_Column{Column: &kvpb.Condition{Family: "c", Qualifier: []byte("y"), Op: kvpb.Condition_EXISTS}}}
	if r := e.get(row, &kvpb.ReadOptions{Filter: f}); r != nil {
		t.Fatalf("filter EXISTS on a deleted column matched: %v", apiCells(r))
	}
	if r := e.get(row, &kvpb.ReadOptions{Filter: f, ReadTimestamp: t2}); r == nil {
		t.Fatal("filter EXISTS at a timestamp before the delete did not match")
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// Delete and put of one column in one command, and puts at client-chosen
// timestamps around a delete, behave as when deletes were physical.
func TestTombstoneSameCommand(t *testing.T) {
	e := newAPIEnv(t, nil)
	row := "same"
	e.mutate(row, apiSetTS("c", "q", 5, "old"))
	ts := e.mutate(row, apiDelCol("c", "q", nil), apiSetC("c", "q", "new"))
	apiEq(t, "delete then put", apiCells(e.get(row, apiAllVersions())), []string{"c:q@" + itoa(ts) + "=new"})
	apiEq(t, "before", apiCells(e.get(row, apiAt(ts-1, 100))), []string{"c:q@5=old"})
	e.mutate(row, apiSetC("c", "q", "gone"), apiDelRow())
	if r := e.get(row, apiAllVersions()); r != nil {
		t.Fatalf("put then delete left %v", apiCells(r))
	}
	// A put below the delete is visible, as it was with physical deletes.
	e.mutate(row, apiSetTS("c", "q", 7, "seven"))
	apiEq(t, "put below a delete", apiCells(e.get(row, apiAllVersions())), []string{"c:q@7=seven"})
	// Two puts below a delete in one command both stay (the delete is made
	// physical once, not once per put).
	e.mutate(row, apiDelFam("c"))
	e.mutate(row, apiSetTS("c", "q", 9, "nine"), apiSetTS("c", "q", 8, "eight"))
	apiEq(t, "two puts below a delete", apiCells(e.get(row, apiAllVersions())), []string{"c:q@9=nine", "c:q@8=eight"})
	// A delete and a put of one row in two entries of one batch: the put
	// (same commit timestamp) still hides the versions the delete deleted.
	e.mutate(row, apiSetC("c", "q", "v1"))
	resp, err := e.cl.BatchMutate(e.ctx, &kvpb.BatchMutateRequest{
		Header: apiHdr(apiTablet), TableId: apiTableID,
		Entries: []*kvpb.BatchMutateRequest_Entry{
			{RowKey: []byte(row), Mutations: []*kvpb.Mutation{apiDelRow()}},
			{RowKey: []byte(row), Mutations: []*kvpb.Mutation{apiSetC("c", "q", "v2")}},
		}})
	if err != nil {
		t.Fatal(err)
	}
	bts := resp.Results[0].Timestamp
	apiEq(t, "delete and put in two entries", apiCells(e.get(row, apiAllVersions())), []string{"c:q@" + itoa(bts) + "=v2"})
	// ...and a third entry's put below that delete keeps the second's put.
	resp, err = e.cl.BatchMutate(e.ctx, &kvpb.BatchMutateRequest{
		Header: apiHdr(apiTablet), TableId: apiTableID,
		Entries: []*kvpb.BatchMutateRequest_Entry{
			{RowKey: []byte(row), Mutations: []*kvpb.Mutation{apiDelFam("c"), apiSetC("c", "q", "v3")}},
			{RowKey: []byte(row), Mutations: []*kvpb.Mutation{apiSetTS("c", "q", 11, "eleven")}},
		}})
	if err != nil {
		t.Fatal(err)
	}
	bts = resp.Results[0].Timestamp
	apiEq(t, "put below a delete two entries later", apiCells(e.get(row, apiAllVersions())), []string{"c:q@" + itoa(bts) + "=v3", "c:q@11=eleven"})
	// A put below a delete, then a second delete of the column and a put
	// below it, in later entries of one batch: the second delete is made
	// physical too, or it hides the second put (kvnemesis seed
	// 15940634145521198469: entries [delrow, put@1000] [delfam, put@5000]
	// left no cell).
	resp, err = e.cl.BatchMutate(e.ctx, &kvpb.BatchMutateRequest{
		Header: apiHdr(apiTablet), TableId: apiTableID,
		Entries: []*kvpb.BatchMutateRequest_Entry{
			{RowKey: []byte(row), Mutations: []*kvpb.Mutation{apiDelRow(), apiSetTS("c", "q", 13, "thirteen")}},
			{RowKey: []byte(row), Mutations: []*kvpb.Mutation{apiDelFam("c"), apiSetTS("c", "q", 15, "fifteen")}},
			{RowKey: []byte(row), Mutations: []*kvpb.Mutation{apiDelCol("c", "q", nil), apiSetTS("c", "q", 14, "fourteen")}},
		}})
	if err != nil {
		t.Fatal(err)
	}
	apiEq(t, "puts below deletes in three entries", apiCells(e.get(row, apiAllVersions())), []string{"c:q@14=fourteen"})
	// A time-range delete keeps the deletes inside its range.
	e.mutate(row, apiSetC("c", "r", "r1"))
	td := e.mutate(row, apiDelCol("c", "r", nil))
	e.mutate(row, apiDelCol("c", "r", &kvpb.TimeRange{StartTs: td, EndTs: td + 1}))
	if r := e.get(row, &kvpb.ReadOptions{Columns: []*kvpb.Column{{Family: "c", Qualifier: []byte("r")}}, MaxVersions: 100}); r != nil {
		t.Fatalf("time-range delete of a tombstone brought back %v", apiCells(r))
	}
}

// Version GC removes a tombstone and the versions it masks once the
// tombstone is below the safe point, and not before; reads above stay right.
func TestTombstoneGC(t *testing.T) {
	var safePoint atomic.Int64
	e := newAPIEnv(t, func(o *store.Options) { o.GCSafePoint = safePoint.Load })
	s := e.c.Nodes[1].Store
	row := "gc"
	e.mutate(row, apiSetC("c", "q", "v1"))
	t2 := e.mutate(row, apiSetC("c", "q", "v2"))
	t3 := e.mutate(row, apiDelCol("c", "q", nil))
	t4 := e.mutate(row, apiSetC("c", "q", "v3"))
	gc := func() int {
		n, err := s.GCTablet(e.ctx, apiTablet)
		require.NoError(t, err)
		return n
	}
	safePoint.Store(t3) // the tombstone is at the safe point: kept
	if n := gc(); n != 0 {
		t.Fatalf("GC deleted %d versions with the tombstone at the safe point", n)
	}
	if got := countVersions(t, s.DB(), apiTableID, row, "c", "q"); got != 4 {
		t.Fatalf("%d versions stored, want 4", got)
	}
	apiEq(t, "at t2", apiVals(e.get(row, apiAt(t2, 1))), []string{"c:q=v2"})
	safePoint.Store(t4)
	if n := gc(); n != 3 {
		t.Fatalf("GC deleted %d versions, want 3 (the tombstone and the two it masks)", n)
	}
	if got := countVersions(t, s.DB(), apiTableID, row, "c", "q"); got != 1 {
		t.Fatalf("%d versions stored after GC, want 1", got)
	}
	apiEq(t, "latest", apiVals(e.get(row, apiAllVersions())), []string{"c:q=v3"})
	apiEq(t, "at t4", apiVals(e.get(row, apiAt(t4, 100))), []string{"c:q=v3"})
	_, err := e.getErr(row, apiAt(t2, 1))
	if rto, ok := errs.As[*errorpb.ReadTooOld](err); !ok || rto.Floor != t3 {
		t.Fatalf("read at %d after GC of the tombstone at %d: %v, want ReadTooOld", t2, t3, err)
	}
	// A delete and a put in one command leave a masking value: GC keeps
	// it and removes what it masks.
	e.mutate("gcm", apiSetTS("c", "q", 5, "old"))
	tm := e.mutate("gcm", apiDelCol("c", "q", nil), apiSetC("c", "q", "new"))
	safePoint.Store(tm + 1)
	if n := gc(); n != 1 {
		t.Fatalf("GC deleted %d versions under a masking value, want 1", n)
	}
	apiEq(t, "masking value after GC", apiCells(e.get("gcm", apiAllVersions())), []string{"c:q@" + itoa(tm) + "=new"})
	if got := countVersions(t, s.DB(), apiTableID, "gcm", "c", "q"); got != 1 {
		t.Fatalf("%d versions stored after GC under a masking value, want 1", got)
	}
}

// A cell whose stored CRC does not match its payload is corrupt data: the
// read fails and the replica stops serving.
func TestCellChecksumMismatch(t *testing.T) {
	e := newAPIEnv(t, nil)
	ts := e.mutate("crc", apiSetC("c", "q", "value"))
	k := keys.DataKey(keys.CellKey(apiTableID, []byte("crc"), "c", []byte("q"), ts))
	bad := cellvalue.Encode([]byte("value"))
	bad[len(bad)-1] ^= 0x01
	require.NoError(t, e.c.Nodes[1].Store.DB().Set(k, bad, pebble.Sync))
	if r, err := e.getErr("crc", nil); err == nil {
		t.Fatalf("read of a cell with a bad CRC returned %v", apiCells(r))
	}
	if _, err := e.getErr("other", nil); err == nil {
		t.Fatal("the replica still serves after a checksum mismatch")
	}
}

// A store created by a build without value envelopes (no data format
// record) is refused at open with a DataFormatError saying what to do.
func TestOpenRefusesOldDataFormat(t *testing.T) {
	e := newAPIEnv(t, nil)
	dir := e.c.Nodes[1].Dir
	e.c.Stop(1)
	db, err := pebble.Open(filepath.Join(dir, "engine"), &pebble.Options{})
	require.NoError(t, err)
	require.NoError(t, db.Delete(keys.StoreDataFormatKey(), pebble.Sync))
	require.NoError(t, db.Close())
	_, err = store.Open(store.Options{StoreID: 1, Dir: dir, Resolver: e.c})
	var dfe *store.DataFormatError
	if !errors.As(err, &dfe) || dfe.Found != 0 || dfe.Want != cellvalue.FormatVersion {
		t.Fatalf("open of a store without a data format: %v, want a DataFormatError", err)
	}
	t.Log(err)
}
