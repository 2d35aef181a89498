package kvnemesis

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/shaledb/shale/internal/keys"
	"github.com/shaledb/shale/internal/testcluster"
	"github.com/shaledb/shale/internal/testutils"
	"github.com/shaledb/shale/kvclient"
	"github.com/shaledb/shale/proto/pdpb"
	"github.com/shaledb/shale/tabletserver/store"
	"github.com/shaledb/shale/tabletserver/storetest"
)

// Snapshot reads under faults: writers put unique values into rows spread
// over more than ten tablets, and now and then delete a row (deletes write
// tombstones, so reads before them still see what they deleted), and
// record each acknowledged write's commit timestamp; readers scan the whole table, and read single rows from any
// replica, as of a timestamp (fresh or a few seconds old), while the
// nemesis splits, merges, moves replicas and transfers leaders. Every read
// at ts must show, for every row, exactly the newest write with commit
// timestamp <= ts: never a later one, never an older one, never a missing
// row that an acknowledged write at or before ts put there.

const (
	snapRows    = 120
	snapSplitAt = 10 // a split point every snapSplitAt rows: 12 tablets
	// snapMinReads: the run goes on past its duration until this many
	// reads succeeded (a loaded machine, or -race, is slow), for at most
	// snapMaxRun.
	snapMinReads = 40
	snapMaxRun   = 4 * time.Minute
)

func snapRow(i int) string { return fmt.Sprintf("s%03d", i) }

// snapWrite is one write: its value (unique), and its commit timestamp
// once acknowledged (0: the outcome is unknown).
type snapWrite struct {
	row   string
	value string // "" for a delete of the row
	ts    int64
	del   bool
}

// snapRead is one read at ts: the row values and cell timestamps seen
// (rows absent from the map were absent), over rows [lo, hi].
type snapRead struct {
	ts     int64
	lo, hi int
	what   string
	seen   map[string]seenCell
}

type seenCell struct {
	value string
	ts    int64
}

type snapModel struct {
	mu     sync.Mutex
	writes map[string][]snapWrite // row → writes
	byVal  map[string]*snapWrite
	reads  []snapRead
	counts map[string]int
	// samples: the first error of each kind of failed read.
	samples map[string]string
}

func (m *snapModel) count(k string) {
	m.mu.Lock()
	m.counts[k]++
	m.mu.Unlock()
}

func TestSnapshotReadsUnderFaults(t *testing.T) {
	seed := testutils.Seed(t)
	duration := 20 * time.Second
	t.Logf("snapshot reads: seed %d, %v", seed, duration)
	rng := rand.New(rand.NewPCG(seed, 0x736e6170))
	net := storetest.NewNetwork()
	c := testcluster.Start(t, testcluster.Options{Stores: 4, StoreOptions: func(i int, o *store.Options) {
		o.Knobs = &store.TestingKnobs{Transport: net.TransportKnobs()}
		o.MergeRecoveryAfter = 3 * time.Second
		o.RaftLogTruncateEntries = 64
		// Writes alone close only a second back: reads a few seconds
		// old are served at once, fresher ones close their timestamp.
		o.ClosedTimestampTarget = time.Second
	}})
	ctx, cancel := context.WithTimeout(context.Background(), snapMaxRun+5*time.Minute)
	defer cancel()
	admin := openClient(t, ctx, c, 0, rng)
	var splits [][]byte
	for i := snapSplitAt; i < snapRows; i += snapSplitAt {
		splits = append(splits, []byte(snapRow(i)))
	}
	info, err := admin.CreateTable(ctx, "snap", []kvclient.Family{{Name: famF}}, splits...)
	if err != nil {
		t.Fatal(err)
	}
	m := &snapModel{writes: map[string][]snapWrite{}, byVal: map[string]*snapWrite{}, counts: map[string]int{}, samples: map[string]string{}}
	runCtx, stopRun := context.WithTimeout(ctx, snapMaxRun)
	defer stopRun()
	go func() {
		// Not a wait for a condition: the run lasts at least duration.
		sleep(runCtx, duration)
		for runCtx.Err() == nil {
			m.mu.Lock()
			enough := len(m.reads) >= snapMinReads
			m.mu.Unlock()
			if enough {
				stopRun()
				return
			}
			sleep(runCtx, 100*time.Millisecond)
		}
	}()
	var wg sync.WaitGroup
	for i := range 4 {
		tbl := openTable(t, ctx, c, rng)
		wrng := rand.New(rand.NewPCG(rng.Uint64(), uint64(i)))
		wg.Add(1)
		go func() {
			defer wg.Done()
			for seq := 0; runCtx.Err() == nil; seq++ {
				snapWriteOne(runCtx, m, tbl, wrng, fmt.Sprintf("w%d-%d", i, seq))
			}
		}()
	}
	for i := range 2 {
		cl := openClient(t, ctx, c, 0, rng)
		tbl, err := cl.Table(ctx, "snap")
		if err != nil {
			t.Fatal(err)
		}
		rrng := rand.New(rand.NewPCG(rng.Uint64(), uint64(10+i)))
		wg.Add(1)
		go func() {
			defer wg.Done()
			for runCtx.Err() == nil {
				snapReadOne(runCtx, m, cl, tbl, rrng)
			}
		}()
	}
	n := &nemesis{c: c, net: net, h: newHistory(), rng: rand.New(rand.NewPCG(rng.Uint64(), 99)), tableID: info.ID, stopped: map[int]bool{}}
	nemDone := make(chan struct{})
	go func() {
		defer close(nemDone)
		n.loop(runCtx, []fault{
			{"split", func(ctx context.Context, rng *rand.Rand) error { return snapSplit(ctx, c, info.ID, rng) }},
			{"merge", n.merge},
			{"merge", n.merge},
			{"transfer-leader-pd", n.transferPD},
			{"transfer-leader-admin", n.transferAdmin},
			{"transfer-leader-follower", n.transferFromFollower},
			{"move-replica", n.move},
		}, n.rng, 300*time.Millisecond)
	}()
	wg.Wait()
	<-nemDone
	t.Logf("snapshot reads: seed %d: faults %s; operations %v; failed reads, first errors %v", seed, n.h.summary(), m.counts, m.samples)
	checkSnapshots(t, seed, m)
}

func openTable(t *testing.T, ctx context.Context, c *testcluster.Cluster, rng *rand.Rand) *kvclient.Table {
	tbl, err := openClient(t, ctx, c, 0, rng).Table(ctx, "snap")
	if err != nil {
		t.Fatal(err)
	}
	return tbl
}

// snapSplit splits the tablet holding a random row at that row.
func snapSplit(ctx context.Context, c *testcluster.Cluster, tableID uint64, rng *rand.Rand) error {
	key := keys.RowKey(tableID, []byte(snapRow(rng.IntN(snapRows))))
	resp, err := c.PD().GetTablet(ctx, &pdpb.GetTabletRequest{Key: key})
	if err != nil {
		return err
	}
	_, err = c.PD().AddOperator(ctx, &pdpb.AddOperatorRequest{TabletId: resp.Tablet.Tablet.TabletId, Op: &pdpb.AddOperatorRequest_SplitKey{SplitKey: key}})
	return err
}

func snapWriteOne(ctx context.Context, m *snapModel, tbl *kvclient.Table, rng *rand.Rand, value string) {
	w := &snapWrite{row: snapRow(rng.IntN(snapRows)), value: value}
	mut := kvclient.SetCell(famF, []byte("q"), []byte(value))
	if rng.IntN(6) == 0 {
		w.value, w.del, mut = "", true, kvclient.DeleteRow()
	}
	m.mu.Lock()
	if !w.del {
		m.byVal[value] = w
	}
	m.writes[w.row] = append(m.writes[w.row], snapWrite{}) // placeholder, fixed below
	idx := len(m.writes[w.row]) - 1
	m.mu.Unlock()
	wctx, cancel := context.WithTimeout(ctx, opTimeout)
	ts, err := tbl.MutateRow(wctx, []byte(w.row), mut)
	cancel()
	m.mu.Lock()
	defer m.mu.Unlock()
	if err == nil {
		w.ts = ts
		m.counts["write ok"]++
	} else {
		m.counts["write unknown"]++
	}
	m.writes[w.row][idx] = *w
}

// snapReadOne reads as of a timestamp now or up to 3 s ago: the whole
// table by one scan, or a few rows from random replicas.
func snapReadOne(ctx context.Context, m *snapModel, cl *kvclient.Client, tbl *kvclient.Table, rng *rand.Rand) {
	ts := cl.Now() - rng.Int64N(3_000_000)
	r := snapRead{ts: ts, lo: 0, hi: snapRows - 1, seen: map[string]seenCell{}}
	rctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	opts := []kvclient.ReadOption{kvclient.AsOf(ts)}
	var err error
	if rng.IntN(2) == 0 {
		r.what = "scan"
		if rng.IntN(2) == 0 {
			r.what, opts = "scan from any replica", append(opts, kvclient.FollowerRead())
		}
		sc := tbl.Scan(rctx, kvclient.ScanOptions{Read: opts})
		for sc.Next() {
			row := sc.Row()
			for _, cell := range row.Cells {
				r.seen[string(row.Key)] = seenCell{value: string(cell.Value), ts: cell.Timestamp}
			}
		}
		err = sc.Err()
		sc.Close()
	} else {
		r.what = "gets from any replica"
		r.lo = rng.IntN(snapRows - 8)
		r.hi = r.lo + 7
		opts = append(opts, kvclient.FollowerRead())
		for i := r.lo; i <= r.hi && err == nil; i++ {
			var row *kvclient.Row
			row, err = tbl.Get(rctx, []byte(snapRow(i)), opts...)
			if row != nil {
				for _, cell := range row.Cells {
					r.seen[snapRow(i)] = seenCell{value: string(cell.Value), ts: cell.Timestamp}
				}
			}
		}
	}
	switch {
	case err == nil:
		m.mu.Lock()
		m.reads = append(m.reads, r)
		m.counts[r.what]++
		m.mu.Unlock()
	case errors.Is(err, kvclient.ErrReadTooOld):
		m.count("read too old")
	default:
		m.count(r.what + " failed")
		m.mu.Lock()
		if _, ok := m.samples[r.what]; !ok {
			m.samples[r.what] = err.Error()
		}
		m.mu.Unlock()
	}
}

// checkSnapshots checks every read against the writes.
func checkSnapshots(t *testing.T, seed uint64, m *snapModel) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.reads) < snapMinReads {
		t.Fatalf("seed %d: only %d reads succeeded (%v)", seed, len(m.reads), m.counts)
	}
	for row := range m.writes {
		sort.Slice(m.writes[row], func(i, j int) bool { return m.writes[row][i].ts < m.writes[row][j].ts })
	}
	for _, r := range m.reads {
		for i := r.lo; i <= r.hi; i++ {
			if err := checkRow(m, r, snapRow(i)); err != nil {
				t.Fatalf("seed %d: %s as of %d: %v", seed, r.what, r.ts, err)
			}
		}
	}
}

// checkRow: the value read is a write's, at or before ts, and no
// acknowledged write of the row (put or delete) lies after it and at or
// before ts; an absent row has no acknowledged put at or before ts, unless
// a delete follows it (acknowledged at or before ts, or of unknown
// outcome).
func checkRow(m *snapModel, r snapRead, row string) error {
	var newestAcked *snapWrite // the newest acknowledged write at or before ts
	unknownDelete := false
	for i := range m.writes[row] {
		w := &m.writes[row][i]
		if w.ts != 0 && w.ts <= r.ts {
			newestAcked = w
		}
		unknownDelete = unknownDelete || (w.del && w.ts == 0)
	}
	got, ok := r.seen[row]
	if !ok {
		if newestAcked != nil && !newestAcked.del && !unknownDelete {
			return fmt.Errorf("row %s absent, but write %q was acknowledged at %d", row, newestAcked.value, newestAcked.ts)
		}
		return nil
	}
	w := m.byVal[got.value]
	switch {
	case w == nil || w.row != row:
		return fmt.Errorf("row %s = %q, which no writer wrote there", row, got.value)
	case got.ts > r.ts:
		return fmt.Errorf("row %s = %q written at %d, after the read's timestamp", row, got.value, got.ts)
	case w.ts != 0 && w.ts != got.ts:
		return fmt.Errorf("row %s = %q at %d, but its write was acknowledged at %d", row, got.value, got.ts, w.ts)
	case newestAcked != nil && newestAcked.ts > got.ts:
		return fmt.Errorf("row %s = %q (at %d), but write %q was acknowledged at %d, newer and at or before the read", row, got.value, got.ts, newestAcked.value, newestAcked.ts)
	}
	return nil
}
