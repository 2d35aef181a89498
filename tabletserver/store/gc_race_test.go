package store_test

import (
	"sync/atomic"
	"testing"

	"github.com/shaledb/shale/proto/kvpb"
	"github.com/shaledb/shale/tabletserver/store"
)

// A version GC chooses garbage from a snapshot and deletes it by key later,
// through raft. A put at a client-chosen timestamp below a delete makes the
// delete physical and writes a key the GC may have found masked by that
// delete: the GC must not delete the new version (kvnemesis soak seed
// 15940634145521198469, row e007.r22: [set(f:b=x) set(f:b=y@1000)] after
// delfam(f) lost y@1000 to a GC pass that had seen the old f:b@1000 under
// the family's tombstone).
func TestGCKeepsVersionRewrittenAfterItsSnapshot(t *testing.T) {
	e, hook := newGCRaceEnv(t)
	row := "gcrace"
	e.mutate(row, apiSetTS("c", "b", 1000, "old@1000"), apiSetC("c", "b", "old"))
	e.mutate(row, apiDelFam("c"))
	var tPut int64
	hook.Store(func() {
		// Between the GC's snapshot and its proposal.
		tPut = e.mutate(row, apiSetC("c", "b", "new"), apiSetTS("c", "b", 1000, "new@1000"))
	})
	if _, err := e.c.Nodes[1].Store.GCTablet(e.ctx, apiTablet); err != nil {
		t.Fatal(err)
	}
	if tPut == 0 {
		t.Fatal("the GC pass proposed nothing: the hook did not run")
	}
	want := []string{"c:b@" + itoa(tPut) + "=new", "c:b@1000=new@1000"}
	apiEq(t, "after GC", apiCells(e.get(row, apiAllVersions())), want)
	// A later pass, from a fresh snapshot, collects nothing of it either.
	if _, err := e.c.Nodes[1].Store.GCTablet(e.ctx, apiTablet); err != nil {
		t.Fatal(err)
	}
	apiEq(t, "after a second GC", apiCells(e.get(row, apiAllVersions())), want)
	var rows []*kvpb.Row
	rows, _, _ = e.scan(&kvpb.ScanRequest{Header: apiHdr(apiTablet), TableId: apiTableID, StartRow: []byte(row), EndRow: []byte(row + "\x00"), Reverse: true, Options: apiAllVersions()})
	if len(rows) != 1 {
		t.Fatalf("reverse scan: %d rows", len(rows))
	}
	apiEq(t, "reverse scan after GC", apiCells(rows[0]), want)
}

// The tombstone a GC pass collects last (after what it masks) may be
// replaced by a put at its timestamp before the pass's command applies:
// the put, a masking value now, must stay.
func TestGCKeepsPutThatReplacedItsTombstone(t *testing.T) {
	e, hook := newGCRaceEnv(t)
	row := "gcrace2"
	e.mutate(row, apiSetC("c", "b", "old"))
	tDel := e.mutate(row, apiDelFam("c"))
	ran := false
	hook.Store(func() {
		ran = true
		e.mutate(row, apiSetTS("c", "b", tDel, "at-delete"))
	})
	if _, err := e.c.Nodes[1].Store.GCTablet(e.ctx, apiTablet); err != nil {
		t.Fatal(err)
	}
	if !ran {
		t.Fatal("the GC pass proposed nothing: the hook did not run")
	}
	apiEq(t, "after GC", apiCells(e.get(row, apiAllVersions())), []string{"c:b@" + itoa(tDel) + "=at-delete"})
}

// newGCRaceEnv is an API env whose next GC pass runs the func stored in
// hook once, between its snapshot and its proposal.
func newGCRaceEnv(t *testing.T) (*apiEnv, *atomic.Value) {
	hook := &atomic.Value{} // func()
	e := newAPIEnv(t, func(o *store.Options) {
		o.Knobs.BeforeGCPropose = func(uint64) {
			if f, ok := hook.Load().(func()); ok && f != nil {
				hook.Store(func() {})
				f()
			}
		}
	})
	return e, hook
}
