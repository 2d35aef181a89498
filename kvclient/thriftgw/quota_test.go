package thriftgw_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shaledb/shale/internal/authz"
	"github.com/shaledb/shale/internal/testcluster"
	"github.com/shaledb/shale/internal/testutils"
	"github.com/shaledb/shale/kvclient"
	"github.com/shaledb/shale/kvclient/thriftgw"
	"github.com/shaledb/shale/placementdriver"
	"github.com/shaledb/shale/proto/hbase"
	"github.com/shaledb/shale/proto/pdpb"
)

// A user's quota holds behind the gateway: the gateway reaches the tablet
// servers as a node and names each Thrift caller's user on its calls
// (authz.OnBehalfOf), so alice's write limit slows alice's puts and not
// bob's through the same kind of gateway. Without it every call counts as
// the gateway's node identity, which has no user quota.
func TestUserQuotaBehindGateway(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{Secure: true, Stores: 1, Schedule: placementdriver.Config{MaxReplicas: 1}})
	ctx := ctxT(t)
	root, err := kvclient.Open(ctx, kvclient.Options{PD: c.PDEndpoints(), TLS: c.ClientTLS()})
	require.NoError(t, err)
	t.Cleanup(func() { root.Close() })
	_, err = root.CreateTable(ctx, "uq", []kvclient.Family{{Name: "f"}})
	require.NoError(t, err)
	require.NoError(t, root.CreateUser(ctx, "alice", ""))
	const limit = 10
	_, err = c.PD().SetQuota(ctx, &pdpb.SetQuotaRequest{User: "alice", Limits: &pdpb.QuotaLimits{WriteRps: limit}})
	require.NoError(t, err)

	// The gateway's own client: the node certificate, as `shale thrift`.
	gw, err := kvclient.Open(ctx, kvclient.Options{PD: c.PDEndpoints(), TLS: c.NodeTLS()})
	require.NoError(t, err)
	t.Cleanup(func() { gw.Close() })
	st, err := authz.Edit(nil, func(st *pdpb.AuthState) error {
		for _, u := range []string{"alice", "bob"} {
			if err := authz.GrantPermission(st, u, &pdpb.AuthGrant{Permission: pdpb.AuthPermission_ADMIN, On: &pdpb.AuthGrant_Cluster{Cluster: true}}); err != nil {
				return err
			}
		}
		return nil
	})
	require.NoError(t, err)
	a, err := authz.New(authz.Options{Mode: authz.Secure, Policies: fixedPolicy{authz.NewPolicy(st)}})
	require.NoError(t, err)
	// Four connections per user, so that alice unthrottled would be far
	// above her limit even on a loaded machine.
	as := func(user string) []*client {
		srv, err := thriftgw.Listen(thriftgw.Options{Client: gw, Addr: "127.0.0.1:0", Authz: a})
		require.NoError(t, err)
		thriftgw.SetIdentityForTest(srv, authz.Identity{User: user})
		done := make(chan error, 1)
		go func() { done <- srv.Serve() }() //stop:test gateway, closed in cleanup
		t.Cleanup(func() {
			require.NoError(t, srv.Close())
			require.NoError(t, <-done)
		})
		var cs []*client
		for i := 0; i < 4; i++ {
			cs = append(cs, dial(t, srv.Addr().String(), false, false))
		}
		return cs
	}
	alice, bob := putLoad(t, as("alice")), putLoad(t, as("bob"))

	// alice's share reaches the store within a heartbeat or two.
	testutils.SucceedsSoon(t, func() error {
		if r := alice.rate(time.Second); r > 1.5*limit {
			return fmt.Errorf("alice puts %.1f/s through the gateway: quota not applied yet", r)
		}
		return nil
	})
	a0, b0 := alice.ok.Load(), bob.ok.Load()
	const window = 5 * time.Second
	time.Sleep(window) // the measurement window: time passing, not a wait for a condition
	ra, rb := float64(alice.ok.Load()-a0)/window.Seconds(), float64(bob.ok.Load()-b0)/window.Seconds()
	t.Logf("through the gateway: alice %.1f puts/s (limit %d), bob %.1f puts/s", ra, limit, rb)
	require.InDelta(t, limit, ra, 0.3*limit, "alice's limit holds behind the gateway")
	require.Greater(t, rb, 1.5*limit, "bob is not held to alice's quota")
	require.Zero(t, alice.failed.Load()+bob.failed.Load(), "puts fail: %v", alice.firstErr.Load())
}

type load struct {
	ok, failed atomic.Int64
	firstErr   atomic.Value
}

// rate counts the puts that succeed within d (time passing).
func (l *load) rate(d time.Duration) float64 {
	n := l.ok.Load()
	time.Sleep(d) // the measurement window
	return float64(l.ok.Load()-n) / d.Seconds()
}

// putLoad keeps each connection busy with puts until the test ends.
func putLoad(t *testing.T, cs []*client) *load {
	l := &load{}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for _, c := range cs {
		wg.Add(1)
		go putLoop(ctx, &wg, l, c) //stop:test load, cancelled in cleanup
	}
	t.Cleanup(func() { cancel(); wg.Wait() })
	return l
}

func putLoop(ctx context.Context, wg *sync.WaitGroup, l *load, c *client) {
	defer wg.Done()
	put := &hbase.TPut{Row: []byte("r"), ColumnValues: []*hbase.TColumnValue{cv("f", "q", "v")}}
	for ctx.Err() == nil {
		if err := c.Put(ctx, []byte("uq"), put); err != nil {
			if ctx.Err() == nil && l.failed.Add(1) == 1 {
				l.firstErr.Store(err)
			}
			continue
		}
		l.ok.Add(1)
	}
}
