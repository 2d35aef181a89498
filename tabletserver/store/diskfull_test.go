package store_test

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"

	"github.com/shaledb/shale/internal/errs"
	"github.com/shaledb/shale/internal/testutils"
	"github.com/shaledb/shale/proto/errorpb"
	"github.com/shaledb/shale/proto/kvpb"
	"github.com/shaledb/shale/tabletserver/store"
	"github.com/shaledb/shale/tabletserver/storetest"
)

// fillableFS is a store's file system with a disk that can fill up: while
// enospc is set, every data write (pebble's WAL and tables, staged files,
// ...) fails with ENOSPC through pebble's errorfs, until the ballast is
// removed (that frees space: enospc clears); avail is what the free-space
// probe reports.
type fillableFS struct {
	*errorfs.FS
	enospc  atomic.Bool
	avail   atomic.Uint64
	injects atomic.Uint64
}

const fillableTotal = 1 << 30

func newFillableFS() *fillableFS {
	f := &fillableFS{}
	f.avail.Store(fillableTotal / 2)
	f.FS = errorfs.Wrap(vfs.Default, errorfs.InjectorFunc(func(op errorfs.Op) error {
		switch op.Kind {
		case errorfs.OpFileWrite, errorfs.OpFileWriteAt, errorfs.OpFilePreallocate:
			if f.enospc.Load() && !strings.HasSuffix(op.Path, "BALLAST") {
				f.injects.Add(1)
				return syscall.ENOSPC
			}
		}
		return nil
	}))
	return f
}

func (f *fillableFS) GetDiskUsage(string) (vfs.DiskUsage, error) {
	a := f.avail.Load()
	return vfs.DiskUsage{AvailBytes: a, TotalBytes: fillableTotal, UsedBytes: fillableTotal - a}, nil
}

func (f *fillableFS) Remove(name string) error {
	if strings.HasSuffix(name, "BALLAST") {
		f.enospc.Store(false) // the ballast's blocks are free again
	}
	return f.FS.Remove(name)
}

func (f *fillableFS) Unwrap() vfs.FS { return f.FS }

func putOn(ctx context.Context, c *storetest.Cluster, id, tablet uint64, row, val string) error {
	_, err := c.Nodes[id].Client.MutateRow(ctx, &kvpb.MutateRowRequest{
		Header: &kvpb.RequestHeader{TabletId: tablet}, TableId: storetest.TestTable.TableId, RowKey: []byte(row),
		Mutations: []*kvpb.Mutation{storetest.SetCell("f", "q", val)},
	})
	return err
}

// TestDiskFullENOSPC: the leader's disk fills up without warning (the
// free-space probe is slow), so pebble's WAL meets ENOSPC. The store
// releases its ballast, retries the write and refuses further writes with
// a typed DiskFull error: no panic, no lost acknowledged write, reads
// served. The tablet keeps taking writes once another replica leads;
// when space comes back, the full store takes writes again, without a
// restart. Then the threshold alone (no ENOSPC) does the same.
func TestDiskFullENOSPC(t *testing.T) {
	fss := map[uint64]*fillableFS{}
	c := storetest.Start(t, 3, func(o *store.Options) {
		storetest.FastOptions(o)
		f := newFillableFS()
		fss[o.StoreID] = f
		o.FS = f
		o.MinFreeBytes = 64 << 20
		o.BallastBytes = 4 << 20
		o.DiskProbeInterval = time.Hour // probes only when the test says
		o.RaftLogTruncateEntries = 20
	})
	c.PutSchema(storetest.TestTable)
	lo, hi := storetest.TableSpan()
	c.Bootstrap(1, lo, hi, 1, 2, 3)
	ctx := ctxT(t, 90*time.Second)
	for id := range c.Nodes {
		c.Nodes[id].Store.ProbeDiskForTest() // creates the ballast
	}
	leader := c.WaitLeader(1)
	acked := map[string]string{}
	for i := 0; i < 30; i++ {
		row, val := fmt.Sprintf("a%03d", i), fmt.Sprintf("v%d", i)
		if err := c.Put(ctx, 1, row, val); err != nil {
			t.Fatal(err)
		}
		acked[row] = val
	}

	// The disk is full: the next WAL write fails with ENOSPC.
	f := fss[leader]
	f.avail.Store(0)
	f.enospc.Store(true)
	var refused error
	for i := 0; refused == nil; i++ {
		if i > 20 {
			t.Fatalf("store %d never refused a write after ENOSPC", leader)
		}
		row, val := fmt.Sprintf("b%03d", i), fmt.Sprintf("v%d", i)
		err := putOn(ctx, c, leader, 1, row, val)
		switch {
		case err == nil:
			acked[row] = val
		case isDiskFull(err):
			refused = err
		default:
			t.Fatalf("write during ENOSPC: want success or DiskFull, got %v", err)
		}
	}
	if f.injects.Load() == 0 {
		t.Fatal("no write met ENOSPC: the test did not exercise the retry")
	}
	if full, why := c.Nodes[leader].Store.DiskFull(); !full {
		t.Fatal("store not disk-full after ENOSPC")
	} else {
		t.Logf("store %d refused: %v (%s)", leader, refused, why)
	}
	// Reads are served by the full store.
	for row, val := range acked {
		if err := c.MustRead(ctx, 1, row, val); err != nil {
			t.Fatal(err)
		}
	}
	// The cluster keeps taking writes once a store with room leads (PD
	// does this in a real cluster: placementdriver/schedule).
	other := leader%3 + 1
	if err := c.Nodes[leader].Store.TransferLeadershipFromForTest(ctx, 1, other); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 10; i++ {
		row, val := fmt.Sprintf("c%03d", i), fmt.Sprintf("v%d", i)
		if err := c.Put(ctx, 1, row, val); err != nil {
			t.Fatalf("write with a leader that has room: %v", err)
		}
		acked[row] = val
	}

	// Space comes back: the store re-creates its ballast and takes writes
	// again, without a restart.
	f.avail.Store(fillableTotal / 2)
	c.Nodes[leader].Store.ProbeDiskForTest()
	if full, _ := c.Nodes[leader].Store.DiskFull(); full {
		t.Fatal("store still disk-full after space came back")
	}
	testutils.SucceedsSoon(t, func() error {
		if cur := c.WaitLeader(1); cur != leader {
			_ = c.Nodes[cur].Store.TransferLeadershipFromForTest(ctx, 1, leader)
			return fmt.Errorf("store %d still leads", cur)
		}
		return putOn(ctx, c, leader, 1, "d000", "v")
	})
	acked["d000"] = "v"

	// The threshold alone: below MinFreeBytes, writes are refused before
	// any write fails.
	f.avail.Store(1 << 20)
	injects := f.injects.Load()
	c.Nodes[leader].Store.ProbeDiskForTest()
	if err := putOn(ctx, c, leader, 1, "e000", "v"); !isDiskFull(err) {
		t.Fatalf("write below the threshold: want DiskFull, got %v", err)
	}
	if f.injects.Load() != injects {
		t.Fatal("ENOSPC injected during the threshold phase")
	}
	f.avail.Store(fillableTotal / 2)
	c.Nodes[leader].Store.ProbeDiskForTest()
	testutils.SucceedsSoon(t, func() error { return putOn(ctx, c, leader, 1, "e001", "v") })
	acked["e001"] = "v"

	// No acknowledged write is lost, on any replica.
	for row, val := range acked {
		if err := c.MustRead(ctx, 1, row, val); err != nil {
			t.Fatal(err)
		}
	}
	testutils.SucceedsSoon(t, func() error {
		for id := range c.Nodes {
			rows, err := c.Nodes[id].Store.LocalRowsForTest(1)
			if err != nil {
				return err
			}
			if len(rows) != len(acked) {
				return fmt.Errorf("store %d holds %d rows, want %d", id, len(rows), len(acked))
			}
		}
		return nil
	})
}

func isDiskFull(err error) bool {
	_, ok := errs.As[*errorpb.DiskFull](err)
	return ok
}

// TestStorageFailureStopsStoreNotProcess: with no ballast to release, the
// leader's WAL write fails with ENOSPC and pebble gives up on its commit
// pipeline. The store fails (its raft worker stops, it answers NotLeader,
// it reports disk_full) instead of panicking the process; the other
// replicas elect a leader and keep taking writes; after space is freed a
// restart brings the store back with every acknowledged write.
func TestStorageFailureStopsStoreNotProcess(t *testing.T) {
	fss := map[uint64]*fillableFS{}
	c := storetest.Start(t, 3, func(o *store.Options) {
		storetest.FastOptions(o)
		if fss[o.StoreID] == nil {
			fss[o.StoreID] = newFillableFS()
		}
		o.FS = fss[o.StoreID]
		o.MinFreeBytes = -1 // only ENOSPC
		o.BallastBytes = -1 // nothing to release
		o.DiskProbeInterval = time.Hour
	})
	c.PutSchema(storetest.TestTable)
	lo, hi := storetest.TableSpan()
	c.Bootstrap(1, lo, hi, 1, 2, 3)
	ctx := ctxT(t, 90*time.Second)
	leader := c.WaitLeader(1)
	acked := map[string]string{}
	for i := 0; i < 20; i++ {
		row, val := fmt.Sprintf("a%03d", i), fmt.Sprintf("v%d", i)
		if err := c.Put(ctx, 1, row, val); err != nil {
			t.Fatal(err)
		}
		acked[row] = val
	}
	f := fss[leader]
	f.enospc.Store(true)
	// This write may or may not apply (the leader may have sent it to its
	// followers before its own WAL failed): its outcome is not asserted.
	_ = putOn(ctx, c, leader, 1, "lost?", "v")
	testutils.SucceedsSoon(t, func() error {
		full, why := c.Nodes[leader].Store.DiskFull()
		if !full || !strings.Contains(why, "engine failed") {
			return fmt.Errorf("store %d not failed yet (%v %q)", leader, full, why)
		}
		return nil
	})
	// The failed store sends clients elsewhere, for reads and writes.
	if _, ok := errs.As[*errorpb.NotLeader](putOn(ctx, c, leader, 1, "x", "v")); !ok {
		t.Fatal("failed store did not answer a write with NotLeader")
	}
	// The others take over.
	for i := 0; i < 10; i++ {
		row, val := fmt.Sprintf("b%03d", i), fmt.Sprintf("v%d", i)
		testutils.SucceedsSoon(t, func() error {
			cur := c.WaitLeader(1)
			if cur == leader {
				return fmt.Errorf("failed store %d still counted as leader", leader)
			}
			return putOn(ctx, c, cur, 1, row, val)
		})
		acked[row] = val
	}
	// Space freed; a restart reopens the engine.
	f.enospc.Store(false)
	c.Stop(leader)
	c.Restart(leader)
	for row, val := range acked {
		if err := c.MustRead(ctx, 1, row, val); err != nil {
			t.Fatal(err)
		}
	}
	testutils.SucceedsSoon(t, func() error {
		rows, err := c.Nodes[leader].Store.LocalRowsForTest(1)
		if err != nil {
			return err
		}
		have := map[string]bool{}
		for _, r := range rows {
			have[strings.SplitN(r, " ", 2)[0]] = true
		}
		for row := range acked {
			if !have[row] {
				return fmt.Errorf("restarted store %d lacks %s", leader, row)
			}
		}
		return nil
	})
}
