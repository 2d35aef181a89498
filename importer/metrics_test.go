package importer_test

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/shaledb/shale/importer"
)

// TestProgressMetrics: the collector reports the last snapshot given, with
// exactly one phase set.
func TestProgressMetrics(t *testing.T) {
	pm := importer.NewProgressMetrics()
	reg := prometheus.NewRegistry()
	reg.MustRegister(pm)
	pm.Update(importer.Progress{Phase: "ingest", InputBytes: 10, InputRows: 3, IngestedRows: 2, SSTs: 1, Elapsed: 1500 * time.Millisecond})
	mfs, err := reg.Gather()
	require.NoError(t, err)
	got := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			name := mf.GetName()
			for _, l := range m.GetLabel() {
				name += "/" + l.GetValue()
			}
			got[name] = m.GetGauge().GetValue()
		}
	}
	require.Equal(t, 10.0, got["shale_import_input_bytes"])
	require.Equal(t, 3.0, got["shale_import_input_rows"])
	require.Equal(t, 2.0, got["shale_import_ingested_rows"])
	require.Equal(t, 1.0, got["shale_import_ssts"])
	require.Equal(t, 1.5, got["shale_import_elapsed_seconds"])
	require.Equal(t, 1.0, got["shale_import_phase/ingest"])
	require.Equal(t, 0.0, got["shale_import_phase/parse"])
}
