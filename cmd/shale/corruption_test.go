package main

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/stretchr/testify/require"

	"github.com/shaledb/shale/internal/faultfs"
	"github.com/shaledb/shale/internal/keys"
	"github.com/shaledb/shale/internal/testutils"
	"github.com/shaledb/shale/kvclient"
	"github.com/shaledb/shale/placementdriver/pdclient"
	"github.com/shaledb/shale/proto/metapb"
	"github.com/shaledb/shale/proto/pdpb"
	"github.com/shaledb/shale/tabletserver/store"
)

// corruptor flips a byte in every read of the SSTs in sst, and in up to
// snapBudget reads of received snapshot files.
type corruptor struct {
	mu         sync.Mutex
	sst        map[string]bool
	snapBudget int
	sstFlips   atomic.Int64
	snapFlips  atomic.Int64
}

func (c *corruptor) Corrupt(op faultfs.Op) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.sst[op.Path]:
		c.sstFlips.Add(1)
		return op.Len / 2
	case c.snapBudget > 0 && strings.Contains(op.Path, string(filepath.Separator)+"snapshots"+string(filepath.Separator)) && strings.HasSuffix(op.Path, ".sst"):
		c.snapBudget--
		c.snapFlips.Add(1)
		return op.Len / 2
	}
	return -1
}

// TestCorruptSSTReplicaRebuilt: a flipped byte in an SST of the leader's
// copy of a tablet, injected through the engine's file system, is caught
// by the block checksum on the first read; no wrong value is served, the
// process does not stop, the replica stops serving and PD rebuilds it on
// another store from its peers, while its store keeps serving its other
// tablets. The snapshot that rebuilds it is itself corrupted on the
// receiver's disk first: the receiver refuses it, and the retry succeeds.
func TestCorruptSSTReplicaRebuilt(t *testing.T) {
	corrupt := &corruptor{sst: map[string]bool{}}
	c, storeByID := startedStores(t, 4, func(i int, o *store.Options) {
		o.FS = faultfs.Wrap(vfs.Default, corrupt)
		o.BlockCacheBytes = 1 // every read reaches the file system
		o.Knobs.PebbleOptions = func(po *pebble.Options) {
			// Small files: the tablet's data gets SSTs of its own.
			for l := range po.TargetFileSizes {
				po.TargetFileSizes[l] = 8 << 10
			}
		}
	})
	pd := strings.Join(c.PDEndpoints(), ",")
	_, err := runShale(t, "table", "--pd", pd, "create", "users", "f", "--split", "m")
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cl, err := kvclient.Open(ctx, kvclient.Options{PD: c.PDEndpoints()})
	require.NoError(t, err)
	defer cl.Close()
	users, err := cl.Table(ctx, "users")
	require.NoError(t, err)
	acked := map[string]string{}
	for i := 0; i < 300; i++ {
		row := fmt.Sprintf("a%03d", i)
		v := strings.Repeat(row, 30)
		_, err := users.MutateRow(ctx, []byte(row), kvclient.SetCell("f", []byte("q"), []byte(v)))
		require.NoError(t, err)
		acked[row] = v
	}
	loc, err := users.Locate(ctx, []byte("a000"), true)
	require.NoError(t, err)
	info, err := c.PD().GetTabletByID(ctx, &pdpb.GetTabletByIDRequest{TabletId: loc.TabletID})
	require.NoError(t, err)
	victim := info.Tablet.LeaderStoreId
	vs := storeByID(victim)
	require.NotNil(t, vs)
	// The victim must hold another tablet, so the test can show it keeps
	// serving it: with 4 stores, PD may have placed the other half of the
	// table elsewhere.
	other := holdReplica(t, ctx, c.PD(), users, []byte("zzz"), victim)

	// Push the victim's copy into small SSTs, and corrupt those holding
	// only this tablet's data.
	desc := info.Tablet.Tablet
	lo, hi := keys.DataSpan(desc.StartKey, desc.EndKey)
	require.NoError(t, vs.DB().Flush())
	require.NoError(t, vs.DB().Compact(ctx, lo, hi, false))
	levels, err := vs.DB().SSTables()
	require.NoError(t, err)
	corrupt.mu.Lock()
	for _, level := range levels {
		for _, f := range level {
			if string(f.Smallest.UserKey) >= string(lo) && string(f.Largest.UserKey) < string(hi) {
				corrupt.sst[filepath.Join(vs.Dir(), "engine", fmt.Sprintf("%06d.sst", f.FileNum))] = true
			}
		}
	}
	n := len(corrupt.sst)
	corrupt.snapBudget = 3
	corrupt.mu.Unlock()
	require.Positive(t, n, "no SST holds only tablet %d's data", loc.TabletID)

	// Every read returns what was written: the corrupt copy is never
	// served, the client retries on the replica that takes over.
	for row, want := range acked {
		r, err := users.Get(ctx, []byte(row))
		require.NoError(t, err, row)
		got, ok := r.Value("f", []byte("q"))
		require.True(t, ok, row)
		require.Equal(t, want, string(got), row)
	}
	require.Positive(t, corrupt.sstFlips.Load(), "no read reached the corrupt files")

	// PD replaces the corrupt replica; the victim keeps its other tablets.
	testutils.SucceedsSoon(t, func() error {
		ti, err := c.PD().GetTabletByID(ctx, &pdpb.GetTabletByIDRequest{TabletId: loc.TabletID})
		if err != nil {
			return err
		}
		reps := ti.Tablet.Tablet.Replicas
		for _, r := range reps {
			if r.StoreId == victim {
				return fmt.Errorf("tablet %d still has a replica on store %d: %v", loc.TabletID, victim, reps)
			}
		}
		if len(reps) != 3 {
			return fmt.Errorf("tablet %d has %d replicas", loc.TabletID, len(reps))
		}
		return nil
	})
	require.Positive(t, corrupt.snapFlips.Load(), "no snapshot file was read back")
	ev := vs.TabletEvents(loc.TabletID)
	require.Contains(t, ev, "found corrupt data and stopped serving")
	require.Contains(t, ev, "destroyed")
	t.Logf("victim's events:\n%s", ev)
	_, err = vs.ReadLocal(ctx, getReq(other, users.Info().ID, "zzz"))
	require.NoError(t, err, "store %d stopped serving its other tablet %d", victim, other)
	for row, want := range acked {
		r, err := users.Get(ctx, []byte(row))
		require.NoError(t, err, row)
		got, _ := r.Value("f", []byte("q"))
		require.Equal(t, want, string(got), row)
	}
	// The rebuilt tablet's replicas agree.
	testutils.SucceedsSoon(t, func() error {
		out, err := ctlReal(t, pd, "check", fmt.Sprint(loc.TabletID))
		if err != nil || !strings.Contains(out, ": consistent") {
			return fmt.Errorf("check: %v\n%s", err, out)
		}
		return nil
	})
}

// holdReplica makes sure store holds a replica of the tablet holding row,
// moving one there if PD placed it elsewhere, and returns the tablet's ID.
func holdReplica(t *testing.T, ctx context.Context, pd *pdclient.Client, tbl *kvclient.Table, row []byte, store uint64) uint64 {
	t.Helper()
	loc, err := tbl.Locate(ctx, row, true)
	require.NoError(t, err)
	holds := func() (bool, []*metapb.Replica, error) {
		ti, err := pd.GetTabletByID(ctx, &pdpb.GetTabletByIDRequest{TabletId: loc.TabletID})
		if err != nil {
			return false, nil, err
		}
		for _, r := range ti.Tablet.Tablet.Replicas {
			if r.StoreId == store {
				return true, ti.Tablet.Tablet.Replicas, nil
			}
		}
		return false, ti.Tablet.Tablet.Replicas, nil
	}
	ok, reps, err := holds()
	require.NoError(t, err)
	if !ok {
		_, err := pd.AddOperator(ctx, &pdpb.AddOperatorRequest{TabletId: loc.TabletID, Op: &pdpb.AddOperatorRequest_Move{
			Move: &pdpb.AddOperatorRequest_MoveReplica{FromStore: reps[0].StoreId, ToStore: store}}})
		require.NoError(t, err)
	}
	testutils.SucceedsSoon(t, func() error {
		ok, reps, err := holds()
		if err == nil && !ok {
			err = fmt.Errorf("tablet %d not on store %d yet: %v", loc.TabletID, store, reps)
		}
		return err
	})
	return loc.TabletID
}
