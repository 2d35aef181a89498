package store_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/shaledb/shale/internal/testutils"
	"github.com/shaledb/shale/proto/kvpb"
	"github.com/shaledb/shale/proto/metapb"
	"github.com/shaledb/shale/tabletserver/store"
	"github.com/shaledb/shale/tabletserver/storetest"
)

// Split a tablet, write to both halves, merge them back under writes and
// after a restart of every store: every acknowledged row is served by the
// merged tablet and the absorbed tablet is gone everywhere.
func TestMergeUnderWrites(t *testing.T) {
	c := storetest.Start(t, 3, nil)
	c.PutSchema(storetest.TestTable)
	lo, hi := storetest.TableSpan()
	c.Bootstrap(1, lo, hi, 1, 2, 3)
	ctx := ctxT(t, 90*time.Second)

	leader := splitAtM(ctx, t, c)

	var mu sync.Mutex
	merged := false
	route := func(row string) uint64 {
		mu.Lock()
		defer mu.Unlock()
		if !merged && row >= "m" {
			return 2
		}
		return 1
	}
	w := &writer{acked: map[string]string{}}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for _, p := range []string{"c", "t"} {
		wg.Add(1)
		go func(p string) { defer wg.Done(); w.run(ctx, c, route, p, stop) }(p)
	}
	testutils.SucceedsSoon(t, func() error {
		if w.n.Load() < 40 {
			return fmt.Errorf("%d writes", w.n.Load())
		}
		return nil
	})
	resp, err := c.Nodes[leader].Client.MergeTablets(ctx, &kvpb.MergeTabletsRequest{Header: &kvpb.RequestHeader{TabletId: 1}, RightTabletId: 2})
	if err != nil {
		t.Fatal(err)
	}
	if string(resp.Tablet.StartKey) != string(lo) || string(resp.Tablet.EndKey) != string(hi) {
		t.Fatalf("merged tablet covers [%x, %x)", resp.Tablet.StartKey, resp.Tablet.EndKey)
	}
	mu.Lock()
	merged = true
	mu.Unlock()
	before := w.n.Load()
	testutils.SucceedsSoon(t, func() error {
		if w.n.Load() < before+40 {
			return fmt.Errorf("%d writes after merge", w.n.Load()-before)
		}
		return nil
	})
	close(stop)
	wg.Wait()

	check := func(phase string) {
		t.Helper()
		testutils.SucceedsSoon(t, func() error {
			for id, n := range c.Nodes {
				if _, err := n.Store.TabletStatus(2); err == nil {
					return fmt.Errorf("%s: store %d still has tablet 2", phase, id)
				}
				st, err := n.Store.TabletStatus(1)
				if err != nil {
					return err
				}
				if string(st.Tablet.EndKey) != string(hi) {
					return fmt.Errorf("%s: store %d: tablet 1 ends at %x", phase, id, st.Tablet.EndKey)
				}
			}
			return nil
		})
		for row, val := range w.acked {
			if err := c.MustRead(ctx, 1, row, val); err != nil {
				t.Fatalf("%s: %v", phase, err)
			}
		}
	}
	check("after merge")
	for id := range c.Nodes {
		c.Stop(id)
	}
	for id := range c.Nodes {
		c.Restart(id)
	}
	check("after restart")
	// The merged tablet takes writes in both former halves.
	for _, row := range []string{"a-new", "z-new"} {
		if err := c.Put(ctx, 1, row, "x"); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("%d acknowledged writes verified across the merge", len(w.acked))
}

// splitAtM splits tablet 1 at row "m" into tablet 2 and returns the store
// leading both (after the split the left's leader campaigns for the right,
// so both are usually led from the same store; this makes sure of it).
func splitAtM(ctx context.Context, t *testing.T, c *storetest.Cluster) uint64 {
	t.Helper()
	if err := c.Call(ctx, 1, func(cl kvpb.TabletClient) error {
		_, err := cl.SplitTablet(ctx, &kvpb.SplitTabletRequest{Header: &kvpb.RequestHeader{TabletId: 1}, SplitKey: rowKey("m"), NewTabletId: 2, NewReplicaIds: []uint64{11, 12, 13}})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	leader := c.WaitLeader(1)
	testutils.SucceedsSoon(t, func() error {
		if l := c.WaitLeader(2); l != leader {
			_, err := c.Nodes[l].Client.TransferLeader(ctx, &kvpb.TransferLeaderRequest{Header: &kvpb.RequestHeader{TabletId: 2}, ToStoreId: leader})
			return fmt.Errorf("tablet 2 led by %d, want %d (%v)", l, leader, err)
		}
		return nil
	})
	return leader
}

// Merging tablets that are not neighbours is refused and changes nothing.
func TestMergeRejectsNonAdjacent(t *testing.T) {
	c := storetest.Start(t, 1, nil)
	c.PutSchema(storetest.TestTable)
	c.Bootstrap(1, rowKey("a"), rowKey("c"), 1)
	c.Bootstrap(2, rowKey("d"), rowKey("f"), 1)
	ctx := ctxT(t, 10*time.Second)
	if _, err := c.Nodes[1].Client.MergeTablets(ctx, &kvpb.MergeTabletsRequest{Header: &kvpb.RequestHeader{TabletId: 1}, RightTabletId: 2}); err == nil {
		t.Fatal("merge of non-adjacent tablets succeeded")
	}
	if err := c.Put(ctx, 2, "e", "still-writable"); err != nil {
		t.Fatal(err)
	}
}

// abandonedMerge splits the table's tablet 1 at "m" into tablet 2, writes a
// row into each half, and runs a merge whose proposer "dies" right after
// PrepareMerge (the knob), so tablet 2 is left frozen. recoverAfter is the
// stores' MergeRecoveryAfter from the next restart on (negative: off).
// tweak, when not nil, adjusts the stores' options further; beforeMerge,
// when not nil, runs just before the merge with the store leading both.
func abandonedMerge(t *testing.T, recoverAfter *time.Duration, tweak func(*store.Options), beforeMerge func(c *storetest.Cluster, leader uint64)) (*storetest.Cluster, []byte) {
	t.Helper()
	abandon := true
	c := storetest.Start(t, 3, func(o *store.Options) {
		o.Knobs.AbandonMergeAfterPrepare = abandon
		o.MergeRecoveryAfter = *recoverAfter
		if tweak != nil {
			tweak(o)
		}
	})
	c.PutSchema(storetest.TestTable)
	lo, hi := storetest.TableSpan()
	c.Bootstrap(1, lo, hi, 1, 2, 3)
	ctx := ctxT(t, 60*time.Second)
	leader := splitAtM(ctx, t, c)
	for tab, row := range map[uint64]string{1: "c", 2: "t"} {
		if err := c.Put(ctx, tab, row, "before"); err != nil {
			t.Fatal(err)
		}
	}
	if beforeMerge != nil {
		beforeMerge(c, leader)
	}
	if _, err := c.Nodes[leader].Client.MergeTablets(ctx, &kvpb.MergeTabletsRequest{Header: &kvpb.RequestHeader{TabletId: 1}, RightTabletId: 2}); err == nil {
		t.Fatal("the knob did not abandon the merge")
	}
	// One attempt at a time (Put would retry the refusal until its
	// deadline and then report the deadline): ask the leader until it
	// answers, and want the refusal.
	testutils.SucceedsSoon(t, func() error {
		l := c.WaitLeader(2)
		_, err := c.Nodes[l].Client.MutateRow(ctx, &kvpb.MutateRowRequest{
			Header: &kvpb.RequestHeader{TabletId: 2}, TableId: storetest.TestTable.TableId, RowKey: []byte("u"),
			Mutations: []*kvpb.Mutation{storetest.SetCell("f", "q", "x")},
		})
		switch {
		case err == nil:
			t.Fatal("a write to the frozen tablet was applied")
		case strings.Contains(err.Error(), "being merged"):
			return nil
		}
		return fmt.Errorf("write to the frozen tablet: %v, want a 'being merged' refusal", err)
	})
	abandon = false
	return c, hi
}

// A merge whose proposer died after PrepareMerge is finished by the store
// leading the frozen tablet, after every store restarted (the freeze, its
// index and the target's epoch are durable).
func TestAbandonedMergeIsFinished(t *testing.T) {
	recoverAfter := time.Duration(-1)
	c, hi := abandonedMerge(t, &recoverAfter, nil, nil)
	recoverAfter = 300 * time.Millisecond
	for id := range c.Nodes {
		c.Stop(id)
	}
	for id := range c.Nodes {
		c.Restart(id)
	}
	ctx := ctxT(t, 60*time.Second)
	testutils.SucceedsSoon(t, func() error {
		_, err := mergedOn(c, hi, 0)
		return err
	})
	for _, row := range []string{"c", "t"} {
		if err := c.MustRead(ctx, 1, row, "before"); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Put(ctx, 1, "z-new", "x"); err != nil {
		t.Fatal(err)
	}
}

// When the merge's left tablet changed after PrepareMerge (here it split),
// no CommitMerge can apply any more: the frozen tablet is rolled back and
// takes writes again, on every store.
func TestAbandonedMergeIsRolledBack(t *testing.T) {
	recoverAfter := time.Duration(-1)
	c, hi := abandonedMerge(t, &recoverAfter, nil, nil)
	ctx := ctxT(t, 60*time.Second)
	if err := c.Call(ctx, 1, func(cl kvpb.TabletClient) error {
		_, err := cl.SplitTablet(ctx, &kvpb.SplitTabletRequest{Header: &kvpb.RequestHeader{TabletId: 1}, SplitKey: rowKey("f"), NewTabletId: 3, NewReplicaIds: []uint64{21, 22, 23}})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	recoverAfter = 300 * time.Millisecond
	for id := range c.Nodes {
		c.Stop(id)
	}
	for id := range c.Nodes {
		c.Restart(id)
	}
	if err := c.Put(ctx, 2, "u", "after"); err != nil {
		t.Fatal(err)
	}
	for _, row := range []string{"t", "u"} {
		want := map[string]string{"t": "before", "u": "after"}[row]
		if err := c.MustRead(ctx, 2, row, want); err != nil {
			t.Fatal(err)
		}
	}
	testutils.SucceedsSoon(t, func() error {
		for id, n := range c.Nodes {
			st, err := n.Store.TabletStatus(2)
			if err != nil {
				return fmt.Errorf("store %d: %v", id, err)
			}
			if string(st.Tablet.StartKey) != string(rowKey("m")) || string(st.Tablet.EndKey) != string(hi) || st.MergingInto != 0 {
				return fmt.Errorf("store %d: tablet 2 is [%x, %x) merging into %d", id, st.Tablet.StartKey, st.Tablet.EndKey, st.MergingInto)
			}
		}
		return nil
	})
}

// A follower that catches up by snapshot on a tablet frozen for a merge is
// frozen too (it once came out unfrozen, and would have applied writes the
// other replicas refused, and failed the merge's commit).
func TestFrozenTabletSnapshotStaysFrozen(t *testing.T) {
	recoverAfter := time.Duration(-1)
	var follower uint64
	c, _ := abandonedMerge(t, &recoverAfter, func(o *store.Options) {
		o.RaftLogTruncateEntries, o.RaftLogMaxEntries = 1, 1
		o.Knobs.DisableTruncationMinMatch = true
	}, func(c *storetest.Cluster, leader uint64) {
		follower = leader%3 + 1
		c.Stop(follower)
	})
	leader := c.WaitLeader(2)
	testutils.SucceedsSoon(t, func() error {
		st, err := c.Nodes[leader].Store.TabletStatus(2)
		if err != nil {
			return err
		}
		if st.MergingInto != 1 {
			return fmt.Errorf("leader: tablet 2 merging into %d", st.MergingInto)
		}
		return nil
	})
	// The leader truncates its log past the freeze, so the follower can
	// only catch up by snapshot. The log keeps RaftLogTruncateEntries (1)
	// entries: when a truncation (every 10 ticks) ran before the freeze
	// applied, the freeze is that last entry, and a frozen tablet takes
	// no write that would push it out. A new leader appends an empty
	// entry, so the leadership moves to the other live store first.
	frozen, err := c.Nodes[leader].Store.TabletStatus(2)
	if err != nil {
		t.Fatal(err)
	}
	other := 6 - leader - follower
	ctx := ctxT(t, 60*time.Second)
	testutils.SucceedsSoon(t, func() error {
		if l := c.Leader(2); l != other {
			_, err := c.Nodes[leader].Client.TransferLeader(ctx, &kvpb.TransferLeaderRequest{Header: &kvpb.RequestHeader{TabletId: 2}, ToStoreId: other})
			return fmt.Errorf("tablet 2 led by %d, want %d (%v)", l, other, err)
		}
		return nil
	})
	leader = other
	testutils.SucceedsSoon(t, func() error {
		idx, err := c.Nodes[leader].Store.TruncatedIndexForTest(ctx, 2)
		if err != nil {
			return err
		}
		if idx < frozen.AppliedIndex {
			return fmt.Errorf("leader truncated its log to %d, not yet past %d", idx, frozen.AppliedIndex)
		}
		return nil
	})
	c.Restart(follower)
	testutils.SucceedsSoon(t, func() error {
		lst, err := c.Nodes[leader].Store.TabletStatus(2)
		if err != nil {
			return err
		}
		st, err := c.Nodes[follower].Store.TabletStatus(2)
		if err != nil {
			return err
		}
		if st.AppliedIndex < lst.AppliedIndex {
			return fmt.Errorf("follower applied %d of %d", st.AppliedIndex, lst.AppliedIndex)
		}
		if st.MergingInto != 1 {
			return fmt.Errorf("follower: tablet 2 merging into %d after catching up", st.MergingInto)
		}
		return nil
	})
}

// orphanAfterMerge leaves store f with an orphan: tablet 2 is frozen on
// every store, f stops, and the other two finish the merge (merge
// recovery) and truncate tablet 1's log past it, so f can only catch up
// by snapshot and its replica of tablet 2 can never elect a leader. It
// returns f, the merged descriptor and f's descriptor of tablet 1 from
// before the merge. With blockSnapshots, f restarts with snapshots to it
// failing.
func orphanAfterMerge(t *testing.T, blockSnapshots bool) (c *storetest.Cluster, f uint64, merged, before *metapb.TabletDescriptor) {
	t.Helper()
	// Recovery finishes the abandoned merge 4s after the freeze; f stops
	// before that.
	recoverAfter := 4 * time.Second
	c, hi := abandonedMerge(t, &recoverAfter, func(o *store.Options) {
		o.RaftLogTruncateEntries, o.RaftLogMaxEntries = 1, 1
		o.Knobs.DisableTruncationMinMatch = true
	}, nil)
	ctx := ctxT(t, 60*time.Second)
	leader := c.WaitLeader(2)
	f = leader%3 + 1
	testutils.SucceedsSoon(t, func() error {
		st, err := c.Nodes[f].Store.TabletStatus(2)
		if err != nil || st.MergingInto != 1 {
			return fmt.Errorf("store %d has not applied the freeze: %v", f, err)
		}
		return nil
	})
	st, err := c.Nodes[f].Store.TabletStatus(1)
	if err != nil {
		t.Fatal(err)
	}
	before = st.Tablet
	c.Stop(f)
	testutils.SucceedsSoon(t, func() error {
		var err error
		merged, err = mergedOn(c, hi, f)
		return err
	})
	l1 := c.WaitLeader(1)
	ls, err := c.Nodes[l1].Store.TabletStatus(1)
	if err != nil {
		t.Fatal(err)
	}
	// The log keeps its last entry: one more write lets the merge go.
	if err := c.Put(ctx, 1, "z-new", "x"); err != nil {
		t.Fatal(err)
	}
	testutils.SucceedsSoon(t, func() error {
		tr, err := c.Nodes[l1].Store.TruncatedIndexForTest(ctx, 1)
		if err != nil || tr < ls.AppliedIndex {
			return fmt.Errorf("tablet 1's log truncated to %d, want %d (%v)", tr, ls.AppliedIndex, err)
		}
		return nil
	})
	c.Net.BlockSnapshots(f, blockSnapshots)
	c.Restart(f)
	return c, f, merged, before
}

// servesMerged waits until store f holds exactly one replica, tablet 1
// over the merged range, and serves both halves' rows once it leads.
func servesMerged(t *testing.T, c *storetest.Cluster, f uint64, merged *metapb.TabletDescriptor) {
	t.Helper()
	ctx := ctxT(t, 60*time.Second)
	s := c.Nodes[f].Store
	testutils.SucceedsSoon(t, func() error {
		tablets := s.Tablets()
		if len(tablets) != 1 || tablets[0].TabletId != 1 || string(tablets[0].EndKey) != string(merged.EndKey) {
			return fmt.Errorf("store %d holds %v, want tablet 1 over the merged range", f, tablets)
		}
		return nil
	})
	testutils.SucceedsSoon(t, func() error {
		if l := c.Leader(1); l == 0 {
			return fmt.Errorf("tablet 1 has no leader")
		} else if l != f {
			_, err := c.Nodes[l].Client.TransferLeader(ctx, &kvpb.TransferLeaderRequest{Header: &kvpb.RequestHeader{TabletId: 1}, ToStoreId: f})
			return fmt.Errorf("tablet 1 led by %d (%v)", l, err)
		}
		return nil
	})
	for row, want := range map[string]string{"c": "before", "t": "before", "z-new": "x"} {
		if v, err := getOn(ctx, c, f, row); err != nil || v != want {
			t.Fatalf("store %d: row %q = %q, %v; want %q", f, row, v, err, want)
		}
	}
}

// A store that was down while a merge committed returns with a replica of
// the absorbed tablet whose peers are gone. The merged tablet's snapshot
// overlaps it; its newer epoch proves the orphan merged away, so the
// store destroys it and installs the snapshot (it once refused the
// snapshot for good, and the store never caught up).
func TestMergeOrphanReplacedBySnapshot(t *testing.T) {
	c, f, merged, _ := orphanAfterMerge(t, false)
	servesMerged(t, c, f, merged)
}

// The placement driver's path: told the tablet covering the orphan's start
// key (PD forgets merged tablets), the store destroys the orphan; a
// descriptor that does not cover it, or is not newer, changes nothing.
func TestMergeOrphanDestroyedWhenSuperseded(t *testing.T) {
	c, f, merged, before := orphanAfterMerge(t, true)
	ctx := ctxT(t, 30*time.Second)
	s := c.Nodes[f].Store
	if gone, err := s.DestroyIfSuperseded(ctx, 2, before); err != nil || gone {
		t.Fatalf("destroyed by a descriptor not covering it: %v %v", gone, err)
	}
	if st, err := s.TabletStatus(2); err != nil {
		t.Fatalf("orphan gone too early: %v", err)
	} else if gone, err := s.DestroyIfSuperseded(ctx, 2, st.Tablet); err != nil || gone {
		t.Fatalf("destroyed by its own descriptor: %v %v", gone, err)
	}
	// f holds a replica of the merged tablet (tablet 1): it retires the
	// orphan itself, by applying CommitMerge from its log or when the
	// merged tablet's snapshot arrives; destroying the orphan first would
	// leave a CommitMerge without its source.
	if gone, err := s.DestroyIfSuperseded(ctx, 2, merged); err != nil || gone {
		t.Fatalf("orphan destroyed while this store still has the merged tablet's replica: %v %v", gone, err)
	}
	// The same when the descriptor covering the orphan's start is another
	// tablet's (the merged tablet split since, at the merge's boundary):
	// f's lagging tablet 1 still has CommitMerge to apply (the soak found
	// a store stopped by "source tablet has no replica here").
	splitOff := &metapb.TabletDescriptor{TabletId: 98, StartKey: merged.EndKey, Epoch: &metapb.Epoch{Version: merged.Epoch.Version + 1, ConfVersion: merged.Epoch.ConfVersion}}
	if st, err := s.TabletStatus(2); err == nil {
		splitOff.StartKey, splitOff.EndKey = st.Tablet.StartKey, st.Tablet.EndKey
	}
	if gone, err := s.DestroyIfSuperseded(ctx, 2, splitOff); err != nil || gone {
		t.Fatalf("orphan destroyed while a lagging replica here may still merge it: %v %v", gone, err)
	}
	c.Net.BlockSnapshots(f, false)
	servesMerged(t, c, f, merged)
	if _, err := s.TabletStatus(2); err == nil {
		t.Fatal("the orphan outlived the merged tablet's snapshot")
	}
	// Without a local replica of the merged tablet, the placement
	// driver's descriptor is what retires an orphan.
	if gone, err := s.DestroyIfSuperseded(ctx, 1, &metapb.TabletDescriptor{TabletId: 99, StartKey: merged.StartKey, EndKey: merged.EndKey,
		Epoch: &metapb.Epoch{Version: merged.Epoch.Version + 1, ConfVersion: merged.Epoch.ConfVersion}}); err != nil || !gone {
		t.Fatalf("a replica superseded by a tablet with no replica here was kept: %v %v", gone, err)
	}
}

// A merge frozen while the target's replica later moved off the store
// leading the frozen tablet cannot be decided locally; the placement
// driver's descriptor of the target decides it: a membership change of
// the target (conf version past the recorded epoch, same version) proves
// no CommitMerge can apply, and the merge is rolled back. A split or merge
// of the target (a newer version) or no change decide nothing.
func TestMergeRolledBackWhenTargetMembershipChanged(t *testing.T) {
	recoverAfter := time.Duration(-1)
	c, _ := abandonedMerge(t, &recoverAfter, nil, nil)
	ctx := ctxT(t, 60*time.Second)
	leader := c.WaitLeader(2)
	st, err := c.Nodes[leader].Store.TabletStatus(1)
	if err != nil {
		t.Fatal(err)
	}
	target := func(dv, dc uint64) *metapb.TabletDescriptor {
		d := proto.Clone(st.Tablet).(*metapb.TabletDescriptor)
		d.Epoch.Version += dv
		d.Epoch.ConfVersion += dc
		return d
	}
	for _, tc := range []struct {
		name   string
		dv, dc uint64
	}{{"unchanged", 0, 0}, {"split or merged", 1, 1}, {"split", 1, 0}} {
		rolled, err := c.Nodes[leader].Store.RollBackMergeIfTargetChanged(ctx, 2, target(tc.dv, tc.dc))
		if err != nil || rolled {
			t.Fatalf("%s target: rolled back %v (%v), want no decision", tc.name, rolled, err)
		}
	}
	short := ctxT(t, time.Second)
	if err := c.Put(short, 2, "u", "x"); err == nil {
		t.Fatal("tablet 2 took a write while still frozen")
	}
	rolled, err := c.Nodes[leader].Store.RollBackMergeIfTargetChanged(ctx, 2, target(0, 1))
	if err != nil || !rolled {
		t.Fatalf("target with a membership change: rolled back %v (%v), want a rollback", rolled, err)
	}
	unfrozen(ctx, t, c)
}

// mergedOn checks that every store but skip has merged tablet 2 into
// tablet 1, which now ends at hi, and returns tablet 1's descriptor.
func mergedOn(c *storetest.Cluster, hi []byte, skip uint64) (*metapb.TabletDescriptor, error) {
	var merged *metapb.TabletDescriptor
	for id, n := range c.Nodes {
		if id == skip {
			continue
		}
		if _, err := n.Store.TabletStatus(2); err == nil {
			return nil, fmt.Errorf("store %d still has tablet 2", id)
		}
		st, err := n.Store.TabletStatus(1)
		if err != nil {
			return nil, err
		}
		if string(st.Tablet.EndKey) != string(hi) {
			return nil, fmt.Errorf("store %d: tablet 1 ends at %x", id, st.Tablet.EndKey)
		}
		merged = st.Tablet
	}
	return merged, nil
}

// A tablet frozen for a merge into a target that no longer exists (it
// merged into its own neighbour first, so nothing can ever absorb the
// frozen tablet) is rolled back, but only by a store that holds no
// replica of the target: one that does decides from it locally.
func TestMergeRolledBackWhenTargetVanished(t *testing.T) {
	recoverAfter := time.Duration(-1)
	c, _ := abandonedMerge(t, &recoverAfter, nil, nil)
	ctx := ctxT(t, 60*time.Second)
	leader := c.WaitLeader(2)
	s := c.Nodes[leader].Store
	if rolled, err := s.RollBackMergeOfVanishedTarget(ctx, 2, 1); err != nil || rolled {
		t.Fatalf("rolled back %v (%v) while this store holds the target's replica", rolled, err)
	}
	// The target's replica leaves this store: a newer descriptor without it.
	st, err := s.TabletStatus(1)
	if err != nil {
		t.Fatal(err)
	}
	gone := proto.Clone(st.Tablet).(*metapb.TabletDescriptor)
	gone.Epoch.ConfVersion++
	gone.Replicas = nil
	for _, r := range st.Tablet.Replicas {
		if r.StoreId != leader {
			gone.Replicas = append(gone.Replicas, r)
		}
	}
	if ok, err := s.DestroyIfRemoved(ctx, gone); err != nil || !ok {
		t.Fatalf("could not remove the target's replica here: %v %v", ok, err)
	}
	rolled, err := s.RollBackMergeOfVanishedTarget(ctx, 2, 1)
	if err != nil || !rolled {
		t.Fatalf("rolled back %v (%v), want a rollback", rolled, err)
	}
	unfrozen(ctx, t, c)
}

// unfrozen checks that tablet 2, rolled back from a merge, takes and
// serves writes and is frozen on no store.
func unfrozen(ctx context.Context, t *testing.T, c *storetest.Cluster) {
	t.Helper()
	if err := c.Put(ctx, 2, "u", "after"); err != nil {
		t.Fatal(err)
	}
	if err := c.MustRead(ctx, 2, "u", "after"); err != nil {
		t.Fatal(err)
	}
	testutils.SucceedsSoon(t, func() error {
		for id, n := range c.Nodes {
			st, err := n.Store.TabletStatus(2)
			if err != nil {
				return fmt.Errorf("store %d: %v", id, err)
			}
			if st.MergingInto != 0 {
				return fmt.Errorf("store %d: tablet 2 still merging into %d", id, st.MergingInto)
			}
		}
		return nil
	})
}
