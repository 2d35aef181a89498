package store_test

import (
	"context"
	"io"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/sstable"
	"github.com/stretchr/testify/require"

	"github.com/shaledb/shale/internal/keys"
	"github.com/shaledb/shale/proto/kvpb"
	"github.com/shaledb/shale/proto/metapb"
	"github.com/shaledb/shale/tabletserver/storetest"
)

// exported is what one Export returned: cells by kind ("data"/"keys") as
// decoded keys (value for data files), and the last message.
type exported struct {
	cells map[string][]keys.Cell
	vals  map[string][]string
	last  *kvpb.ExportResponse
}

func runExport(t *testing.T, ctx context.Context, c *storetest.Cluster, req *kvpb.ExportRequest) exported {
	t.Helper()
	out := exported{cells: map[string][]keys.Cell{}, vals: map[string][]string{}}
	err := c.Call(ctx, 1, func(cl kvpb.TabletClient) error {
		out = exported{cells: map[string][]keys.Cell{}, vals: map[string][]string{}}
		stream, err := cl.Export(ctx, req)
		if err != nil {
			return err
		}
		var buf []byte
		for {
			msg, err := stream.Recv()
			if err == io.EOF {
				return nil
			}
			if err != nil {
				return err
			}
			buf = append(buf, msg.Chunk...)
			if msg.FileDone {
				rd, err := sstable.NewMemReader(buf, sstable.ReaderOptions{})
				require.NoError(t, err)
				it, err := rd.NewIter(sstable.NoTransforms, nil, nil, sstable.TableBlobContext{})
				require.NoError(t, err)
				for kv := it.First(); kv != nil; kv = it.Next() {
					cell, err := keys.DecodeCellKey(kv.K.UserKey)
					require.NoError(t, err)
					v, _, err := kv.Value(nil)
					require.NoError(t, err)
					out.cells[msg.Kind] = append(out.cells[msg.Kind], cell)
					out.vals[msg.Kind] = append(out.vals[msg.Kind], string(v))
				}
				require.NoError(t, it.Close())
				require.NoError(t, rd.Close())
				buf = nil
			}
			if msg.Done {
				out.last = msg
			}
		}
	})
	require.NoError(t, err)
	return out
}

// Export returns exactly what a read at ts sees of the named table (never
// another table's cells in the same tablet, never a version above ts,
// at most max-versions of each column counted at ts), cut into files of
// the size asked; an incremental splits the versions into (since, ts]
// data and the keys of older visible ones.
func TestExportAtTimestamp(t *testing.T) {
	c := storetest.Start(t, 3, nil)
	a := &metapb.TableSchema{TableId: 9, Name: "a", Version: 1, Families: []*metapb.FamilySchema{{Name: "f", MaxVersions: 2}}}
	b := &metapb.TableSchema{TableId: 10, Name: "b", Version: 1, Families: []*metapb.FamilySchema{{Name: "f"}}}
	c.PutSchema(a)
	c.PutSchema(b)
	// One tablet holds both tables.
	c.Bootstrap(1, keys.TablePrefix(9), keys.PrefixEnd(keys.TablePrefix(10)), 1, 2, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	put := func(table uint64, row, v string) int64 {
		var ts int64
		require.NoError(t, c.Call(ctx, 1, func(cl kvpb.TabletClient) error {
			resp, err := cl.MutateRow(ctx, &kvpb.MutateRowRequest{Header: &kvpb.RequestHeader{TabletId: 1}, TableId: table, RowKey: []byte(row),
				Mutations: []*kvpb.Mutation{storetest.SetCell("f", "q", v)}})
			if err == nil {
				ts = resp.Timestamp
			}
			return err
		}))
		return ts
	}
	put(9, "r", "v1")
	put(9, "r", "v2")
	since := put(9, "r", "v3")
	put(9, "s", "s1")
	at := put(10, "other", "x")
	put(9, "r", "v4") // after ts: not exported

	full := runExport(t, ctx, c, &kvpb.ExportRequest{Header: &kvpb.RequestHeader{TabletId: 1}, TableId: 9, Ts: at, AllowFollower: true})
	require.Equal(t, []string{"v3", "v2", "s1"}, full.vals["data"], "a read at ts sees v3 and v2 (max versions 2) and s1")
	for _, cell := range full.cells["data"] {
		require.Equal(t, uint64(9), cell.TableID)
	}
	require.Empty(t, full.cells["keys"])
	require.Equal(t, uint64(3), full.last.StateCells)
	require.Equal(t, keys.PrefixEnd(keys.TablePrefix(9)), full.last.CoveredEnd)

	inc := runExport(t, ctx, c, &kvpb.ExportRequest{Header: &kvpb.RequestHeader{TabletId: 1}, TableId: 9, Ts: at, SinceTs: since, AllowFollower: true})
	require.Equal(t, []string{"s1"}, inc.vals["data"])
	require.Len(t, inc.cells["keys"], 2, "v3 and v2 are older than since and still visible")
	require.Equal(t, []string{"", ""}, inc.vals["keys"])
	require.Equal(t, full.last.StateDigest, inc.last.StateDigest, "the state digest covers the older cells too")

	// Small files: one cell each.
	small := runExport(t, ctx, c, &kvpb.ExportRequest{Header: &kvpb.RequestHeader{TabletId: 1}, TableId: 9, Ts: at, MaxFileBytes: 1})
	require.Len(t, small.vals["data"], 3)

	// Bad timestamps are refused.
	err := c.Call(ctx, 1, func(cl kvpb.TabletClient) error {
		stream, err := cl.Export(ctx, &kvpb.ExportRequest{Header: &kvpb.RequestHeader{TabletId: 1}, TableId: 9, Ts: at, SinceTs: at})
		if err != nil {
			return err
		}
		_, err = stream.Recv()
		return err
	})
	require.Error(t, err)
}
