package store_test

import (
	"context"
	"io"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/shaledb/shale/internal/admission"
	"github.com/shaledb/shale/internal/keys"
	"github.com/shaledb/shale/proto/kvpb"
	"github.com/shaledb/shale/tabletserver/store"
	"github.com/shaledb/shale/tabletserver/storetest"
)

// exportBytes is the store's admission counter of bytes paced in the
// Export class.
func exportBytes(t *testing.T, reg *prometheus.Registry) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() != "shale_admission_background_bytes_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "class" && l.GetValue() == "export" {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

// A Scan marked as a bulk read (an importer's verification) is paced in
// the Export class by the bytes it reads, although it sends back only
// digests; a foreground scan is not.
func TestBulkReadScanIsPaced(t *testing.T) {
	var mu sync.Mutex
	regs := map[uint64]*prometheus.Registry{}
	c := storetest.Start(t, 3, func(o *store.Options) {
		mu.Lock()
		defer mu.Unlock()
		if regs[o.StoreID] == nil {
			regs[o.StoreID] = prometheus.NewRegistry()
		}
		o.Registry = regs[o.StoreID]
	})
	c.PutSchema(storetest.TestTable)
	desc := c.Bootstrap(1, keys.RowKey(storetest.TestTable.TableId, []byte("b")), keys.RowKey(storetest.TestTable.TableId, []byte("m")), 1, 2, 3)
	ctx := t.Context()
	for _, prefix := range []string{"c", "d", "e", "f"} { // about 140 KB of cells
		sst, _ := buildSST(t, prefix, 999, "f")
		require.NoError(t, uploadAndIngest(ctx, c, 1, desc.Epoch, sst))
	}

	scan := func(ctx context.Context) (leader uint64, rows int) {
		err := c.Call(ctx, 1, func(cl kvpb.TabletClient) error {
			rows = 0
			st, err := cl.Scan(ctx, &kvpb.ScanRequest{Header: &kvpb.RequestHeader{TabletId: 1}, TableId: storetest.TestTable.TableId,
				Options: &kvpb.ReadOptions{Digest: true}})
			if err != nil {
				return err
			}
			for {
				resp, err := st.Recv()
				if err == io.EOF {
					return nil
				}
				if err != nil {
					return err
				}
				rows += len(resp.Rows)
			}
		})
		require.NoError(t, err)
		return c.Leader(1), rows
	}

	leader, rows := scan(ctx)
	require.Equal(t, 4*999, rows)
	mu.Lock()
	reg := regs[leader]
	mu.Unlock()
	before := exportBytes(t, reg)
	require.Zero(t, before, "a foreground scan is not paced as background work")

	leader2, rows := scan(admission.WithBulkRead(ctx))
	require.Equal(t, 4*999, rows)
	require.Equal(t, leader, leader2, "the leader moved during the test")
	// The scan read about 140 KB, paced in 64 KiB steps; its answer was
	// row keys and digests only.
	require.GreaterOrEqual(t, exportBytes(t, reg), float64(2*64<<10), "a bulk read is paced by the bytes it reads")
}
