package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/shaledb/shale/internal/atomicfile"
	"github.com/shaledb/shale/internal/quota"
	"github.com/shaledb/shale/internal/stop"
	"github.com/shaledb/shale/placementdriver/pdclient"
	"github.com/shaledb/shale/proto/kvpb"
	"github.com/shaledb/shale/proto/metapb"
	"github.com/shaledb/shale/proto/pdpb"
	"github.com/shaledb/shale/tabletserver/store"
)

// identity is what a store remembers about the cluster it joined, in
// DATA_DIR/identity.json, so it never joins another cluster by mistake
// and keeps its store ID across restarts.
type identity struct {
	ClusterID uint64 `json:"cluster_id"`
	StoreID   uint64 `json:"store_id"`
	// Retired is a store this node retired because its data was corrupt
	// (retire.go); StoreID is then 0 until the node joins as a new store.
	Retired uint64 `json:"retired_store_id,omitempty"`
}

func identityPath(dir string) string { return filepath.Join(dir, "identity.json") }

func readIdentity(dir string) (identity, bool, error) {
	b, err := os.ReadFile(identityPath(dir))
	if errors.Is(err, os.ErrNotExist) {
		return identity{}, false, nil
	}
	if err != nil {
		return identity{}, false, err
	}
	var id identity
	if err := json.Unmarshal(b, &id); err != nil || (id.StoreID == 0 && id.Retired == 0) {
		return identity{}, false, fmt.Errorf("node: %s is corrupt: %v", identityPath(dir), err)
	}
	return id, true, nil
}

// writeIdentity writes the file durably (temp file, fsync, rename, fsync
// of the directory).
func writeIdentity(dir string, id identity) error {
	b, _ := json.Marshal(id)
	return atomicfile.Write(identityPath(dir), b, 0o644)
}

// joinCluster registers the store with the placement driver: a new store
// gets its ID from PD; a known one re-registers its address and labels.
func joinCluster(ctx context.Context, o Options) (*pdclient.Client, identity, error) {
	id, known, err := readIdentity(o.DataDir)
	if err != nil {
		return nil, id, err
	}
	if known && o.StoreID != 0 && o.StoreID != id.StoreID {
		return nil, id, fmt.Errorf("node: data directory %s belongs to store %d, not %d", o.DataDir, id.StoreID, o.StoreID)
	}
	cl, err := pdclient.New(o.PD, id.ClusterID, pdclient.WithTLS(o.TLS))
	if err != nil {
		return nil, id, err
	}
	if id.Retired != 0 {
		if id, err = finishRetire(ctx, o, cl, id, o.Logger); err != nil {
			cl.Close()
			return nil, id, err
		}
	}
	want := id.StoreID
	if want == 0 {
		want = o.StoreID
	}
	rctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	resp, err := cl.RegisterStore(rctx, &pdpb.RegisterStoreRequest{Store: &metapb.Store{StoreId: want, Address: o.Addr, Labels: o.Labels}})
	if err != nil {
		cl.Close()
		return nil, id, fmt.Errorf("node: registering with the placement driver at %v: %w", o.PD, err)
	}
	id = identity{ClusterID: resp.ClusterId, StoreID: resp.StoreId}
	if err := writeIdentity(o.DataDir, id); err != nil {
		cl.Close()
		return nil, id, err
	}
	return cl, id, nil
}

// pdResolver finds store addresses through the placement driver, caching
// them for a short while. The transport invalidates an address it cannot
// reach: a store restarted on another port would otherwise be dialled at
// its old one for the cache's whole lifetime (a restarted playground's
// stores, started one after another, each cached the others' addresses
// from before the restart and could not form quorums for 10 s).
type pdResolver struct {
	lookup func(ctx context.Context, storeID uint64) (string, error)
	mu     sync.Mutex
	m      map[uint64]resolved
}

type resolved struct {
	addr  string
	at    time.Time
	stale bool // the transport could not reach addr
	// refresh is how long after at an invalidated address is looked up
	// again: minRefresh, doubling up to resolveTTL while PD keeps giving
	// the same unreachable address.
	refresh time.Duration
}

const (
	resolveTTL = 10 * time.Second
	// minRefresh bounds the lookups an unreachable store costs: the
	// transport invalidates on every failed connection attempt, and a
	// store that is down (not moved) would otherwise cost a PD request
	// per reconnect backoff, from every store with a replica beside it.
	minRefresh = time.Second
)

func newPDResolver(cl *pdclient.Client) *pdResolver {
	return &pdResolver{m: map[uint64]resolved{}, lookup: func(ctx context.Context, storeID uint64) (string, error) {
		resp, err := cl.GetStore(ctx, &pdpb.GetStoreRequest{StoreId: storeID})
		if err != nil {
			return "", err
		}
		return resp.Store.Store.Address, nil
	}}
}

func (r *pdResolver) Resolve(storeID uint64) (string, error) {
	r.mu.Lock()
	e, ok := r.m[storeID]
	r.mu.Unlock()
	age := time.Since(e.at)
	if ok && age < resolveTTL && (!e.stale || age < e.refresh) {
		return e.addr, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	addr, err := r.lookup(ctx, storeID)
	if err != nil {
		if !ok {
			return "", err
		}
		// Stale beats nothing. Count the attempt as a lookup, so a PD
		// that cannot answer is not asked on every connection attempt.
		addr = e.addr
	}
	next := resolved{addr: addr, at: time.Now()}
	if ok && e.stale && addr == e.addr {
		// Unreachable where PD still says it is: the store is down, not
		// moved (or has not registered its new address yet). Should it
		// stay unreachable, ask less often.
		next.refresh = min(2*e.refresh, resolveTTL)
	}
	next.refresh = max(next.refresh, minRefresh)
	r.mu.Lock()
	r.m[storeID] = next
	r.mu.Unlock()
	return addr, nil
}

// Invalidate marks storeID's address as unreachable: the next Resolve at
// least minRefresh (more while the address stays unreachable) after the
// last lookup asks the PD again.
func (r *pdResolver) Invalidate(storeID uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if e, ok := r.m[storeID]; ok {
		e.stale = true
		r.m[storeID] = e
	}
}

// pdLoop heartbeats the placement driver and carries out its commands.
type pdLoop struct {
	s        *store.Store
	cl       *pdclient.Client
	log      *slog.Logger
	interval time.Duration
	storeID  uint64
	catalog  uint64

	gcCursor uint64 // last tablet replica GC looked at
	// gcSafePoint is the cluster's GC safe point as PD last said (only
	// moves forward; a new PD leader that has not loaded it says 0).
	gcSafePoint *atomic.Int64
	// quotas takes this store's quota shares from the heartbeat answers.
	quotas *quota.Limiter

	mu      sync.Mutex
	running map[uint64]bool // tablets with a command in progress
	stopper *stop.Stopper   // runs the loops and the commands
}

// start runs the heartbeats and replica GC until ctx ends or the stopper
// quiesces. Store and tablet heartbeats run on their own schedules so that
// a slow tablet report never delays the store's liveness signal.
func (p *pdLoop) start(ctx context.Context) error {
	for _, l := range []struct {
		name     string
		interval time.Duration
		fn       func(context.Context)
		opts     []stop.EveryOption
	}{
		{"node.store-heartbeat", p.interval, p.storeHeartbeat, []stop.EveryOption{stop.Immediately()}},
		{"node.tablet-heartbeat", p.interval, p.tabletHeartbeat, []stop.EveryOption{stop.Immediately()}},
		{"node.merges-awaiting-target", p.interval, p.mergesAwaitingTarget, []stop.EveryOption{stop.Immediately()}},
		{"node.replica-gc", replicaGCEvery * p.interval, p.replicaGC, nil},
	} {
		if err := p.stopper.Every(ctx, l.name, l.interval, l.fn, l.opts...); err != nil {
			return fmt.Errorf("node: %w", err)
		}
	}
	return nil
}

func (p *pdLoop) storeHeartbeat(ctx context.Context) {
	hctx, cancel := context.WithTimeout(ctx, p.interval+5*time.Second)
	defer cancel()
	resp, err := p.cl.StoreHeartbeat(hctx, &pdpb.StoreHeartbeatRequest{StoreId: p.storeID, Stats: p.s.StoreStats(), CatalogVersion: p.catalog})
	if err != nil {
		if ctx.Err() == nil {
			p.log.Warn("store heartbeat failed", "err", err)
		}
		return
	}
	ok := true
	for _, ts := range resp.Schemas {
		if err := p.s.PutTableSchema(ts); err != nil {
			p.log.Warn("installing table schema failed", "table", ts.Name, "err", err)
			ok = false
		}
	}
	for _, id := range resp.DroppedTables {
		if err := p.s.DropTable(hctx, id); err != nil {
			p.log.Warn("deleting a dropped table's data failed; will retry", "table_id", id, "err", err)
			ok = false
			continue
		}
		if err := p.s.RemoveTableSchema(id); err != nil {
			ok = false
		}
	}
	if ok {
		p.catalog = resp.CatalogVersion
	}
	for _, d := range resp.Bootstrap {
		if err := p.s.BootstrapTablet(d); err != nil {
			p.log.Warn("bootstrapping the first tablet failed", "err", err)
		}
	}
	if p.gcSafePoint != nil {
		for sp := resp.GcSafePoint; ; {
			cur := p.gcSafePoint.Load()
			if sp <= cur || p.gcSafePoint.CompareAndSwap(cur, sp) {
				break
			}
		}
	}
	if p.quotas != nil {
		p.quotas.Update(resp.Quotas)
	}
	if resp.Tombstoned {
		p.log.Error("the placement driver removed this store from the cluster; it holds no data any more and should be shut down")
	}
}

func (p *pdLoop) tabletHeartbeat(ctx context.Context) {
	reports := p.s.LeaderReports()
	if len(reports) == 0 {
		return
	}
	hctx, cancel := context.WithTimeout(ctx, p.interval+5*time.Second)
	defer cancel()
	resp, err := p.cl.TabletHeartbeat(hctx, &pdpb.TabletHeartbeatRequest{StoreId: p.storeID, Reports: reports})
	if err != nil {
		if ctx.Err() == nil {
			p.log.Warn("tablet heartbeat failed", "err", err)
		}
		return
	}
	for _, cmd := range resp.Commands {
		p.execute(ctx, cmd)
	}
}

// execute runs one command in the background, one at a time per tablet.
func (p *pdLoop) execute(ctx context.Context, cmd *pdpb.TabletCommand) {
	p.mu.Lock()
	if p.running[cmd.TabletId] {
		p.mu.Unlock()
		return
	}
	p.running[cmd.TabletId] = true
	p.mu.Unlock()
	done := func() {
		p.mu.Lock()
		delete(p.running, cmd.TabletId)
		p.mu.Unlock()
	}
	err := p.stopper.RunAsyncTask(ctx, "node.pd-command", func(ctx context.Context) {
		defer done()
		cctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		if err := p.apply(cctx, cmd); err != nil && ctx.Err() == nil {
			p.log.Log(ctx, commandFailureLevel(err), "placement command failed", "tablet", cmd.TabletId, "cmd", fmt.Sprintf("%T", cmd.Cmd), "err", err)
		}
	})
	if err != nil {
		done() // shutting down
	}
}

// commandFailureLevel is the log level of a failed placement command. A
// store that answers "not yet" (ResourceExhausted: a learner still
// receiving its snapshot, a transfer target not caught up) is expected
// while a replica moves, and PD sends the command again with the tablet's
// next heartbeat: a drain of one store logged about 500 of them a minute
// as warnings.
func commandFailureLevel(err error) slog.Level {
	if status.Code(err) == codes.ResourceExhausted {
		return slog.LevelDebug
	}
	return slog.LevelWarn
}

func (p *pdLoop) apply(ctx context.Context, cmd *pdpb.TabletCommand) error {
	h := &kvpb.RequestHeader{TabletId: cmd.TabletId, Epoch: cmd.Epoch}
	switch c := cmd.Cmd.(type) {
	case *pdpb.TabletCommand_ChangeReplicas_:
		req := &kvpb.ChangeReplicasRequest{Header: h}
		for _, ch := range c.ChangeReplicas.Changes {
			t := kvpb.ReplicaChange_ADD_LEARNER
			switch ch.Type {
			case pdpb.TabletCommand_ChangeReplicas_Change_PROMOTE_LEARNER:
				t = kvpb.ReplicaChange_PROMOTE_LEARNER
			case pdpb.TabletCommand_ChangeReplicas_Change_REMOVE:
				t = kvpb.ReplicaChange_REMOVE
			}
			req.Changes = append(req.Changes, &kvpb.ReplicaChange{Type: t, StoreId: ch.StoreId, ReplicaId: ch.ReplicaId})
		}
		_, err := p.s.ChangeReplicas(ctx, req)
		return err
	case *pdpb.TabletCommand_TransferLeader_:
		return p.s.TransferLeader(ctx, &kvpb.TransferLeaderRequest{Header: h, ToStoreId: c.TransferLeader.ToStoreId})
	case *pdpb.TabletCommand_Split_:
		key := c.Split.SplitKey
		if len(key) == 0 {
			var err error
			if key, err = p.s.MiddleKey(cmd.TabletId); err != nil || key == nil {
				return err
			}
		}
		_, err := p.s.Split(ctx, &kvpb.SplitTabletRequest{Header: h, SplitKey: key, NewTabletId: c.Split.NewTabletId, NewReplicaIds: c.Split.NewReplicaIds})
		return err
	case *pdpb.TabletCommand_Merge_:
		_, err := p.s.Merge(ctx, &kvpb.MergeTabletsRequest{Header: h, RightTabletId: c.Merge.RightTabletId})
		return err
	}
	return fmt.Errorf("unknown command %T", cmd.Cmd)
}

const (
	// replicaGCEvery: replica GC runs every this many heartbeat intervals.
	replicaGCEvery = 10
	// replicaGCBatch bounds the PD lookups of one replica-GC round.
	replicaGCBatch = 64
)

// replicaGC asks PD about replicas this store does not lead and destroys
// the ones PD's newer descriptors no longer list (removed while lagging;
// see store.DestroyIfRemoved). Each round checks a bounded batch,
// continuing where the last one stopped.
func (p *pdLoop) replicaGC(ctx context.Context) {
	ids := p.s.FollowerTablets()
	if len(ids) == 0 {
		return
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	start := sort.Search(len(ids), func(i int) bool { return ids[i] > p.gcCursor })
	for n := 0; n < min(replicaGCBatch, len(ids)); n++ {
		id := ids[(start+n)%len(ids)]
		p.gcCursor = id
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		resp, err := p.cl.GetTabletByID(cctx, &pdpb.GetTabletByIDRequest{TabletId: id})
		switch {
		case err == nil:
			if gone, _ := p.s.DestroyIfRemoved(cctx, resp.Tablet.Tablet); gone {
				p.log.Info("destroyed a replica that was removed from its tablet while lagging", "tablet", id)
			}
		case status.Code(err) == codes.NotFound:
			p.gcMerged(cctx, id)
		}
		cancel()
		if ctx.Err() != nil {
			return
		}
	}
}

// mergesAwaitingTarget asks PD about the target of every merge frozen on
// this store that local recovery cannot decide, because the target's
// replica moved off this store after PrepareMerge. PD's descriptor of the
// target decides: no CommitMerge can apply (roll back), or one applied and
// covers this replica's range (destroy it: an orphan that, leading other
// orphans, replica GC of followers never reaches).
func (p *pdLoop) mergesAwaitingTarget(ctx context.Context) {
	for _, m := range p.s.MergesAwaitingTarget() {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		resp, err := p.cl.GetTabletByID(cctx, &pdpb.GetTabletByIDRequest{TabletId: m.Target})
		if status.Code(err) == codes.NotFound {
			p.mergeOfVanishedTarget(cctx, m)
		}
		if err == nil {
			target := resp.Tablet.Tablet
			rolled, err := p.s.RollBackMergeIfTargetChanged(cctx, m.Tablet, target)
			if err != nil {
				p.log.Warn("rolling back a merge whose target moved away", "tablet", m.Tablet, "target", m.Target, "err", err)
			}
			// Or the merge applied on the target's stores and this
			// replica, led here among other orphans, was left behind.
			if !rolled && err == nil {
				if gone, _ := p.s.DestroyIfSuperseded(cctx, m.Tablet, target); gone {
					p.log.Info("destroyed a replica of a tablet merged away while its target's replica was elsewhere", "tablet", m.Tablet, "merged_into", m.Target)
				}
			}
		}
		cancel()
	}
}

// mergeOfVanishedTarget handles a frozen tablet whose merge target PD no
// longer knows (it merged into its own neighbour first): if PD still
// routes the frozen tablet's start key to the frozen tablet, the target
// never absorbed it, and the store rolls the merge back
// (store.RollBackMergeOfVanishedTarget).
func (p *pdLoop) mergeOfVanishedTarget(ctx context.Context, m store.MergeAwaitingTarget) {
	st, err := p.s.TabletStatus(m.Tablet)
	if err != nil {
		return
	}
	resp, err := p.cl.GetTablet(ctx, &pdpb.GetTabletRequest{Key: st.Tablet.StartKey})
	if err != nil || resp.GetTablet().GetTablet().GetTabletId() != m.Tablet {
		return
	}
	if _, err := p.s.RollBackMergeOfVanishedTarget(ctx, m.Tablet, m.Target); err != nil {
		p.log.Warn("rolling back a merge whose target merged away", "tablet", m.Tablet, "target", m.Target, "err", err)
	}
}

// gcMerged handles a tablet PD does not know: PD forgets a tablet merged
// into its left neighbour, so it asks PD which tablet covers the replica's
// start key and lets the store destroy the replica if that one proves it
// merged away (store.DestroyIfSuperseded). A tablet PD has not heard of
// yet (a fresh split) is covered by its older parent and is kept.
func (p *pdLoop) gcMerged(ctx context.Context, id uint64) {
	st, err := p.s.TabletStatus(id)
	if err != nil {
		return // uninitialized or gone: DestroyIfRemoved's business
	}
	resp, err := p.cl.GetTablet(ctx, &pdpb.GetTabletRequest{Key: st.Tablet.StartKey})
	if err != nil || resp.GetTablet().GetTablet() == nil {
		return
	}
	if gone, _ := p.s.DestroyIfSuperseded(ctx, id, resp.Tablet.Tablet); gone {
		p.log.Info("destroyed a replica of a tablet merged away while this store lagged", "tablet", id, "covered_by", resp.Tablet.Tablet.TabletId)
	}
}
