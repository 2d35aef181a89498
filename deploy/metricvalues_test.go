package deploy

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shaledb/shale/internal/testcluster"
	"github.com/shaledb/shale/internal/testutils"
	"github.com/shaledb/shale/kvclient"
)

// scrape returns a /metrics answer as series → value ("name{labels}").
func scrape(t *testing.T, url string) map[string]float64 {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	out := map[string]float64{}
	for _, line := range strings.Split(string(b), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		require.NoError(t, err, line)
		out[line[:i]] = v
	}
	return out
}

// TestClusterMetricsValues: the store and PD gauges and histograms say
// what the cluster does: three up stores, every tablet fully replicated,
// fsyncs and applied proposals timed; with a store stopped, PD counts it
// disconnected and its tablets under-replicated.
func TestClusterMetricsValues(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{HTTP: true})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cl, err := kvclient.Open(ctx, kvclient.Options{PD: c.PDEndpoints()})
	require.NoError(t, err)
	defer cl.Close()
	testutils.SucceedsSoon(t, func() error { return cl.RawPut(ctx, []byte("row"), []byte("v")) })
	pdURL := "http://" + c.PDHTTP["pd1"] + "/metrics"

	testutils.SucceedsSoon(t, func() error {
		pd := scrape(t, pdURL)
		for series, want := range map[string]float64{
			"shale_pd_is_leader": 1, `shale_pd_stores{state="up"}`: 3, "shale_pd_tablets_under_replicated": 0,
		} {
			if got, ok := pd[series]; !ok || got != want {
				return fmt.Errorf("%s = %v, want %v", series, got, want)
			}
		}
		if pd["shale_pd_tablets"] < 1 || pd[`shale_pd_operators_ended_total{kind="split",result="finished"}`] < 1 {
			return fmt.Errorf("no tablets or no finished split operator yet")
		}
		return nil
	})
	// Replicas of a fresh split may still be catching up: wait for the
	// stores to agree with PD.
	testutils.SucceedsSoon(t, func() error {
		var tablets, leaders, syncs, applies float64
		for _, s := range c.Stores {
			m := scrape(t, "http://"+s.HTTPAddr+"/metrics")
			tablets += m["shale_store_tablets"]
			leaders += m["shale_store_leaders"]
			syncs += m["shale_store_raft_log_sync_seconds_count"]
			applies += m["shale_store_raft_proposal_apply_seconds_count"]
			require.Greater(t, m["shale_store_disk_capacity_bytes"], 0.0)
			require.Greater(t, m["shale_store_disk_used_bytes"], 0.0)
			require.Contains(t, m, "shale_pebble_read_amplification")
			require.Equal(t, m["shale_store_tablets"], m["shale_store_tablets_active"]+m["shale_store_tablets_quiescent"])
		}
		pd := scrape(t, pdURL)
		if tablets != pd["shale_pd_tablets"]*3 || leaders != pd["shale_pd_tablets"] {
			return fmt.Errorf("stores hold %v replicas and %v leaders of PD's %v tablets", tablets, leaders, pd["shale_pd_tablets"])
		}
		if syncs == 0 || applies == 0 {
			return fmt.Errorf("no fsync (%v) or applied proposal (%v) timed", syncs, applies)
		}
		return nil
	})

	c.StopStore(2)
	testutils.SucceedsSoon(t, func() error {
		pd := scrape(t, pdURL)
		if pd[`shale_pd_stores{state="up"}`] != 2 || pd[`shale_pd_stores{state="disconnected"}`]+pd[`shale_pd_stores{state="down"}`] != 1 {
			return fmt.Errorf("stores by state: up %v, disconnected %v", pd[`shale_pd_stores{state="up"}`], pd[`shale_pd_stores{state="disconnected"}`])
		}
		if pd["shale_pd_tablets_under_replicated"] < 1 {
			return fmt.Errorf("no tablet under-replicated yet")
		}
		return nil
	})
}
