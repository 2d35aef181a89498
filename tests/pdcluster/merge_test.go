package pdcluster

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shaledb/shale/internal/keys"
	"github.com/shaledb/shale/internal/testcluster"
	"github.com/shaledb/shale/internal/testutils"
	"github.com/shaledb/shale/placementdriver"
	"github.com/shaledb/shale/proto/kvpb"
	"github.com/shaledb/shale/proto/metapb"
	"github.com/shaledb/shale/proto/pdpb"
	"github.com/shaledb/shale/tabletserver/store"
)

// A merge abandoned after PrepareMerge while one participant store is down
// for good (its right replica never got the freeze entry, so the merge can
// never finish) resolves itself: PD replaces the dead store's replica of
// the left tablet once the store is down for MaxStoreDownTime, which moves
// the left's epoch, so merge recovery rolls the right tablet back; PD then
// replaces the right's dead replica too. Both ranges serve reads and
// writes again and no acknowledged write is lost (the kvnemesis soak of
// session 7, docs/reliability.md). The balancers are paused so that only
// the repair of the dead store's replicas can move the left's epoch.
func TestAbandonedMergeWithDeadStoreResolves(t *testing.T) {
	var cfg placementdriver.Config
	fastSchedule(&cfg)
	c := testcluster.Start(t, testcluster.Options{Stores: 4, Schedule: cfg, StoreOptions: func(_ int, o *store.Options) {
		o.MergeRecoveryAfter = 2 * time.Second
		o.Knobs = &store.TestingKnobs{AbandonMergeAfterPrepare: true}
	}})
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	for _, name := range []string{"balance-tablet", "balance-leader", "hot"} {
		if _, err := c.PD().PauseScheduler(ctx, &pdpb.PauseSchedulerRequest{Name: name, PauseMs: time.Hour.Milliseconds()}); err != nil {
			t.Fatal(err)
		}
	}
	tbl, err := c.PD().CreateTable(ctx, &pdpb.CreateTableRequest{Name: "t", Families: []*metapb.FamilySchema{{Name: "f", MaxVersions: 1}}, SplitRows: [][]byte{[]byte("m")}})
	if err != nil {
		t.Fatal(err)
	}
	id := tbl.Table.TableId
	leftKey, rightKey := keys.RowKey(id, []byte("a")), keys.RowKey(id, []byte("n"))
	tc := newTabletConns(t, c)
	acked := &ackedRows{m: map[string][]byte{}}
	for _, row := range []string{"a1", "b2", "c3", "n1", "p2", "z3"} {
		if err := acked.put(ctx, tc, id, row, "before"); err != nil {
			t.Fatal(err)
		}
	}
	left, right := colocateLeaders(ctx, t, c, leftKey, rightKey)
	leader := left.LeaderStoreId
	var dead uint64
	holds := map[uint64]bool{}
	for _, r := range left.Tablet.Replicas {
		holds[r.StoreId] = true
		if r.StoreId != leader {
			dead = r.StoreId
		}
	}
	var spare uint64
	for _, s := range storeIDs(ctx, t, c) {
		if !holds[s] {
			spare = s
		}
	}
	c.StopStore(storeIndex(ctx, t, c, dead))
	t.Logf("tablets %d and %d led by store %d; store %d stopped for good; store %d spare", left.Tablet.TabletId, right.Tablet.TabletId, leader, dead, spare)

	// Freeze the right tablet without the dead store's replica.
	abandonMerge(ctx, t, c, leftKey, rightKey)
	t.Log("right tablet frozen")

	// Both ranges take writes again, and every replica lives on a live
	// store, the spare among them.
	testutils.SucceedsWithin(t, 4*time.Minute, func() error {
		for _, row := range []string{"a9", "n9"} {
			wctx, wcancel := context.WithTimeout(ctx, 5*time.Second)
			err := acked.put(wctx, tc, id, row, "after")
			wcancel()
			if err != nil {
				return fmt.Errorf("write %s: %w", row, err)
			}
		}
		return replicasOffStore(ctx, c, id, dead, spare)
	})
	acked.check(ctx, t, tc, id)
}

// abandonMerge merges the tablets at leftKey and rightKey on a store whose
// AbandonMergeAfterPrepare knob is set: the right tablet is left frozen.
// Leadership may move between tries (elections after a store stops).
func abandonMerge(ctx context.Context, t *testing.T, c *testcluster.Cluster, leftKey, rightKey []byte) {
	t.Helper()
	testutils.SucceedsSoon(t, func() error {
		l, r := colocateLeaders(ctx, t, c, leftKey, rightKey)
		cl, done, err := c.TabletClient(ctx, l.LeaderStoreId)
		if err != nil {
			return err
		}
		defer done()
		_, err = cl.MergeTablets(ctx, &kvpb.MergeTabletsRequest{Header: &kvpb.RequestHeader{TabletId: l.Tablet.TabletId, Epoch: l.Tablet.Epoch}, RightTabletId: r.Tablet.TabletId})
		if err == nil || !strings.Contains(err.Error(), "testing knob") {
			return fmt.Errorf("merge: %v, want it abandoned after PrepareMerge", err)
		}
		return nil
	})
}

// ackedRows remembers every acknowledged write.
type ackedRows struct {
	mu sync.Mutex
	m  map[string][]byte
}

func (a *ackedRows) put(ctx context.Context, tc *tabletConns, table uint64, row, value string) error {
	if err := put(ctx, tc, table, []byte(row), []byte(value)); err != nil {
		return err
	}
	a.mu.Lock()
	a.m[row] = []byte(value)
	a.mu.Unlock()
	return nil
}

// check reads every acknowledged row back.
func (a *ackedRows) check(ctx context.Context, t *testing.T, tc *tabletConns, table uint64) {
	t.Helper()
	a.mu.Lock()
	defer a.mu.Unlock()
	for row, want := range a.m {
		got, err := get(ctx, tc, table, []byte(row))
		if err != nil {
			t.Fatalf("read %s: %v", row, err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("row %s = %q, want %q", row, got, want)
		}
	}
}

// colocateLeaders moves the leadership of the tablet at rightKey to the
// leader store of the tablet at leftKey and returns both, as a merge needs.
func colocateLeaders(ctx context.Context, t *testing.T, c *testcluster.Cluster, leftKey, rightKey []byte) (l, r *pdpb.TabletInfo) {
	t.Helper()
	testutils.SucceedsSoon(t, func() error {
		lr, err := c.PD().GetTablet(ctx, &pdpb.GetTabletRequest{Key: leftKey})
		if err != nil {
			return err
		}
		rr, err := c.PD().GetTablet(ctx, &pdpb.GetTabletRequest{Key: rightKey})
		if err != nil {
			return err
		}
		l, r = lr.Tablet, rr.Tablet
		if l.LeaderStoreId == 0 || l.LeaderStoreId != r.LeaderStoreId {
			if l.LeaderStoreId != 0 {
				_, _ = c.PD().AddOperator(ctx, &pdpb.AddOperatorRequest{TabletId: r.Tablet.TabletId, Op: &pdpb.AddOperatorRequest_TransferLeaderTo{TransferLeaderTo: l.LeaderStoreId}})
			}
			return fmt.Errorf("tablets %d and %d led by stores %d and %d", l.Tablet.TabletId, r.Tablet.TabletId, l.LeaderStoreId, r.LeaderStoreId)
		}
		return nil
	})
	return l, r
}

// storeIndex maps a store ID to the cluster's index of that store.
func storeIndex(ctx context.Context, t *testing.T, c *testcluster.Cluster, id uint64) int {
	t.Helper()
	st, err := c.PD().GetStore(ctx, &pdpb.GetStoreRequest{StoreId: id})
	if err != nil {
		t.Fatal(err)
	}
	for i, s := range c.Stores {
		if s.Addr == st.Store.Store.Address {
			return i
		}
	}
	t.Fatalf("store %d at %s is not in the cluster", id, st.Store.Store.Address)
	return -1
}

// replicasOffStore checks that every tablet of the table has three voters,
// none on store dead, and that store spare holds one of them.
func replicasOffStore(ctx context.Context, c *testcluster.Cluster, table, dead, spare uint64) error {
	resp, err := c.PD().ScanTablets(ctx, &pdpb.ScanTabletsRequest{StartKey: keys.TablePrefix(table), EndKey: keys.TablePrefix(table + 1)})
	if err != nil {
		return err
	}
	for _, ti := range resp.Tablets {
		d := ti.Tablet
		onSpare := false
		for _, r := range d.Replicas {
			if r.StoreId == dead || r.Role != metapb.ReplicaRole_VOTER {
				return fmt.Errorf("tablet %d still has %v", d.TabletId, d.Replicas)
			}
			onSpare = onSpare || (spare != 0 && r.StoreId == spare)
		}
		if len(d.Replicas) != 3 || !onSpare {
			return fmt.Errorf("tablet %d has %v, want 3 voters including store %d", d.TabletId, d.Replicas, spare)
		}
	}
	return nil
}
