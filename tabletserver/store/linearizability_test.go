package store_test

import (
	"context"
	"flag"
	"fmt"
	"io"
	"math/rand"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/shaledb/shale/internal/errs"
	"github.com/shaledb/shale/internal/testutils"
	"github.com/shaledb/shale/proto/kvpb"
	"github.com/shaledb/shale/tabletserver/storetest"
)

var (
	linDuration = flag.Duration("lin.duration", 20*time.Second, "traffic duration of TestLinearizableUnderFaults")
)

// ---- the model: one register per row -------------------------------------

type regOpKind int

const (
	regRead regOpKind = iota
	regWrite
	regCAS
)

// regInput is one client operation on row Row's f:q cell.
type regInput struct {
	Row      string
	Kind     regOpKind
	Value    string // write: the value; cas: the new value
	Expected string // cas: the expected value
}

// regOutput is its outcome. Value "" means the cell is absent (written
// values are never empty). Unknown marks a write or cas whose outcome is
// indeterminate (error or timeout after it may have been proposed): it may
// or may not have taken effect, at any point after its call.
type regOutput struct {
	Value   string // read
	Matched bool   // cas
	Unknown bool
}

// registerModel is a per-row register; the state is the row's value ("" =
// never written). Check-and-mutate with EQUAL fails on an absent cell.
var registerModel = porcupine.Model{
	Partition: func(history []porcupine.Operation) [][]porcupine.Operation {
		byRow := map[string][]porcupine.Operation{}
		var rows []string
		for _, op := range history {
			row := op.Input.(regInput).Row
			if _, ok := byRow[row]; !ok {
				rows = append(rows, row)
			}
			byRow[row] = append(byRow[row], op)
		}
		sort.Strings(rows)
		out := make([][]porcupine.Operation, 0, len(rows))
		for _, r := range rows {
			out = append(out, byRow[r])
		}
		return out
	},
	Init: func() interface{} { return "" },
	Step: func(state, input, output interface{}) (bool, interface{}) {
		st, in, out := state.(string), input.(regInput), output.(regOutput)
		switch in.Kind {
		case regRead:
			return out.Value == st, st
		case regWrite:
			// Acknowledged or unknown: if it is linearized at all, it sets
			// the value. (An unknown write that never happened linearizes
			// after everything else.)
			return true, in.Value
		case regCAS:
			matched := st != "" && st == in.Expected
			if !out.Unknown && out.Matched != matched {
				return false, st
			}
			if matched {
				return true, in.Value
			}
			return true, st
		}
		panic(fmt.Sprintf("unknown op kind %d", in.Kind))
	},
	Equal: func(a, b interface{}) bool { return a.(string) == b.(string) },
	DescribeOperation: func(input, output interface{}) string {
		in, out := input.(regInput), output.(regOutput)
		switch in.Kind {
		case regRead:
			v := out.Value
			if v == "" {
				v = "<absent>"
			}
			return fmt.Sprintf("%s: read() -> %s", in.Row, v)
		case regWrite:
			if out.Unknown {
				return fmt.Sprintf("%s: write(%s) -> ?", in.Row, in.Value)
			}
			return fmt.Sprintf("%s: write(%s) -> ok", in.Row, in.Value)
		default:
			res := fmt.Sprint(out.Matched)
			if out.Unknown {
				res = "?"
			}
			return fmt.Sprintf("%s: cas(%s, %s) -> %s", in.Row, in.Expected, in.Value, res)
		}
	},
	DescribeState: func(state interface{}) string {
		if s := state.(string); s != "" {
			return s
		}
		return "<absent>"
	},
}

// ---- history recording ---------------------------------------------------

// pendingReturn marks an indeterminate operation; before checking it becomes
// a return time after every other event of the history.
const pendingReturn = -1

type recorder struct {
	t0  time.Time
	mu  sync.Mutex
	ops []porcupine.Operation
	ann []porcupine.Annotation

	nextClient                          int
	ok, unknown, notApplied, failedRead int
}

func (r *recorder) now() int64 { return time.Since(r.t0).Nanoseconds() }

func (r *recorder) add(op porcupine.Operation) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ops = append(r.ops, op)
	if op.Return == pendingReturn {
		r.unknown++
	} else {
		r.ok++
	}
}

func (r *recorder) count(f *int) {
	r.mu.Lock()
	*f++
	r.mu.Unlock()
}

// newClientID returns a fresh visualization lane; a client that saw an
// indeterminate op moves to a new lane (its old op never returns).
func (r *recorder) newClientID() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	id := r.nextClient
	r.nextClient++
	return id
}

func (r *recorder) annotate(start, end int64, tag, desc string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ann = append(r.ann, porcupine.Annotation{Tag: tag, Start: start, End: end, Description: desc})
}

// history returns the operations with indeterminate returns moved past the
// end of the history.
func (r *recorder) history() []porcupine.Operation {
	r.mu.Lock()
	defer r.mu.Unlock()
	var end int64
	for _, op := range r.ops {
		end = max(end, op.Call, op.Return)
	}
	out := make([]porcupine.Operation, len(r.ops))
	copy(out, r.ops)
	for i := range out {
		if out[i].Return == pendingReturn {
			out[i].Return = end + 1
		}
	}
	return out
}

// ---- clients -------------------------------------------------------------

type linHarness struct {
	t    *testing.T
	c    *storetest.Cluster
	tab  uint64
	rows []string
	rec  *recorder

	seenMu sync.Mutex
	seen   map[string]string // row -> a value recently read or written (cas candidates)
}

const linOpTimeout = time.Second

func (h *linHarness) setSeen(row, v string) {
	if v == "" {
		return
	}
	h.seenMu.Lock()
	h.seen[row] = v
	h.seenMu.Unlock()
}

func (h *linHarness) getSeen(row string) string {
	h.seenMu.Lock()
	defer h.seenMu.Unlock()
	return h.seen[row]
}

func (h *linHarness) read(clientID int, row string) {
	ctx, cancel := context.WithTimeout(context.Background(), linOpTimeout)
	defer cancel()
	call := h.rec.now()
	v, found, err := h.c.Read(ctx, h.tab, row)
	ret := h.rec.now()
	if err != nil {
		// A failed read has no effect; leave it out of the history.
		h.rec.count(&h.rec.failedRead)
		return
	}
	if found && v == "" {
		h.t.Errorf("row %s: read an empty value, which no client writes", row)
	}
	h.setSeen(row, v)
	h.rec.add(porcupine.Operation{ClientId: clientID, Input: regInput{Row: row, Kind: regRead}, Call: call, Output: regOutput{Value: v}, Return: ret})
}

// write runs a MutateRow (expected == "") or CheckAndMutateRow and records
// it. It reports whether the outcome was indeterminate.
func (h *linHarness) write(clientID int, in regInput) (indeterminate bool) {
	ctx, cancel := context.WithTimeout(context.Background(), linOpTimeout)
	defer cancel()
	hdr := &kvpb.RequestHeader{TabletId: h.tab}
	var matched bool
	call := h.rec.now()
	err := h.c.CallWrite(ctx, h.tab, func(cl kvpb.TabletClient) error {
		if in.Kind == regWrite {
			_, err := cl.MutateRow(ctx, &kvpb.MutateRowRequest{
				Header: hdr, TableId: storetest.TestTable.TableId, RowKey: []byte(in.Row),
				Mutations: []*kvpb.Mutation{storetest.SetCell("f", "q", in.Value)},
			})
			return err
		}
		resp, err := cl.CheckAndMutateRow(ctx, &kvpb.CheckAndMutateRowRequest{
			Header: hdr, TableId: storetest.TestTable.TableId, RowKey: []byte(in.Row),
			Condition:     &kvpb.Condition{Family: "f", Qualifier: []byte("q"), Op: kvpb.Condition_EQUAL, Value: []byte(in.Expected)},
			TrueMutations: []*kvpb.Mutation{storetest.SetCell("f", "q", in.Value)},
		})
		if err == nil {
			matched = resp.PredicateMatched
		}
		return err
	})
	ret := h.rec.now()
	op := porcupine.Operation{ClientId: clientID, Input: in, Call: call}
	switch {
	case err == nil:
		op.Output, op.Return = regOutput{Matched: matched}, ret
		if in.Kind == regWrite || matched {
			h.setSeen(in.Row, in.Value)
		}
	case storetest.WriteNotApplied(err):
		// Refused before it was proposed: it did not happen.
		h.rec.count(&h.rec.notApplied)
		return false
	default:
		if st := errs.Code(err); st == "KV:InvalidArgument" || st == "KV:tablet:TableNotFound" {
			h.t.Errorf("%s: unexpected error: %v", registerModel.DescribeOperation(in, regOutput{Unknown: true}), err)
		}
		op.Output, op.Return = regOutput{Unknown: true}, pendingReturn
		indeterminate = true
	}
	h.rec.add(op)
	return indeterminate
}

func (h *linHarness) client(idx int, seed int64, stopAt time.Time) {
	rng := rand.New(rand.NewSource(seed))
	clientID := h.rec.newClientID()
	seq := 0
	for time.Now().Before(stopAt) {
		row := h.rows[rng.Intn(len(h.rows))]
		switch p := rng.Float64(); {
		case p < 0.4:
			h.read(clientID, row)
		default:
			seq++
			in := regInput{Row: row, Kind: regWrite, Value: fmt.Sprintf("c%d.%d", idx, seq)}
			if p >= 0.7 {
				in.Kind = regCAS
				// Mostly a recently seen value so that some cas succeed;
				// sometimes one that is certainly stale or never existed.
				in.Expected = h.getSeen(row)
				if in.Expected == "" || rng.Intn(5) == 0 {
					in.Expected = fmt.Sprintf("c%d.%d", rng.Intn(6), rng.Intn(seq+1))
				}
			}
			if h.write(clientID, in) {
				clientID = h.rec.newClientID()
			}
		}
	}
}

// ---- nemesis -------------------------------------------------------------

func (h *linHarness) nemesis(rng *rand.Rand, stopAt time.Time, done <-chan struct{}) {
	c, tab := h.c, h.tab
	sleep := func(d time.Duration) bool {
		select {
		case <-time.After(d):
			return true
		case <-done:
			return false
		}
	}
	between := func(lo, hi time.Duration) time.Duration { return lo + time.Duration(rng.Int63n(int64(hi-lo))) }
	stores := []uint64{1, 2, 3}
	for time.Now().Before(stopAt) {
		if !sleep(between(300*time.Millisecond, 1200*time.Millisecond)) {
			return
		}
		start := h.rec.now()
		var desc string
		var killed uint64
		leader := c.Leader(tab)
		switch rng.Intn(6) {
		case 0:
			if leader == 0 {
				continue
			}
			c.Net.Isolate(leader)
			desc = fmt.Sprintf("isolate leader s%d", leader)
		case 1:
			var followers []uint64
			for _, s := range stores {
				if s != leader {
					followers = append(followers, s)
				}
			}
			f := followers[rng.Intn(len(followers))]
			c.Net.Isolate(f)
			desc = fmt.Sprintf("isolate follower s%d (leader s%d)", f, leader)
		case 2:
			m := stores[rng.Intn(3)]
			var rest []uint64
			for _, s := range stores {
				if s != m {
					rest = append(rest, s)
				}
			}
			c.Net.Partition([]uint64{m}, rest)
			desc = fmt.Sprintf("partition s%d | s%d,s%d (leader s%d)", m, rest[0], rest[1], leader)
		case 3:
			if leader == 0 {
				continue
			}
			c.Stop(leader)
			killed = leader
			desc = fmt.Sprintf("kill leader s%d", leader)
		case 4:
			drop := 0.05 + rng.Float64()*0.3
			delay := time.Duration(rng.Intn(60)) * time.Millisecond
			c.Net.SetFaults(rng.Int63(), drop, delay+time.Millisecond)
			desc = fmt.Sprintf("drop %.0f%% delay<=%v", drop*100, delay)
		case 5:
			// Kill the leader on a lossy network.
			drop := 0.05 + rng.Float64()*0.2
			c.Net.SetFaults(rng.Int63(), drop, 20*time.Millisecond)
			if leader != 0 {
				c.Stop(leader)
				killed = leader
			}
			desc = fmt.Sprintf("drop %.0f%% delay<=20ms + kill leader s%d", drop*100, leader)
		}
		h.t.Logf("nemesis %6.2fs: %s", time.Duration(start).Seconds(), desc)
		sleep(between(500*time.Millisecond, 2500*time.Millisecond))
		c.Net.Heal()
		if killed != 0 {
			c.Restart(killed)
		}
		end := h.rec.now()
		h.rec.annotate(start, end, "nemesis", desc)
		h.t.Logf("nemesis %6.2fs: heal%s", time.Duration(end).Seconds(), map[bool]string{true: fmt.Sprintf(", restart s%d", killed)}[killed != 0])
	}
}

// ---- the test driver -----------------------------------------------------

func runLinearizability(t *testing.T, duration time.Duration, faults bool) {
	seed := int64(testutils.Seed(t))
	t.Logf("traffic %v, faults=%v", duration, faults)
	began := time.Now()

	c, tab := startTablet(t, 3)
	h := &linHarness{t: t, c: c, tab: tab, rec: &recorder{t0: time.Now()}, seen: map[string]string{}}
	for i := 0; i < 5; i++ {
		h.rows = append(h.rows, fmt.Sprintf("reg%d", i))
	}

	const clients = 6
	trafficStart := time.Now()
	stopAt := trafficStart.Add(duration)
	rng := rand.New(rand.NewSource(seed))
	var wg sync.WaitGroup
	for i := 0; i < clients; i++ {
		wg.Add(1)
		go func(i int, s int64) {
			defer wg.Done()
			h.client(i, s, stopAt)
		}(i, rng.Int63())
	}
	nemesisDone := make(chan struct{})
	var nwg sync.WaitGroup
	if faults {
		nwg.Add(1)
		go func(s int64) {
			defer nwg.Done()
			h.nemesis(rand.New(rand.NewSource(s)), stopAt, nemesisDone)
		}(rng.Int63())
	}
	wg.Wait()
	close(nemesisDone)
	nwg.Wait()
	traffic := time.Since(trafficStart)
	healStart := time.Now()

	// Heal everything and restart every store (stopped or not): recovery
	// from disk must not lose or resurrect anything either.
	c.Net.Heal()
	for id := range c.Nodes {
		c.Stop(id)
	}
	for _, id := range []uint64{1, 2, 3} {
		c.Restart(id)
	}
	c.WaitLeader(tab)
	// Final reads of every row go into the history too.
	for _, row := range h.rows {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		call := h.rec.now()
		v, _, err := c.Read(ctx, tab, row)
		ret := h.rec.now()
		cancel()
		if err != nil {
			t.Fatalf("seed %d: final read of %s after healing: %v", seed, row, err)
		}
		h.rec.add(porcupine.Operation{ClientId: h.rec.newClientID(), Input: regInput{Row: row, Kind: regRead}, Call: call, Output: regOutput{Value: v}, Return: ret})
	}
	// All replicas converge.
	testutils.SucceedsSoon(t, func() error {
		var idx [3]uint64
		for i, id := range []uint64{1, 2, 3} {
			s := c.Nodes[id].Store
			st, err := s.TabletStatus(tab)
			if err != nil {
				return fmt.Errorf("store %d: %v", id, err)
			}
			idx[i] = st.AppliedIndex
		}
		if idx[0] == 0 || idx[0] != idx[1] || idx[1] != idx[2] {
			return fmt.Errorf("applied indexes differ: %v", idx)
		}
		return nil
	})

	history := h.rec.history()
	r := h.rec
	t.Logf("history: %d ops (%d completed, %d indeterminate), %d writes refused before proposal, %d failed reads dropped",
		len(history), r.ok, r.unknown, r.notApplied, r.failedRead)
	checkStart := time.Now()
	res, info := porcupine.CheckOperationsVerbose(registerModel, history, 60*time.Second)
	t.Logf("timing: setup %v, traffic %v, heal+restart+converge %v, check %v",
		trafficStart.Sub(began).Round(time.Millisecond), traffic.Round(time.Millisecond),
		checkStart.Sub(healStart).Round(time.Millisecond), time.Since(checkStart).Round(time.Millisecond))
	switch res {
	case porcupine.Ok:
	case porcupine.Illegal:
		info.AddAnnotations(r.ann)
		path := writeVisualization(t, info)
		t.Fatalf("seed %d: history is NOT linearizable; visualization: %s (replay with SHALE_TEST_SEED=%d)", seed, path, seed)
	default:
		t.Fatalf("seed %d: linearizability check timed out (result %v) on %d ops; replay with SHALE_TEST_SEED=%d", seed, res, len(history), seed)
	}
}

// writeVisualization writes porcupine's HTML visualization to a directory
// that outlives the test and returns its path.
func writeVisualization(t *testing.T, info porcupine.LinearizationInfo) string {
	dir, err := os.MkdirTemp("", "shale-linearizability-")
	if err != nil {
		t.Logf("cannot create visualization dir: %v", err)
		return "<none>"
	}
	path := filepath.Join(dir, "history.html")
	if err := porcupine.VisualizePath(registerModel, info, path); err != nil {
		t.Logf("cannot write visualization: %v", err)
		return "<none>"
	}
	return path
}

// TestLinearizableUnderFaults runs concurrent reads, writes and
// check-and-mutates on a few single-cell rows of a 3-replica tablet while
// a nemesis partitions the network, kills leaders and drops and delays
// messages, and checks the history is linearizable (per row).
func TestLinearizableUnderFaults(t *testing.T) {
	if testing.Short() {
		t.Skip("long randomized test")
	}
	runLinearizability(t, *linDuration, true)
}

// TestLinearizableNoFaults is a sanity check of the checker wiring on a
// healthy cluster.
func TestLinearizableNoFaults(t *testing.T) {
	runLinearizability(t, 5*time.Second, false)
}

// TestLinearizableCheckerRejects proves the model is not vacuous: it
// rejects hand-built illegal histories and accepts legal ones with
// indeterminate operations.
func TestLinearizableCheckerRejects(t *testing.T) {
	w := func(cl int, row, v string, call, ret int64) porcupine.Operation {
		return porcupine.Operation{ClientId: cl, Input: regInput{Row: row, Kind: regWrite, Value: v}, Call: call, Output: regOutput{}, Return: ret}
	}
	wUnknown := func(cl int, row, v string, call int64) porcupine.Operation {
		return porcupine.Operation{ClientId: cl, Input: regInput{Row: row, Kind: regWrite, Value: v}, Call: call, Output: regOutput{Unknown: true}, Return: 1000}
	}
	rd := func(cl int, row, v string, call, ret int64) porcupine.Operation {
		return porcupine.Operation{ClientId: cl, Input: regInput{Row: row, Kind: regRead}, Call: call, Output: regOutput{Value: v}, Return: ret}
	}
	cas := func(cl int, row, exp, v string, matched bool, call, ret int64) porcupine.Operation {
		return porcupine.Operation{ClientId: cl, Input: regInput{Row: row, Kind: regCAS, Expected: exp, Value: v}, Call: call, Output: regOutput{Matched: matched}, Return: ret}
	}
	casUnknown := func(cl int, row, exp, v string, call int64) porcupine.Operation {
		return porcupine.Operation{ClientId: cl, Input: regInput{Row: row, Kind: regCAS, Expected: exp, Value: v}, Call: call, Output: regOutput{Unknown: true}, Return: 1000}
	}
	cases := []struct {
		name  string
		legal bool
		h     []porcupine.Operation
	}{
		{"stale read", false, []porcupine.Operation{w(0, "a", "x", 0, 10), w(0, "a", "y", 20, 30), rd(1, "a", "x", 40, 50)}},
		{"read of a value never written", false, []porcupine.Operation{w(0, "a", "x", 0, 10), rd(1, "a", "z", 20, 30)}},
		{"lost acknowledged write", false, []porcupine.Operation{w(0, "a", "x", 0, 10), rd(1, "a", "", 20, 30)}},
		{"read from another row", false, []porcupine.Operation{w(0, "a", "x", 0, 10), rd(1, "b", "x", 20, 30)}},
		{"cas matched an absent row", false, []porcupine.Operation{cas(0, "a", "x", "y", true, 0, 10)}},
		{"cas missed the current value", false, []porcupine.Operation{w(0, "a", "x", 0, 10), cas(1, "a", "x", "y", false, 20, 30)}},
		{"cas matched but no effect", false, []porcupine.Operation{w(0, "a", "x", 0, 10), cas(1, "a", "x", "y", true, 20, 30), rd(2, "a", "x", 40, 50)}},
		{"both cas matched", false, []porcupine.Operation{w(0, "a", "x", 0, 10), cas(1, "a", "x", "y", true, 20, 30), cas(2, "a", "x", "z", true, 20, 30)}},
		{"unknown write cannot precede its call", false, []porcupine.Operation{rd(0, "a", "x", 0, 10), wUnknown(1, "a", "x", 20)}},
		{"unknown write then flip-flop", false, []porcupine.Operation{w(0, "a", "x", 0, 10), wUnknown(1, "a", "y", 20), rd(2, "a", "y", 30, 40), rd(2, "a", "x", 50, 60)}},
		{"unknown cas cannot apply on mismatch", false, []porcupine.Operation{w(0, "a", "x", 0, 10), casUnknown(1, "a", "q", "y", 20), rd(2, "a", "y", 30, 40)}},

		{"concurrent read may see either", true, []porcupine.Operation{w(0, "a", "x", 0, 10), w(0, "a", "y", 20, 30), rd(1, "a", "x", 25, 50)}},
		{"unknown write applied", true, []porcupine.Operation{w(0, "a", "x", 0, 10), wUnknown(1, "a", "y", 20), rd(2, "a", "y", 30, 40)}},
		{"unknown write not applied", true, []porcupine.Operation{w(0, "a", "x", 0, 10), wUnknown(1, "a", "y", 20), rd(2, "a", "x", 30, 40)}},
		{"unknown cas applied", true, []porcupine.Operation{w(0, "a", "x", 0, 10), casUnknown(1, "a", "x", "y", 20), rd(2, "a", "y", 30, 40)}},
		{"unknown cas not applied", true, []porcupine.Operation{w(0, "a", "x", 0, 10), casUnknown(1, "a", "x", "y", 20), rd(2, "a", "x", 30, 40), w(0, "a", "z", 50, 60), rd(2, "a", "z", 70, 80)}},
		{"cas on absent row fails", true, []porcupine.Operation{cas(0, "a", "x", "y", false, 0, 10), rd(1, "a", "", 20, 30)}},
		{"cas chain", true, []porcupine.Operation{w(0, "a", "x", 0, 10), cas(1, "a", "x", "y", true, 20, 30), cas(2, "a", "x", "z", false, 20, 30), rd(0, "a", "y", 40, 50), rd(0, "b", "", 40, 50)}},
	}
	for _, tc := range cases {
		res, info := porcupine.CheckOperationsVerbose(registerModel, tc.h, 10*time.Second)
		want := porcupine.Illegal
		if tc.legal {
			want = porcupine.Ok
		}
		if res != want {
			t.Errorf("%s: checker says %v, want %v", tc.name, res, want)
		}
		if res == porcupine.Illegal {
			// The visualization must render (its code steps the model).
			if err := porcupine.Visualize(registerModel, info, io.Discard); err != nil {
				t.Errorf("%s: visualize: %v", tc.name, err)
			}
		}
	}
}
