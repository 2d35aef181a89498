package security

import (
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"testing"
	"time"
)

// A status port served with HTTPListener and RequireClientCert answers
// only clients with a certificate of the cluster's CA, except on the
// open paths (health probes); a nil Reloader serves plaintext.
func TestHTTPRequiresClientCertificate(t *testing.T) {
	dir := setup(t)
	srv := reloader(t, nodeConfig(dir))
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "ok") })
	hs := &http.Server{Handler: RequireClientCert(mux, "/healthz"), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = hs.Serve(srv.HTTPListener(lis)) }() //stop:short-lived test server, closed below
	defer hs.Close()

	get := func(cfg *tls.Config, path string) int {
		c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg}}
		resp, err := c.Get("https://" + lis.Addr().String() + path)
		if err != nil {
			return -1
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	alice := reloader(t, clientConfig(dir, "alice")).ClientTLS("127.0.0.1")
	anon := reloader(t, clientConfig(dir, "alice")).ClientTLS("127.0.0.1")
	anon.GetClientCertificate = nil
	for _, c := range []struct {
		name string
		cfg  *tls.Config
		path string
		want int
	}{
		{"alice, /metrics", alice, "/metrics", http.StatusOK},
		{"no certificate, /metrics", anon, "/metrics", http.StatusUnauthorized},
		{"no certificate, /debug/pprof/", anon, "/debug/pprof/", http.StatusUnauthorized},
		{"no certificate, /healthz", anon, "/healthz", http.StatusOK},
		{"another CA", reloader(t, clientConfig(setup(t), "alice")).ClientTLS("127.0.0.1"), "/healthz", -1},
	} {
		if got := get(c.cfg, c.path); got != c.want {
			t.Errorf("%s: status %d, want %d", c.name, got, c.want)
		}
	}
	var none *Reloader
	if none.HTTPListener(lis) != lis {
		t.Fatal("a nil Reloader must serve plaintext")
	}
}
