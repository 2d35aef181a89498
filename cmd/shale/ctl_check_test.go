package main

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/stretchr/testify/require"

	"github.com/shaledb/shale/internal/cellvalue"
	"github.com/shaledb/shale/internal/keys"
	"github.com/shaledb/shale/internal/testcluster"
	"github.com/shaledb/shale/internal/testutils"
	"github.com/shaledb/shale/kvclient"
	"github.com/shaledb/shale/proto/kvpb"
	"github.com/shaledb/shale/proto/pdpb"
	"github.com/shaledb/shale/tabletserver/store"
)

// startedStores runs a testcluster whose stores are handed to the test as
// they start (by store ID), with periodic checks off.
func startedStores(t testing.TB, n int, tweak func(i int, o *store.Options)) (*testcluster.Cluster, func(id uint64) *store.Store) {
	var mu sync.Mutex
	byID := map[uint64]*store.Store{}
	c := testcluster.Start(t, testcluster.Options{Stores: n, StoreOptions: func(i int, o *store.Options) {
		o.ConsistencyCheckInterval = -1
		o.Knobs = &store.TestingKnobs{Started: func(s *store.Store) {
			mu.Lock()
			byID[s.StoreID()] = s
			mu.Unlock()
		}}
		if tweak != nil {
			tweak(i, o)
		}
	}})
	return c, func(id uint64) *store.Store {
		mu.Lock()
		defer mu.Unlock()
		return byID[id]
	}
}

// TestCtlCheckRebuildsDivergentReplica is issue 20's divergence test: a
// write injected straight into one replica's engine is found by one forced
// check (`shale ctl check`), which names the key; PD replaces that replica
// on the fourth store while its store keeps serving its other tablet; no
// acknowledged write is lost, and the next check agrees.
func TestCtlCheckRebuildsDivergentReplica(t *testing.T) {
	// Parallel: its own in-process cluster, and it mostly waits (on PD
	// and the stores), using little CPU.
	t.Parallel()
	c, storeByID := startedStores(t, 4, nil)
	pd := strings.Join(c.PDEndpoints(), ",")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	users := usersTable(t, ctx, c, "m")
	put := func(row, value string) {
		_, err := users.MutateRow(ctx, []byte(row), kvclient.SetCell("f", []byte("q"), []byte(value)))
		require.NoError(t, err, row)
	}
	acked := map[string]string{}
	for i := 0; i < 200; i++ {
		for _, prefix := range []string{"a", "n"} {
			row := fmt.Sprintf("%s%03d", prefix, i)
			put(row, "v-"+row)
			acked[row] = "v-" + row
		}
	}

	left, err := users.Locate(ctx, []byte("a000"), true)
	require.NoError(t, err)
	right, err := users.Locate(ctx, []byte("n000"), true)
	require.NoError(t, err)
	info, err := c.PD().GetTabletByID(ctx, &pdpb.GetTabletByIDRequest{TabletId: left.TabletID})
	require.NoError(t, err)
	// The victim: a follower of the left tablet that also holds the right
	// one, so we can watch it keep serving that.
	var victim uint64
	rinfo, err := c.PD().GetTabletByID(ctx, &pdpb.GetTabletByIDRequest{TabletId: right.TabletID})
	require.NoError(t, err)
	for _, rep := range info.Tablet.Tablet.Replicas {
		if rep.StoreId == info.Tablet.LeaderStoreId {
			continue
		}
		for _, r2 := range rinfo.Tablet.Tablet.Replicas {
			if r2.StoreId == rep.StoreId {
				victim = rep.StoreId
			}
		}
	}
	require.NotZero(t, victim, "no follower of tablet %d also holds tablet %d", left.TabletID, right.TabletID)
	vs := storeByID(victim)
	require.NotNil(t, vs)
	// Let the victim apply everything, then diverge it.
	testutils.SucceedsSoon(t, func() error {
		row, err := vs.ReadLocal(ctx, getReq(left.TabletID, users.Info().ID, "a199"))
		if err != nil || len(row.GetRow().GetCells()) == 0 {
			return fmt.Errorf("victim has not applied a199 yet: %v", err)
		}
		return nil
	})
	injected := keys.DataKey(keys.CellKey(users.Info().ID, []byte("a100x"), "f", []byte("q"), 1))
	require.NoError(t, vs.DB().Set(injected, cellvalue.Encode([]byte("never written")), pebble.Sync))

	var res checkResult
	ctlRealJSON(t, pd, &res, "check", fmt.Sprint(left.TabletID))
	require.False(t, res.Consistent, "%+v", res)
	require.False(t, res.NoMajority)
	require.Equal(t, []string{hex.EncodeToString(injected)}, res.DifferingKeys)
	for _, rep := range res.Replicas {
		require.Equal(t, rep.StoreID == victim, rep.Bad, "%+v", res)
	}
	out, err := ctlReal(t, pd, "tablets")
	require.NoError(t, err)
	t.Logf("after the check:\n%s", out)

	// Writes to the right tablet go on the whole time; its replica on the
	// victim store keeps applying them.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var writeErr error
	var mu sync.Mutex
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			row := fmt.Sprintf("n%03d-%d", i%200, i)
			if _, err := users.MutateRow(ctx, []byte(row), kvclient.SetCell("f", []byte("q"), []byte("w"))); err != nil {
				mu.Lock()
				writeErr = err
				mu.Unlock()
				return
			}
			mu.Lock()
			acked[row] = "w"
			mu.Unlock()
		}
	}()

	// PD replaces the bad replica: the left tablet ends up with three
	// voters, none on the victim store, whose replica is destroyed.
	testutils.SucceedsSoon(t, func() error {
		ti, err := c.PD().GetTabletByID(ctx, &pdpb.GetTabletByIDRequest{TabletId: left.TabletID})
		if err != nil {
			return err
		}
		reps := ti.Tablet.Tablet.Replicas
		for _, r := range reps {
			if r.StoreId == victim {
				return fmt.Errorf("tablet %d still has a replica on store %d: %v", left.TabletID, victim, reps)
			}
		}
		if len(reps) != 3 {
			return fmt.Errorf("tablet %d has %d replicas", left.TabletID, len(reps))
		}
		if _, closer, err := vs.DB().Get(injected); err == nil {
			closer.Close()
			return fmt.Errorf("the bad replica's data is still on store %d", victim)
		}
		return nil
	})
	close(stop)
	wg.Wait()
	require.NoError(t, writeErr)

	// The victim store still serves the right tablet.
	testutils.SucceedsSoon(t, func() error {
		row, err := vs.ReadLocal(ctx, getReq(right.TabletID, users.Info().ID, "n150"))
		if err != nil || len(row.GetRow().GetCells()) == 0 {
			return fmt.Errorf("store %d does not serve tablet %d: %v", victim, right.TabletID, err)
		}
		return nil
	})
	// No acknowledged write is lost, and the injected one is not served.
	for row, want := range acked {
		r, err := users.Get(ctx, []byte(row))
		require.NoError(t, err, row)
		got, ok := r.Value("f", []byte("q"))
		require.True(t, ok, "row %s lost", row)
		require.Equal(t, want, string(got), row)
	}
	r, err := users.Get(ctx, []byte("a100x"))
	require.NoError(t, err)
	require.True(t, r == nil || len(r.Cells) == 0, "the injected cell is served: %v", r)

	// The rebuilt tablet agrees with itself.
	testutils.SucceedsSoon(t, func() error {
		var again checkResult
		out, err := ctlReal(t, pd, "check", fmt.Sprint(left.TabletID), "-w", "json")
		if err != nil {
			return err
		}
		if err := json.Unmarshal([]byte(out), &again); err != nil {
			return err
		}
		if !again.Consistent {
			return fmt.Errorf("second check: %+v", again)
		}
		return nil
	})
}

func getReq(tabletID, tableID uint64, row string) *kvpb.GetRequest {
	return &kvpb.GetRequest{Header: &kvpb.RequestHeader{TabletId: tabletID}, TableId: tableID, RowKey: []byte(row)}
}
