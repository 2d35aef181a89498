package store_test

import (
	"context"
	"fmt"
	"math"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shaledb/shale/internal/keys"
	"github.com/shaledb/shale/internal/testutils"
	"github.com/shaledb/shale/proto/kvpb"
	"github.com/shaledb/shale/proto/metapb"
	"github.com/shaledb/shale/tabletserver/store"
	"github.com/shaledb/shale/tabletserver/storetest"
)

// gcSkipEnv is a 3-store cluster with table 9 on tablet 1, a settable GC
// safe point (math.MaxInt64 until set) and a wall clock the test moves.
type gcSkipEnv struct {
	t         *testing.T
	c         *storetest.Cluster
	ctx       context.Context
	safePoint atomic.Int64
	skew      atomic.Int64 // nanoseconds added to the wall clock
}

func newGCSkipEnv(t *testing.T, schema *metapb.TableSchema) *gcSkipEnv {
	e := &gcSkipEnv{t: t}
	e.safePoint.Store(math.MaxInt64)
	e.c = storetest.Start(t, 3, func(o *store.Options) {
		o.GCSafePoint = e.safePoint.Load
		o.WallClock = func() time.Time { return time.Now().Add(time.Duration(e.skew.Load())) }
	})
	e.c.PutSchema(schema)
	p := keys.TablePrefix(9)
	e.c.Bootstrap(1, p, keys.PrefixEnd(p), 1, 2, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	e.ctx = ctx
	return e
}

// put writes one version of row's fam:q and returns its timestamp.
func (e *gcSkipEnv) put(row, fam string) int64 {
	e.t.Helper()
	var ts int64
	err := e.c.Call(e.ctx, 1, func(cl kvpb.TabletClient) error {
		resp, err := cl.MutateRow(e.ctx, &kvpb.MutateRowRequest{Header: &kvpb.RequestHeader{TabletId: 1}, TableId: 9, RowKey: []byte(row),
			Mutations: []*kvpb.Mutation{storetest.SetCell(fam, "q", row)}})
		ts = resp.GetTimestamp()
		return err
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return ts
}

// gc runs one pass on the leader and returns what it deleted, and whether
// it skipped the tablet and how many bytes it read.
func (e *gcSkipEnv) gc() (deleted int, skipped bool, read float64) {
	e.t.Helper()
	s := e.c.Nodes[e.c.WaitLeader(1)].Store
	read0, skipped0 := s.GCPasses()
	n, err := s.GCTablet(e.ctx, 1)
	if err != nil {
		e.t.Fatal(err)
	}
	read1, skipped1 := s.GCPasses()
	return n, skipped1 > skipped0, read1 - read0
}

// expect runs a pass and fails unless it deleted want versions and
// skipped the tablet or not as wantSkip says.
func (e *gcSkipEnv) expect(what string, want int, wantSkip bool) {
	e.t.Helper()
	n, skipped, read := e.gc()
	if n != want || skipped != wantSkip {
		e.t.Fatalf("%s: GC deleted %d versions (skipped %v, read %.0f bytes), want %d (skipped %v)", what, n, skipped, read, want, wantSkip)
	}
	if !skipped && read == 0 {
		e.t.Fatalf("%s: a pass that ran read nothing", what)
	}
	if skipped && read != 0 {
		e.t.Fatalf("%s: a skipped pass read %.0f bytes", what, read)
	}
}

// A pass that found no garbage leaves the tablet alone until something
// could have made garbage: a write, or a schema change.
func TestGCSkipsCleanTablet(t *testing.T) {
	e := newGCSkipEnv(t, &metapb.TableSchema{TableId: 9, Name: "gc", Version: 1, Families: []*metapb.FamilySchema{{Name: "v", MaxVersions: 2}}})
	for i := range 3 {
		e.put(fmt.Sprint("r", i), "v")
	}
	e.expect("first pass", 0, false)
	e.expect("nothing written since", 0, true)
	e.expect("still nothing", 0, true)

	e.put("r0", "v")
	e.put("r0", "v") // r0:v:q now has 3 versions, one beyond max_versions
	e.expect("after writes", 1, false)
	e.expect("after the pass's own GC command", 0, false)
	e.expect("clean again", 0, true)

	// Tightening the policy makes garbage without a write.
	e.c.PutSchema(&metapb.TableSchema{TableId: 9, Name: "gc", Version: 2, Families: []*metapb.FamilySchema{{Name: "v", MaxVersions: 1}}})
	e.expect("after max_versions 2 -> 1", 1, false)
}

// Versions the safe point kept become garbage when it moves past them,
// with no write in between.
func TestGCRescansWhenSafePointPassesKeptVersions(t *testing.T) {
	e := newGCSkipEnv(t, &metapb.TableSchema{TableId: 9, Name: "gc", Version: 1, Families: []*metapb.FamilySchema{{Name: "v", MaxVersions: 1}}})
	first := e.put("r", "v")
	last := e.put("r", "v")
	e.safePoint.Store(first)
	e.expect("both versions at or above the safe point", 0, false)
	e.expect("same safe point", 0, true)
	e.safePoint.Store(last + 1)
	e.expect("safe point past both", 1, false)
}

// A family with a max age makes garbage as time passes: such a tablet is
// never skipped.
func TestGCNeverSkipsAgingFamilies(t *testing.T) {
	e := newGCSkipEnv(t, &metapb.TableSchema{TableId: 9, Name: "gc", Version: 1, Families: []*metapb.FamilySchema{{Name: "a", MaxAgeMs: 60_000}}})
	e.put("r", "a")
	e.expect("fresh cell", 0, false)
	e.expect("still fresh, but aging", 0, false)
	e.skew.Store(int64(2 * time.Minute))
	e.expect("two minutes later", 1, false)
}

// putValue writes value into row's fam:q.
func (e *gcSkipEnv) putValue(row, fam, value string) {
	e.t.Helper()
	err := e.c.Call(e.ctx, 1, func(cl kvpb.TabletClient) error {
		_, err := cl.MutateRow(e.ctx, &kvpb.MutateRowRequest{Header: &kvpb.RequestHeader{TabletId: 1}, TableId: 9, RowKey: []byte(row),
			Mutations: []*kvpb.Mutation{storetest.SetCell(fam, "q", value)}})
		return err
	})
	if err != nil {
		e.t.Fatal(err)
	}
}

// The GC queue leaves a tablet for a later round while the bytes written
// to it since its last pass are under a tenth of what that pass read
// (and under 64 KiB), for at most 10 rounds; never a tablet no pass has
// read, nor one whose schema changed. It names why it reads one whole.
func TestGCQueueDefersTabletsWithLittleWritten(t *testing.T) {
	e := newGCSkipEnv(t, &metapb.TableSchema{TableId: 9, Name: "gc", Version: 1, Families: []*metapb.FamilySchema{{Name: "v", MaxVersions: 1}}})
	due := func() string { return e.c.Nodes[e.c.WaitLeader(1)].Store.GCDueForTest(1) }
	expectDue := func(when, want string) {
		t.Helper()
		if got := due(); got != want {
			t.Fatalf("%s: the queue's choice is %q, want %q (\"\": deferred)", when, got, want)
		}
	}
	kib := strings.Repeat("x", 1024)
	for i := range 200 {
		e.putValue(fmt.Sprintf("r%03d", i), "v", kib)
	}
	expectDue("no pass yet", "unmarked")
	e.expect("first pass", 0, false)
	expectDue("nothing written since the pass", "")
	for i := range 10 {
		e.putValue(fmt.Sprintf("r%03d", i), "v", "small")
	}
	expectDue("10 small writes (10 garbage versions in 200 KiB)", "")
	for i := range 100 {
		e.putValue(fmt.Sprintf("r%03d", i), "v", kib)
	}
	expectDue("100 KiB written to a tablet of 200 KiB", "written")
	e.expect("pass after the writes", 10*2+90, false)

	// A deferral is bounded: garbage no write pays for waits 10 rounds.
	e.putValue("r150", "v", "small")
	rounds := 0
	for due() == "" {
		if rounds++; rounds > 100 {
			t.Fatal("deferred for 100 rounds")
		}
	}
	if rounds != 10 {
		t.Fatalf("deferred for %d rounds, want 10", rounds)
	}
	expectDue("after 10 rounds", "overdue")
	e.expect("after the deferral", 1, false)

	// A schema change may make garbage without a write: no deferral.
	expectDue("right after a pass", "")
	e.c.PutSchema(&metapb.TableSchema{TableId: 9, Name: "gc", Version: 2, Families: []*metapb.FamilySchema{{Name: "v", MaxVersions: 1}, {Name: "w"}}})
	expectDue("after a schema change", "policy")
}

// A replica that leads without a mark of its own (a new leader, a new
// tablet) is not read whole at once unless 64 KiB were written since it
// started: what little garbage it may hold waits at most 10 rounds.
func TestGCQueueDefersNewLeaderWithLittleWritten(t *testing.T) {
	e := newGCSkipEnv(t, &metapb.TableSchema{TableId: 9, Name: "gc", Version: 1, Families: []*metapb.FamilySchema{{Name: "v", MaxVersions: 1}}})
	dueOn := func(id uint64) string { return e.c.Nodes[id].Store.GCDueForTest(1) }
	for i := range 10 {
		e.putValue(fmt.Sprintf("r%03d", i), "v", "small")
	}
	e.putValue("r000", "v", "small") // one garbage version
	first := e.c.WaitLeader(1)
	rounds := 0
	for dueOn(first) == "" {
		if rounds++; rounds > 100 {
			t.Fatal("deferred for 100 rounds")
		}
	}
	if rounds != 10 {
		t.Fatalf("a new tablet with 11 small writes was deferred for %d rounds, want 10", rounds)
	}
	if got := dueOn(first); got != "overdue" {
		t.Fatalf("after 10 rounds: the queue's choice is %q, want \"overdue\"", got)
	}
	e.expect("the overdue pass", 1, false)

	// Leadership moves to a replica that never passed over the tablet.
	var next uint64
	for _, id := range []uint64{1, 2, 3} {
		if id != first {
			next = id
			break
		}
	}
	if err := e.c.Nodes[first].Store.TransferLeadershipFromForTest(e.ctx, 1, next); err != nil {
		t.Fatal(err)
	}
	testutils.SucceedsSoon(t, func() error {
		if got := e.c.WaitLeader(1); got != next {
			return fmt.Errorf("leader is store %d, want %d", got, next)
		}
		return nil
	})
	if got := dueOn(next); got != "" {
		t.Fatalf("new leader, little written: the queue's choice is %q, want it deferred", got)
	}
	kib := strings.Repeat("x", 1024)
	for i := range 70 {
		e.putValue(fmt.Sprintf("r%03d", i), "v", kib)
	}
	if got := dueOn(next); got != "unmarked" {
		t.Fatalf("new leader after 70 KiB of writes: the queue's choice is %q, want \"unmarked\"", got)
	}
}
