package pdcluster

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/shaledb/shale/internal/keys"
	"github.com/shaledb/shale/internal/testcluster"
	"github.com/shaledb/shale/internal/testutils"
	"github.com/shaledb/shale/proto/kvpb"
	"github.com/shaledb/shale/proto/metapb"
	"github.com/shaledb/shale/proto/pdpb"
)

// PD bootstraps the first tablet once three stores joined (with three
// replicas, never fewer), a created table gets tablets of its own, and rows
// written to them are read back.
func TestBootstrapCreateTableWriteRead(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	first, err := c.PD().GetTablet(ctx, &pdpb.GetTabletRequest{Key: []byte("anything")})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(first.Tablet.Tablet.Replicas); n != 3 {
		t.Fatalf("first tablet has %d replicas, want 3", n)
	}
	tbl, err := c.PD().CreateTable(ctx, &pdpb.CreateTableRequest{Name: "users", Families: []*metapb.FamilySchema{{Name: "f", MaxVersions: 1}}, SplitRows: [][]byte{[]byte("m")}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.PD().CreateTable(ctx, &pdpb.CreateTableRequest{Name: "users", Families: []*metapb.FamilySchema{{Name: "f"}}}); err == nil {
		t.Fatal("creating a table twice succeeded")
	}
	id := tbl.Table.TableId
	// The table's range and its split row become tablet boundaries.
	for _, row := range []string{"a", "z"} {
		key := keys.RowKey(id, []byte(row))
		testutils.SucceedsSoon(t, func() error {
			resp, err := c.PD().GetTablet(ctx, &pdpb.GetTabletRequest{Key: key})
			if err != nil {
				return err
			}
			d := resp.Tablet.Tablet
			lo, hi := keys.TablePrefix(id), keys.RowKey(id, []byte("m"))
			if row == "z" {
				lo, hi = keys.RowKey(id, []byte("m")), keys.TablePrefix(id+1)
			}
			if !bytes.Equal(d.StartKey, lo) || !bytes.Equal(d.EndKey, hi) || resp.Tablet.LeaderStoreId == 0 {
				return fmt.Errorf("row %s: tablet %d [%x, %x) leader %d", row, d.TabletId, d.StartKey, d.EndKey, resp.Tablet.LeaderStoreId)
			}
			return nil
		})
	}
	// Write and read through the tablets' leaders.
	for _, row := range []string{"alice", "zoe"} {
		testutils.SucceedsSoon(t, func() error {
			resp, err := c.PD().GetTablet(ctx, &pdpb.GetTabletRequest{Key: keys.RowKey(id, []byte(row))})
			if err != nil {
				return err
			}
			cl, done, err := c.TabletClient(ctx, resp.Tablet.LeaderStoreId)
			if err != nil {
				return err
			}
			defer done()
			h := &kvpb.RequestHeader{TabletId: resp.Tablet.Tablet.TabletId}
			if _, err := cl.MutateRow(ctx, &kvpb.MutateRowRequest{Header: h, TableId: id, RowKey: []byte(row), Mutations: []*kvpb.Mutation{
				{Mutation: &kvpb.Mutation_SetCell_{SetCell: &kvpb.Mutation_SetCell{Family: "f", Qualifier: []byte("name"), Value: []byte(row)}}},
			}}); err != nil {
				return err
			}
			got, err := cl.Get(ctx, &kvpb.GetRequest{Header: h, TableId: id, RowKey: []byte(row)})
			if err != nil {
				return err
			}
			if got.Row == nil || string(got.Row.Cells[0].Value) != row {
				return fmt.Errorf("read back %v", got.Row)
			}
			return nil
		})
	}
}
