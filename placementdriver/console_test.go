package placementdriver_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/shaledb/shale/internal/keys"
	"github.com/shaledb/shale/internal/testutils"
	"github.com/shaledb/shale/proto/metapb"
	"github.com/shaledb/shale/proto/pdpb"
)

// consoleGet fetches a console API path and decodes the JSON answer.
func consoleGet(t *testing.T, base, path string, into any) int {
	t.Helper()
	code, body := httpDo(t, "GET", base+path, nil)
	if code == http.StatusOK && into != nil {
		require.NoError(t, json.Unmarshal(body, into), string(body))
	}
	return code
}

// The console's pages are embedded and its JSON API shows the stores,
// tables, tablets (found by table and row key), hot tablets and the key
// heat map fed by tablet heartbeats.
func TestConsoleAPI(t *testing.T) {
	c, urls := startPDWithHTTP(t, 1)
	waitHTTPLeader(t, urls)
	base := strings.TrimSuffix(urls["pd1"], "pd/api/v1/") + "console/"
	ctx := context.Background()
	cl := c.client()
	stores := httpRegisterStores(ctx, t, cl, 3)
	// Three heartbeating stores bootstrap the cluster, which creates the
	// kv table.
	testutils.SucceedsSoon(t, func() error {
		for _, id := range stores {
			if _, err := cl.StoreHeartbeat(ctx, &pdpb.StoreHeartbeatRequest{StoreId: id, Stats: &pdpb.StoreStats{CapacityBytes: 1 << 30}}); err != nil {
				return err
			}
		}
		var tables []map[string]any
		if consoleGet(t, base, "api/tables", &tables); len(tables) == 0 {
			return errNotYet("the kv table")
		}
		return nil
	})

	// Two tablets of the kv table split at row "m"; the right one is hot.
	split := keys.RowKey(1, []byte("m"))
	report := func(id uint64, start, end []byte, st *pdpb.TabletStats) *pdpb.TabletReport {
		d := &metapb.TabletDescriptor{TabletId: id, StartKey: start, EndKey: end, Epoch: &metapb.Epoch{Version: 2, ConfVersion: 1}}
		for i, s := range stores {
			d.Replicas = append(d.Replicas, &metapb.Replica{ReplicaId: id*10 + uint64(i), StoreId: s})
		}
		return &pdpb.TabletReport{Tablet: d, LeaderStoreId: stores[0], Stats: st}
	}
	_, err := cl.TabletHeartbeat(ctx, &pdpb.TabletHeartbeatRequest{StoreId: stores[0], Reports: []*pdpb.TabletReport{
		report(1, nil, split, &pdpb.TabletStats{ReadQps: 1, WriteQps: 2, WriteBytesPerSec: 10}),
		report(2, split, nil, &pdpb.TabletStats{ReadQps: 5, WriteQps: 500, WriteBytesPerSec: 50000}),
	}})
	require.NoError(t, err)

	// The pages themselves.
	code, body := httpDo(t, "GET", base, nil)
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, string(body), `<canvas id="heatmap"`)
	for _, f := range []string{"app.js", "style.css"} {
		code, _ = httpDo(t, "GET", base+f, nil)
		require.Equal(t, http.StatusOK, code, f)
	}

	var ov struct {
		Leader        string `json:"leader"`
		Stores        []map[string]any
		TabletCount   int            `json:"tablet_count"`
		TableCount    int            `json:"table_count"`
		StoresByState map[string]int `json:"stores_by_state"`
	}
	require.Equal(t, http.StatusOK, consoleGet(t, base, "api/overview", &ov))
	require.Equal(t, "pd1", ov.Leader)
	require.Len(t, ov.Stores, 3)
	require.Equal(t, 3, ov.StoresByState["Up"])
	require.Equal(t, 2, ov.TabletCount)
	require.Equal(t, 1, ov.TableCount)
	// The leader's store carries both tablets' load.
	require.EqualValues(t, 502, ov.Stores[0]["write_qps"])
	require.EqualValues(t, 2, ov.Stores[0]["leader_count"])

	type tablet struct {
		ID            uint64 `json:"id"`
		StartTable    string `json:"start_table"`
		StartRow      string `json:"start_row"`
		EndTable      string `json:"end_table"`
		LeaderAddress string `json:"leader_address"`
	}
	var ts []tablet
	require.Equal(t, http.StatusOK, consoleGet(t, base, "api/tablets?table=kv&row=zebra", &ts))
	require.Len(t, ts, 1)
	require.Equal(t, uint64(2), ts[0].ID)
	require.Equal(t, "kv", ts[0].StartTable)
	require.Equal(t, "m", ts[0].StartRow)
	require.Equal(t, "(max)", ts[0].EndTable)
	require.Equal(t, "127.0.0.1:30000", ts[0].LeaderAddress)
	require.Equal(t, http.StatusOK, consoleGet(t, base, "api/tablets?table=kv&row=apple", &ts))
	require.Equal(t, uint64(1), ts[0].ID)
	require.Equal(t, http.StatusOK, consoleGet(t, base, "api/tablets?table=kv", &ts))
	require.Len(t, ts, 2)
	require.Equal(t, http.StatusNotFound, consoleGet(t, base, "api/tablets?table=nope", nil))
	require.Equal(t, http.StatusBadRequest, consoleGet(t, base, "api/tablets?row=x", nil))

	require.Equal(t, http.StatusOK, consoleGet(t, base, "api/hot?kind=write&by=bytes&limit=1", &ts))
	require.Len(t, ts, 1)
	require.Equal(t, uint64(2), ts[0].ID)
	require.Equal(t, http.StatusBadRequest, consoleGet(t, base, "api/hot?kind=sideways", nil))

	var ops struct {
		Running []any `json:"running"`
		Recent  []any `json:"recent"`
	}
	require.Equal(t, http.StatusOK, consoleGet(t, base, "api/operators", &ops))
	var cfg map[string]string
	require.Equal(t, http.StatusOK, consoleGet(t, base, "api/config", &cfg))
	require.Equal(t, "3", cfg["max-replicas"])

	var hm struct {
		Metric string  `json:"metric"`
		Unit   string  `json:"unit"`
		Times  []int64 `json:"times_unix_ms"`
		Rows   []struct {
			Table string `json:"table"`
			Row   string `json:"row"`
		} `json:"rows"`
		Values [][]float64 `json:"values"`
		Max    float64     `json:"max"`
	}
	require.Equal(t, http.StatusOK, consoleGet(t, base, "api/heatmap?metric=write_bytes", &hm))
	require.Equal(t, "bytes/s", hm.Unit)
	require.Len(t, hm.Times, 1)
	require.Len(t, hm.Rows, 2)
	require.Equal(t, "kv", hm.Rows[1].Table)
	require.Equal(t, "m", hm.Rows[1].Row)
	require.Equal(t, []float64{10, 50000}, hm.Values[0])
	require.Equal(t, 50000.0, hm.Max)
	require.Equal(t, http.StatusBadRequest, consoleGet(t, base, "api/heatmap?metric=heat", nil))
	require.Equal(t, http.StatusBadRequest, consoleGet(t, base, "api/heatmap?minutes=-1", nil))
}

type errNotYet string

func (e errNotYet) Error() string { return "waiting for " + string(e) }
