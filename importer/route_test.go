package importer_test

import (
	"bytes"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shaledb/shale/importer"
	"github.com/shaledb/shale/internal/keys"
	"github.com/shaledb/shale/proto/pdpb"
)

// TestImportRecoversFromStaleRoute: the importer routes through kvclient's
// routing cache, so once a tablet splits behind its back the next SST is
// cut for the cached (stale) shape. The tablet refuses it with an epoch
// mismatch; the shared retry policy (kvclient.Reroute → RefreshRoute)
// updates the cache and the SST is re-cut and ingested.
func TestImportRecoversFromStaleRoute(t *testing.T) {
	e := startEnv(t)
	seed := rand.Uint64()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 5))
	e.createTable("stale")
	tableID := mustTable(e, "stale").Info().ID
	dir := t.TempDir()
	rows := genRows(rng, 300)
	in := filepath.Join(dir, "in.csv")
	writeCSV(t, in, rows, true)
	ids := make([]string, len(rows))
	for i, r := range rows {
		ids[i] = r.id
	}
	slices.Sort(ids)
	// Split in the last tenth of the rows: SSTs beyond the first are still
	// to be cut from the cached route when the split lands.
	splitRow := keys.RowKey(tableID, []byte(ids[len(ids)*9/10]))

	o := rawOptions(e, "stale", []string{in}, filepath.Join(dir, "work"))
	o.SplitBytes = -1    // the importer plans no split of its own
	o.IngestParallel = 1 // SSTs in key order
	pd := e.c.PD()
	split := false
	o.Hook = func(ev importer.Event) {
		if ev.Name != "ingested" || split {
			return
		}
		split = true
		// The importer has routed (and cached) the table's one tablet;
		// split it and wait until the PD shows the split.
		require.Eventually(t, func() bool {
			resp, err := pd.GetTablet(e.ctx, &pdpb.GetTabletRequest{Key: splitRow})
			if err != nil {
				return false
			}
			if bytes.Equal(resp.Tablet.Tablet.StartKey, splitRow) {
				return true
			}
			_, _ = pd.AddOperator(e.ctx, &pdpb.AddOperatorRequest{TabletId: resp.Tablet.Tablet.TabletId, Op: &pdpb.AddOperatorRequest_SplitKey{SplitKey: splitRow}})
			return false
		}, 30*time.Second, 100*time.Millisecond, "split not visible")
	}
	sum, err := importer.Run(e.ctx, o)
	require.NoError(t, err)
	t.Log(sum)
	require.True(t, split, "no SST was ingested")
	require.Greater(t, sum.Recuts, int64(0), "no SST was cut for the stale route and re-cut")
	require.Equal(t, sum.Checksum, sum.VerifiedChecksum)
	e.checkTable("stale", rows, sum.Timestamp)
}
