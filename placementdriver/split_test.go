package placementdriver_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shaledb/shale/placementdriver/pdclient"
	"github.com/shaledb/shale/proto/metapb"
	"github.com/shaledb/shale/proto/pdpb"
)

// One split report from the left tablet's leader makes PD route every
// tablet of a batch split at once (no NotFound gap until the new tablets'
// leaders heartbeat), durably across a PD restart, and a late heartbeat
// carrying the parent's old descriptor does not undo it.
func TestReportSplitRoutesEveryTablet(t *testing.T) {
	c := startPD(t, 1, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl := c.client()
	c.leader(ctx, cl)
	stores := httpRegisterStores(ctx, t, cl, 3)
	httpReportTablet(ctx, t, cl, stores)

	bounds := [][]byte{nil, []byte("b"), []byte("c"), []byte("d"), nil}
	var reports []*pdpb.TabletReport
	for i := 0; i+1 < len(bounds); i++ {
		d := &metapb.TabletDescriptor{TabletId: uint64(1 + i), StartKey: bounds[i], EndKey: bounds[i+1], Epoch: &metapb.Epoch{Version: 4, ConfVersion: 1}}
		for j, id := range stores {
			d.Replicas = append(d.Replicas, &metapb.Replica{ReplicaId: uint64(100 + 10*i + j), StoreId: id})
		}
		reports = append(reports, &pdpb.TabletReport{Tablet: d, LeaderStoreId: stores[0]})
	}
	_, err := cl.ReportSplit(ctx, &pdpb.ReportSplitRequest{StoreId: stores[0], Reports: reports})
	require.NoError(t, err)
	checkRoutes := func(cl *pdclient.Client, leaders bool) {
		t.Helper()
		for i, k := range [][]byte{[]byte("a"), []byte("b"), []byte("bz"), []byte("c"), []byte("d"), []byte("zz")} {
			want := []uint64{1, 2, 2, 3, 4, 4}[i]
			resp, err := cl.GetTablet(ctx, &pdpb.GetTabletRequest{Key: k})
			require.NoError(t, err, "key %q", k)
			require.Equal(t, want, resp.Tablet.Tablet.TabletId, "key %q", k)
			if leaders { // a restarted PD learns leaders from heartbeats
				require.Equal(t, stores[0], resp.Tablet.LeaderStoreId, "key %q", k)
			}
		}
		resp, err := cl.ScanTablets(ctx, &pdpb.ScanTabletsRequest{})
		require.NoError(t, err)
		require.Len(t, resp.Tablets, 4)
		for i, ti := range resp.Tablets {
			require.True(t, bytes.Equal(ti.Tablet.StartKey, bounds[i]) && bytes.Equal(ti.Tablet.EndKey, bounds[i+1]), "tablet %d: %v", i, ti.Tablet)
		}
	}
	checkRoutes(cl, true)
	// The left tablet's stats survive a report without them.
	resp, err := cl.GetTablet(ctx, &pdpb.GetTabletRequest{Key: []byte("a")})
	require.NoError(t, err)
	require.EqualValues(t, 4096, resp.Tablet.Stats.GetApproximateSize())

	// A stale heartbeat of the parent changes nothing.
	httpReportTablet(ctx, t, cl, stores)
	checkRoutes(cl, true)

	// A report without tablets is refused.
	_, err = cl.ReportSplit(ctx, &pdpb.ReportSplitRequest{StoreId: stores[0]})
	require.Error(t, err)

	// The new tablets were persisted.
	c.stop("pd1")
	c.start("pd1", nil)
	cl2 := c.client()
	c.leader(ctx, cl2)
	checkRoutes(cl2, false)
}
