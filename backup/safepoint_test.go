package backup_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shaledb/shale/backup"
	"github.com/shaledb/shale/internal/testcluster"
	"github.com/shaledb/shale/internal/testutils"
	"github.com/shaledb/shale/kvclient"
	"github.com/shaledb/shale/proto/pdpb"
	"github.com/shaledb/shale/tabletserver/store"
)

// gcDeleted sums the stores' garbage-collected versions (their /metrics).
func gcDeleted(t *testing.T, c *testcluster.Cluster) float64 {
	var sum float64
	for _, s := range c.Stores {
		resp, err := http.Get("http://" + s.HTTPAddr + "/metrics")
		require.NoError(t, err)
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.NoError(t, err)
		for _, line := range strings.Split(string(body), "\n") {
			if f := strings.Fields(line); len(f) == 2 && strings.HasSuffix(f[0], "gc_deleted_versions_total") {
				v, err := strconv.ParseFloat(f[1], 64)
				require.NoError(t, err)
				sum += v
			}
		}
	}
	return sum
}

// A service safe point keeps the versions a backup at its timestamp
// needs while the stores' version GC runs (here every 50 ms, with one
// version per column kept): the backup at T holds the values overwritten
// after T. The backup holds its own safe point while it runs and drops it
// when done.
func TestSafePointKeepsVersions(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{HTTP: true, StoreOptions: func(_ int, o *store.Options) { o.GCInterval = 50 * time.Millisecond }})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cl, err := kvclient.Open(ctx, kvclient.Options{PD: c.PDEndpoints()})
	require.NoError(t, err)
	defer cl.Close()
	e := &env{t: t, c: c, cl: cl, ctx: ctx}
	_, err = cl.CreateTable(ctx, "t", []kvclient.Family{{Name: "f", MaxVersions: 1}})
	require.NoError(t, err)
	tbl := e.table("t")
	put := func(row, v string) int64 {
		ts, err := tbl.MutateRow(ctx, []byte(row), kvclient.SetCell("f", []byte("q"), []byte(v)))
		require.NoError(t, err)
		return ts
	}
	put("a", "a1")
	put("a", "a2") // a1 is garbage whatever the safe point
	b1 := put("b", "b1")
	// Hold the GC safe point where it is, then move the hold up to a
	// fresh timestamp (as a backup does).
	testutils.SucceedsSoon(t, func() error {
		sp, err := c.PD().GetGCSafePoint(ctx, &pdpb.GetGCSafePointRequest{})
		if err != nil {
			return err
		}
		_, err = c.PD().UpdateServiceSafePoint(ctx, &pdpb.UpdateServiceSafePointRequest{ServiceId: "test", SafePoint: sp.GcSafePoint, TtlSeconds: 120})
		return err
	})
	resp, err := c.PD().GetTimestamp(ctx, &pdpb.GetTimestampRequest{Count: 1})
	require.NoError(t, err)
	at := resp.First
	_, err = c.PD().UpdateServiceSafePoint(ctx, &pdpb.UpdateServiceSafePointRequest{ServiceId: "test", SafePoint: at, TtlSeconds: 120})
	require.NoError(t, err)
	put("b", "b2") // b1 is garbage for a read now, not for one at `at`
	// GC runs (a1 goes), and goes on running for a while.
	testutils.SucceedsSoon(t, func() error {
		if n := gcDeleted(t, c); n < 1 {
			return fmt.Errorf("GC deleted %v versions so far, want a1 (counted by the leader)", n)
		}
		return nil
	})
	// Models time passing: GC rounds go on a while with the safe point held.
	time.Sleep(time.Second)

	to := fileURL(t, "b")
	o := backupOpts(e, to)
	o.Tables, o.At = []string{"t"}, at
	var held atomic.Bool // the hook runs on the backup's workers
	o.Hook = func(string) {
		sp, err := c.PD().GetGCSafePoint(ctx, &pdpb.GetGCSafePointRequest{})
		if err != nil {
			t.Errorf("reading the safe points: %v", err)
			return
		}
		for _, s := range sp.Services {
			if strings.HasPrefix(s.ServiceId, "backup-") && s.SafePoint == at {
				held.Store(true)
			}
		}
	}
	_, err = backup.Run(ctx, o)
	require.NoError(t, err)
	require.True(t, held.Load(), "the backup held no service safe point while it ran")
	sp, err := c.PD().GetGCSafePoint(ctx, &pdpb.GetGCSafePointRequest{})
	require.NoError(t, err)
	for _, s := range sp.Services {
		require.False(t, strings.HasPrefix(s.ServiceId, "backup-"), "the finished backup still holds its safe point")
	}

	// A timestamp the cluster's GC safe point has passed is refused.
	testutils.SucceedsSoon(t, func() error {
		sp, err := c.PD().GetGCSafePoint(ctx, &pdpb.GetGCSafePointRequest{})
		if err != nil || sp.GcSafePoint <= b1 {
			return fmt.Errorf("gc safe point not past %d yet (%v)", b1, err)
		}
		return nil
	})
	old := backupOpts(e, fileURL(t, "old"))
	old.Tables, old.At = []string{"t"}, b1
	_, err = backup.Run(ctx, old)
	var spe *backup.SafePointError
	require.ErrorAs(t, err, &spe)

	_, err = backup.Restore(ctx, restoreOpts(t, e, to, "t", "t_r"))
	require.NoError(t, err)
	got := e.dump("t_r")
	require.Len(t, got, 2)
	require.Equal(t, cell{"b", "f:q", b1, "b1"}, got[1], "the version at the backup's timestamp was collected")
	require.Equal(t, "a2", got[0].value)
}
