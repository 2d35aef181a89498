package process

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/shaledb/shale/internal/keys"
	"github.com/shaledb/shale/internal/proctest"
	"github.com/shaledb/shale/internal/testutils"
	"github.com/shaledb/shale/kvclient"
	"github.com/shaledb/shale/placementdriver/pdclient"
	"github.com/shaledb/shale/proto/kvpb"
	"github.com/shaledb/shale/proto/pdpb"
)

// createBound is a generous bound on `shale table create` on a default
// cluster: the target is under 2 s (docs/performance.md); with heartbeat
// driven splits it took 28 s (no split rows) and 80 s (7 split rows).
const createBound = 15 * time.Second

// A cluster started with default flags (1 PD, 3 tablet servers, the
// default 10 s heartbeat interval) creates a table with 8 split rows
// quickly, and when the command returns all 9 tablets are routable: PD
// knows each with its exact bounds and a leader, and a write to each
// succeeds.
func TestTableCreateDefaultCluster(t *testing.T) {
	c := newCluster(t, 1)
	for name := range c.pdPeer {
		c.startPD(name)
	}
	for i := 0; i < 3; i++ {
		c.addDefaultStore()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	kv, err := kvclient.Open(ctx, kvclient.Options{PD: c.endpoints()})
	if err != nil {
		t.Fatal(err)
	}
	defer kv.Close()
	// The cluster is up once the built-in kv table takes writes.
	testutils.SucceedsSoon(t, func() error {
		wctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		return kv.RawPut(wctx, []byte("ready"), []byte("1"))
	})

	pdAddr := strings.Join(c.endpoints(), ",")
	create := func(name string, splits []string) time.Duration {
		t.Helper()
		args := []string{"table", "--pd", pdAddr, "--timeout", createBound.String(), "create", name, "cf"}
		for _, s := range splits {
			args = append(args, "--split", s)
		}
		start := time.Now()
		out, err := exec.Command(proctest.Binary(t), args...).CombinedOutput()
		took := time.Since(start)
		if err != nil {
			t.Fatalf("shale %s: %v after %v\n%s", strings.Join(args, " "), err, took, out)
		}
		return took
	}

	took0 := create("t0", nil)
	t.Logf("shale table create t0 cf (no split rows): %v", took0.Round(time.Millisecond))
	checkRoutable(ctx, t, kv, c, "t0", nil)

	splits := []string{"b", "d", "f", "h", "j", "l", "n", "p"}
	took8 := create("t8", splits)
	t.Logf("shale table create t8 cf with 8 split rows: %v", took8.Round(time.Millisecond))
	checkRoutable(ctx, t, kv, c, "t8", splits)
	if took8 > createBound {
		t.Fatalf("table create with 8 split rows took %v, want under %v", took8, createBound)
	}

	// An ordinary split (a PD operator, carried out on a heartbeat): PD
	// routes both halves from the left tablet's report, with no NotFound
	// in between.
	tbl, err := kv.Table(ctx, "t8")
	if err != nil {
		t.Fatal(err)
	}
	key := keys.RowKey(tbl.Info().ID, []byte("r"))
	pd := c.pdc()
	parent, err := pd.GetTablet(ctx, &pdpb.GetTabletRequest{Key: key})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if _, err := pd.AddOperator(ctx, &pdpb.AddOperatorRequest{TabletId: parent.Tablet.Tablet.TabletId, Op: &pdpb.AddOperatorRequest_SplitKey{SplitKey: key}}); err != nil {
		t.Fatal(err)
	}
	testutils.SucceedsSoon(t, func() error {
		for _, k := range [][]byte{parent.Tablet.Tablet.StartKey, key} {
			resp, err := pd.GetTablet(ctx, &pdpb.GetTabletRequest{Key: k})
			if err != nil {
				t.Fatalf("PD has no tablet for %x during a split: %v", k, err)
			}
			if bytes.Equal(k, key) && !bytes.Equal(resp.Tablet.Tablet.StartKey, key) {
				return fmt.Errorf("not split yet")
			}
		}
		return nil
	})
	t.Logf("operator split routed %v after it was asked for (dispatch waits for a 10 s heartbeat)", time.Since(start).Round(time.Millisecond))

	// A split done on the store directly: PD routes the new tablet from
	// the store's report, long before the next 10 s heartbeat.
	splitOnStore(ctx, t, pd, keys.RowKey(tbl.Info().ID, []byte("t")))
}

// trySplitOnStore asks the leader PD names for the tablet holding key to
// split it at key.
func trySplitOnStore(ctx context.Context, pd *pdclient.Client, key []byte) error {
	info, err := pd.GetTablet(ctx, &pdpb.GetTabletRequest{Key: key})
	if err != nil {
		return err
	}
	d := info.Tablet.Tablet
	if bytes.Equal(d.StartKey, key) {
		return nil // an earlier attempt applied after all
	}
	st, err := pd.GetStore(ctx, &pdpb.GetStoreRequest{StoreId: info.Tablet.LeaderStoreId})
	if err != nil {
		return err
	}
	ids, err := pd.AllocID(ctx, &pdpb.AllocIDRequest{Count: uint32(1 + len(d.Replicas))})
	if err != nil {
		return err
	}
	req := &kvpb.SplitTabletRequest{Header: &kvpb.RequestHeader{TabletId: d.TabletId, Epoch: d.Epoch}, SplitKey: key, NewTabletId: ids.First}
	for i := range d.Replicas {
		req.NewReplicaIds = append(req.NewReplicaIds, ids.First+1+uint64(i))
	}
	cc, err := grpc.NewClient(st.Store.Store.Address, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	defer cc.Close()
	_, err = kvpb.NewTabletClient(cc).SplitTablet(ctx, req)
	return err
}

// splitOnStore splits the tablet holding key at key through its leader's
// Tablet API (not through PD) and checks PD routes the new tablet within
// reportBound.
func splitOnStore(ctx context.Context, t *testing.T, pd *pdclient.Client, key []byte) {
	t.Helper()
	// Well under the heartbeat interval (10 s), so only the split report
	// can have told PD; generous for a loaded machine.
	const reportBound = 5 * time.Second
	// The tablet may have been made by the split just before and still
	// be electing its leader: retry until one takes the split.
	testutils.SucceedsSoon(t, func() error { return trySplitOnStore(ctx, pd, key) })
	applied := time.Now()
	testutils.SucceedsWithin(t, reportBound, func() error {
		resp, err := pd.GetTablet(ctx, &pdpb.GetTabletRequest{Key: key})
		if err == nil && bytes.Equal(resp.Tablet.Tablet.StartKey, key) && resp.Tablet.LeaderStoreId != 0 {
			return nil
		}
		return fmt.Errorf("PD does not route the new tablet after the split applied (last: %v, %v)", resp, err)
	})
	t.Logf("a split on the store was routed by PD %v after it applied", time.Since(applied).Round(time.Millisecond))
}

// checkRoutable checks, right after create returned, that PD routes every
// tablet of the table (one per split row, plus the first) with its exact
// bounds and a leader, and that a row written into each is read back.
func checkRoutable(ctx context.Context, t *testing.T, kv *kvclient.Client, c *cluster, name string, splits []string) {
	t.Helper()
	tbl, err := kv.Table(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	id := tbl.Info().ID
	bounds := [][]byte{keys.TablePrefix(id)}
	for _, s := range splits {
		bounds = append(bounds, keys.RowKey(id, []byte(s)))
	}
	bounds = append(bounds, keys.TablePrefix(id+1))
	pd := c.pdc()
	for i := 0; i+1 < len(bounds); i++ {
		resp, err := pd.GetTablet(ctx, &pdpb.GetTabletRequest{Key: bounds[i]})
		if err != nil {
			t.Fatalf("tablet %d of %s: %v", i, name, err)
		}
		d := resp.GetTablet().GetTablet()
		if !bytes.Equal(d.GetStartKey(), bounds[i]) || !bytes.Equal(d.GetEndKey(), bounds[i+1]) || resp.Tablet.LeaderStoreId == 0 {
			t.Fatalf("tablet %d of %s: PD routes [%x, %x) leader %d; want [%x, %x) with a leader",
				i, name, d.GetStartKey(), d.GetEndKey(), resp.Tablet.LeaderStoreId, bounds[i], bounds[i+1])
		}
	}
	rows := append([]string{"a"}, splits...)
	for _, r := range rows {
		wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		_, err := tbl.MutateRow(wctx, []byte(r), kvclient.SetCell("cf", []byte("q"), []byte(r)))
		cancel()
		if err != nil {
			t.Fatalf("write row %q of %s: %v", r, name, err)
		}
	}
	t.Logf("%s: %d tablets routable, a row written to each", name, len(bounds)-1)
}

// addDefaultStore starts a tablet server with default flags (no
// --heartbeat-interval).
func (c *cluster) addDefaultStore() *storeProc {
	i := len(c.stores)
	s := &storeProc{addr: proctest.FreeAddr(c.t), http: proctest.FreeAddr(c.t), dir: filepath.Join(c.dir, fmt.Sprintf("store%d", i))}
	c.stores = append(c.stores, s)
	s.p = proctest.Start(c.t, fmt.Sprintf("store%d", i), s.dir+".log", "tablet",
		"--data-dir", s.dir, "--addr", s.addr, "--http-addr", s.http,
		"--pd", strings.Join(c.endpoints(), ","), "--insecure")
	s.p.WaitHealthy(c.t, s.http)
	return s
}
