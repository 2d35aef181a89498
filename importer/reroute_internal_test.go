package importer

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shaledb/shale/internal/keys"
	"github.com/shaledb/shale/internal/stop"
	"github.com/shaledb/shale/internal/testcluster"
	"github.com/shaledb/shale/internal/testutils"
	"github.com/shaledb/shale/kvclient"
	"github.com/shaledb/shale/proto/metapb"
	"github.com/shaledb/shale/proto/pdpb"
)

// TestIngestStaleRouteSharedPolicy: an SST cut for a route the tablet has
// since split away from is refused (EpochMismatch); the shared policy
// (kvclient.Reroute) installs the tablet's new shape in kvclient's routing
// cache, which the importer cuts its next SSTs from, and ingestOne returns
// the new route, where the same SST goes in.
func TestIngestStaleRouteSharedPolicy(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	kv, err := kvclient.Open(ctx, kvclient.Options{PD: c.PDEndpoints()})
	require.NoError(t, err)
	defer kv.Close()
	ti, err := kv.CreateTable(ctx, "stale", []kvclient.Family{{Name: "f"}})
	require.NoError(t, err)
	rowKey := func(r string) []byte { return keys.RowKey(ti.ID, []byte(r)) }

	// The importer's view: the table's one tablet, now cached.
	stale, err := kv.RouteKey(ctx, rowKey("b"), false)
	require.NoError(t, err)

	// Split it at row "m" behind the cache's back; wait until the PD
	// reports the left half's new shape.
	split := rowKey("m")
	pd := c.PD()
	testutils.Eventually(t, "split not visible", func() bool {
		resp, err := pd.GetTablet(ctx, &pdpb.GetTabletRequest{Key: rowKey("b")})
		if err != nil {
			return false
		}
		if bytes.Equal(resp.Tablet.Tablet.EndKey, split) {
			return true
		}
		_, _ = pd.AddOperator(ctx, &pdpb.AddOperatorRequest{TabletId: resp.Tablet.Tablet.TabletId, Op: &pdpb.AddOperatorRequest_SplitKey{SplitKey: split}})
		return false
	})
	cached, err := kv.RouteKey(ctx, rowKey("b"), false)
	require.NoError(t, err)
	require.True(t, sameDesc(cached.Desc, stale.Desc), "the cache learned of the split before the ingest")

	ts := time.Now().UnixMicro()
	b := NewSSTBuilder()
	for _, r := range []string{"b", "c"} {
		require.NoError(t, b.Add(keys.CellKey(ti.ID, []byte(r), "f", []byte("q"), ts), []byte("v-"+r), ts))
	}
	sst, err := b.Finish()
	require.NoError(t, err)

	j := &job{o: Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}, kv: kv, schema: &metapb.TableSchema{TableId: ti.ID}, stopper: stop.New()}
	defer func() { require.NoError(t, j.stopper.Stop(context.Background())) }()
	next, err := j.ingestOne(ctx, &stale, sst)
	require.NoError(t, err)
	require.NotNil(t, next, "the stale route was not refused")
	require.Equal(t, split, next.Desc.EndKey, "re-cut for the left half")

	// The refusal went through the shared policy: kvclient's cache, which
	// the importer routes by, now holds the new shape.
	cached, err = kv.RouteKey(ctx, rowKey("b"), false)
	require.NoError(t, err)
	require.Equal(t, split, cached.Desc.EndKey)
	require.False(t, sameDesc(cached.Desc, stale.Desc))

	again, err := j.ingestOne(ctx, next, sst)
	require.NoError(t, err)
	require.Nil(t, again)
	tbl, err := kv.Table(ctx, "stale")
	require.NoError(t, err)
	for _, r := range []string{"b", "c"} {
		row, err := tbl.Get(ctx, []byte(r))
		require.NoError(t, err)
		require.NotNil(t, row, "row %s", r)
		v, _ := row.Value("f", []byte("q"))
		require.Equal(t, "v-"+r, string(v))
	}
}
