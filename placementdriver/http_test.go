package placementdriver_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shaledb/shale/internal/freeport"
	"github.com/shaledb/shale/internal/testutils"
	"github.com/shaledb/shale/placementdriver"
	"github.com/shaledb/shale/placementdriver/pdclient"
	"github.com/shaledb/shale/proto/metapb"
	"github.com/shaledb/shale/proto/pdpb"
)

// startPDWithHTTP starts n members (startPD) each with an HTTP address and
// returns the cluster and name → base URL. The HTTP ports stay bound until
// their member starts, so startPD cannot pick them for something else.
func startPDWithHTTP(t *testing.T, n int) (*pdCluster, map[string]string) {
	t.Helper()
	holders := map[string]net.Listener{}
	urls := map[string]string{}
	for i := 1; i <= n; i++ {
		name := fmt.Sprintf("pd%d", i)
		a, err := freeport.Addr()
		require.NoError(t, err)
		l, err := net.Listen("tcp", a)
		require.NoError(t, err)
		holders[name] = l
		urls[name] = "http://" + l.Addr().String() + "/pd/api/v1/"
	}
	var mu sync.Mutex
	c := startPD(t, n, func(o *placementdriver.Options) {
		mu.Lock()
		defer mu.Unlock()
		if l := holders[o.Name]; l != nil {
			o.HTTPAddr = l.Addr().String()
			l.Close()
			delete(holders, o.Name)
		}
	})
	return c, urls
}

// httpDo sends a request and returns the status and body.
func httpDo(t *testing.T, method, url string, body any) (int, []byte) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		require.NoError(t, err)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, url, rd)
	require.NoError(t, err)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, out
}

// waitHTTPLeader waits until some member's health says it leads and
// returns its name.
func waitHTTPLeader(t *testing.T, urls map[string]string) string {
	t.Helper()
	var leader string
	testutils.SucceedsSoon(t, func() error {
		for name, u := range urls {
			resp, err := http.Get(u + "health")
			if err != nil {
				continue
			}
			var h map[string]any
			err = json.NewDecoder(resp.Body).Decode(&h)
			resp.Body.Close()
			if err == nil && h["is_leader"] == true {
				// The leader answers the leader-only endpoints once loaded.
				if code, _ := httpDo(t, "GET", u+"config", nil); code == http.StatusOK {
					leader = name
					return nil
				}
			}
		}
		return errors.New("no pd member leads over HTTP yet")
	})
	return leader
}

// httpRegisterStores registers n stores (the first labelled zone=z1) and
// returns their IDs in order.
func httpRegisterStores(ctx context.Context, t *testing.T, cl *pdclient.Client, n int) []uint64 {
	t.Helper()
	var ids []uint64
	for i := 0; i < n; i++ {
		st := &metapb.Store{Address: fmt.Sprintf("127.0.0.1:%d", 30000+i)}
		if i == 0 {
			st.Labels = map[string]string{"zone": "z1"}
		}
		resp, err := cl.RegisterStore(ctx, &pdpb.RegisterStoreRequest{Store: st})
		require.NoError(t, err)
		ids = append(ids, resp.StoreId)
	}
	return ids
}

// httpReportTablet reports tablet 1 over the whole key space with a
// replica on every store, led by the first.
func httpReportTablet(ctx context.Context, t *testing.T, cl *pdclient.Client, stores []uint64) {
	t.Helper()
	reportTablet1(ctx, t, cl, 1, stores, 0)
}

// reportTablet1 reports tablet 1 over the whole key space, led by the
// first of voters, with a learner on learnerStore unless it is 0.
func reportTablet1(ctx context.Context, t *testing.T, cl *pdclient.Client, conf uint64, voters []uint64, learnerStore uint64) {
	t.Helper()
	d := &metapb.TabletDescriptor{TabletId: 1, Epoch: &metapb.Epoch{Version: 1, ConfVersion: conf}}
	for i, id := range voters {
		d.Replicas = append(d.Replicas, &metapb.Replica{ReplicaId: uint64(100 + i), StoreId: id})
	}
	if learnerStore != 0 {
		d.Replicas = append(d.Replicas, &metapb.Replica{ReplicaId: 999, StoreId: learnerStore, Role: metapb.ReplicaRole_LEARNER})
	}
	_, err := cl.TabletHeartbeat(ctx, &pdpb.TabletHeartbeatRequest{StoreId: voters[0], Reports: []*pdpb.TabletReport{{
		Tablet: d, LeaderStoreId: voters[0], Stats: &pdpb.TabletStats{ApproximateSize: 4096, ApproximateKeys: 10},
	}}})
	require.NoError(t, err)
}

func TestHTTPAPISingleMember(t *testing.T) {
	_, urls := startPDWithHTTP(t, 1)
	require.Equal(t, "pd1", waitHTTPLeader(t, urls))
	base := urls["pd1"]

	// members
	code, body := httpDo(t, "GET", base+"members", nil)
	require.Equal(t, http.StatusOK, code, string(body))
	var members struct {
		ClusterID uint64 `json:"cluster_id"`
		Leader    string `json:"leader"`
		Members   []map[string]any
	}
	require.NoError(t, json.Unmarshal(body, &members))
	require.Equal(t, "pd1", members.Leader)
	require.NotZero(t, members.ClusterID)
	require.Len(t, members.Members, 1)
	m := members.Members[0]
	require.Equal(t, "pd1", m["name"])
	require.EqualValues(t, 1, m["member_id"])
	require.Equal(t, true, m["leader"])
	require.Contains(t, m, "client_addr")
	require.Contains(t, m, "peer_addr")

	// health
	code, body = httpDo(t, "GET", base+"health", nil)
	require.Equal(t, http.StatusOK, code)
	var health map[string]any
	require.NoError(t, json.Unmarshal(body, &health))
	require.Equal(t, "pd1", health["member"])
	require.Equal(t, true, health["is_leader"])
	require.Equal(t, true, health["healthy"])
	require.Equal(t, "pd1", health["leader"])

	// config: defaults, then set and read back.
	code, body = httpDo(t, "GET", base+"config", nil)
	require.Equal(t, http.StatusOK, code)
	var cfg map[string]string
	require.NoError(t, json.Unmarshal(body, &cfg))
	require.Equal(t, "96MiB", cfg["split-size"])
	require.Equal(t, "3", cfg["max-replicas"])
	for _, k := range placementdriver.ConfigKeys() {
		require.Contains(t, cfg, k)
	}

	code, body = httpDo(t, "POST", base+"config", map[string]any{"key": "split-size", "value": "256KiB"})
	require.Equal(t, http.StatusOK, code, string(body))
	code, body = httpDo(t, "GET", base+"config", nil)
	require.Equal(t, http.StatusOK, code)
	require.NoError(t, json.Unmarshal(body, &cfg))
	require.Equal(t, "256KiB", cfg["split-size"])

	// PUT with a number and with a list.
	code, body = httpDo(t, "PUT", base+"config", map[string]any{"key": "max-replicas", "value": 5})
	require.Equal(t, http.StatusOK, code, string(body))
	code, body = httpDo(t, "PUT", base+"config", map[string]any{"key": "location-labels", "value": []string{"zone", "host"}})
	require.Equal(t, http.StatusOK, code, string(body))
	require.NoError(t, json.Unmarshal(body, &cfg))
	require.Equal(t, "5", cfg["max-replicas"])
	require.Equal(t, "zone,host", cfg["location-labels"])

	// Bad changes: 400 with a JSON error.
	for _, bad := range []any{
		map[string]any{"key": "no-such-key", "value": "1"},
		map[string]any{"key": "split-size", "value": "lots"},
		map[string]any{"key": "split-size"},
		map[string]any{"value": "1"},
	} {
		code, body = httpDo(t, "POST", base+"config", bad)
		require.Equal(t, http.StatusBadRequest, code, "%v: %s", bad, body)
		var e map[string]string
		require.NoError(t, json.Unmarshal(body, &e), string(body))
		require.NotEmpty(t, e["error"])
	}
	code, body = httpDo(t, "POST", base+"config", nil)
	require.Equal(t, http.StatusBadRequest, code, string(body))

	// stores, tablets, tables: JSON arrays (empty without stores).
	for _, ep := range []string{"stores", "tablets", "tablets?start_key=00&end_key=ff&limit=10", "tables"} {
		code, body = httpDo(t, "GET", base+ep, nil)
		require.Equal(t, http.StatusOK, code, "%s: %s", ep, body)
		var arr []map[string]any
		require.NoError(t, json.Unmarshal(body, &arr), "%s: %s", ep, body)
		require.NotNil(t, arr, "%s must be an array, not null", ep)
	}
	code, body = httpDo(t, "GET", base+"tablets?start_key=zz", nil)
	require.Equal(t, http.StatusBadRequest, code, string(body))
	code, body = httpDo(t, "GET", base+"tablets?limit=-1", nil)
	require.Equal(t, http.StatusBadRequest, code, string(body))

	// operators: an array, or the server's error while unsupported.
	code, body = httpDo(t, "GET", base+"operators", nil)
	if code == http.StatusOK {
		var arr []map[string]any
		require.NoError(t, json.Unmarshal(body, &arr), string(body))
	} else {
		var e map[string]string
		require.NoError(t, json.Unmarshal(body, &e), string(body))
		require.NotEmpty(t, e["error"])
	}

	// /metrics and /healthz are served too.
	root := strings.TrimSuffix(base, "/pd/api/v1/")
	code, body = httpDo(t, "GET", root+"/healthz", nil)
	require.Equal(t, http.StatusOK, code, string(body))
	require.Contains(t, string(body), `"quorum":true`)
	code, body = httpDo(t, "GET", root+"/metrics", nil)
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, string(body), "shale_pd_is_leader 1")
	code, _ = httpDo(t, "GET", root+"/debug/pprof/", nil)
	require.Equal(t, http.StatusOK, code, "profiles are served")
}

func TestHTTPAPIStoresAndTablets(t *testing.T) {
	c, urls := startPDWithHTTP(t, 1)
	waitHTTPLeader(t, urls)
	base := urls["pd1"]
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cl := c.client()
	ids := httpRegisterStores(ctx, t, cl, 3)
	httpReportTablet(ctx, t, cl, ids)

	code, body := httpDo(t, "GET", base+"stores", nil)
	require.Equal(t, http.StatusOK, code, string(body))
	var stores []map[string]any
	require.NoError(t, json.Unmarshal(body, &stores))
	require.Len(t, stores, 3)
	for i, s := range stores {
		for _, f := range []string{"id", "address", "state", "labels", "tablet_count", "leader_count", "used_bytes"} {
			require.Contains(t, s, f)
		}
		require.EqualValues(t, ids[i], s["id"])
		require.Equal(t, "Up", s["state"])
		require.EqualValues(t, 1, s["tablet_count"], "store %v", s["id"])
		wantLeaders := 0
		if i == 0 {
			wantLeaders = 1
		}
		require.EqualValues(t, wantLeaders, s["leader_count"])
	}
	require.Equal(t, map[string]any{"zone": "z1"}, stores[0]["labels"])

	code, body = httpDo(t, "GET", base+"tablets", nil)
	require.Equal(t, http.StatusOK, code, string(body))
	var tablets []map[string]any
	require.NoError(t, json.Unmarshal(body, &tablets))
	require.Len(t, tablets, 1)
	tb := tablets[0]
	require.EqualValues(t, 1, tb["id"])
	require.Equal(t, "", tb["start_key"])
	require.Equal(t, "", tb["end_key"])
	require.Equal(t, map[string]any{"version": float64(1), "conf_version": float64(1)}, tb["epoch"])
	require.EqualValues(t, ids[0], tb["leader_store_id"])
	require.EqualValues(t, 4096, tb["approximate_size"])
	peers := tb["peers"].([]any)
	require.Len(t, peers, 3)
	require.Equal(t, "voter", peers[0].(map[string]any)["role"])
	require.EqualValues(t, ids[0], peers[0].(map[string]any)["store_id"])
}

func TestHTTPAPIFollowerRedirects(t *testing.T) {
	_, urls := startPDWithHTTP(t, 3)
	leader := waitHTTPLeader(t, urls)
	var follower string
	for name := range urls {
		if name != leader {
			follower = name
			break
		}
	}
	testutils.SucceedsSoon(t, func() error {
		code, body := httpDo(t, "GET", urls[follower]+"stores", nil)
		require.Equal(t, http.StatusServiceUnavailable, code, string(body))
		var e map[string]string
		require.NoError(t, json.Unmarshal(body, &e), string(body))
		require.Contains(t, e["error"], "not the leader")
		if e["leader"] != leader {
			return fmt.Errorf("the follower names leader %q, want %q: %s", e["leader"], leader, body)
		}
		require.NotEmpty(t, e["leader_client_addr"])
		return nil
	})
	// members is answered by followers too.
	code, body := httpDo(t, "GET", urls[follower]+"members", nil)
	require.Equal(t, http.StatusOK, code)
	var members map[string]any
	require.NoError(t, json.Unmarshal(body, &members))
	require.Equal(t, leader, members["leader"])
	require.Len(t, members["members"], 3)
}
