package thriftgw_test

import (
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shaledb/shale/kvclient"
	"github.com/shaledb/shale/kvclient/thriftgw"
)

func TestOptionsEnsureDefaults(t *testing.T) {
	o := thriftgw.Options{}.EnsureDefaults()
	require.Equal(t, "127.0.0.1:9090", o.Addr)
	require.Equal(t, int32(64<<20), o.MaxMessageSize)
	require.Equal(t, 16<<20, o.MaxResultBytes)
	require.Equal(t, 60*time.Second, o.ScannerIdleTimeout)
	require.Equal(t, 1000, o.MaxScanners)
	require.Equal(t, 30*time.Second, o.RequestTimeout)
	require.Same(t, slog.Default(), o.Logger)
	require.Equal(t, 1<<20, o.MaxContainerElements)
	require.Equal(t, 1024, o.MaxConnections)
	require.Equal(t, 10*time.Minute, o.IdleTimeout)
	require.Equal(t, 30*time.Second, o.FrameTimeout)
	require.NotNil(t, o.Registry)
	require.Empty(t, o.HTTPAddr, "no HTTP server unless asked")

	set := thriftgw.Options{Addr: "127.0.0.1:0", MaxMessageSize: 1 << 10, MaxResultBytes: 7,
		ScannerIdleTimeout: time.Second, MaxScanners: 2, RequestTimeout: time.Minute,
		MaxContainerElements: 5, MaxConnections: 3, IdleTimeout: time.Hour, FrameTimeout: time.Second}
	require.Equal(t, set.Addr, set.EnsureDefaults().Addr)
	got := set.EnsureDefaults()
	got.Logger, got.Registry = nil, nil
	require.Equal(t, set, got, "set fields are kept")
	// Negative means default, as zero does.
	require.Equal(t, 1000, thriftgw.Options{MaxScanners: -1}.EnsureDefaults().MaxScanners)
}

func TestOptionsValidate(t *testing.T) {
	require.ErrorContains(t, thriftgw.Options{}.EnsureDefaults().Validate(), "Options.Client is required")
	_, err := thriftgw.Listen(thriftgw.Options{Addr: "127.0.0.1:0"})
	require.ErrorContains(t, err, "Options.Client is required")
	require.NoError(t, thriftgw.Options{Client: &kvclient.Client{}}.EnsureDefaults().Validate())
}
