package store_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/shaledb/shale/internal/errs"
	"github.com/shaledb/shale/internal/testutils"
	"github.com/shaledb/shale/proto/errorpb"
	"github.com/shaledb/shale/proto/kvpb"
	"github.com/shaledb/shale/tabletserver/store"
	"github.com/shaledb/shale/tabletserver/storetest"
)

// startClosedTS starts three stores with one tablet of TestTable on all.
func startClosedTS(t *testing.T, target time.Duration) *storetest.Cluster {
	c := storetest.Start(t, 3, func(o *store.Options) {
		storetest.FastOptions(o)
		o.ClosedTimestampTarget = target
	})
	c.PutSchema(storetest.TestTable)
	start, end := storetest.TableSpan()
	c.Bootstrap(1, start, end, 1, 2, 3)
	return c
}

// put writes row's f:q through the leader and returns the commit timestamp.
func put(t *testing.T, ctx context.Context, c *storetest.Cluster, row, value string) int64 {
	t.Helper()
	var ts int64
	err := c.Call(ctx, 1, func(cl kvpb.TabletClient) error {
		resp, err := cl.MutateRow(ctx, &kvpb.MutateRowRequest{Header: &kvpb.RequestHeader{TabletId: 1}, TableId: storetest.TestTable.TableId,
			RowKey: []byte(row), Mutations: []*kvpb.Mutation{storetest.SetCell("f", "q", value)}})
		ts = resp.GetTimestamp()
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return ts
}

// getAt reads row's f:q at ts from one store (no retries, no routing).
func getAt(ctx context.Context, c *storetest.Cluster, store uint64, row string, ts int64) (string, error) {
	resp, err := c.Nodes[store].Client.Get(ctx, &kvpb.GetRequest{Header: &kvpb.RequestHeader{TabletId: 1}, TableId: storetest.TestTable.TableId,
		RowKey: []byte(row), Options: &kvpb.ReadOptions{ReadTimestamp: ts}})
	if err != nil {
		return "", err
	}
	for _, cell := range resp.GetRow().GetCells() {
		return string(cell.Value), nil
	}
	return "", nil
}

func otherThan(leader uint64) uint64 {
	if leader == 1 {
		return 2
	}
	return 1
}

// A read at a timestamp is served by a follower: above its closed
// timestamp after asking the leader to close it, at or below it at once —
// even cut off from the rest of the group.
func TestFollowerReadAtClosedTimestamp(t *testing.T) {
	c := startClosedTS(t, 10*time.Second) // writes alone close nothing recent
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	t1 := put(t, ctx, c, "a", "v1")
	t2 := put(t, ctx, c, "a", "v2")
	leader := c.WaitLeader(1)
	f := otherThan(leader)
	fs := c.Nodes[f].Store
	if got := fs.ClosedTimestamp(1); got >= t1 {
		t.Fatalf("closed timestamp %d already covers the write at %d; the test needs a target that closes nothing recent", got, t1)
	}
	for _, tc := range []struct {
		ts   int64
		want string
	}{{t1 - 1, ""}, {t1, "v1"}, {t2 - 1, "v1"}, {t2, "v2"}} {
		got, err := getAt(ctx, c, f, "a", tc.ts)
		if err != nil {
			t.Fatalf("follower read at %d: %v", tc.ts, err)
		}
		if got != tc.want {
			t.Fatalf("follower read at %d = %q, want %q", tc.ts, got, tc.want)
		}
	}
	if n := fs.FollowerReads(); n != 4 {
		t.Fatalf("store %d counted %v follower reads, want 4", f, n)
	}
	closed := fs.ClosedTimestamp(1)
	if closed < t2 {
		t.Fatalf("follower's closed timestamp %d is below the read at %d it served", closed, t2)
	}

	// Cut off, the follower still serves reads at its closed timestamp,
	// and a later write is invisible to them.
	put(t, ctx, c, "a", "v3")
	c.Net.Isolate(f)
	defer c.Net.Heal()
	got, err := getAt(ctx, c, f, "a", closed)
	if err != nil || got != "v2" {
		t.Fatalf("isolated follower read at its closed timestamp %d = %q, %v; want v2", closed, got, err)
	}
	// Above it, it cannot close without its leader: it gives up in time.
	short, cancelShort := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancelShort()
	fresh := time.Now().UnixMicro()
	if _, err := getAt(short, c, f, "a", fresh); err == nil {
		t.Fatalf("isolated follower served a read at %d above its closed timestamp %d", fresh, fs.ClosedTimestamp(1))
	}
	c.Net.Heal()
	testutils.SucceedsSoon(t, func() error {
		got, err := getAt(ctx, c, f, "a", fresh)
		if err != nil {
			return err
		}
		if got != "v3" {
			return fmt.Errorf("read at %d after heal = %q, want v3", fresh, got)
		}
		return nil
	})
}

// WaitReadableAt: on a follower of an idle tablet it gets the timestamp
// closed; a store without the replica and a timestamp below the history
// floor (raised by a time-range delete, not by a row delete) get typed
// errors.
func TestWaitReadableAt(t *testing.T) {
	c := startClosedTS(t, 10*time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	t1 := put(t, ctx, c, "a", "v1")
	f := otherThan(c.WaitLeader(1))
	fs := c.Nodes[f].Store
	now := time.Now().UnixMicro()
	if err := fs.WaitReadableAt(ctx, 1, now); err != nil {
		t.Fatal(err)
	}
	if got := fs.ClosedTimestamp(1); got < now {
		t.Fatalf("closed timestamp %d after WaitReadableAt(%d)", got, now)
	}
	if err := fs.WaitReadableAt(ctx, 99, now); err == nil {
		t.Fatal("WaitReadableAt of a tablet not on the store succeeded")
	} else if _, ok := errs.As[*errorpb.TabletNotFound](err); !ok {
		t.Fatalf("WaitReadableAt of a missing tablet: %v, want TabletNotFound", err)
	}
	// A whole-row delete writes tombstones: reads before it still see the
	// row, at it and after they do not.
	mutate := func(m *kvpb.Mutation) int64 {
		var ts int64
		err := c.Call(ctx, 1, func(cl kvpb.TabletClient) error {
			resp, err := cl.MutateRow(ctx, &kvpb.MutateRowRequest{Header: &kvpb.RequestHeader{TabletId: 1}, TableId: storetest.TestTable.TableId,
				RowKey: []byte("a"), Mutations: []*kvpb.Mutation{m}})
			ts = resp.GetTimestamp()
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return ts
	}
	delTS := mutate(&kvpb.Mutation{Mutation: &kvpb.Mutation_DeleteFromRow_{DeleteFromRow: &kvpb.Mutation_DeleteFromRow{}}})
	if err := fs.WaitReadableAt(ctx, 1, delTS); err != nil {
		t.Fatal(err)
	}
	if err := fs.WaitReadableAt(ctx, 1, t1); err != nil {
		t.Fatalf("WaitReadableAt(%d) after a row delete at %d: %v", t1, delTS, err)
	}
	if got, err := getAt(ctx, c, f, "a", t1); err != nil || got != "v1" {
		t.Fatalf("read at %d below the delete at %d = %q, %v; want v1", t1, delTS, got, err)
	}
	if got, err := getAt(ctx, c, f, "a", delTS); err != nil || got != "" {
		t.Fatalf("read at the delete's timestamp = %q, %v; want no row", got, err)
	}
	// A time-range delete is physical: reads before it are refused.
	t2 := put(t, ctx, c, "a", "v2")
	rangeTS := mutate(&kvpb.Mutation{Mutation: &kvpb.Mutation_DeleteFromColumn_{DeleteFromColumn: &kvpb.Mutation_DeleteFromColumn{
		Family: "f", Qualifier: []byte("q"), TimeRange: &kvpb.TimeRange{StartTs: t2, EndTs: t2 + 1}}}})
	testutils.SucceedsSoon(t, func() error {
		err := fs.WaitReadableAt(ctx, 1, t1)
		if rto, ok := errs.As[*errorpb.ReadTooOld](err); !ok || rto.Floor != rangeTS {
			return fmt.Errorf("WaitReadableAt(%d) after a time-range delete at %d: %v, want ReadTooOld with floor %d", t1, rangeTS, err, rangeTS)
		}
		return nil
	})
	if _, err := getAt(ctx, c, f, "a", t2); err == nil {
		t.Fatalf("read at %d below the time-range delete at %d succeeded", t2, rangeTS)
	}
	if got, err := getAt(ctx, c, f, "a", rangeTS); err != nil || got != "" {
		t.Fatalf("read at the time-range delete's timestamp = %q, %v; want no row", got, err)
	}
}

// Version GC raises the history floor to the timestamp from which the
// removed versions were no longer among a read's newest.
func TestReadAtTimestampAfterVersionGC(t *testing.T) {
	c := startClosedTS(t, time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var ts []int64
	for i := 0; i < 5; i++ {
		ts = append(ts, put(t, ctx, c, "a", fmt.Sprint("v", i)))
	}
	leader := c.WaitLeader(1)
	// Before GC, a read at ts[1] sees v1 (TestTable keeps 3 versions: at
	// ts[1] only v0 and v1 exist).
	if got, err := getAt(ctx, c, leader, "a", ts[1]); err != nil || got != "v1" {
		t.Fatalf("read at %d = %q, %v; want v1", ts[1], got, err)
	}
	n, err := c.Nodes[leader].Store.GCTablet(ctx, 1)
	if err != nil || n != 2 {
		t.Fatalf("GC deleted %d versions (%v), want 2", n, err)
	}
	// v1 was among the 3 newest up to ts[4].
	if _, err := getAt(ctx, c, leader, "a", ts[3]); err == nil {
		t.Fatalf("read at %d after GC removed a version it needs succeeded", ts[3])
	} else if rto, ok := errs.As[*errorpb.ReadTooOld](err); !ok || rto.Floor != ts[4] {
		t.Fatalf("read at %d after GC: %v, want ReadTooOld with floor %d", ts[3], err, ts[4])
	}
	if got, err := getAt(ctx, c, leader, "a", ts[4]); err != nil || got != "v4" {
		t.Fatalf("read at %d = %q, %v; want v4", ts[4], got, err)
	}
}
