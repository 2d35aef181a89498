package thriftgw_test

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shaledb/shale/internal/authz"
	"github.com/shaledb/shale/internal/security"
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
	e := startOwnEnv(t) // it stops the placement driver
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

// TestSecureHTTP: with TLS the gateway's HTTP port is served as PD's and
// the tablet servers' are. A plaintext client is not served; without a
// client certificate only /healthz answers; a certificate of another CA
// fails the handshake; /metrics is served to any identity of the CA (class
// Authenticated) and pprof only to cluster admins and nodes (ClusterAdmin),
// as internal/authz's HTTP table says.
func TestSecureHTTP(t *testing.T) {
	e := startEnv(t)
	certs, other := t.TempDir(), t.TempDir()
	require.NoError(t, security.CreateCA(security.CertOptions{Dir: certs}))
	require.NoError(t, security.CreateNode(security.CertOptions{Dir: certs}, "127.0.0.1"))
	require.NoError(t, security.CreateCA(security.CertOptions{Dir: other}))
	for _, u := range []string{"root", "alice"} {
		require.NoError(t, security.CreateClient(security.CertOptions{Dir: certs}, u))
	}
	require.NoError(t, security.CreateClient(security.CertOptions{Dir: other}, "root"))
	reloader := func(dir, cert, key string) *security.Reloader {
		r, err := security.NewReloader(security.Config{CAFile: filepath.Join(dir, security.CAFile),
			CertFile: filepath.Join(dir, cert), KeyFile: filepath.Join(dir, key)})
		require.NoError(t, err)
		return r
	}
	node := reloader(certs, security.NodeCert, security.NodeKey)
	a, err := authz.New(authz.Options{Mode: authz.Secure, Policies: noGrants{}})
	require.NoError(t, err)

	_, err = thriftgw.Listen(thriftgw.Options{Client: e.cl, Addr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0", TLS: node})
	require.ErrorContains(t, err, "Secure Options.Authz", "TLS and an HTTP port without an authorizer")

	srv := e.gateway(t, thriftgw.Options{HTTPAddr: "127.0.0.1:0", TLS: node, Authz: a})
	addr := srv.HTTPAddr().String()

	code, body := get(t, "http://"+addr+"/metrics")
	require.Equal(t, http.StatusBadRequest, code, "plaintext: %s", body)
	require.NotContains(t, body, "go_goroutines")

	client := func(r *security.Reloader) *http.Client {
		cfg := &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: x509.NewCertPool()}
		if r != nil {
			cfg = r.ClientTLS("127.0.0.1")
		} else {
			ca, err := os.ReadFile(filepath.Join(certs, security.CAFile))
			require.NoError(t, err)
			require.True(t, cfg.RootCAs.AppendCertsFromPEM(ca))
		}
		return &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg}}
	}
	status := func(c *http.Client, path string) int {
		t.Helper()
		resp, err := c.Get("https://" + addr + path)
		require.NoError(t, err, path)
		defer resp.Body.Close()
		_, err = io.ReadAll(resp.Body)
		require.NoError(t, err)
		return resp.StatusCode
	}
	anon := client(nil)
	require.Equal(t, http.StatusOK, status(anon, "/healthz"))
	require.Equal(t, http.StatusUnauthorized, status(anon, "/metrics"))
	require.Equal(t, http.StatusUnauthorized, status(anon, "/debug/pprof/"))

	_, err = client(reloader(other, security.ClientCertFile("root"), security.ClientKeyFile("root"))).Get("https://" + addr + "/metrics")
	require.Error(t, err, "a certificate of another CA")

	callers := []struct {
		name           string
		r              *security.Reloader
		metrics, pprof int
	}{
		{"alice (no grant)", reloader(certs, security.ClientCertFile("alice"), security.ClientKeyFile("alice")), http.StatusOK, http.StatusForbidden},
		{"root (cluster admin)", reloader(certs, security.ClientCertFile("root"), security.ClientKeyFile("root")), http.StatusOK, http.StatusOK},
		{"node", node, http.StatusOK, http.StatusOK},
	}
	for _, c := range callers {
		hc := client(c.r)
		require.Equal(t, c.metrics, status(hc, "/metrics"), c.name)
		require.Equal(t, http.StatusOK, status(hc, "/healthz"), c.name)
		for _, p := range []string{"/debug/pprof/", "/debug/pprof/cmdline", "/debug/pprof/symbol"} {
			require.Equal(t, c.pprof, status(hc, p), "%s %s", c.name, p)
		}
	}
}
