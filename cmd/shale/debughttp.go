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

	"github.com/shaledb/shale/internal/metrics"
	"github.com/shaledb/shale/internal/stop"
)

// serveDebugHTTP serves /healthz (health returns nil when healthy),
// /metrics and pprof on addr until the returned stop function is called,
// and returns the address bound. An empty addr serves nothing.
func serveDebugHTTP(addr string, reg *prometheus.Registry, health func(context.Context) error) (string, func(), error) {
	if addr == "" {
		return "", func() {}, nil
	}
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return "", nil, fmt.Errorf("--http-addr %s: %w", addr, err)
	}
	mux := http.NewServeMux()
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
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	s := stop.New()
	if err := s.RunAsyncTask(context.Background(), "debug-http", func(context.Context) {
		if err := srv.Serve(lis); err != nil && !errors.Is(err, http.ErrServerClosed) {
			slog.Error("HTTP server failed", "addr", addr, "err", err)
		}
	}); err != nil {
		lis.Close()
		return "", nil, err
	}
	return lis.Addr().String(), func() {
		_ = srv.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = s.Stop(ctx)
	}, nil
}
