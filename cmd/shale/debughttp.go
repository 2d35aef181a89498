package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/shaledb/shale/internal/authz"
	"github.com/shaledb/shale/internal/metrics"
	"github.com/shaledb/shale/internal/security"
	"github.com/shaledb/shale/internal/stop"
)

// serveDebugHTTP serves /healthz (health returns nil when healthy),
// /metrics and pprof on addr until the returned stop function is called,
// and returns the URL served. An empty addr serves nothing.
//
// With sec (a server process started with certificates) the port is
// served as PD's and the tablet servers' are: TLS with the process's
// certificate, a client certificate required but for /healthz, and every
// route decided by az from its class in internal/authz's HTTP table (so az
// must be Secure). Without sec it is plaintext and unchecked: --insecure,
// or a client tool's opt-in port (`shale import --http-addr`).
func serveDebugHTTP(addr string, reg *prometheus.Registry, health func(context.Context) error, sec *security.Reloader, az *authz.Authorizer) (string, func(), error) {
	if addr == "" {
		return "", func() {}, nil
	}
	if sec != nil && (az == nil || !az.Secure()) {
		return "", nil, errors.New("--http-addr: a TLS process's HTTP port needs a secure authorizer")
	}
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return "", nil, fmt.Errorf("--http-addr %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	debugRoutes(mux, reg, health)
	var h http.Handler = mux
	scheme := "http://"
	if sec != nil {
		h = security.RequireClientCert(az.HTTP(mux), "/healthz")
		scheme = "https://"
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	served := sec.HTTPListener(lis) // lis itself without TLS
	s := stop.New()
	if err := s.RunAsyncTask(context.Background(), "debug-http", func(context.Context) {
		if err := srv.Serve(served); err != nil && !errors.Is(err, http.ErrServerClosed) {
			slog.Error("HTTP server failed", "addr", addr, "err", err)
		}
	}); err != nil {
		lis.Close()
		return "", nil, err
	}
	return scheme + lis.Addr().String(), func() {
		_ = srv.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = s.Stop(ctx)
	}, nil
}

// debugRoutes registers every route of the port (each must be classified
// in internal/authz/table.go: TestEveryHTTPRouteIsClassified).
func debugRoutes(mux authz.Registrar, reg *prometheus.Registry, health func(context.Context) error) {
	metrics.HandleDebug(mux, reg)
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if err := health(ctx); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ok"))
	})
}
