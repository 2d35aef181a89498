package store_test

import (
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/shaledb/shale/internal/keys"
	"github.com/shaledb/shale/proto/kvpb"
	"github.com/shaledb/shale/tabletserver/storetest"
)

// TestScanDigest: with ReadOptions.digest a scan returns, per row, the
// count and digest sum of exactly the cells the same scan would return
// (projection, versions and time range applied), and no cells; rows
// without selected cells are left out.
func TestScanDigest(t *testing.T) {
	c, tab := startTablet(t, 1)
	ctx := ctxT(t, 20*time.Second)
	table := storetest.TestTable.TableId
	cl := c.Nodes[1].Client
	for i := 0; i < 6; i++ {
		muts := []*kvpb.Mutation{storetest.SetCell("f", "a", fmt.Sprint("a", i))}
		if i%2 == 0 {
			muts = append(muts, storetest.SetCell("f", "b", fmt.Sprint("b", i)))
		}
		for round := 0; round < 2; round++ { // two versions of each cell
			if _, err := cl.MutateRow(ctx, &kvpb.MutateRowRequest{Header: &kvpb.RequestHeader{TabletId: tab}, TableId: table, RowKey: []byte(fmt.Sprintf("r%d", i)), Mutations: muts}); err != nil {
				t.Fatal(err)
			}
		}
	}
	scan := func(o *kvpb.ReadOptions) []*kvpb.Row {
		t.Helper()
		st, err := cl.Scan(ctx, &kvpb.ScanRequest{Header: &kvpb.RequestHeader{TabletId: tab}, TableId: table, Options: o, PageRows: 2})
		if err != nil {
			t.Fatal(err)
		}
		var rows []*kvpb.Row
		for {
			resp, err := st.Recv()
			if err == io.EOF {
				return rows
			}
			if err != nil {
				t.Fatal(err)
			}
			rows = append(rows, resp.Rows...)
		}
	}
	for _, tc := range []struct {
		name string
		opts func() *kvpb.ReadOptions
	}{
		{"newest versions", func() *kvpb.ReadOptions { return &kvpb.ReadOptions{} }},
		{"all versions", func() *kvpb.ReadOptions { return &kvpb.ReadOptions{MaxVersions: 5} }},
		{"one column", func() *kvpb.ReadOptions {
			return &kvpb.ReadOptions{Columns: []*kvpb.Column{{Family: "f", Qualifier: []byte("b")}}}
		}},
	} {
		plain := scan(tc.opts())
		o := tc.opts()
		o.Digest = true
		digested := scan(o)
		if len(plain) == 0 || len(digested) != len(plain) {
			t.Fatalf("%s: %d digested rows, %d plain", tc.name, len(digested), len(plain))
		}
		var d keys.CellDigester
		for i, p := range plain {
			g := digested[i]
			var want uint64
			for _, cell := range p.Cells {
				want += d.CellDigest(p.Key, cell.Family, cell.Qualifier, cell.Value)
			}
			if string(g.Key) != string(p.Key) || len(g.Cells) != 0 || int(g.CellCount) != len(p.Cells) || g.CellDigest != want {
				t.Errorf("%s: row %q: got key %q, %d cells, count %d, digest %x; want %d cells with digest %x",
					tc.name, p.Key, g.Key, len(g.Cells), g.CellCount, g.CellDigest, len(p.Cells), want)
			}
		}
	}
	// Digests are sums: a changed value changes the row's digest.
	before := scan(&kvpb.ReadOptions{Digest: true})
	if _, err := cl.MutateRow(ctx, &kvpb.MutateRowRequest{Header: &kvpb.RequestHeader{TabletId: tab}, TableId: table, RowKey: []byte("r3"), Mutations: []*kvpb.Mutation{storetest.SetCell("f", "a", "changed")}}); err != nil {
		t.Fatal(err)
	}
	after := scan(&kvpb.ReadOptions{Digest: true})
	for i := range before {
		if changed := before[i].CellDigest != after[i].CellDigest; changed != (string(before[i].Key) == "r3") {
			t.Errorf("row %q: digest changed=%v after writing r3", before[i].Key, changed)
		}
	}
}
