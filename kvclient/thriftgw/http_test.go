package thriftgw_test

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/shaledb/shale/internal/testutils"
	"github.com/shaledb/shale/kvclient/thriftgw"
)

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b)
}

// TestHTTPHealthMetricsPprof: the gateway's HTTP listener serves /metrics
// (calls timed by method and outcome), pprof, and a /healthz that turns
// 503 once the cluster's placement driver stops answering.
func TestHTTPHealthMetricsPprof(t *testing.T) {
	e := startEnv(t)
	srv := e.gateway(t, thriftgw.Options{HTTPAddr: "127.0.0.1:0"})
	base := "http://" + srv.HTTPAddr().String()
	c := dial(t, srv.Addr().String(), false, false)
	ok, err := c.TableExists(ctxT(t), tn("absent"))
	require.NoError(t, err)
	require.False(t, ok)

	code, body := get(t, base+"/metrics")
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, body, `shale_thrift_request_seconds_count{method="tableExists",outcome="ok"} 1`)
	require.Contains(t, body, "go_goroutines")
	code, _ = get(t, base+"/debug/pprof/")
	require.Equal(t, http.StatusOK, code)
	code, body = get(t, base+"/healthz")
	require.Equal(t, http.StatusOK, code, body)

	for name := range e.c.PDAddrs {
		e.c.StopPD(name)
	}
	testutils.SucceedsSoon(t, func() error {
		code, body := get(t, base+"/healthz")
		if code != http.StatusServiceUnavailable || !strings.Contains(body, "placement driver") {
			return fmt.Errorf("healthz without a placement driver: %d %s", code, body)
		}
		return nil
	})
}
