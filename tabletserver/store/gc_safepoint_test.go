package store_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shaledb/shale/internal/keys"
	"github.com/shaledb/shale/proto/kvpb"
	"github.com/shaledb/shale/proto/metapb"
	"github.com/shaledb/shale/tabletserver/store"
	"github.com/shaledb/shale/tabletserver/storetest"
)

// Version GC never removes a version at or above the cluster's GC safe
// point, keeps below it what a read at the safe point sees, and collects
// nothing while the safe point is unknown (0).
func TestVersionGCSafePoint(t *testing.T) {
	var safePoint atomic.Int64
	schema := &metapb.TableSchema{TableId: 9, Name: "gc", Version: 1, Families: []*metapb.FamilySchema{{Name: "v", MaxVersions: 1}}}
	c := storetest.Start(t, 3, func(o *store.Options) { o.GCSafePoint = safePoint.Load })
	c.PutSchema(schema)
	p := keys.TablePrefix(9)
	c.Bootstrap(1, p, keys.PrefixEnd(p), 1, 2, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var stamps []int64
	for i := 0; i < 6; i++ {
		err := c.Call(ctx, 1, func(cl kvpb.TabletClient) error {
			resp, err := cl.MutateRow(ctx, &kvpb.MutateRowRequest{Header: &kvpb.RequestHeader{TabletId: 1}, TableId: 9, RowKey: []byte("r"),
				Mutations: []*kvpb.Mutation{storetest.SetCell("v", "q", fmt.Sprint(i))}})
			if err == nil {
				stamps = append(stamps, resp.Timestamp)
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	leader := c.WaitLeader(1)
	gc := func() int {
		n, err := c.Nodes[leader].Store.GCTablet(ctx, 1)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := gc(); n != 0 {
		t.Fatalf("GC deleted %d versions with no safe point known, want 0", n)
	}
	// Safe point at the 4th write: versions 3, 4, 5 (0-based) stay, and
	// of those below it the newest (2) which a read there sees.
	safePoint.Store(stamps[3])
	if n := gc(); n != 2 {
		t.Fatalf("GC deleted %d versions below the safe point, want 2 (versions 0 and 1)", n)
	}
	if got := countVersions(t, c.Nodes[leader].Store.DB(), 9, "r", "v", "q"); got != 4 {
		t.Fatalf("%d versions stored after GC at the safe point, want 4", got)
	}
	safePoint.Store(stamps[5] + 1)
	if n := gc(); n != 3 {
		t.Fatalf("GC deleted %d versions once the safe point passed them all, want 3", n)
	}
}
