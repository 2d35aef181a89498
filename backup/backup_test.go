package backup_test

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shaledb/shale/backup"
	"github.com/shaledb/shale/internal/keys"
	"github.com/shaledb/shale/internal/testcluster"
	"github.com/shaledb/shale/internal/testutils"
	"github.com/shaledb/shale/kvclient"
	"github.com/shaledb/shale/proto/pdpb"
)

type env struct {
	t   *testing.T
	c   *testcluster.Cluster
	cl  *kvclient.Client
	ctx context.Context
}

// startEnv gives the test the package's cluster (sharedCluster).
func startEnv(t *testing.T, ctx context.Context) *env {
	t.Helper()
	c, cl := sharedCluster()
	return &env{t: t, c: c, cl: cl, ctx: ctx}
}

// startOwnEnv starts a cluster for this test alone: for a test whose
// splits would leave the package's cluster with many tablets, which slows
// every later test.
func startOwnEnv(t *testing.T, ctx context.Context) *env {
	t.Helper()
	c := testcluster.Start(t, testcluster.Options{})
	cl, err := kvclient.Open(ctx, kvclient.Options{PD: c.PDEndpoints()})
	require.NoError(t, err)
	t.Cleanup(func() { cl.Close() })
	return &env{t: t, c: c, cl: cl, ctx: ctx}
}

func (e *env) table(name string) *kvclient.Table {
	e.t.Helper()
	tbl, err := e.cl.Table(e.ctx, name)
	require.NoError(e.t, err)
	return tbl
}

// cell is one version as a test sees it.
type cell struct {
	row, qual string
	ts        int64
	value     string
}

func (c cell) String() string { return fmt.Sprintf("%s/%s@%d=%s", c.row, c.qual, c.ts, c.value) }

// dump reads every version of every cell of a table.
func (e *env) dump(name string) []cell {
	e.t.Helper()
	tbl := e.table(name)
	sc := tbl.Scan(e.ctx, kvclient.ScanOptions{Read: []kvclient.ReadOption{kvclient.MaxVersions(math.MaxUint32)}})
	defer sc.Close()
	var out []cell
	for sc.Next() {
		r := sc.Row()
		for _, c := range r.Cells {
			out = append(out, cell{string(r.Key), c.Family + ":" + string(c.Qualifier), c.Timestamp, string(c.Value)})
		}
	}
	require.NoError(e.t, sc.Err())
	sortCells(out)
	return out
}

func sortCells(cs []cell) {
	sort.Slice(cs, func(a, b int) bool {
		x, y := cs[a], cs[b]
		if x.row != y.row {
			return x.row < y.row
		}
		if x.qual != y.qual {
			return x.qual < y.qual
		}
		return x.ts > y.ts
	})
}

func fileURL(t *testing.T, name string) string {
	return "file://" + filepath.Join(t.TempDir(), name)
}

func backupOpts(e *env, to string) backup.Options {
	return backup.Options{PD: e.c.PDEndpoints(), To: to, FileBytes: 16 << 10, Parallel: 3}
}

// restoreOpts restores table of the backup at from into e's cluster as a
// new table named as.
func restoreOpts(t *testing.T, e *env, from, table, as string) backup.RestoreOptions {
	return backup.RestoreOptions{PD: e.c.PDEndpoints(), From: from, Tables: []string{table}, As: as,
		WorkDir: filepath.Join(t.TempDir(), "restore"), SSTBytes: 32 << 10}
}

// chaos splits the table at random rows and moves leaders until stop.
func (e *env) chaos(ctx context.Context, rng *rand.Rand, tableID uint64, rows int) {
	pd := e.c.PD()
	for ctx.Err() == nil {
		switch rng.IntN(2) {
		case 0:
			row := fmt.Sprintf("row%04d", rng.IntN(rows))
			_, _ = pd.SplitTablets(ctx, &pdpb.SplitTabletsRequest{SplitKeys: [][]byte{keys.RowKey(tableID, []byte(row))}})
		case 1:
			resp, err := pd.ScanTablets(ctx, &pdpb.ScanTabletsRequest{StartKey: keys.TablePrefix(tableID), EndKey: keys.PrefixEnd(keys.TablePrefix(tableID)), Limit: 100})
			if err == nil && len(resp.Tablets) > 0 {
				ti := resp.Tablets[rng.IntN(len(resp.Tablets))]
				reps := ti.GetTablet().GetReplicas()
				if len(reps) > 0 {
					to := reps[rng.IntN(len(reps))].StoreId
					_, _ = pd.AddOperator(ctx, &pdpb.AddOperatorRequest{TabletId: ti.Tablet.TabletId, Op: &pdpb.AddOperatorRequest_TransferLeaderTo{TransferLeaderTo: to}})
				}
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(time.Duration(50+rng.IntN(150)) * time.Millisecond):
		}
	}
}

// writers write unique values to random rows until stop and record every
// acknowledged write with its commit timestamp, and the ones whose outcome
// is unknown.
type writeLog struct {
	mu        sync.Mutex
	acked     []cell
	ambiguous map[string]bool // value → written or not
	done      chan struct{}   // closed once every writer stopped
}

func (e *env) writers(ctx context.Context, n int, tbl *kvclient.Table, rows int, seed uint64) *writeLog {
	wl := &writeLog{ambiguous: map[string]bool{}, done: make(chan struct{})}
	var wg sync.WaitGroup
	for w := 0; w < n; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(seed, uint64(w)))
			for i := 0; ctx.Err() == nil; i++ {
				row := fmt.Sprintf("row%04d", rng.IntN(rows))
				qual := fmt.Sprintf("q%d", rng.IntN(3))
				val := fmt.Sprintf("w%d-%d-%s", w, i, strings.Repeat("x", rng.IntN(300)))
				ts, err := tbl.MutateRow(ctx, []byte(row), kvclient.SetCell("f", []byte(qual), []byte(val)))
				wl.mu.Lock()
				if err != nil {
					wl.ambiguous[val] = true
				} else {
					wl.acked = append(wl.acked, cell{row, "f:" + qual, ts, val})
				}
				wl.mu.Unlock()
			}
		}()
	}
	go func() { wg.Wait(); close(wl.done) }()
	return wl
}

// compareAt checks that got holds exactly the acknowledged writes at or
// before ts, plus possibly writes whose outcome was unknown.
func compareAt(t *testing.T, wl *writeLog, ts int64, got []cell) {
	t.Helper()
	var want []cell
	for _, c := range wl.acked {
		if c.ts <= ts {
			want = append(want, c)
		}
	}
	sortCells(want)
	wantSet := map[string]bool{}
	for _, c := range want {
		wantSet[c.String()] = true
	}
	gotSet := map[string]bool{}
	for _, c := range got {
		gotSet[c.String()] = true
		if !wantSet[c.String()] && !wl.ambiguous[c.value] {
			t.Fatalf("restored %v, which no acknowledged write at or before %d made", c, ts)
		}
		if c.ts > ts {
			t.Fatalf("restored %v, written after the backup's timestamp %d", c, ts)
		}
	}
	for _, c := range want {
		if !gotSet[c.String()] {
			t.Fatalf("acknowledged write %v (at or before %d) is missing from the restore", c, ts)
		}
	}
}

// A backup taken while writers, splits and leader moves go on, restored
// as a new table, holds exactly the acknowledged writes with commit
// timestamps at or before its timestamp.
func TestBackupUnderLoad(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	src := startOwnEnv(t, ctx) // the chaos splits the table into many tablets
	info, err := src.cl.CreateTable(ctx, "load", []kvclient.Family{{Name: "f"}})
	require.NoError(t, err)
	tbl := src.table("load")
	const rows = 300
	lctx, stopLoad := context.WithCancel(ctx)
	wl := src.writers(lctx, 4, tbl, rows, seed)
	var chaosDone sync.WaitGroup
	chaosDone.Add(1)
	go func() { defer chaosDone.Done(); src.chaos(lctx, rand.New(rand.NewPCG(seed, 99)), info.ID, rows) }()
	testutils.SucceedsSoon(t, func() error {
		wl.mu.Lock()
		defer wl.mu.Unlock()
		if len(wl.acked) < 150 {
			return fmt.Errorf("%d writes so far", len(wl.acked))
		}
		return nil
	})
	to := fileURL(t, "full")
	o := backupOpts(src, to)
	o.Tables = []string{"load"}
	var progress atomic.Int64
	o.Progress = func(backup.Progress) { progress.Add(1) }
	sum, err := backup.Run(ctx, o)
	require.NoError(t, err)
	t.Logf("backup: %+v", *sum)
	// Models time passing: writes go on a while after the backup.
	time.Sleep(300 * time.Millisecond)
	stopLoad()
	<-wl.done
	chaosDone.Wait()
	require.Positive(t, progress.Load())

	rsum, err := backup.Restore(ctx, restoreOpts(t, src, to, "load", "load_r"))
	require.NoError(t, err)
	t.Logf("restore: %+v", *rsum)
	compareAt(t, wl, sum.Timestamp, src.dump("load_r"))
	var after int
	for _, c := range wl.acked {
		if c.ts > sum.Timestamp {
			after++
		}
	}
	require.Positive(t, after, "no write landed after the backup's timestamp: the test proves nothing")
}

func splitReq(tableID uint64, row string) *pdpb.SplitTabletsRequest {
	return &pdpb.SplitTabletsRequest{SplitKeys: [][]byte{keys.RowKey(tableID, []byte(row))}}
}
