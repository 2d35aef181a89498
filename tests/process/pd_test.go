package process

import (
	"bytes"
	"context"
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/shaledb/shale/internal/testutils"
	"github.com/shaledb/shale/kvclient"
	"github.com/shaledb/shale/proto/metapb"
	"github.com/shaledb/shale/proto/pdpb"
)

// Real processes: 3 PD members and 3 tablet servers. With a small
// split-size, writes split tablets automatically; a fourth store gets its
// share of replicas and leaders; the PD leader is killed and another takes
// over; a tablet server killed for longer than max-store-down-time has its
// replicas rebuilt until every tablet again has 3 voters on live stores.
// No acknowledged row is lost.
func TestPlacementDriverProcesses(t *testing.T) {
	t.Parallel()
	// stepWait bounds each step: splitting, rebalancing and re-replicating
	// tablets proceed an operator at a time, paced by PD and the stores'
	// heartbeats, so a step may take minutes on a loaded machine.
	const stepWait = 4 * time.Minute
	c := newCluster(t, 3, "--split-size", "64KiB", "--max-store-down-time", "5s")
	for name := range c.pdPeer {
		c.startPD(name)
	}
	for i := 0; i < 3; i++ {
		c.addStore()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 12*time.Minute) // a backstop; stepWait bounds the steps
	defer cancel()
	pd := c.pdc()
	kv, err := kvclient.Open(ctx, kvclient.Options{PD: c.endpoints()})
	if err != nil {
		t.Fatal(err)
	}
	defer kv.Close()
	if _, err := pd.SetConfig(ctx, &pdpb.SetConfigRequest{Key: "merge-size", Value: "1KiB"}); err != nil {
		t.Fatal(err)
	}
	if _, err := kv.CreateTable(ctx, "t", []kvclient.Family{{Name: "f", MaxVersions: 1}}); err != nil {
		t.Fatal(err)
	}
	tbl, err := kv.Table(ctx, "t")
	if err != nil {
		t.Fatal(err)
	}
	value := bytes.Repeat([]byte("x"), 1024)
	written := 0
	write := func(n int) {
		t.Helper()
		for i := 0; i < n; i++ {
			row := []byte(fmt.Sprintf("row%06d", written))
			if _, err := tbl.MutateRow(ctx, row, kvclient.SetCell("f", []byte("q"), value)); err != nil {
				t.Fatalf("write %s: %v", row, err)
			}
			written++
		}
	}
	write(1200)
	// Size-based splits.
	testutils.SucceedsWithin(t, stepWait, func() error {
		ts, err := allTablets(ctx, pd)
		if err != nil {
			return err
		}
		if len(ts) < 8 {
			return fmt.Errorf("%d tablets", len(ts))
		}
		return nil
	})

	c.addStore()
	// Balanced over 4 stores.
	testutils.SucceedsWithin(t, stepWait, func() error {
		up, err := upStores(ctx, pd)
		if err != nil {
			return err
		}
		if len(up) != 4 {
			return fmt.Errorf("%d stores up", len(up))
		}
		ts, err := allTablets(ctx, pd)
		if err != nil {
			return err
		}
		return balanced(ts, up)
	})

	members, err := pd.GetMembers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	old := members.Leader.Name
	c.pd[old].Kill()
	// A new PD leader.
	testutils.SucceedsWithin(t, stepWait, func() error {
		m, err := pd.GetMembers(ctx)
		if err != nil {
			return err
		}
		if m.Leader == nil || m.Leader.Name == old {
			return fmt.Errorf("leader still %v", m.Leader)
		}
		return nil
	})
	write(100) // the cluster carries on

	victim := c.stores[1]
	victim.p.Signal(syscall.SIGKILL, 10*time.Second)
	// Every tablet has 3 voters on live stores.
	testutils.SucceedsWithin(t, stepWait, func() error {
		up, err := upStores(ctx, pd)
		if err != nil {
			return err
		}
		if len(up) != 3 {
			return fmt.Errorf("%d stores up", len(up))
		}
		ts, err := allTablets(ctx, pd)
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
				var ops []string
				if resp, err := pd.ListOperators(ctx, &pdpb.ListOperatorsRequest{}); err == nil {
					for _, op := range resp.Operators {
						if op.TabletId == tab.Tablet.TabletId {
							ops = append(ops, op.Kind+": "+op.Description+" @ "+op.Step)
						}
					}
				}
				return fmt.Errorf("tablet %d (leader %d, %v) has %d live voters of %d replicas; operators %v",
					tab.Tablet.TabletId, tab.LeaderStoreId, tab.Tablet.Replicas, voters, len(tab.Tablet.Replicas), ops)
			}
		}
		return nil
	})

	verifyRows(ctx, t, tbl, written)
}

// verifyRows checks that the table holds rows row000000.. in order,
// exactly once each, and nothing else.
func verifyRows(ctx context.Context, t *testing.T, tbl *kvclient.Table, written int) {
	t.Helper()
	sc := tbl.Scan(ctx, kvclient.ScanOptions{})
	defer sc.Close()
	n := 0
	for sc.Next() {
		want := fmt.Sprintf("row%06d", n)
		if string(sc.Row().Key) != want {
			t.Fatalf("row %d is %q, want %q", n, sc.Row().Key, want)
		}
		n++
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if n != written {
		t.Fatalf("scan returned %d rows, wrote %d", n, written)
	}
	t.Logf("%d rows verified", n)
}
