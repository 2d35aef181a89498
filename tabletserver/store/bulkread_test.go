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

// classBytes is the store's admission counter of bytes paced in class.
func classBytes(t *testing.T, reg *prometheus.Registry, class admission.Class) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() != "shale_admission_background_bytes_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "class" && l.GetValue() == class.String() {
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
	c, registry := startPacedScanCluster(t)
	ctx := t.Context()

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
	reg := registry(leader)
	before := classBytes(t, reg, admission.Export)
	require.Zero(t, before, "a foreground scan is not paced as background work")

	leader2, rows := scan(admission.WithBulkRead(ctx))
	require.Equal(t, 4*999, rows)
	require.Equal(t, leader, leader2, "the leader moved during the test")
	// The scan read about 140 KB, paced in 64 KiB steps; its answer was
	// row keys and digests only.
	require.GreaterOrEqual(t, classBytes(t, reg, admission.Export), float64(2*64<<10), "a bulk read is paced by the bytes it reads")
}

// startPacedScanCluster starts 3 stores, each with its own metrics
// registry (registry(storeID)), with tablet 1 holding about 140 KB of
// cells in 4×999 rows, one version each.
func startPacedScanCluster(t *testing.T) (c *storetest.Cluster, registry func(storeID uint64) *prometheus.Registry) {
	var mu sync.Mutex
	regs := map[uint64]*prometheus.Registry{}
	c = storetest.Start(t, 3, func(o *store.Options) {
		mu.Lock()
		defer mu.Unlock()
		if regs[o.StoreID] == nil {
			regs[o.StoreID] = prometheus.NewRegistry()
		}
		o.Registry = regs[o.StoreID]
	})
	c.PutSchema(storetest.TestTable)
	desc := c.Bootstrap(1, keys.RowKey(storetest.TestTable.TableId, []byte("b")), keys.RowKey(storetest.TestTable.TableId, []byte("m")), 1, 2, 3)
	for _, prefix := range []string{"c", "d", "e", "f"} {
		sst, _ := buildSST(t, prefix, 999, "f")
		require.NoError(t, uploadAndIngest(t.Context(), c, 1, desc.Epoch, sst))
	}
	return c, func(id uint64) *prometheus.Registry {
		mu.Lock()
		defer mu.Unlock()
		return regs[id]
	}
}

// A version-GC pass over a tablet without garbage reads all of it and
// deletes nothing: it is paced in the GC class by the bytes it reads.
func TestGCScanIsPaced(t *testing.T) {
	c, registry := startPacedScanCluster(t)
	leader := c.WaitLeader(1)
	n, err := c.Nodes[leader].Store.GCTablet(t.Context(), 1)
	require.NoError(t, err)
	require.Zero(t, n, "one version per cell: no garbage")
	read, _ := c.Nodes[leader].Store.GCPasses()
	require.Greater(t, read, float64(128<<10), "the pass read the tablet")
	require.GreaterOrEqual(t, classBytes(t, registry(leader), admission.GC), float64(2*64<<10), "a GC pass is paced by the bytes it reads")
}
