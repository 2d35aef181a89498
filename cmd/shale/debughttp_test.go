package main

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/shaledb/shale/internal/authz"
	"github.com/shaledb/shale/internal/metrics"
	"github.com/shaledb/shale/internal/security"
)

// Every route of `shale sql-server`'s (and `shale import`'s) HTTP port is in
// internal/authz's HTTP table: the routes are registered by the function
// the server uses, on a recorder. A route added without a class fails here
// (and is refused at run time).
func TestEveryHTTPRouteIsClassified(t *testing.T) {
	rec := authz.NewRouteRecorder()
	debugRoutes(rec, metrics.NewRegistry(), func(context.Context) error { return nil })
	require.NotEmpty(t, rec.Patterns)
	require.Empty(t, authz.UnclassifiedRoutes(rec.Patterns), "classify these routes in internal/authz/table.go")
}

// A process with TLS never serves its HTTP port without a secure
// authorizer (pprof would be open to every certificate of the CA).
func TestDebugHTTPWithTLSNeedsAuthorizer(t *testing.T) {
	certs := nodeCerts(t)
	sec, err := security.NewReloader(security.Config{CAFile: filepath.Join(certs, security.CAFile),
		CertFile: filepath.Join(certs, security.NodeCert), KeyFile: filepath.Join(certs, security.NodeKey)})
	require.NoError(t, err)
	_, _, err = serveDebugHTTP("127.0.0.1:0", metrics.NewRegistry(), func(context.Context) error { return nil }, sec, nil)
	require.ErrorContains(t, err, "secure authorizer")
	insecure, err := authz.New(authz.Options{Mode: authz.Insecure})
	require.NoError(t, err)
	_, _, err = serveDebugHTTP("127.0.0.1:0", metrics.NewRegistry(), func(context.Context) error { return nil }, sec, insecure)
	require.ErrorContains(t, err, "secure authorizer")
}
