package sqllite

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
	"github.com/shaledb/shale/placementdriver"
	"github.com/shaledb/shale/proto/pdpb"
)

// A user's quota holds behind the SQL endpoint: sessions reach the tablet
// servers with the endpoint's node certificate and name the session's
// user on each statement's calls (authz.OnBehalfOf), so alice's write
// limit slows alice's INSERTs and not bob's. Without it every statement
// counts as the node identity, which has no user quota.
func TestUserQuotaBehindSQL(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{Secure: true, Stores: 1, Schedule: placementdriver.Config{MaxReplicas: 1}})
	ctx := testCtx(t)
	root, err := kvclient.Open(ctx, kvclient.Options{PD: c.PDEndpoints(), TLS: c.ClientTLS()})
	require.NoError(t, err)
	t.Cleanup(func() { root.Close() })
	require.NoError(t, root.CreateUser(ctx, "alice", ""))
	const limit = 10
	_, err = c.PD().SetQuota(ctx, &pdpb.SetQuotaRequest{User: "alice", Limits: &pdpb.QuotaLimits{WriteRps: limit}})
	require.NoError(t, err)

	// The endpoint's own client: the node certificate, as `shale sql-server`.
	node, err := kvclient.Open(ctx, kvclient.Options{PD: c.PDEndpoints(), TLS: c.NodeTLS()})
	require.NoError(t, err)
	t.Cleanup(func() { node.Close() })
	admin, err := Open(ctx, node)
	require.NoError(t, err)
	_, err = admin.Exec(ctx, `CREATE TABLE uq (id BIGINT PRIMARY KEY, v VARCHAR(10))`)
	require.NoError(t, err)
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
	var next atomic.Int64
	// Four sessions per user, so that alice unthrottled would be far
	// above her limit even on a loaded machine.
	insertLoad := func(user string) *atomic.Int64 {
		var ok atomic.Int64
		lctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		for i := 0; i < 4; i++ {
			s, err := Open(ctx, node)
			require.NoError(t, err)
			s.ActAs(a, authz.Identity{User: user})
			wg.Add(1)
			go func() { //stop:test load, cancelled in cleanup
				defer wg.Done()
				for lctx.Err() == nil {
					if _, err := s.Exec(lctx, fmt.Sprintf(`INSERT INTO uq VALUES (%d, 'v')`, next.Add(1))); err == nil {
						ok.Add(1)
					}
				}
			}()
		}
		t.Cleanup(func() { cancel(); wg.Wait() })
		return &ok
	}
	alice, bob := insertLoad("alice"), insertLoad("bob")
	rate := func(n *atomic.Int64, d time.Duration) float64 {
		n0 := n.Load()
		time.Sleep(d) // the measurement window: time passing, not a wait for a condition
		return float64(n.Load()-n0) / d.Seconds()
	}
	// alice's share reaches the store within a heartbeat or two.
	testutils.SucceedsSoon(t, func() error {
		if r := rate(alice, time.Second); r > 1.5*limit {
			return fmt.Errorf("alice inserts %.1f rows/s: quota not applied yet", r)
		}
		return nil
	})
	a0, b0 := alice.Load(), bob.Load()
	const window = 5 * time.Second
	time.Sleep(window) // the measurement window
	ra, rb := float64(alice.Load()-a0)/window.Seconds(), float64(bob.Load()-b0)/window.Seconds()
	t.Logf("through SQL: alice %.1f inserts/s (write limit %d requests/s), bob %.1f inserts/s", ra, limit, rb)
	require.LessOrEqual(t, ra, 1.3*limit, "alice's limit holds behind the SQL endpoint")
	require.Positive(t, ra, "alice is slowed, not refused")
	require.Greater(t, rb, 1.5*limit, "bob is not held to alice's quota")
}
