package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shaledb/shale/internal/freeport"
	"github.com/shaledb/shale/internal/testutils"
	"github.com/shaledb/shale/placementdriver"
)

// pdEnv are the SHALE_* variables the pd command reads.
var pdEnv = []string{
	"SHALE_CONFIG", "SHALE_LOG_LEVEL",
	"SHALE_PD_NAME", "SHALE_PD_DATA_DIR", "SHALE_PD_CLIENT_ADDR", "SHALE_PD_PEER_ADDR",
	"SHALE_PD_HTTP_ADDR", "SHALE_PD_INITIAL_CLUSTER", "SHALE_PD_INITIAL_CLUSTER_CLIENT",
	"SHALE_PD_MAX_REPLICAS", "SHALE_PD_LOCATION_LABELS", "SHALE_PD_SPLIT_SIZE",
	"SHALE_PD_MAX_STORE_DOWN_TIME",
}

func clearPDEnv(t *testing.T, env map[string]string) {
	t.Helper()
	for _, k := range pdEnv {
		t.Setenv(k, "")
		require.NoError(t, os.Unsetenv(k))
	}
	// These tests are about the pd flags, not about TLS (security_test.go).
	t.Setenv("SHALE_SECURITY_INSECURE", "true")
	for k, v := range env {
		t.Setenv(k, v)
	}
}

// runPDCmd runs `shale pd args...` with placementdriver.Run replaced and
// returns the options it would have run with.
func runPDCmd(t *testing.T, env map[string]string, args ...string) (placementdriver.Options, error) {
	t.Helper()
	clearPDEnv(t, env)
	prevLog, prevRun := slog.Default(), runPD
	t.Cleanup(func() { slog.SetDefault(prevLog); runPD = prevRun })
	var got placementdriver.Options
	runPD = func(_ context.Context, o placementdriver.Options) error {
		got = o
		return nil
	}
	root := newRootCommand()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(append([]string{"pd"}, args...))
	err := root.Execute()
	got.Logger = nil
	return got, err
}

func TestPDCommandFlags(t *testing.T) {
	got, err := runPDCmd(t, nil,
		"--name", "pd2", "--data-dir", "/d/pd2", "--client-addr", "10.0.0.2:2379",
		"--peer-addr", "10.0.0.2:2380", "--http-addr", "10.0.0.2:2381",
		"--initial-cluster", "pd1=10.0.0.1:2380,pd2=10.0.0.2:2380,pd3=10.0.0.3:2380",
		"--initial-cluster-client", "pd1=10.0.0.1:2379,pd2=10.0.0.2:2379,pd3=10.0.0.3:2379",
		"--max-replicas", "5", "--location-labels", "zone,rack,host",
		"--split-size", "256KiB", "--max-store-down-time", "45m")
	require.NoError(t, err)
	require.Equal(t, "pd2", got.Name)
	require.Equal(t, "/d/pd2", got.DataDir)
	require.Equal(t, "10.0.0.2:2379", got.ClientAddr)
	require.Equal(t, "10.0.0.2:2380", got.PeerAddr)
	require.Equal(t, "10.0.0.2:2381", got.HTTPAddr)
	require.Equal(t, map[string]string{"pd1": "10.0.0.1:2380", "pd2": "10.0.0.2:2380", "pd3": "10.0.0.3:2380"}, got.InitialCluster)
	require.Equal(t, map[string]string{"pd1": "10.0.0.1:2379", "pd2": "10.0.0.2:2379", "pd3": "10.0.0.3:2379"}, got.ClientAddrs)
	require.Equal(t, 5, got.Schedule.MaxReplicas)
	require.Equal(t, []string{"zone", "rack", "host"}, got.Schedule.LocationLabels)
	require.Equal(t, uint64(256<<10), got.Schedule.SplitSize)
	require.Equal(t, 45*time.Minute, got.Schedule.MaxStoreDownTime)
	// Other keys get their defaults.
	def := placementdriver.Options{}.EnsureDefaults().Schedule
	require.Equal(t, def.MergeSize, got.Schedule.MergeSize)
	require.Equal(t, def.SplitQPS, got.Schedule.SplitQPS)
}

func TestPDCommandDefaults(t *testing.T) {
	got, err := runPDCmd(t, nil)
	require.NoError(t, err)
	def := placementdriver.Options{}.EnsureDefaults().Schedule
	require.Equal(t, "pd1", got.Name)
	require.Equal(t, filepath.Join("shale-data", "pd-pd1"), got.DataDir)
	require.Equal(t, "127.0.0.1:2379", got.ClientAddr)
	require.Equal(t, "127.0.0.1:2380", got.PeerAddr)
	require.Equal(t, "127.0.0.1:2381", got.HTTPAddr)
	require.Equal(t, map[string]string{"pd1": "127.0.0.1:2380"}, got.InitialCluster)
	require.Empty(t, got.ClientAddrs)
	require.Equal(t, def, got.Schedule)
}

func TestPDCommandEnvAndConfigFile(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "shale.yaml")
	require.NoError(t, os.WriteFile(file, []byte(`
pd:
  name: pdf
  data-dir: /from/file
  client-addr: 127.0.0.1:7001
  initial-cluster: pdf=127.0.0.1:7002
  peer-addr: 127.0.0.1:7002
  split-size: 64MiB
  max-replicas: 1
  location-labels: [zone, host]
  merge-size: 8MiB
  split-qps: 500
  no-such-key: 1
`), 0o600))
	got, err := runPDCmd(t, map[string]string{
		"SHALE_CONFIG":                 file,
		"SHALE_PD_DATA_DIR":            "/from/env",
		"SHALE_PD_MAX_STORE_DOWN_TIME": "2h",
	}, "--max-replicas", "3")
	require.NoError(t, err)
	require.Equal(t, "pdf", got.Name)
	require.Equal(t, "/from/env", got.DataDir) // env beats file
	require.Equal(t, "127.0.0.1:7001", got.ClientAddr)
	require.Equal(t, map[string]string{"pdf": "127.0.0.1:7002"}, got.InitialCluster)
	require.Equal(t, 3, got.Schedule.MaxReplicas) // flag beats file
	require.Equal(t, []string{"zone", "host"}, got.Schedule.LocationLabels)
	require.Equal(t, uint64(64<<20), got.Schedule.SplitSize)
	require.Equal(t, 2*time.Hour, got.Schedule.MaxStoreDownTime)
	require.Equal(t, uint64(8<<20), got.Schedule.MergeSize) // file-only key
	require.Equal(t, 500.0, got.Schedule.SplitQPS)
}

func TestPDCommandErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--split-size", "lots"}, "--split-size: want a size"},
		{[]string{"--split-size", "0"}, "--split-size: want a size"},
		{[]string{"--max-replicas", "0"}, "--max-replicas: want at least 1"},
		{[]string{"--max-store-down-time", "0s"}, "--max-store-down-time: want a positive duration"},
		{[]string{"--max-store-down-time", "soon"}, "invalid argument"},
		{[]string{"--initial-cluster", "pd1"}, "--initial-cluster: initial cluster entry \"pd1\" is not NAME=HOST:PORT"},
		{[]string{"--initial-cluster", "pd2=h:1,pd3=h:2"}, `member "pd1" is not in --initial-cluster`},
		{[]string{"--initial-cluster-client", "pd1"}, "--initial-cluster-client: initial cluster entry"},
		{[]string{"--initial-cluster-client", "pd9=h:1"}, `--initial-cluster-client: member "pd9" is not in --initial-cluster`},
		{[]string{"--name", ""}, "a member name is required"},
		{[]string{"extra"}, "unknown command"},
	} {
		_, err := runPDCmd(t, nil, tc.args...)
		require.Error(t, err, "%v", tc.args)
		require.Contains(t, err.Error(), tc.want, "%v", tc.args)
	}
}

// freeTCPAddrs returns n distinct free addresses on 127.0.0.1.
func freeTCPAddrs(t *testing.T, n int) []string {
	t.Helper()
	var out []string
	for range n {
		a, err := freeport.Addr()
		require.NoError(t, err)
		l, err := net.Listen("tcp", a)
		require.NoError(t, err)
		defer l.Close() // held until all are chosen, so they differ
		out = append(out, l.Addr().String())
	}
	return out
}

// TestPDCommandRunsAndStops runs a real member through the command and
// stops it by cancelling the context, as SIGTERM does in main.
func TestPDCommandRunsAndStops(t *testing.T) {
	clearPDEnv(t, nil)
	prevLog := slog.Default()
	t.Cleanup(func() { slog.SetDefault(prevLog) })
	addrs := freeTCPAddrs(t, 3)
	client, peer, httpAddr := addrs[0], addrs[1], addrs[2]
	root := newRootCommand()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs([]string{"pd", "--name", "p", "--data-dir", t.TempDir(), "--client-addr", client,
		"--peer-addr", peer, "--http-addr", httpAddr, "--split-size", "1MiB", "--log-level", "warn"})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- root.ExecuteContext(ctx) }()
	defer func() {
		cancel()
		select {
		case err := <-done:
			require.NoError(t, err)
		case <-time.After(15 * time.Second):
			t.Fatal("pd did not stop after its context was cancelled")
		}
	}()

	// The flags' initial config is what the new cluster serves.
	testutils.SucceedsSoon(t, func() error {
		resp, err := http.Get("http://" + httpAddr + "/pd/api/v1/config")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		var cfg map[string]string
		if err := json.NewDecoder(resp.Body).Decode(&cfg); err != nil || resp.StatusCode != http.StatusOK {
			return fmt.Errorf("GET config: %s (%v)", resp.Status, err)
		}
		require.Equal(t, "1MiB", cfg["split-size"])
		return nil
	})
	// And ctl reaches it.
	stdout, _, err := runCtlCmd(t, client, "members", "--json")
	require.NoError(t, err)
	var m map[string]any
	require.NoError(t, json.Unmarshal([]byte(stdout), &m))
	require.Equal(t, "p", m["leader"])
}
