package main

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shaledb/shale/tabletserver/node"
)

// tabletEnv are the SHALE_* variables the tablet command reads.
var tabletEnv = []string{
	"SHALE_CONFIG", "SHALE_LOG_LEVEL",
	"SHALE_TABLET_STORE_ID", "SHALE_TABLET_DATA_DIR", "SHALE_TABLET_ADDR",
	"SHALE_TABLET_HTTP_ADDR", "SHALE_TABLET_PD", "SHALE_TABLET_PEERS",
	"SHALE_TABLET_LABELS", "SHALE_TABLET_BOOTSTRAP",
}

// runTabletCmd runs `shale tablet args...` with node.Run replaced, and
// returns the options it would have run with.
func runTabletCmd(t *testing.T, env map[string]string, args ...string) (node.Options, error) {
	t.Helper()
	for _, k := range tabletEnv {
		t.Setenv(k, "")
		require.NoError(t, os.Unsetenv(k))
	}
	// These tests are about the tablet flags, not about TLS (security_test.go).
	t.Setenv("SHALE_SECURITY_INSECURE", "true")
	for k, v := range env {
		t.Setenv(k, v)
	}
	prevLog := slog.Default()
	prevRun := runTabletNode
	t.Cleanup(func() {
		slog.SetDefault(prevLog)
		runTabletNode = prevRun
	})
	var got node.Options
	runTabletNode = func(_ context.Context, o node.Options) error {
		got = o
		return nil
	}
	root := newRootCommand()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(append([]string{"tablet"}, args...))
	err := root.Execute()
	got.Logger = nil // not comparable
	return got, err
}

func TestTabletCommandFlags(t *testing.T) {
	got, err := runTabletCmd(t, nil,
		"--store-id", "2", "--data-dir", "/d2", "--addr", "127.0.0.1:7002",
		"--http-addr", "127.0.0.1:8002",
		"--peers", "1=127.0.0.1:7001,2=127.0.0.1:7002", "--labels", "zone=z1,rack=r1",
		"--bootstrap")
	require.NoError(t, err)
	require.Equal(t, uint64(2), got.StoreID)
	require.Equal(t, "/d2", got.DataDir)
	require.Equal(t, "127.0.0.1:7002", got.Addr)
	require.Equal(t, "127.0.0.1:8002", got.HTTPAddr)
	require.Equal(t, map[uint64]string{1: "127.0.0.1:7001", 2: "127.0.0.1:7002"}, got.Peers)
	require.Equal(t, map[string]string{"zone": "z1", "rack": "r1"}, got.Labels)
	require.True(t, got.Bootstrap)
	require.False(t, got.Store.Admission.Disabled, "admission control is on by default")

	got, err = runTabletCmd(t, nil, "--store-id", "2", "--admission=off")
	require.NoError(t, err)
	require.True(t, got.Store.Admission.Disabled)
}

func TestTabletCommandPDMode(t *testing.T) {
	got, err := runTabletCmd(t, nil, "--data-dir", "/d", "--addr", "127.0.0.1:7002",
		"--pd", "pd1:2379,pd2:2379", "--heartbeat-interval", "2s", "--labels", "zone=z1", "--ingest-bytes-per-sec", "67108864")
	require.NoError(t, err)
	require.Equal(t, int64(64<<20), got.Store.IngestBytesPerSec)
	require.Equal(t, uint64(0), got.StoreID, "PD assigns the store id")
	require.Equal(t, []string{"pd1:2379", "pd2:2379"}, got.PD)
	require.Equal(t, 2*time.Second, got.HeartbeatInterval)
	require.Empty(t, got.Peers)

	_, err = runTabletCmd(t, nil, "--data-dir", "/d", "--pd", "pd:1", "--peers", "1=h:1")
	require.ErrorContains(t, err, "either --pd")
	_, err = runTabletCmd(t, nil, "--data-dir", "/d", "--pd", "pd:1", "--bootstrap")
	require.ErrorContains(t, err, "--bootstrap is for static clusters")
	_, err = runTabletCmd(t, nil, "--pd", "pd:1")
	require.ErrorContains(t, err, "--data-dir is required")
}

func TestTabletCommandEnvAndDefaults(t *testing.T) {
	got, err := runTabletCmd(t, map[string]string{
		"SHALE_TABLET_STORE_ID":  "3",
		"SHALE_TABLET_PEERS":     "3=h3:1,1=h1:1",
		"SHALE_TABLET_BOOTSTRAP": "true",
		"SHALE_TABLET_LABELS":    "zone=env",
	})
	require.NoError(t, err)
	require.Equal(t, uint64(3), got.StoreID)
	require.Equal(t, filepath.Join("shale-data", "store-3"), got.DataDir)
	require.Equal(t, "127.0.0.1:20160", got.Addr)
	require.Equal(t, "127.0.0.1:20180", got.HTTPAddr)
	require.Equal(t, map[uint64]string{1: "h1:1", 3: "h3:1"}, got.Peers)
	require.Equal(t, map[string]string{"zone": "env"}, got.Labels)
	require.True(t, got.Bootstrap)

	// A flag beats the environment; no --peers means this store alone.
	got, err = runTabletCmd(t, map[string]string{"SHALE_TABLET_STORE_ID": "3"}, "--store-id", "4", "--addr", "h:9")
	require.NoError(t, err)
	require.Equal(t, uint64(4), got.StoreID)
	require.Equal(t, map[uint64]string{4: "h:9"}, got.Peers)
}

func TestTabletCommandConfigFile(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "shale.yaml")
	require.NoError(t, os.WriteFile(cfg, []byte(`
tablet:
  store-id: 5
  data-dir: /file
  peers: ["5=h5:1", "6=h6:1"]
`), 0o644))
	got, err := runTabletCmd(t, map[string]string{"SHALE_TABLET_DATA_DIR": "/env"}, "--config", cfg)
	require.NoError(t, err)
	require.Equal(t, uint64(5), got.StoreID)
	require.Equal(t, "/env", got.DataDir)
	require.Equal(t, map[uint64]string{5: "h5:1", 6: "h6:1"}, got.Peers)
}

func TestTabletCommandErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		env  map[string]string
		args []string
		want string
	}{
		{name: "no store id", want: "store id is required"},
		{name: "bad store id env", env: map[string]string{"SHALE_TABLET_STORE_ID": "x"}, want: "store-id"},
		{name: "bad peers", args: []string{"--store-id=1", "--peers", "1=a:1,b"}, want: "--peers"},
		{name: "self not in peers", args: []string{"--store-id=1", "--peers", "2=a:1"}, want: "do not include this store's id 1"},
		{name: "bad labels", args: []string{"--store-id=1", "--labels", "=x"}, want: "--labels"},
		{name: "bad admission", args: []string{"--store-id=1", "--admission=maybe"}, want: "--admission must be on or off"},
		{name: "positional args", args: []string{"--store-id=1", "extra"}, want: "unknown command"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := runTabletCmd(t, tc.env, tc.args...)
			require.ErrorContains(t, err, tc.want)
		})
	}
}
