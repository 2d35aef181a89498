package store_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shaledb/shale/internal/keys"
	"github.com/shaledb/shale/internal/testutils"
	"github.com/shaledb/shale/proto/kvpb"
	"github.com/shaledb/shale/tabletserver/store"
	"github.com/shaledb/shale/tabletserver/storetest"
)

// snapshotToStore3 starts three stores with tablet 1 on all of them and
// tablet 2 on stores 1 and 2, writes a row to each, waits until store 3
// has applied tablet 1's, and returns once store 3 has been asked to join
// tablet 2 as a learner (it gets the tablet by snapshot). before runs just
// before that ask.
func snapshotToStore3(t *testing.T, ctx context.Context, c *storetest.Cluster, before func()) {
	t.Helper()
	tab := storetest.TestTable.TableId
	c.PutSchema(storetest.TestTable)
	c.Bootstrap(1, keys.RowKey(tab, []byte("b")), keys.RowKey(tab, []byte("m")), 1, 2, 3)
	c.Bootstrap(2, keys.RowKey(tab, []byte("m")), keys.RowKey(tab, []byte("z")), 1, 2)
	if err := c.Put(ctx, 1, "c", "v1"); err != nil {
		t.Fatal(err)
	}
	if err := c.Put(ctx, 2, "p", "v2"); err != nil {
		t.Fatal(err)
	}
	waitRow(t, c, 3, 1, "c")
	before()
	testutils.SucceedsSoon(t, func() error {
		return c.Call(ctx, 2, func(cl kvpb.TabletClient) error {
			_, err := cl.ChangeReplicas(ctx, &kvpb.ChangeReplicasRequest{Header: &kvpb.RequestHeader{TabletId: 2},
				Changes: []*kvpb.ReplicaChange{{Type: kvpb.ReplicaChange_ADD_LEARNER, StoreId: 3, ReplicaId: 3}}})
			return err
		})
	})
}

// waitRow waits until the store's replica of the tablet holds row (its
// own engine, no raft).
func waitRow(t *testing.T, c *storetest.Cluster, storeID, tabletID uint64, row string) {
	t.Helper()
	testutils.SucceedsSoon(t, func() error {
		rows, err := c.Nodes[storeID].Store.LocalRowsForTest(tabletID)
		if err != nil {
			return err
		}
		if !slices.ContainsFunc(rows, func(r string) bool { return len(r) > len(row) && r[:len(row)+1] == row+" " }) {
			return fmt.Errorf("store %d's replica of tablet %d holds %v, not row %q yet", storeID, tabletID, rows, row)
		}
		return nil
	})
}

// A store that installs a snapshot of a tablet new to it does not flush
// its memtable. The new replica's hard state is in the memtable (written
// when it first heard from the leader); the install once ingested the
// replica's raft state under those same keys, and Pebble flushed the
// memtable before every such ingest: during a drain, a flush per tablet
// moved on each receiving store, a write burst on the disk its raft log
// syncs to.
func TestSnapshotInstallDoesNotFlushMemtable(t *testing.T) {
	c := storetest.Start(t, 3, nil)
	ctx := ctxT(t, 60*time.Second)
	s3 := c.Nodes[3].Store
	var flushes int64
	snapshotToStore3(t, ctx, c, func() { flushes = s3.FlushesForTest() })
	waitRow(t, c, 3, 2, "p")
	if got := s3.FlushesForTest(); got != flushes {
		t.Fatalf("store 3 flushed its memtable %d times while installing a snapshot, want 0", got-flushes)
	}
	if n, err := s3.SnapshotStatesForTest(); err != nil || n != 0 {
		t.Fatalf("store 3 kept %d snapshot state keys after the install (err %v), want none", n, err)
	}
	// The state moved under the tablet: a restart finds the replica and
	// its data, and raft goes on from the snapshot.
	c.Stop(3)
	c.Restart(3)
	if !c.Nodes[3].Store.HasReplicaForTest(2) {
		t.Fatal("store 3 lost its replica of tablet 2 across a restart")
	}
	if err := c.Put(ctx, 2, "q", "v3"); err != nil {
		t.Fatal(err)
	}
	waitRow(t, c, 3, 2, "q")
}

// A crash between a snapshot's ingest and the move of its raft state to
// the tablet's local keys loses nothing: the state came in with the data,
// under keys of its own, and the store moves it when it opens, before it
// loads its replicas. Snapshots to the store are blocked after the crash,
// so the replica cannot get the tablet again any other way.
func TestSnapshotInstallInterruptedAfterIngest(t *testing.T) {
	errCrash := errors.New("crash after the snapshot's ingest")
	var crash atomic.Bool
	crash.Store(true)
	fatal := &fatalLog{errs: map[uint64][]error{}}
	c := storetest.Start(t, 3, func(o *store.Options) {
		if o.StoreID != 3 {
			return
		}
		fatal.tweak(o)
		o.Knobs.WhileInstallingSnapshot = func(tabletID uint64) error {
			if tabletID == 2 && crash.Load() {
				return errCrash
			}
			return nil
		}
	})
	ctx := ctxT(t, 60*time.Second)
	snapshotToStore3(t, ctx, c, func() {})
	testutils.SucceedsSoon(t, func() error {
		if errs := fatal.get(3); len(errs) == 0 || !errors.Is(errs[0], errCrash) {
			return fmt.Errorf("store 3 has not stopped in the install yet (%v)", errs)
		}
		return nil
	})
	if n, err := c.Nodes[3].Store.SnapshotStatesForTest(); err != nil || n == 0 {
		t.Fatalf("store 3 holds %d snapshot state keys after the ingest (err %v), want the install's", n, err)
	}
	c.Net.BlockSnapshots(3, true)
	crash.Store(false)
	c.Stop(3)
	c.Restart(3)
	s3 := c.Nodes[3].Store
	if n, err := s3.SnapshotStatesForTest(); err != nil || n != 0 {
		t.Fatalf("store 3 reopened with %d snapshot state keys (err %v), want them moved", n, err)
	}
	if !s3.HasReplicaForTest(2) {
		t.Fatal("store 3 reopened without its replica of tablet 2")
	}
	waitRow(t, c, 3, 2, "p")
	if err := c.Put(ctx, 2, "q", "v3"); err != nil {
		t.Fatal(err)
	}
	waitRow(t, c, 3, 2, "q")
}
