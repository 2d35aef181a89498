package kvclient_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shaledb/shale/internal/keys"
	"github.com/shaledb/shale/internal/testcluster"
	"github.com/shaledb/shale/internal/testutils"
	"github.com/shaledb/shale/kvclient"
	"github.com/shaledb/shale/proto/kvpb"
	"github.com/shaledb/shale/proto/pdpb"
)

func startCluster(t *testing.T, opts ...testcluster.Options) (*testcluster.Cluster, *kvclient.Client) {
	t.Helper()
	var o testcluster.Options
	if len(opts) > 0 {
		o = opts[0]
	}
	c := testcluster.Start(t, o)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cl, err := kvclient.Open(ctx, kvclient.Options{PD: c.PDEndpoints()})
	require.NoError(t, err)
	t.Cleanup(func() { cl.Close() })
	return c, cl
}

func row(i int) []byte { return []byte(fmt.Sprintf("row%05d", i)) }

func TestClientBasics(t *testing.T) {
	_, cl := startCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	info, err := cl.CreateTable(ctx, "users", []kvclient.Family{{Name: "f", MaxVersions: 3}, {Name: "g"}}, []byte("m"))
	require.NoError(t, err)
	_, err = cl.CreateTable(ctx, "users", []kvclient.Family{{Name: "f"}})
	require.ErrorIs(t, err, kvclient.ErrTableExists)
	_, err = cl.CreateTable(ctx, "bad name!", []kvclient.Family{{Name: "f"}})
	require.ErrorIs(t, err, kvclient.ErrInvalidArgument)
	tables, err := cl.ListTables(ctx)
	require.NoError(t, err)
	var names []string
	for _, ti := range tables {
		names = append(names, ti.Name)
	}
	require.Contains(t, names, "users")
	require.Contains(t, names, "kv")
	d, err := cl.DescribeTable(ctx, "users")
	require.NoError(t, err)
	require.Equal(t, info.ID, d.ID)
	require.Len(t, d.Families, 2)
	_, err = cl.Table(ctx, "nope")
	require.ErrorIs(t, err, kvclient.ErrTableNotFound)

	tbl, err := cl.Table(ctx, "users")
	require.NoError(t, err)

	// Get / MutateRow.
	r, err := tbl.Get(ctx, []byte("alice"))
	require.NoError(t, err)
	require.Nil(t, r)
	ts1, err := tbl.MutateRow(ctx, []byte("alice"), kvclient.SetCell("f", []byte("name"), []byte("Alice")), kvclient.SetCell("g", []byte("x"), []byte("1")))
	require.NoError(t, err)
	require.Greater(t, ts1, int64(0))
	ts2, err := tbl.MutateRow(ctx, []byte("alice"), kvclient.SetCell("f", []byte("name"), []byte("Alicia")))
	require.NoError(t, err)
	require.Greater(t, ts2, ts1)
	r, err = tbl.Get(ctx, []byte("alice"))
	require.NoError(t, err)
	v, ok := r.Value("f", []byte("name"))
	require.True(t, ok)
	require.Equal(t, "Alicia", string(v))
	r, err = tbl.Get(ctx, []byte("alice"), kvclient.Families("f"), kvclient.MaxVersions(2))
	require.NoError(t, err)
	require.Len(t, r.Cells, 2)
	require.Equal(t, "Alice", string(r.Cells[1].Value))
	r, err = tbl.Get(ctx, []byte("alice"), kvclient.Columns(kvclient.Column{Family: "g", Qualifier: []byte("x")}))
	require.NoError(t, err)
	require.Len(t, r.Cells, 1)
	r, err = tbl.Get(ctx, []byte("alice"), kvclient.Families("f"), kvclient.TimeRange(0, ts2))
	require.NoError(t, err)
	require.Equal(t, "Alice", string(r.Cells[0].Value))
	_, err = tbl.MutateRow(ctx, []byte("alice"), kvclient.SetCell("nofamily", nil, []byte("x")))
	require.ErrorIs(t, err, kvclient.ErrInvalidArgument)
	require.Contains(t, err.Error(), "nofamily")
	_, err = tbl.Get(ctx, nil)
	require.ErrorIs(t, err, kvclient.ErrInvalidArgument)
	_, err = tbl.MutateRow(ctx, []byte("alice"), kvclient.DeleteColumn("g", []byte("x")))
	require.NoError(t, err)
	r, err = tbl.Get(ctx, []byte("alice"), kvclient.Families("g"))
	require.NoError(t, err)
	require.Nil(t, r)

	// CheckAndMutateRow.
	matched, err := tbl.CheckAndMutateRow(ctx, []byte("zed"), kvclient.Condition{Family: "f", Qualifier: []byte("lock"), Op: kvclient.NotExists},
		[]kvclient.Mutation{kvclient.SetCell("f", []byte("lock"), []byte("owner1"))}, nil)
	require.NoError(t, err)
	require.True(t, matched)
	matched, err = tbl.CheckAndMutateRow(ctx, []byte("zed"), kvclient.Condition{Family: "f", Qualifier: []byte("lock"), Op: kvclient.NotExists},
		[]kvclient.Mutation{kvclient.SetCell("f", []byte("lock"), []byte("owner2"))}, []kvclient.Mutation{kvclient.SetCell("f", []byte("lost"), []byte("owner2"))})
	require.NoError(t, err)
	require.False(t, matched)
	r, err = tbl.Get(ctx, []byte("zed"))
	require.NoError(t, err)
	v, _ = r.Value("f", []byte("lock"))
	require.Equal(t, "owner1", string(v))
	v, _ = r.Value("f", []byte("lost"))
	require.Equal(t, "owner2", string(v))
	matched, err = tbl.CheckAndMutateRow(ctx, []byte("zed"), kvclient.Condition{Family: "f", Qualifier: []byte("lock"), Op: kvclient.Equal, Value: []byte("owner1")},
		[]kvclient.Mutation{kvclient.DeleteRow()}, nil)
	require.NoError(t, err)
	require.True(t, matched)
	r, err = tbl.Get(ctx, []byte("zed"))
	require.NoError(t, err)
	require.Nil(t, r)

	// Increment / Append / ReadModifyWriteRow.
	n, err := tbl.Increment(ctx, []byte("ctr"), "f", []byte("n"), 5)
	require.NoError(t, err)
	require.Equal(t, int64(5), n)
	n, err = tbl.Increment(ctx, []byte("ctr"), "f", []byte("n"), -2)
	require.NoError(t, err)
	require.Equal(t, int64(3), n)
	s, err := tbl.Append(ctx, []byte("log"), "f", []byte("l"), []byte("ab"))
	require.NoError(t, err)
	require.Equal(t, "ab", string(s))
	s, err = tbl.Append(ctx, []byte("log"), "f", []byte("l"), []byte("cd"))
	require.NoError(t, err)
	require.Equal(t, "abcd", string(s))
	r, err = tbl.ReadModifyWriteRow(ctx, []byte("ctr"), kvclient.IncrementRule("f", []byte("n"), 1), kvclient.AppendRule("g", []byte("s"), []byte("x")))
	require.NoError(t, err)
	require.Len(t, r.Cells, 2)

	// BatchMutate / BatchGet across both tablets of the table.
	var entries []kvclient.RowMutation
	for i := 0; i < 60; i++ {
		k := []byte(fmt.Sprintf("%c-batch-%02d", 'a'+i%26, i))
		entries = append(entries, kvclient.RowMutation{Row: k, Mutations: []kvclient.Mutation{kvclient.SetCell("f", []byte("v"), []byte(fmt.Sprint(i)))}})
	}
	entries = append(entries, kvclient.RowMutation{Row: []byte("bad"), Mutations: []kvclient.Mutation{kvclient.SetCell("nofamily", nil, nil)}})
	errsOut := tbl.BatchMutate(ctx, entries)
	require.Len(t, errsOut, 61)
	for i := 0; i < 60; i++ {
		require.NoError(t, errsOut[i], i)
	}
	require.ErrorIs(t, errsOut[60], kvclient.ErrInvalidArgument)
	var rows [][]byte
	for i := 59; i >= 0; i-- {
		rows = append(rows, entries[i].Row)
	}
	rows = append(rows, []byte("missing"))
	got, err := tbl.BatchGet(ctx, rows)
	require.NoError(t, err)
	require.Len(t, got, 61)
	for j := 0; j < 60; j++ {
		require.NotNil(t, got[j], j)
		require.Equal(t, rows[j], got[j].Key)
		v, _ := got[j].Value("f", []byte("v"))
		require.Equal(t, fmt.Sprint(59-j), string(v))
	}
	require.Nil(t, got[60])

	// A full scan sees every row once, in order, both ways.
	sc := tbl.Scan(ctx, kvclient.ScanOptions{PageRows: 7})
	var fwd [][]byte
	for sc.Next() {
		fwd = append(fwd, sc.Row().Key)
	}
	require.NoError(t, sc.Err())
	sc.Close()
	require.Len(t, fwd, 60+3) // + alice, ctr, log (zed was deleted)
	for i := 1; i < len(fwd); i++ {
		require.Negative(t, bytes.Compare(fwd[i-1], fwd[i]))
	}
	sc = tbl.Scan(ctx, kvclient.ScanOptions{Reverse: true, PageRows: 5, Limit: 10})
	var rev [][]byte
	for sc.Next() {
		rev = append(rev, sc.Row().Key)
	}
	require.NoError(t, sc.Err())
	require.Len(t, rev, 10)
	for i := range rev {
		require.Equal(t, fwd[len(fwd)-1-i], rev[i])
	}

	// Raw KV.
	require.NoError(t, cl.RawPut(ctx, []byte("k1"), []byte("v1")))
	require.NoError(t, cl.RawPut(ctx, []byte("k2"), []byte("v2")))
	require.NoError(t, cl.RawPut(ctx, []byte("k3"), []byte("v3")))
	val, ok, err := cl.RawGet(ctx, []byte("k2"))
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, "v2", string(val))
	require.NoError(t, cl.RawDelete(ctx, []byte("k2")))
	_, ok, err = cl.RawGet(ctx, []byte("k2"))
	require.NoError(t, err)
	require.False(t, ok)
	kvs, err := cl.RawScan(ctx, []byte("k"), []byte("l"), 0)
	require.NoError(t, err)
	require.Equal(t, []kvclient.KV{{Key: []byte("k1"), Value: []byte("v1")}, {Key: []byte("k3"), Value: []byte("v3")}}, kvs)
	kvs, err = cl.RawScan(ctx, nil, nil, 1)
	require.NoError(t, err)
	require.Len(t, kvs, 1)

	// Drop.
	require.NoError(t, cl.DropTable(ctx, "users"))
	_, err = cl.DescribeTable(ctx, "users")
	require.ErrorIs(t, err, kvclient.ErrTableNotFound)
	require.ErrorIs(t, cl.DropTable(ctx, "users"), kvclient.ErrTableNotFound)
}

// storeIDs maps testcluster store index → store ID.
func storeIDs(t *testing.T, c *testcluster.Cluster) map[int]uint64 {
	out := map[int]uint64{}
	testutils.SucceedsSoon(t, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		resp, err := c.PD().ListStores(ctx, &pdpb.ListStoresRequest{})
		if err != nil {
			return err
		}
		for _, s := range resp.Stores {
			for i, st := range c.Stores {
				if st.Addr == s.Store.Address {
					out[i] = s.Store.StoreId
				}
			}
		}
		if len(out) != len(c.Stores) {
			return fmt.Errorf("found %d of %d stores", len(out), len(c.Stores))
		}
		return nil
	})
	return out
}

// chaosSplits: the scan chaos splits tablets as well as moving leaders.
const chaosSplits = true

// chaos moves leaders of the table's tablets around and splits tablets
// until ctx ends; it returns how many transfers and splits succeeded.
func chaos(ctx context.Context, t *testing.T, c *testcluster.Cluster, tableID uint64, nrows int, stores map[int]uint64) (transfers, splits int) {
	rng := rand.New(rand.NewPCG(1, 2))
	for ctx.Err() == nil {
		k := rng.IntN(nrows)
		resp, err := c.PD().GetTablet(ctx, &pdpb.GetTabletRequest{Key: keys.RowKey(tableID, row(k))})
		if err != nil || resp.Tablet.LeaderStoreId == 0 {
			continue
		}
		desc := resp.Tablet.Tablet
		tc, done, err := c.TabletClient(ctx, resp.Tablet.LeaderStoreId)
		if err != nil {
			continue
		}
		h := &kvpb.RequestHeader{TabletId: desc.TabletId, Epoch: desc.Epoch}
		if chaosSplits && rng.IntN(3) == 0 {
			// Split at a row inside the tablet.
			key := keys.RowKey(tableID, []byte(fmt.Sprintf("row%05d-s", k)))
			ids, err := c.PD().AllocID(ctx, &pdpb.AllocIDRequest{Count: uint32(1 + len(desc.Replicas))})
			if err == nil && bytes.Compare(key, desc.StartKey) > 0 && (len(desc.EndKey) == 0 || bytes.Compare(key, desc.EndKey) < 0) {
				var rids []uint64
				for i := range desc.Replicas {
					rids = append(rids, ids.First+1+uint64(i))
				}
				if _, err := tc.SplitTablet(ctx, &kvpb.SplitTabletRequest{Header: h, SplitKey: key, NewTabletId: ids.First, NewReplicaIds: rids}); err == nil {
					splits++
				} else {
					t.Logf("split: %v", err)
				}
			}
		} else {
			to := stores[rng.IntN(len(stores))]
			if to != resp.Tablet.LeaderStoreId {
				if _, err := tc.TransferLeader(ctx, &kvpb.TransferLeaderRequest{Header: h, ToStoreId: to}); err == nil {
					transfers++
				}
			}
		}
		done()
		select {
		case <-ctx.Done():
		case <-time.After(30 * time.Millisecond):
		}
	}
	return transfers, splits
}

func TestScanAcrossTabletsWithChaos(t *testing.T) {
	c, cl := startCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	const nrows = 1200
	var split [][]byte
	for i := 100; i < nrows; i += 100 {
		split = append(split, row(i))
	}
	info, err := cl.CreateTable(ctx, "scan", []kvclient.Family{{Name: "f", MaxVersions: 1}}, split...)
	require.NoError(t, err)
	require.GreaterOrEqual(t, len(split)+1, 10)
	tbl, err := cl.Table(ctx, "scan")
	require.NoError(t, err)
	var entries []kvclient.RowMutation
	for i := 0; i < nrows; i++ {
		entries = append(entries, kvclient.RowMutation{Row: row(i), Mutations: []kvclient.Mutation{kvclient.SetCell("f", nil, []byte(fmt.Sprint(i)))}})
	}
	for i, err := range tbl.BatchMutate(ctx, entries) {
		require.NoError(t, err, "row %d", i)
	}
	stores := storeIDs(t, c)
	resp, err := c.PD().ScanTablets(ctx, &pdpb.ScanTabletsRequest{StartKey: keys.TablePrefix(info.ID), EndKey: keys.TablePrefix(info.ID + 1)})
	require.NoError(t, err)
	// CreateTable waited for all 12 pre-split tablets; the PD may already
	// have merged some of these small tablets back together (and keeps
	// doing so during the scans, which the scans must survive too).
	t.Logf("table has %d tablets before the scans", len(resp.Tablets))
	require.GreaterOrEqual(t, len(resp.Tablets), 6)

	cctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	var transfers, splits int
	wg.Add(1)
	go func() {
		defer wg.Done()
		transfers, splits = chaos(cctx, t, c, info.ID, nrows, stores)
	}()
	check := func(reverse bool, pageRows int, start, end int) {
		sc := tbl.Scan(ctx, kvclient.ScanOptions{Reverse: reverse, PageRows: pageRows, Start: row(start), End: row(end)})
		defer sc.Close()
		want := start
		if reverse {
			want = end - 1
		}
		n := 0
		for sc.Next() {
			require.Equal(t, string(row(want)), string(sc.Row().Key), "reverse=%v", reverse)
			v, _ := sc.Row().Value("f", nil)
			require.Equal(t, fmt.Sprint(want), string(v))
			if reverse {
				want--
			} else {
				want++
			}
			n++
			if n%50 == 0 {
				// Models time passing: the scan lasts long enough for
				// the chaos to overlap it.
				time.Sleep(10 * time.Millisecond)
			}
		}
		require.NoError(t, sc.Err())
		require.Equal(t, end-start, n, "reverse=%v", reverse)
	}
	deadline := time.Now().Add(8 * time.Second)
	scans := 0
	for time.Now().Before(deadline) || scans < 4 {
		check(scans%2 == 1, 13, 0, nrows)
		check(scans%2 == 0, 29, 37, 1111)
		scans += 2
	}
	stop()
	wg.Wait()
	t.Logf("%d scans with %d leader transfers and %d splits", scans, transfers, splits)
	require.Positive(t, transfers)
	resp, err = c.PD().ScanTablets(ctx, &pdpb.ScanTabletsRequest{StartKey: keys.TablePrefix(info.ID), EndKey: keys.TablePrefix(info.ID + 1)})
	require.NoError(t, err)
	t.Logf("table has %d tablets at the end", len(resp.Tablets))
}

func TestConcurrentIncrements(t *testing.T) {
	_, cl := startCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	_, err := cl.CreateTable(ctx, "ctr", []kvclient.Family{{Name: "c"}})
	require.NoError(t, err)
	tbl, err := cl.Table(ctx, "ctr")
	require.NoError(t, err)
	var wg sync.WaitGroup
	errc := make(chan error, 32)
	for g := 0; g < 32; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 100; i++ {
				if _, err := tbl.Increment(ctx, []byte("counter"), "c", []byte("n"), 1); err != nil {
					errc <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		require.NoError(t, err)
	}
	n, err := tbl.Increment(ctx, []byte("counter"), "c", []byte("n"), 0)
	require.NoError(t, err)
	require.Equal(t, int64(3200), n)
}

// Writes and reads go on while a store stops: after routing settles every
// operation succeeds, and every acknowledged write is in the table. Each
// worker writes only its own rows, one write at a time, so a row's final
// value must be its last acknowledged write or a later write whose outcome
// was unknown; a write refused with a verdict must never show up.
func TestStoreStopDuringTraffic(t *testing.T) {
	// PD merges no tablet younger than split-merge-interval (1h), so no
	// merge runs during the test.
	c, cl := startCluster(t, testcluster.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute) // a backstop: the waits below bound the steps
	defer cancel()
	_, err := cl.CreateTable(ctx, "traffic", []kvclient.Family{{Name: "f"}}, []byte("row00100"), []byte("row00200"))
	require.NoError(t, err)
	tbl, err := cl.Table(ctx, "traffic")
	require.NoError(t, err)

	const workers, rows = 8, 300
	// rowLog is one row's writes in order, from its one writer.
	type write struct {
		value   string
		outcome string // "ok", "unknown" or "failed"
	}
	var (
		phase      atomic.Int32 // 0 before the stop, 1 stopping, 2 after
		okBefore   atomic.Int64
		okAfter    atomic.Int64
		mu         sync.Mutex
		logs       = map[string][]write{}
		failsAfter []error
	)
	tctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 7))
			for i := 0; tctx.Err() == nil; i++ {
				k := row(w + workers*rng.IntN(rows/workers))
				val := fmt.Sprintf("w%d-%d", w, i)
				p := phase.Load()
				// Generous: an operation slowed by a loaded machine under
				// -race is not the failure this test looks for.
				opctx, cancel := context.WithTimeout(tctx, 15*time.Second)
				var err error
				if i%2 == 0 {
					_, err = tbl.MutateRow(opctx, k, kvclient.SetCell("f", nil, []byte(val)))
					outcome := "failed"
					switch {
					case err == nil:
						outcome = "ok"
					case errors.Is(err, kvclient.ErrAmbiguous):
						outcome = "unknown"
					}
					mu.Lock()
					logs[string(k)] = append(logs[string(k)], write{val, outcome})
					mu.Unlock()
				} else {
					_, err = tbl.Get(opctx, k)
				}
				cancel()
				switch {
				case err == nil:
					switch p {
					case 0:
						okBefore.Add(1)
					case 2:
						okAfter.Add(1)
					}
				case tctx.Err() != nil:
					// Cut off by the end of the test, not by the cluster.
				case p == 2:
					mu.Lock()
					failsAfter = append(failsAfter, err)
					mu.Unlock()
				}
			}
		}()
	}
	// Traffic runs for a while before the stop, and after it.
	atLeast := func(n *atomic.Int64, want int64, what string) func() error {
		return func() error {
			if got := n.Load(); got < want {
				return fmt.Errorf("%d operations succeeded %s, want %d", got, what, want)
			}
			return nil
		}
	}
	testutils.SucceedsSoon(t, atLeast(&okBefore, 100, "before the stop"))
	phase.Store(1)
	c.StopStore(0)
	// Routing settles: each of the three tablets answers a read through
	// the client (a leader with a lease on a survivor, and the client's
	// cache pointing at it). From then on every operation must succeed.
	testutils.SucceedsSoon(t, func() error {
		for _, i := range []int{0, 100, 200} {
			opctx, cancel := context.WithTimeout(ctx, 3*time.Second)
			_, err := tbl.Get(opctx, row(i))
			cancel()
			if err != nil {
				return fmt.Errorf("read of %s: %w", row(i), err)
			}
		}
		return nil
	})
	phase.Store(2)
	testutils.SucceedsSoon(t, atLeast(&okAfter, 200, "after routing settled"))
	stop()
	wg.Wait()
	t.Logf("ok after stop: %d", okAfter.Load())
	require.Empty(t, failsAfter, "operations failed after routing settled")
	require.Greater(t, okAfter.Load(), int64(5))

	// Every acknowledged write is there, on the surviving majority.
	for k, log := range logs {
		r, err := tbl.Get(ctx, []byte(k))
		require.NoError(t, err)
		got, _ := r.Value("f", nil)
		// The row starts empty; an unknown write may or may not have
		// applied, so until a write is acknowledged "" stays allowed.
		allowed := map[string]bool{"": true}
		for _, w := range log {
			switch w.outcome {
			case "ok":
				allowed = map[string]bool{w.value: true} // earlier writes are overwritten
			case "unknown":
				allowed[w.value] = true
			}
		}
		require.True(t, allowed[string(got)], "row %s holds %q; its last acknowledged write and the unknown ones after it: %v (writes: %v)", k, got, allowed, log)
	}
}

// Increments keep going while the counter tablet's leader store is killed;
// the client resends writes whose outcome is unknown with the same request
// ID, so every acknowledged increment is applied exactly once: the final
// value equals the number of acknowledged increments.
func TestIncrementExactlyOnceAcrossLeaderKill(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	cl, err := kvclient.Open(ctx, kvclient.Options{PD: c.PDEndpoints()})
	require.NoError(t, err)
	defer cl.Close()
	_, err = cl.CreateTable(ctx, "ctr", []kvclient.Family{{Name: "f"}})
	require.NoError(t, err)
	tbl, err := cl.Table(ctx, "ctr")
	require.NoError(t, err)

	var acked, ambiguous atomic.Int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < 200; i++ {
			opctx, cancel := context.WithTimeout(ctx, 20*time.Second)
			_, err := tbl.Increment(opctx, []byte("n"), "f", []byte("c"), 1)
			cancel()
			switch {
			case err == nil:
				acked.Add(1)
			case errors.Is(err, kvclient.ErrAmbiguous):
				ambiguous.Add(1)
			default:
				t.Errorf("increment %d: %v", i, err)
				return
			}
		}
	}()
	// Kill the store leading the counter's tablet mid-stream.
	testutils.SucceedsSoon(t, func() error {
		select {
		case <-done:
			t.Fatal("the incrementer stopped early")
		default:
		}
		if n := acked.Load(); n < 50 {
			return fmt.Errorf("%d increments acknowledged, want 50", n)
		}
		return nil
	})
	resp, err := c.PD().GetTablet(ctx, &pdpb.GetTabletRequest{Key: keys.RowKey(tbl.Info().ID, []byte("n"))})
	require.NoError(t, err)
	stopped := 0
	for i, s := range c.Stores {
		if storeIDOf(ctx, t, c, s.Addr) == resp.Tablet.LeaderStoreId {
			c.StopStore(i)
			stopped++
		}
	}
	require.Equal(t, 1, stopped, "the leader's store must be stopped")
	<-done
	row, err := tbl.Get(ctx, []byte("n"))
	require.NoError(t, err)
	got := int64(binary.BigEndian.Uint64(row.Cells[0].Value))
	t.Logf("%d acknowledged, %d ambiguous, counter %d", acked.Load(), ambiguous.Load(), got)
	require.Zero(t, ambiguous.Load(), "with a 20s deadline every increment should complete")
	require.Equal(t, acked.Load(), got)
}

// storeIDOf finds a store's ID by its address.
func storeIDOf(ctx context.Context, t *testing.T, c *testcluster.Cluster, addr string) uint64 {
	resp, err := c.PD().ListStores(ctx, &pdpb.ListStoresRequest{})
	require.NoError(t, err)
	for _, s := range resp.Stores {
		if s.Store.Address == addr {
			return s.Store.StoreId
		}
	}
	return 0
}

// A batch naming rows more than once, on both tablets of a table, applies
// every entry, each row's in input order (issue 15). Clients draw distinct
// random 128-bit IDs.
func TestBatchMutateSameRowTwiceAcrossTablets(t *testing.T) {
	c, cl := startCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	_, err := cl.CreateTable(ctx, "dups", []kvclient.Family{{Name: "f", MaxVersions: 5}}, []byte("m"))
	require.NoError(t, err)
	tbl, err := cl.Table(ctx, "dups")
	require.NoError(t, err)
	q := []byte("q")
	set := func(row, v string) kvclient.RowMutation {
		return kvclient.RowMutation{Row: []byte(row), Mutations: []kvclient.Mutation{kvclient.SetCell("f", q, []byte(v))}}
	}
	del := func(row string, m kvclient.Mutation) kvclient.RowMutation {
		return kvclient.RowMutation{Row: []byte(row), Mutations: []kvclient.Mutation{m}}
	}
	entries := []kvclient.RowMutation{
		set("a", "a1"), set("z", "z1"), set("a", "a2"), // the later set wins
		set("b", "b1"), del("b", kvclient.DeleteColumn("f", q)), // set then delete
		del("y", kvclient.DeleteRow()), set("y", "y1"), // delete then set
		set("x", "x1"), del("x", kvclient.DeleteRow()), set("x", "x2"), set("z", "z2"),
	}
	for i, err := range tbl.BatchMutate(ctx, entries) {
		require.NoError(t, err, "entry %d", i)
	}
	want := map[string]string{"a": "a2", "b": "", "x": "x2", "y": "y1", "z": "z2"}
	for row, w := range want {
		r, err := tbl.Get(ctx, []byte(row))
		require.NoError(t, err)
		v, _ := r.Value("f", q)
		require.Equal(t, w, string(v), "row %s", row)
	}

	cl2, err := kvclient.Open(ctx, kvclient.Options{PD: c.PDEndpoints()})
	require.NoError(t, err)
	defer cl2.Close()
	id1, id2 := cl.ClientID(), cl2.ClientID()
	require.NotEqual(t, id1, id2)
	require.NotEqual(t, [8]byte{}, [8]byte(id1[:8]), "the high half of a random client ID is zero")
}
