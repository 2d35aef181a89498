package node

import (
	"context"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/shaledb/shale/internal/authz"
	"github.com/shaledb/shale/internal/statickv"
)

// A tablet server in Secure mode refuses a caller without a certificate
// (this one serves no TLS at all) before the store sees the request; the
// health route stays public and profiles need an admin.
func TestSecureNodeRefusesAnonymousCallers(t *testing.T) {
	addr := freeAddr(t)
	n := startNode(t, Options{
		StoreID: 1, DataDir: filepath.Join(t.TempDir(), "1"), Addr: addr, HTTPAddr: "127.0.0.1:0",
		Bootstrap: true, ShutdownTimeout: 2 * time.Second, Authz: authz.Secure,
	})
	c, err := statickv.New(map[uint64]string{1: addr}, statickv.Tablet{TabletID: BootstrapTabletID, TableID: KVTableID, Family: KVFamily})
	require.NoError(t, err)
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err = c.Put(ctx, []byte("k"), []byte("v"))
	require.Equal(t, codes.Unauthenticated, status.Code(err), "%v", err)
	_, _, err = c.Get(ctx, []byte("k"))
	require.Equal(t, codes.Unauthenticated, status.Code(err), "%v", err)

	code, _ := httpGet(t, "http://"+n.httpAddr+"/healthz")
	require.Equal(t, http.StatusOK, code)
	code, _ = httpGet(t, "http://"+n.httpAddr+"/debug/pprof/heap?debug=1")
	require.Equal(t, http.StatusUnauthorized, code)
	code, _ = httpGet(t, "http://"+n.httpAddr+"/metrics")
	require.Equal(t, http.StatusUnauthorized, code)
}
