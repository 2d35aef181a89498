package kvnemesis

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/shaledb/shale/internal/keys"
	"github.com/shaledb/shale/internal/testcluster"
	"github.com/shaledb/shale/proto/kvpb"
	"github.com/shaledb/shale/proto/metapb"
	"github.com/shaledb/shale/proto/pdpb"
	"github.com/shaledb/shale/tabletserver/storetest"
)

// nemesis injects one fault at a time into the cluster and undoes it:
// topology changes (splits, merges, interrupted merges, leader transfers
// through PD, through the admin API and started by a follower, replica
// moves), failures (store restarts, partitions, message drops) and wall
// clocks jumping ahead (clock.go).
type nemesis struct {
	c       *testcluster.Cluster
	net     *storetest.Network
	h       *history
	rng     *rand.Rand
	tableID uint64
	keys    keyspace
	probe   *worker     // writes through PD's current routing (transferFromFollowerCut)
	dedup   *dedupProbe // held increments under clock jumps (clock.go)

	mu      sync.Mutex
	stopped map[int]bool // store index → down
}

type fault struct {
	name string
	run  func(ctx context.Context, rng *rand.Rand) error
}

// topology changes, run back to back with short pauses.
func (n *nemesis) topology() []fault {
	return []fault{
		{"split", n.split},
		{"split", n.split},
		{"merge", n.merge},
		{"merge", n.merge},
		{"merge-interrupted", n.mergeInterrupted},
		{"transfer-leader-pd", n.transferPD},
		{"transfer-leader-admin", n.transferAdmin},
		{"transfer-leader-follower", n.transferFromFollower},
		{"transfer-leader-follower-cut", n.transferFromFollowerCut},
		{"transfer-leader-follower-cut", n.transferFromFollowerCut},
		{"move-replica", n.move},
	}
}

// failures, each lasting a while, then healed.
func (n *nemesis) failures() []fault {
	return []fault{
		{"restart-store", n.restart},
		{"partition-store", n.partition},
		{"drop-messages", n.drops},
	}
}

// run injects faults until ctx ends: topology changes and failures in two
// loops, so that they overlap (a store is down through a merge, a
// partition cuts a transfer), and clock jumps under the dedup probe in a
// third.
func (n *nemesis) run(ctx context.Context) {
	var wg sync.WaitGroup
	failRng := rand.New(rand.NewPCG(n.rng.Uint64(), 1))
	clockRng := rand.New(rand.NewPCG(n.rng.Uint64(), 2))
	wg.Add(2)
	go func() {
		defer wg.Done()
		n.loop(ctx, n.failures(), failRng, time.Second)
	}()
	go func() {
		defer wg.Done()
		if n.dedup != nil {
			n.dedup.loop(ctx, clockRng)
		}
	}()
	n.loop(ctx, n.topology(), n.rng, 300*time.Millisecond)
	wg.Wait()
}

func (n *nemesis) loop(ctx context.Context, fs []fault, rng *rand.Rand, pause time.Duration) {
	for ctx.Err() == nil {
		f := fs[rng.IntN(len(fs))]
		fctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		err := f.run(fctx, rng)
		cancel()
		if err != nil {
			n.h.count("fault " + f.name + " (not injected)")
			n.h.sample("fault "+f.name, err)
		} else {
			n.h.count("fault " + f.name)
		}
		// Time passes between faults: the workload runs undisturbed.
		sleep(ctx, pause/2+time.Duration(rng.Int64N(int64(pause))))
	}
}

// sleep lets time pass (a fault lasting, a pause between faults); it is
// not a wait for a condition.
func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

func (n *nemesis) tablets(ctx context.Context) ([]*pdpb.TabletInfo, error) {
	resp, err := n.c.PD().ScanTablets(ctx, &pdpb.ScanTabletsRequest{StartKey: keys.TablePrefix(n.tableID), EndKey: keys.TablePrefix(n.tableID + 1)})
	if err != nil {
		return nil, err
	}
	return resp.Tablets, nil
}

func (n *nemesis) randomTablet(ctx context.Context, rng *rand.Rand) (*pdpb.TabletInfo, error) {
	ts, err := n.tablets(ctx)
	if err != nil {
		return nil, err
	}
	if len(ts) == 0 {
		return nil, fmt.Errorf("no tablets")
	}
	return pick(rng, ts), nil
}

func (n *nemesis) tabletClient(ctx context.Context, store uint64) (kvpb.TabletClient, func(), error) {
	return n.c.TabletClient(ctx, store)
}

func (n *nemesis) split(ctx context.Context, rng *rand.Rand) error {
	row := pick(rng, n.keys.current())
	key := keys.RowKey(n.tableID, []byte(row))
	resp, err := n.c.PD().GetTablet(ctx, &pdpb.GetTabletRequest{Key: key})
	if err != nil {
		return err
	}
	_, err = n.c.PD().AddOperator(ctx, &pdpb.AddOperatorRequest{TabletId: resp.Tablet.Tablet.TabletId, Op: &pdpb.AddOperatorRequest_SplitKey{SplitKey: key}})
	return err
}

// merge asks the leader of a tablet to absorb its right neighbour.
func (n *nemesis) merge(ctx context.Context, rng *rand.Rand) error {
	return n.mergeWithin(ctx, rng, 0)
}

// mergeInterrupted gives the merge a deadline so short that its proposer
// often gives up between freezing the right tablet and committing; the
// stores must then finish it or roll it back.
func (n *nemesis) mergeInterrupted(ctx context.Context, rng *rand.Rand) error {
	return n.mergeWithin(ctx, rng, time.Duration(20+rng.IntN(300))*time.Millisecond)
}

func (n *nemesis) mergeWithin(ctx context.Context, rng *rand.Rand, d time.Duration) error {
	ts, err := n.tablets(ctx)
	if err != nil {
		return err
	}
	if len(ts) < 2 {
		return fmt.Errorf("one tablet")
	}
	// A pair of neighbours on the same stores (merge needs that), if any.
	var left, right *pdpb.TabletInfo
	for _, i := range rng.Perm(len(ts) - 1) {
		if sameStores(ts[i].Tablet, ts[i+1].Tablet) {
			left, right = ts[i], ts[i+1]
			break
		}
	}
	if left == nil {
		return fmt.Errorf("no neighbouring tablets on the same stores")
	}
	if right.LeaderStoreId != left.LeaderStoreId {
		// One store must lead both halves.
		if err := n.transferTo(ctx, right, left.LeaderStoreId); err != nil {
			return fmt.Errorf("colocating leaders: %w", err)
		}
	}
	cl, done, err := n.tabletClient(ctx, left.LeaderStoreId)
	if err != nil {
		return err
	}
	defer done()
	if d > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, d)
		defer cancel()
	}
	_, err = cl.MergeTablets(ctx, &kvpb.MergeTabletsRequest{Header: &kvpb.RequestHeader{TabletId: left.Tablet.TabletId, Epoch: left.Tablet.Epoch}, RightTabletId: right.Tablet.TabletId})
	return err
}

func sameStores(a, b *metapb.TabletDescriptor) bool {
	if len(a.Replicas) != len(b.Replicas) {
		return false
	}
	on := map[uint64]bool{}
	for _, r := range a.Replicas {
		on[r.StoreId] = true
	}
	for _, r := range b.Replicas {
		if !on[r.StoreId] {
			return false
		}
	}
	return true
}

func voters(d *metapb.TabletDescriptor) []uint64 {
	var out []uint64
	for _, r := range d.Replicas {
		if r.Role == metapb.ReplicaRole_VOTER {
			out = append(out, r.StoreId)
		}
	}
	return out
}

func otherThan(xs []uint64, x uint64) []uint64 {
	var out []uint64
	for _, y := range xs {
		if y != x {
			out = append(out, y)
		}
	}
	return out
}

func (n *nemesis) transferPD(ctx context.Context, rng *rand.Rand) error {
	t, err := n.randomTablet(ctx, rng)
	if err != nil {
		return err
	}
	to := otherThan(voters(t.Tablet), t.LeaderStoreId)
	if len(to) == 0 {
		return fmt.Errorf("no other voter")
	}
	_, err = n.c.PD().AddOperator(ctx, &pdpb.AddOperatorRequest{TabletId: t.Tablet.TabletId, Op: &pdpb.AddOperatorRequest_TransferLeaderTo{TransferLeaderTo: pick(rng, to)}})
	return err
}

// transferAdmin calls the tablet server's TransferLeader on the leader.
func (n *nemesis) transferAdmin(ctx context.Context, rng *rand.Rand) error {
	t, err := n.randomTablet(ctx, rng)
	if err != nil {
		return err
	}
	return n.transferVia(ctx, rng, t, t.LeaderStoreId)
}

// transferFromFollower sends TransferLeader to a follower, naming another
// follower: raft forwards it to the leader, which sends MsgTimeoutNow.
func (n *nemesis) transferFromFollower(ctx context.Context, rng *rand.Rand) error {
	t, f, err := n.tabletAndFollower(ctx, rng)
	if err != nil {
		return err
	}
	return n.transferVia(ctx, rng, t, f)
}

// tabletAndFollower picks a tablet and a store holding one of its
// followers.
func (n *nemesis) tabletAndFollower(ctx context.Context, rng *rand.Rand) (*pdpb.TabletInfo, uint64, error) {
	t, err := n.randomTablet(ctx, rng)
	if err != nil {
		return nil, 0, err
	}
	fs := otherThan(voters(t.Tablet), t.LeaderStoreId)
	if len(fs) == 0 {
		return nil, 0, fmt.Errorf("no follower")
	}
	return t, pick(rng, fs), nil
}

// transferTo moves a tablet's leadership to a store and waits (briefly)
// until PD sees it there.
func (n *nemesis) transferTo(ctx context.Context, t *pdpb.TabletInfo, to uint64) error {
	if err := n.sendTransfer(ctx, t, t.LeaderStoreId, to); err != nil {
		return err
	}
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := n.c.PD().GetTabletByID(ctx, &pdpb.GetTabletByIDRequest{TabletId: t.Tablet.TabletId})
		if err == nil && resp.Tablet.LeaderStoreId == to {
			return nil
		}
		// Poll PD until the store's heartbeat reports the new leader.
		sleep(ctx, 50*time.Millisecond)
	}
	return fmt.Errorf("tablet %d: leadership not on store %d after 3s", t.Tablet.TabletId, to)
}

// transferFromFollowerCut starts a transfer at a follower and cuts the old
// leader off from raft messages from the moment it sends MsgTimeoutNow, for
// 1-2 s: it keeps believing it leads while clients that cached it still
// reach it. Meanwhile the probe client, routed afresh by PD, writes rows of
// the tablet through the new leader, so a read the old leader served from
// its lease would be stale.
func (n *nemesis) transferFromFollowerCut(ctx context.Context, rng *rand.Rand) error {
	t, f, err := n.tabletAndFollower(ctx, rng)
	if err != nil {
		return err
	}
	n.net.CutInboundOnTransfer(time.Duration(1000+rng.IntN(1000)) * time.Millisecond)
	if err := n.transferVia(ctx, rng, t, f); err != nil {
		n.net.CutInboundOnTransfer(0) // disarm
		return err
	}
	var rows []string
	for _, row := range n.keys.current() {
		k := keys.RowKey(n.tableID, []byte(row))
		if bytes.Compare(k, t.Tablet.StartKey) >= 0 && (len(t.Tablet.EndKey) == 0 || bytes.Compare(k, t.Tablet.EndKey) < 0) {
			rows = append(rows, row)
		}
	}
	if len(rows) == 0 || n.probe == nil {
		return nil
	}
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		row := pick(rng, rows)
		if _, err := n.probe.tbl.Locate(ctx, []byte(row), true); err != nil {
			continue
		}
		n.probe.writeRow(ctx, row)
	}
	return nil
}

func (n *nemesis) transferVia(ctx context.Context, rng *rand.Rand, t *pdpb.TabletInfo, via uint64) error {
	to := otherThan(otherThan(voters(t.Tablet), t.LeaderStoreId), via)
	if len(to) == 0 {
		return fmt.Errorf("no target voter")
	}
	return n.sendTransfer(ctx, t, via, pick(rng, to))
}

// sendTransfer asks store via to move t's leadership to store to; a
// follower forwards the request through raft.
func (n *nemesis) sendTransfer(ctx context.Context, t *pdpb.TabletInfo, via, to uint64) error {
	cl, done, err := n.tabletClient(ctx, via)
	if err != nil {
		return err
	}
	defer done()
	req := &kvpb.TransferLeaderRequest{Header: &kvpb.RequestHeader{TabletId: t.Tablet.TabletId, Epoch: t.Tablet.Epoch}, ToStoreId: to, Forward: via != t.LeaderStoreId}
	_, err = cl.TransferLeader(ctx, req)
	return err
}

// move replaces a random voter, the leader included, by a replica on a
// store that has none.
func (n *nemesis) move(ctx context.Context, rng *rand.Rand) error {
	t, err := n.randomTablet(ctx, rng)
	if err != nil {
		return err
	}
	stores, err := n.c.PD().ListStores(ctx, &pdpb.ListStoresRequest{})
	if err != nil {
		return err
	}
	has := map[uint64]bool{}
	for _, r := range t.Tablet.Replicas {
		has[r.StoreId] = true
	}
	var free []uint64
	for _, s := range stores.Stores {
		if !has[s.Store.StoreId] && s.State == pdpb.StoreState_UP {
			free = append(free, s.Store.StoreId)
		}
	}
	vs := voters(t.Tablet)
	if len(free) == 0 || len(vs) == 0 {
		return fmt.Errorf("no store to move to")
	}
	_, err = n.c.PD().AddOperator(ctx, &pdpb.AddOperatorRequest{TabletId: t.Tablet.TabletId, Op: &pdpb.AddOperatorRequest_Move{
		Move: &pdpb.AddOperatorRequest_MoveReplica{FromStore: pick(rng, vs), ToStore: pick(rng, free)}}})
	return err
}

// restart stops one store for a while and starts it again on the same
// data; merges, splits and moves go on without it meanwhile.
func (n *nemesis) restart(ctx context.Context, rng *rand.Rand) error {
	i := rng.IntN(len(n.c.Stores))
	n.c.StopStore(i)
	n.setStopped(i, true)
	// The store stays down for a while.
	sleep(ctx, time.Duration(500+rng.IntN(3000))*time.Millisecond)
	n.c.StartStore(i)
	n.setStopped(i, false)
	return nil
}

func (n *nemesis) setStopped(i int, down bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.stopped[i] = down
}

func (n *nemesis) storeIDs(ctx context.Context) ([]uint64, error) {
	resp, err := n.c.PD().ListStores(ctx, &pdpb.ListStoresRequest{})
	if err != nil {
		return nil, err
	}
	var ids []uint64
	for _, s := range resp.Stores {
		ids = append(ids, s.Store.StoreId)
	}
	return ids, nil
}

// partition cuts one store off from the others for a while.
func (n *nemesis) partition(ctx context.Context, rng *rand.Rand) error {
	ids, err := n.storeIDs(ctx)
	if err != nil {
		return err
	}
	n.net.Isolate(pick(rng, ids))
	// The partition lasts a while.
	sleep(ctx, time.Duration(500+rng.IntN(2500))*time.Millisecond)
	n.net.Heal()
	return nil
}

// drops loses and delays raft messages for a while.
func (n *nemesis) drops(ctx context.Context, rng *rand.Rand) error {
	n.net.SetFaults(rng.Int64(), 0.05+0.15*rng.Float64(), 10*time.Millisecond)
	// The lossy network lasts a while.
	sleep(ctx, time.Duration(500+rng.IntN(2500))*time.Millisecond)
	n.net.Heal()
	return nil
}

// heal undoes every fault: the network is whole and every store runs.
func (n *nemesis) heal() {
	n.net.Heal()
	n.mu.Lock()
	defer n.mu.Unlock()
	for i, down := range n.stopped {
		if down {
			n.c.StartStore(i)
			n.stopped[i] = false
		}
	}
}
