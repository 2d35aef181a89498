package thriftgw

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/shaledb/shale/internal/authz"
	"github.com/shaledb/shale/internal/metrics"
	"github.com/shaledb/shale/internal/security"
)

// healthTimeout bounds /healthz's check that the cluster answers.
const healthTimeout = 2 * time.Second

// startHTTP binds Options.HTTPAddr and serves /healthz, /metrics and pprof
// on it until Close. With Options.TLS the port is served as PD's and the
// tablet servers' are: TLS with the gateway's certificate, a client
// certificate required but for /healthz, and every route decided by its
// class in internal/authz's HTTP table (Validate made sure of a Secure
// Options.Authz).
func (s *Server) startHTTP() error {
	if s.opts.HTTPAddr == "" {
		return nil
	}
	lis, err := net.Listen("tcp", s.opts.HTTPAddr)
	if err != nil {
		return fmt.Errorf("thriftgw: HTTP listen on %s: %w", s.opts.HTTPAddr, err)
	}
	mux := http.NewServeMux()
	s.httpRoutes(mux)
	var h http.Handler = mux
	if s.opts.Authz != nil {
		h = s.opts.Authz.HTTP(mux)
	}
	if s.opts.TLS != nil {
		h = security.RequireClientCert(h, "/healthz")
	}
	s.httpLis = lis
	s.http = &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	served := s.opts.TLS.HTTPListener(lis) // lis itself without TLS
	return s.stopper.RunAsyncTask(context.Background(), "thriftgw.http", func(context.Context) {
		if err := s.http.Serve(served); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.opts.Logger.Error("thrift gateway: HTTP server failed", "addr", s.opts.HTTPAddr, "err", err)
		}
	})
}

// httpRoutes registers every route of the gateway's HTTP port (each must
// be classified in internal/authz/table.go: TestEveryHTTPRouteIsClassified).
func (s *Server) httpRoutes(mux authz.Registrar) {
	metrics.HandleDebug(mux, s.opts.Registry)
	mux.HandleFunc("/healthz", s.serveHealth)
}

// HTTPAddr is the address of the HTTP server, nil without one.
func (s *Server) HTTPAddr() net.Addr {
	if s.httpLis == nil {
		return nil
	}
	return s.httpLis.Addr()
}

// serveHealth answers 200 while the gateway serves and its cluster's
// placement driver answers, 503 otherwise (closing, or the cluster is
// unreachable: every request would fail).
func (s *Server) serveHealth(w http.ResponseWriter, r *http.Request) {
	if s.closing.Load() {
		http.Error(w, "shutting down", http.StatusServiceUnavailable)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), healthTimeout)
	defer cancel()
	if err := s.opts.Client.Ping(ctx); err != nil {
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	_, _ = w.Write([]byte("ok"))
}
