package node

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shaledb/shale/internal/statickv"
	"github.com/shaledb/shale/internal/testutils"
	"github.com/shaledb/shale/placementdriver"
	"github.com/shaledb/shale/tabletserver/store"
)

// TestReadyOnlyOnceRegisteredWithPD: a tablet server pointed at a PD that
// is not up yet serves nothing (not ready); once the PD starts, it
// registers and /readyz answers 200.
func TestReadyOnlyOnceRegisteredWithPD(t *testing.T) {
	dir := t.TempDir()
	pdClient, pdPeer := freeAddr(t), freeAddr(t)
	httpAddr := freeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, Options{DataDir: filepath.Join(dir, "store"), Addr: freeAddr(t), HTTPAddr: httpAddr,
			PD: []string{pdClient}, HeartbeatInterval: 100 * time.Millisecond, ShutdownTimeout: 2 * time.Second, Logger: testLogger(t)})
	}()
	// Not registered: the readiness endpoint does not answer 200 (nothing
	// listens yet).
	if resp, err := http.Get("http://" + httpAddr + "/readyz"); err == nil {
		resp.Body.Close()
		require.NotEqual(t, http.StatusOK, resp.StatusCode)
	}

	pdCtx, pdCancel := context.WithCancel(context.Background())
	pdDone := make(chan error, 1)
	go func() {
		pdDone <- placementdriver.Run(pdCtx, placementdriver.Options{Name: "pd1", DataDir: filepath.Join(dir, "pd"),
			ClientAddr: pdClient, PeerAddr: pdPeer, InitialCluster: map[string]string{"pd1": pdPeer},
			TickInterval: 20 * time.Millisecond, Logger: testLogger(t)})
	}()
	testutils.SucceedsSoon(t, func() error {
		resp, err := http.Get("http://" + httpAddr + "/readyz")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("readyz: %d", resp.StatusCode)
		}
		return nil
	})
	cancel()
	require.NoError(t, <-done)
	pdCancel()
	require.NoError(t, <-pdDone)
}

// TestNotReadyWhileShuttingDown: once shutdown starts, /readyz and
// /healthz answer 503 while in-flight requests drain.
func TestNotReadyWhileShuttingDown(t *testing.T) {
	addr := freeAddr(t)
	peers := map[uint64]string{1: addr}
	var hold atomic.Bool
	release := make(chan struct{})
	var st atomic.Pointer[store.Store]
	o := Options{StoreID: 1, DataDir: t.TempDir(), Addr: addr, HTTPAddr: "127.0.0.1:0", Peers: peers,
		Bootstrap: true, ShutdownTimeout: 10 * time.Second,
		Store: store.Options{Knobs: &store.TestingKnobs{
			Started: func(s *store.Store) { st.Store(s) },
			InReady: func() {
				if hold.Load() {
					<-release
				}
			}}}}
	n := startNode(t, o)
	code, _ := httpGet(t, "http://"+n.httpAddr+"/readyz")
	require.Equal(t, http.StatusOK, code)

	c, err := statickv.New(peers, statickv.Tablet{TabletID: BootstrapTabletID, TableID: KVTableID, Family: KVFamily})
	require.NoError(t, err)
	defer c.Close()
	testutils.SucceedsSoon(t, func() error { return c.Put(context.Background(), []byte("warm"), []byte("up")) })
	// A write stuck in the Ready loop keeps the gate from draining.
	proposed := st.Load().Proposals()
	hold.Store(true)
	putDone := make(chan error, 1)
	go func() { putDone <- c.Put(context.Background(), []byte("held"), []byte("v")) }()
	testutils.SucceedsSoon(t, func() error {
		if st.Load().Proposals() == proposed {
			return errors.New("the held write has not reached the store yet")
		}
		return nil
	})
	n.cancel()
	testutils.SucceedsSoon(t, func() error {
		for _, path := range []string{"/readyz", "/healthz"} {
			code, _ := httpGet(t, "http://"+n.httpAddr+path)
			if code != http.StatusServiceUnavailable {
				return fmt.Errorf("%s while shutting down: %d", path, code)
			}
		}
		return nil
	})
	close(release)
	hold.Store(false)
	select {
	case err := <-n.done:
		require.NoError(t, err)
	case <-time.After(testutils.DefaultSucceedsSoonDuration):
		t.Fatal("node did not stop")
	}
	n.cancel = nil
	if err := <-putDone; err != nil && !errors.Is(err, context.Canceled) {
		t.Logf("held write ended with %v (shutdown)", err)
	}
}
