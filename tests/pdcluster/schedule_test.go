package pdcluster

import (
	"bytes"
	"context"
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/shaledb/shale/internal/testcluster"
	"github.com/shaledb/shale/internal/testutils"
	"github.com/shaledb/shale/placementdriver"
	"github.com/shaledb/shale/proto/metapb"
	"github.com/shaledb/shale/proto/pdpb"
)

func fastSchedule(c *placementdriver.Config) {
	c.ScheduleInterval = 200 * time.Millisecond
	c.MaxStoreDownTime = 6 * time.Second
	c.SplitQPSWindow = time.Second
}

func storeIDs(ctx context.Context, t *testing.T, c *testcluster.Cluster) []uint64 {
	resp, err := c.PD().ListStores(ctx, &pdpb.ListStoresRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var ids []uint64
	for _, s := range resp.Stores {
		if s.State == pdpb.StoreState_UP {
			ids = append(ids, s.Store.StoreId)
		}
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	return ids
}

// With a small split-size, writes split tablets; a fourth store gets its
// share of replicas and leaders; a store down past max-store-down-time has
// its replicas rebuilt on the others; no row is lost.
func TestSplitBalanceAndRepair(t *testing.T) {
	// Splitting, balancing and repairing run an operator at a time, paced
	// by PD; each step may take minutes on a loaded machine under -race.
	const scheduleWait = 4 * time.Minute
	var sched placementdriver.Config
	fastSchedule(&sched)
	c := testcluster.Start(t, testcluster.Options{Schedule: sched})
	ctx, cancel := context.WithTimeout(context.Background(), 400*time.Second)
	defer cancel()
	if _, err := c.PD().SetConfig(ctx, &pdpb.SetConfigRequest{Key: "split-size", Value: "64KiB"}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.PD().SetConfig(ctx, &pdpb.SetConfigRequest{Key: "merge-size", Value: "1KiB"}); err != nil {
		t.Fatal(err)
	}
	tbl, err := c.PD().CreateTable(ctx, &pdpb.CreateTableRequest{Name: "t", Families: []*metapb.FamilySchema{{Name: "f", MaxVersions: 1}}})
	if err != nil {
		t.Fatal(err)
	}
	id := tbl.Table.TableId
	tc := newTabletConns(t, c)
	value := bytes.Repeat([]byte("v"), 1024)
	const rows = 1500
	if err := eachRow(rows, func(i int) error { return put(ctx, tc, id, []byte(fmt.Sprintf("row%05d", i)), value) }); err != nil {
		t.Fatal(err)
	}
	// Size-based splits.
	testutils.SucceedsWithin(t, scheduleWait, func() error {
		ts, err := tablets(ctx, c)
		if err != nil {
			return err
		}
		if len(ts) < 8 {
			return fmt.Errorf("%d tablets so far", len(ts))
		}
		return nil
	})
	ts, _ := tablets(ctx, c)
	t.Logf("after writing %d KiB: %d tablets", rows, len(ts))

	// A fourth store gets its share.
	c.AddStore()
	testutils.SucceedsWithin(t, scheduleWait, func() error {
		ids := storeIDs(ctx, t, c)
		if len(ids) != 4 {
			return fmt.Errorf("%d stores up", len(ids))
		}
		ts, err := tablets(ctx, c)
		if err != nil {
			return err
		}
		replicas, leaders := perStore(ts)
		if err := within(replicas, ids, 0.2); err != nil {
			return fmt.Errorf("replicas: %w", err)
		}
		if err := within(leaders, ids, 0.2); err != nil {
			return fmt.Errorf("leaders: %w", err)
		}
		return nil
	})
	t.Log("balanced across 4 stores")

	// A store down past max-store-down-time is replaced.
	c.StopStore(1)
	testutils.SucceedsWithin(t, scheduleWait, func() error {
		ids := storeIDs(ctx, t, c)
		if len(ids) != 3 {
			return fmt.Errorf("%d stores up", len(ids))
		}
		up := map[uint64]bool{}
		for _, s := range ids {
			up[s] = true
		}
		ts, err := tablets(ctx, c)
		if err != nil {
			return err
		}
		for _, tab := range ts {
			voters := 0
			for _, r := range tab.Tablet.Replicas {
				if up[r.StoreId] && r.Role == metapb.ReplicaRole_VOTER {
					voters++
				}
			}
			if voters != 3 || len(tab.Tablet.Replicas) != 3 {
				ops, _ := c.PD().ListOperators(ctx, &pdpb.ListOperatorsRequest{})
				var mine []string
				for _, op := range ops.GetOperators() {
					if op.TabletId == tab.Tablet.TabletId {
						mine = append(mine, op.Kind+": "+op.Description+" @ "+op.Step)
					}
				}
				return fmt.Errorf("tablet %d (leader %d, %v) has %d live voters of %d replicas; operators %v",
					tab.Tablet.TabletId, tab.LeaderStoreId, tab.Tablet.Replicas, voters, len(tab.Tablet.Replicas), mine)
			}
		}
		return nil
	})
	t.Log("every tablet has 3 voters on live stores")
	if err := eachRow(rows, func(i int) error {
		v, err := get(ctx, tc, id, []byte(fmt.Sprintf("row%05d", i)))
		if err != nil {
			return err
		}
		if !bytes.Equal(v, value) {
			return fmt.Errorf("row %d lost", i)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

// With six stores in three zones, no tablet keeps two replicas in a zone.
func TestZonePlacement(t *testing.T) {
	var sched placementdriver.Config
	fastSchedule(&sched)
	sched.LocationLabels = []string{"zone", "host"}
	c := testcluster.Start(t, testcluster.Options{Stores: 6, Schedule: sched, Labels: func(i int) map[string]string {
		return map[string]string{"zone": fmt.Sprintf("z%d", i%3), "host": fmt.Sprintf("h%d", i)}
	}})
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	var names []string
	for i := 0; i < 6; i++ {
		name := fmt.Sprintf("t%d", i)
		names = append(names, name)
		if _, err := c.PD().CreateTable(ctx, &pdpb.CreateTableRequest{Name: name, Families: []*metapb.FamilySchema{{Name: "f"}}, SplitRows: [][]byte{[]byte("m")}}); err != nil {
			t.Fatal(err)
		}
	}
	zoneOf := map[uint64]string{}
	testutils.SucceedsSoon(t, func() error {
		resp, err := c.PD().ListStores(ctx, &pdpb.ListStoresRequest{})
		if err != nil {
			return err
		}
		for _, s := range resp.Stores {
			zoneOf[s.Store.StoreId] = s.Store.Labels["zone"]
		}
		ts, err := tablets(ctx, c)
		if err != nil {
			return err
		}
		if len(ts) < 1+2*len(names) {
			return fmt.Errorf("%d tablets", len(ts))
		}
		for _, tab := range ts {
			seen := map[string]bool{}
			for _, r := range tab.Tablet.Replicas {
				z := zoneOf[r.StoreId]
				if seen[z] {
					return fmt.Errorf("tablet %d has two replicas in zone %s", tab.Tablet.TabletId, z)
				}
				seen[z] = true
			}
			if len(tab.Tablet.Replicas) != 3 {
				return fmt.Errorf("tablet %d has %d replicas", tab.Tablet.TabletId, len(tab.Tablet.Replicas))
			}
		}
		return nil
	})
}

// Hot keys concentrated in one tablet cause a load-based split.
func TestLoadSplit(t *testing.T) {
	var sched placementdriver.Config
	fastSchedule(&sched)
	c := testcluster.Start(t, testcluster.Options{Schedule: sched})
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	if _, err := c.PD().SetConfig(ctx, &pdpb.SetConfigRequest{Key: "split-qps", Value: "50"}); err != nil {
		t.Fatal(err)
	}
	tbl, err := c.PD().CreateTable(ctx, &pdpb.CreateTableRequest{Name: "hot", Families: []*metapb.FamilySchema{{Name: "f"}}})
	if err != nil {
		t.Fatal(err)
	}
	id := tbl.Table.TableId
	tc := newTabletConns(t, c)
	before, _ := tablets(ctx, c)
	deadline := time.Now().Add(60 * time.Second)
	for i := 0; time.Now().Before(deadline); i++ {
		if err := put(ctx, tc, id, []byte(fmt.Sprintf("k%03d", i%200)), []byte("x")); err != nil {
			t.Fatal(err)
		}
		if i%100 == 0 {
			ts, _ := tablets(ctx, c)
			if len(ts) > len(before) {
				t.Logf("load split after %d writes: %d → %d tablets", i, len(before), len(ts))
				return
			}
		}
	}
	t.Fatal("no load-based split within 60s")
}
