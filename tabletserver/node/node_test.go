package node

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shaledb/shale/internal/proctest"
	"github.com/shaledb/shale/internal/statickv"
)

func TestParsePeers(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want map[uint64]string
		err  string
	}{
		{in: "", want: map[uint64]string{}},
		{in: "1=127.0.0.1:7001", want: map[uint64]string{1: "127.0.0.1:7001"}},
		{in: " 1=a:1 , 2=b:2,", want: map[uint64]string{1: "a:1", 2: "b:2"}},
		{in: "1", err: "not STORE_ID=HOST:PORT"},
		{in: "1=", err: "not STORE_ID=HOST:PORT"},
		{in: "x=a:1", err: "positive integer"},
		{in: "0=a:1", err: "positive integer"},
		{in: "1=a:1,1=b:2", err: "listed twice"},
	} {
		got, err := ParsePeers(tc.in)
		if tc.err != "" {
			require.ErrorContains(t, err, tc.err, tc.in)
			continue
		}
		require.NoError(t, err, tc.in)
		require.Equal(t, tc.want, got, tc.in)
	}
	require.Equal(t, "1=a:1,2=b:2,10=c:3", FormatPeers(map[uint64]string{10: "c:3", 2: "b:2", 1: "a:1"}))
}

func TestParseLabels(t *testing.T) {
	got, err := ParseLabels("zone=z1, rack=r2,host=")
	require.NoError(t, err)
	require.Equal(t, map[string]string{"zone": "z1", "rack": "r2", "host": ""}, got)
	got, err = ParseLabels("")
	require.NoError(t, err)
	require.Empty(t, got)
	_, err = ParseLabels("zone")
	require.ErrorContains(t, err, "KEY=VALUE")
	_, err = ParseLabels("=v")
	require.ErrorContains(t, err, "KEY=VALUE")
	_, err = ParseLabels("a=1,a=2")
	require.ErrorContains(t, err, "twice")
}

func TestValidate(t *testing.T) {
	ok := Options{StoreID: 1, DataDir: "d", Addr: "a:1"}.EnsureDefaults()
	require.NoError(t, ok.Validate())
	require.Equal(t, map[uint64]string{1: "a:1"}, ok.Peers)

	for _, tc := range []struct {
		o    Options
		want string
	}{
		{Options{DataDir: "d", Addr: "a:1"}, "store id is required"},
		{Options{StoreID: 1, Addr: "a:1"}, "data directory is required"},
		{Options{StoreID: 1, DataDir: "d"}, "listen address is required"},
		{Options{StoreID: 1, DataDir: "d", Addr: "a:1", Peers: map[uint64]string{2: "b:1"}}, "do not include this store's id 1"},
		{Options{StoreID: 1, DataDir: "d", Addr: "a:1", Peers: map[uint64]string{1: "a:1", 2: ""}}, "store 2 has no address"},
	} {
		require.ErrorContains(t, tc.o.EnsureDefaults().Validate(), tc.want)
	}

	_, err := staticResolver{1: "a:1"}.Resolve(7)
	require.ErrorContains(t, err, "no address known for store 7")
}

func TestBootstrapDescriptor(t *testing.T) {
	d := BootstrapDescriptor([]uint64{3, 1, 2})
	require.Equal(t, uint64(1), d.TabletId)
	require.Nil(t, d.StartKey)
	require.Nil(t, d.EndKey)
	require.Equal(t, uint64(1), d.Epoch.Version)
	require.Equal(t, uint64(1), d.Epoch.ConfVersion)
	require.Len(t, d.Replicas, 3)
	for i, r := range d.Replicas {
		require.Equal(t, uint64(i+1), r.StoreId)
		require.Equal(t, r.StoreId, r.ReplicaId)
	}
}

func freeAddr(t *testing.T) string { return proctest.FreeAddr(t) }

func testLogger(t *testing.T) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// runningNode is a node run in a goroutine.
type runningNode struct {
	cancel   context.CancelFunc
	done     chan error
	httpAddr string
}

func startNode(t *testing.T, o Options) *runningNode {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	n := &runningNode{cancel: cancel, done: make(chan error, 1)}
	serving := make(chan struct{})
	o.Logger = testLogger(t)
	o.onServing = func(_, httpAddr string) {
		n.httpAddr = httpAddr
		close(serving)
	}
	go func() { n.done <- Run(ctx, o) }()
	select {
	case <-serving:
	case err := <-n.done:
		t.Fatalf("node %d did not start: %v", o.StoreID, err)
	case <-time.After(30 * time.Second):
		t.Fatalf("node %d did not start in time", o.StoreID)
	}
	t.Cleanup(func() { n.stop(t) })
	return n
}

func (n *runningNode) stop(t *testing.T) {
	t.Helper()
	if n.cancel == nil {
		return
	}
	n.cancel()
	n.cancel = nil
	select {
	case err := <-n.done:
		require.NoError(t, err)
	case <-time.After(20 * time.Second):
		t.Fatal("node did not stop in time")
	}
}

func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b)
}

func TestRunThreeNodes(t *testing.T) {
	dir := t.TempDir()
	peers := map[uint64]string{}
	for id := uint64(1); id <= 3; id++ {
		peers[id] = freeAddr(t)
	}
	opts := func(id uint64) Options {
		return Options{
			StoreID: id, DataDir: filepath.Join(dir, fmt.Sprint(id)),
			Addr: peers[id], HTTPAddr: "127.0.0.1:0", Peers: peers,
			Bootstrap: true, ShutdownTimeout: 2 * time.Second,
		}
	}
	nodes := map[uint64]*runningNode{}
	for id := uint64(1); id <= 3; id++ {
		nodes[id] = startNode(t, opts(id))
	}

	code, body := httpGet(t, "http://"+nodes[1].httpAddr+"/healthz")
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, "ok", body)

	c, err := statickv.New(peers, statickv.Tablet{TabletID: BootstrapTabletID, TableID: KVTableID, Family: KVFamily})
	require.NoError(t, err)
	defer c.Close()
	ctx := context.Background()
	for i := range 20 {
		require.NoError(t, c.Put(ctx, fmt.Appendf(nil, "row-%02d", i), fmt.Appendf(nil, "value-%d", i)))
	}
	v, found, err := c.Get(ctx, []byte("row-07"))
	require.NoError(t, err)
	require.True(t, found)
	require.Equal(t, "value-7", string(v))
	_, found, err = c.Get(ctx, []byte("missing"))
	require.NoError(t, err)
	require.False(t, found)

	code, body = httpGet(t, "http://"+nodes[2].httpAddr+"/metrics")
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, body, "go_goroutines")
	require.Contains(t, body, "process_")
	require.Contains(t, body, "shale_store_")
	code, body = httpGet(t, "http://"+nodes[2].httpAddr+"/debug/pprof/heap?debug=1")
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, body, "heap profile")

	// Restart every node with --bootstrap again: harmless, data kept.
	// Cancel all three first so their shutdowns overlap instead of each
	// waiting out its drain in turn; stop still checks every clean exit.
	for id := uint64(1); id <= 3; id++ {
		nodes[id].cancel()
	}
	for id := uint64(1); id <= 3; id++ {
		nodes[id].cancel = func() {}
		nodes[id].stop(t)
	}
	for id := uint64(1); id <= 3; id++ {
		nodes[id] = startNode(t, opts(id))
	}
	var rows []string
	require.NoError(t, c.Scan(ctx, func(row, value []byte) error {
		var i int
		_, err := fmt.Sscanf(string(row), "row-%d", &i)
		require.NoError(t, err)
		require.Equal(t, fmt.Sprintf("value-%d", i), string(value))
		rows = append(rows, string(row))
		return nil
	}))
	require.Len(t, rows, 20)
	require.Equal(t, "row-00", rows[0])
	require.Equal(t, "row-19", rows[19])

	// A stopped node makes the client move on; the other two still serve.
	nodes[1].stop(t)
	require.NoError(t, c.Put(ctx, []byte("after"), []byte("stop")))
	v, _, err = c.Get(ctx, []byte("after"))
	require.NoError(t, err)
	require.Equal(t, "stop", string(v))
}

func TestRunStartupErrors(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer busy.Close()

	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	require.NoError(t, os.WriteFile(file, nil, 0o644))
	base := Options{StoreID: 1, DataDir: filepath.Join(dir, "d"), Addr: "127.0.0.1:0", Logger: testLogger(t)}

	for _, tc := range []struct {
		name string
		edit func(*Options)
		want string
	}{
		{"grpc port in use", func(o *Options) { o.Addr = busy.Addr().String() }, "--addr " + busy.Addr().String() + ": address already in use"},
		{"http port in use", func(o *Options) { o.HTTPAddr = busy.Addr().String() }, "--http-addr " + busy.Addr().String() + ": address already in use"},
		{"data dir is a file", func(o *Options) { o.DataDir = file }, "not a directory"},
		{"data dir under a file", func(o *Options) { o.DataDir = filepath.Join(file, "x") }, "cannot create data directory"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := base
			tc.edit(&o)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			require.ErrorContains(t, Run(ctx, o), tc.want)
		})
	}

	// Two nodes on one data directory: the second cannot lock it.
	n := startNode(t, base)
	defer n.stop(t)
	o := base
	o.Addr = "127.0.0.1:0"
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.ErrorContains(t, Run(ctx, o), "data directory")
}

// A node stopped while it is still registering with PD (a PD that does not
// answer) stops cleanly: Run returns nil, as for a stop at any other time.
func TestRunStoppedWhileJoining(t *testing.T) {
	silent, err := net.Listen("tcp", "127.0.0.1:0") // accepts, never answers
	require.NoError(t, err)
	defer silent.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { //stop:short-lived joined below
		done <- Run(ctx, Options{DataDir: t.TempDir(), Addr: "127.0.0.1:0", PD: []string{silent.Addr().String()}, Logger: testLogger(t)})
	}()
	cancel()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return after its context was cancelled")
	}
}
