package store_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/shaledb/shale/internal/keys"
	"github.com/shaledb/shale/internal/testutils"
	"github.com/shaledb/shale/proto/kvpb"
	"github.com/shaledb/shale/proto/metapb"
	"github.com/shaledb/shale/tabletserver/storetest"
)

// countVersions counts stored versions of a column on one store's engine.
func countVersions(t *testing.T, db *pebble.DB, table uint64, row, fam, qual string) int {
	t.Helper()
	col := keys.ColumnPrefix(table, []byte(row), fam, []byte(qual))
	it, err := db.NewIter(&pebble.IterOptions{LowerBound: keys.DataKey(col), UpperBound: keys.DataKey(keys.PrefixEnd(col))})
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	n := 0
	for it.First(); it.Valid(); it.Next() {
		n++
	}
	return n
}

// Old versions beyond a family's max_versions, and versions older than its
// max_age, are deleted on every replica by the background GC.
func TestVersionGC(t *testing.T) {
	schema := &metapb.TableSchema{TableId: 9, Name: "gc", Version: 1, Families: []*metapb.FamilySchema{
		{Name: "v", MaxVersions: 2},
		{Name: "a", MaxAgeMs: 60_000},
		{Name: "k"}, // keep everything
	}}
	c := storetest.Start(t, 3, nil)
	c.PutSchema(schema)
	p := keys.TablePrefix(9)
	c.Bootstrap(1, p, keys.PrefixEnd(p), 1, 2, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	old := time.Now().Add(-time.Hour).UnixMicro()
	for i := 0; i < 5; i++ {
		err := c.Call(ctx, 1, func(cl kvpb.TabletClient) error {
			_, err := cl.MutateRow(ctx, &kvpb.MutateRowRequest{Header: &kvpb.RequestHeader{TabletId: 1}, TableId: 9, RowKey: []byte("r"), Mutations: []*kvpb.Mutation{
				storetest.SetCell("v", "q", fmt.Sprint(i)),
				storetest.SetCell("k", "q", fmt.Sprint(i)),
				{Mutation: &kvpb.Mutation_SetCell_{SetCell: &kvpb.Mutation_SetCell{Family: "a", Qualifier: []byte("old"), Timestamp: old + int64(i), Value: []byte("x")}}},
				storetest.SetCell("a", "new", fmt.Sprint(i)),
			}})
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	// Reads hide garbage before it is collected.
	var got *kvpb.Row
	err := c.Call(ctx, 1, func(cl kvpb.TabletClient) error {
		resp, err := cl.Get(ctx, &kvpb.GetRequest{Header: &kvpb.RequestHeader{TabletId: 1}, TableId: 9, RowKey: []byte("r"), Options: &kvpb.ReadOptions{MaxVersions: 10}})
		got = resp.GetRow()
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	perCol := map[string]int{}
	for _, cell := range got.Cells {
		perCol[cell.Family+":"+string(cell.Qualifier)]++
	}
	if want := map[string]int{"v:q": 2, "k:q": 5, "a:new": 5}; fmt.Sprint(perCol) != fmt.Sprint(want) {
		t.Fatalf("visible versions %v, want %v", perCol, want)
	}

	leader := c.WaitLeader(1)
	n, err := c.Nodes[leader].Store.GCTablet(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	if n != 3+5 {
		t.Fatalf("GC deleted %d versions, want 8 (3 beyond max_versions, 5 expired)", n)
	}
	if versions, dedup := c.Nodes[leader].Store.GCDeleted(); versions != 8 || dedup != 0 {
		t.Fatalf("GC metrics count %v versions and %v request-ID records, want 8 and 0", versions, dedup)
	}
	testutils.SucceedsSoon(t, func() error {
		for id, node := range c.Nodes {
			db := node.Store.DB()
			for col, want := range map[[2]string]int{{"v", "q"}: 2, {"k", "q"}: 5, {"a", "old"}: 0, {"a", "new"}: 5} {
				if got := countVersions(t, db, 9, "r", col[0], col[1]); got != want {
					return fmt.Errorf("store %d %s:%s has %d stored versions, want %d", id, col[0], col[1], got, want)
				}
			}
		}
		return nil
	})
}
