package placementdriver

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	mathrand "math/rand"
	"math/rand/v2"
	"sort"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/shaledb/shale/internal/keys"
	"github.com/shaledb/shale/placementdriver/schedule"
	"github.com/shaledb/shale/proto/metapb"
	"github.com/shaledb/shale/proto/pdpb"
)

// bootstrapTabletID is the ID of the first tablet, covering the whole key
// space; kvTableID is the raw key/value table every cluster has.
const (
	bootstrapTabletID = 1
	kvTableID         = 1
	kvTableName       = "kv"
)

// cluster is the leader's view of the cluster, loaded from the metadata
// group when the member becomes leader and kept current by heartbeats.
// Stores' liveness and tablets' statistics live only here (rebuilt from
// heartbeats after a failover); everything else is persisted first.
type cluster struct {
	s     *Server
	meta  metadata
	term  uint64
	alloc *idAllocator
	tso   *tsOracle

	clusterID uint64

	mu sync.Mutex
	// catalogMu serializes SQL schema updates (read-check-write of a table).
	catalogMu     sync.Mutex
	config        Config
	stores        map[uint64]*pdpb.StoreInfo
	lastHeartbeat map[uint64]time.Time
	storeCatalog  map[uint64]uint64 // catalog version each store reported
	// view is the scheduler's model of stores and tablets (key-ordered);
	// infos holds each tablet's latest full report for routing answers.
	view           *schedule.Cluster
	infos          map[uint64]*pdpb.TabletInfo
	coord          *schedule.Coordinator
	ids            idReserve
	hotSince       map[uint64]time.Time
	rangeSince     map[uint64]time.Time // when each tablet's range last changed
	tables         map[uint64]*metapb.TableSchema
	dropped        map[uint64]uint64 // table ID → catalog version of the drop
	catalogVersion uint64
	bootstrap      *metapb.TabletDescriptor
	safePoints     safePoints  // GC safe points (safepoint.go)
	quotas         quotaShares // each store's quota shares (quota.go)
}

func loadCluster(ctx context.Context, s *Server, term uint64) (*cluster, error) {
	m := s.meta
	c := &cluster{
		s: s, meta: m, term: term,
		alloc:         &idAllocator{meta: m},
		tso:           &tsOracle{meta: m, now: time.Now},
		stores:        map[uint64]*pdpb.StoreInfo{},
		lastHeartbeat: map[uint64]time.Time{},
		storeCatalog:  map[uint64]uint64{},
		view:          schedule.NewCluster(nil, nil),
		infos:         map[uint64]*pdpb.TabletInfo{},
		hotSince:      map[uint64]time.Time{},
		rangeSince:    map[uint64]time.Time{},
		tables:        map[uint64]*metapb.TableSchema{},
		dropped:       map[uint64]uint64{},
		config:        s.opts.Schedule,
	}
	c.ids.c = c
	// The cluster ID is created once, by the first leader.
	v, ok, err := m.get(ctx, rowClusterID)
	if err != nil {
		return nil, err
	}
	if !ok {
		id := rand.Uint64() | 1
		if won, err := m.cas(ctx, rowClusterID, nil, u64(id)); err != nil {
			return nil, err
		} else if !won {
			return nil, errNotLeaderAnymore
		}
		v = u64(id)
		s.log.Info("pd created cluster", "cluster_id", id)
	}
	if c.clusterID, err = decodeU64(v); err != nil {
		return nil, err
	}
	if err := c.alloc.load(ctx); err != nil {
		return nil, err
	}
	if err := c.tso.load(ctx); err != nil {
		return nil, err
	}
	if v, ok, err := m.get(ctx, rowCatalogVersion); err != nil {
		return nil, err
	} else if ok {
		if c.catalogVersion, err = decodeU64(v); err != nil {
			return nil, err
		}
	}
	if v, ok, err := m.get(ctx, rowConfig); err != nil {
		return nil, err
	} else if ok {
		if err := json.Unmarshal(v, &c.config); err != nil {
			return nil, fmt.Errorf("pd: corrupt config: %w", err)
		}
		c.config = c.config.withDefaults()
	}
	if v, ok, err := m.get(ctx, rowBootstrap); err != nil {
		return nil, err
	} else if ok {
		c.bootstrap = &metapb.TabletDescriptor{}
		if err := proto.Unmarshal(v, c.bootstrap); err != nil {
			return nil, err
		}
	}
	now := time.Now()
	rows, err := m.scan(ctx, prefixStore)
	if err != nil {
		return nil, err
	}
	for _, v := range rows {
		var si pdpb.StoreInfo
		if err := proto.Unmarshal(v, &si); err != nil {
			return nil, err
		}
		if si.Stats == nil {
			si.Stats = &pdpb.StoreStats{}
		}
		c.stores[si.Store.StoreId] = &si
		// A new leader has heard nobody yet; give every store a full
		// heartbeat timeout before calling it disconnected.
		c.lastHeartbeat[si.Store.StoreId] = now
		c.view.PutStore(schedule.StoreFromProto(&si, 0))
	}
	if rows, err = m.scan(ctx, prefixTablet); err != nil {
		return nil, err
	}
	for _, v := range rows {
		var d metapb.TabletDescriptor
		if err := proto.Unmarshal(v, &d); err != nil {
			return nil, err
		}
		c.putTablet(&pdpb.TabletReport{Tablet: &d, Stats: &pdpb.TabletStats{}}, now)
	}
	if rows, err = m.scan(ctx, prefixTable); err != nil {
		return nil, err
	}
	for _, v := range rows {
		var t metapb.TableSchema
		if err := proto.Unmarshal(v, &t); err != nil {
			return nil, err
		}
		c.tables[t.TableId] = &t
	}
	if rows, err = m.scan(ctx, prefixDropped); err != nil {
		return nil, err
	}
	for row, v := range rows {
		var id uint64
		if _, err := fmt.Sscanf(strings.TrimPrefix(row, prefixDropped), "%x", &id); err != nil {
			return nil, err
		}
		if c.dropped[id], err = decodeU64(v); err != nil {
			return nil, err
		}
	}
	c.coord = schedule.NewCoordinator(c.config.scheduleConfig(), &c.ids, mathrand.New(mathrand.NewSource(int64(term))))
	return c, nil
}

func (c *cluster) checkHeader(h *pdpb.Header) error {
	if id := h.GetClusterId(); id != 0 && id != c.clusterID {
		return status.Errorf(codes.FailedPrecondition, "cluster id mismatch: request is for cluster %d, this is cluster %d", id, c.clusterID)
	}
	return nil
}

func (c *cluster) persistStore(ctx context.Context, si *pdpb.StoreInfo) error {
	stored := &pdpb.StoreInfo{Store: si.Store, State: persistentState(si.State), SnapshotLimit: si.SnapshotLimit}
	v, err := proto.Marshal(stored)
	if err != nil {
		return err
	}
	return c.meta.put(ctx, map[string][]byte{idRow(prefixStore, si.Store.StoreId): v})
}

// persistentState: only Offline and Tombstone survive a PD failover; the
// others are derived from heartbeats.
func persistentState(s pdpb.StoreState) pdpb.StoreState {
	if s == pdpb.StoreState_OFFLINE || s == pdpb.StoreState_TOMBSTONE {
		return s
	}
	return pdpb.StoreState_UP
}

func (c *cluster) registerStore(ctx context.Context, st *metapb.Store) (uint64, error) {
	if st.GetAddress() == "" {
		return 0, status.Error(codes.InvalidArgument, "store address is required")
	}
	c.mu.Lock()
	for id, si := range c.stores {
		if si.Store.Address == st.Address && id != st.StoreId && si.State != pdpb.StoreState_TOMBSTONE {
			c.mu.Unlock()
			return 0, status.Errorf(codes.AlreadyExists, "address %s is already used by store %d", st.Address, id)
		}
	}
	if si, ok := c.stores[st.StoreId]; ok && si.State == pdpb.StoreState_TOMBSTONE {
		c.mu.Unlock()
		return 0, status.Errorf(codes.FailedPrecondition, "store %d was removed from the cluster (tombstone); wipe its data directory to join as a new store", st.StoreId)
	}
	c.mu.Unlock()
	id := st.StoreId
	if id == 0 {
		var err error
		if id, err = c.alloc.alloc(ctx, 1); err != nil {
			return 0, err
		}
	}
	c.mu.Lock()
	si, ok := c.stores[id]
	changed := !ok || si.Store.Address != st.Address || (len(st.Labels) > 0 && !equalLabels(si.Store.Labels, st.Labels))
	if !ok {
		si = &pdpb.StoreInfo{Stats: &pdpb.StoreStats{}}
		c.stores[id] = si
	}
	labels := st.Labels
	if len(labels) == 0 && si.Store != nil {
		labels = si.Store.Labels // set with shale ctl store label
	}
	si.Store = &metapb.Store{StoreId: id, Address: st.Address, Labels: labels}
	if si.State != pdpb.StoreState_OFFLINE {
		si.State = pdpb.StoreState_UP
	}
	c.lastHeartbeat[id] = time.Now()
	c.view.PutStore(schedule.StoreFromProto(si, 0))
	snapshot := proto.Clone(si).(*pdpb.StoreInfo)
	c.mu.Unlock()
	if changed {
		if err := c.persistStore(ctx, snapshot); err != nil {
			return 0, err
		}
	}
	return id, nil
}

func equalLabels(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// storeHeartbeat records a store's stats and tells it what changed.
func (c *cluster) storeHeartbeat(ctx context.Context, req *pdpb.StoreHeartbeatRequest) (*pdpb.StoreHeartbeatResponse, error) {
	c.mu.Lock()
	si, ok := c.stores[req.StoreId]
	if !ok {
		c.mu.Unlock()
		return nil, status.Errorf(codes.NotFound, "store %d is not registered", req.StoreId)
	}
	if req.Stats != nil {
		si.Stats = req.Stats
	}
	now := time.Now()
	c.lastHeartbeat[req.StoreId] = now
	c.storeCatalog[req.StoreId] = req.CatalogVersion
	si.LastHeartbeatUnixMs = now.UnixMilli()
	if si.State == pdpb.StoreState_DISCONNECTED || si.State == pdpb.StoreState_DOWN {
		si.State = pdpb.StoreState_UP
	}
	c.view.PutStore(schedule.StoreFromProto(si, 0))
	resp := &pdpb.StoreHeartbeatResponse{CatalogVersion: c.catalogVersion, Tombstoned: si.State == pdpb.StoreState_TOMBSTONE, GcSafePoint: c.gcSafePoint()}
	for _, t := range c.tables {
		if t.Version > req.CatalogVersion {
			resp.Schemas = append(resp.Schemas, t)
		}
	}
	for id, v := range c.dropped {
		if v > req.CatalogVersion {
			resp.DroppedTables = append(resp.DroppedTables, id)
		}
	}
	needBootstrap := c.bootstrap == nil
	boot := c.bootstrap
	c.mu.Unlock()

	if needBootstrap {
		var err error
		if boot, err = c.maybeBootstrap(ctx); err != nil {
			return nil, err
		}
	}
	resp.Quotas = c.storeQuotas(ctx, req.StoreId)
	if boot != nil && c.tabletInfo(boot.TabletId) == nil {
		// Not reported by any leader yet: keep telling its stores.
		for _, r := range boot.Replicas {
			if r.StoreId == req.StoreId {
				resp.Bootstrap = append(resp.Bootstrap, boot)
			}
		}
	}
	return resp, nil
}

// maybeBootstrap creates the cluster's first tablet once MaxReplicas stores
// are up, exactly once (a compare-and-set on the bootstrap row), so no
// write is ever acknowledged by fewer replicas than configured.
func (c *cluster) maybeBootstrap(ctx context.Context) (*metapb.TabletDescriptor, error) {
	c.mu.Lock()
	if c.bootstrap != nil {
		b := c.bootstrap
		c.mu.Unlock()
		return b, nil
	}
	var up []*pdpb.StoreInfo
	for _, si := range c.stores {
		if si.State == pdpb.StoreState_UP {
			up = append(up, si)
		}
	}
	n := c.config.MaxReplicas
	labels := c.config.LocationLabels
	c.mu.Unlock()
	if len(up) < n {
		return nil, nil
	}
	chosen := pickSpread(up, n, labels)
	first, err := c.alloc.alloc(ctx, uint32(n))
	if err != nil {
		return nil, err
	}
	desc := &metapb.TabletDescriptor{TabletId: bootstrapTabletID, Epoch: &metapb.Epoch{Version: 1, ConfVersion: 1}}
	for i, si := range chosen {
		desc.Replicas = append(desc.Replicas, &metapb.Replica{ReplicaId: first + uint64(i), StoreId: si.Store.StoreId})
	}
	v, err := proto.Marshal(desc)
	if err != nil {
		return nil, err
	}
	won, err := c.meta.cas(ctx, rowBootstrap, nil, v)
	if err != nil {
		return nil, err
	}
	if !won {
		return nil, errNotLeaderAnymore
	}
	c.mu.Lock()
	c.bootstrap = desc
	c.mu.Unlock()
	c.s.log.Info("pd bootstrapped the first tablet", "replicas", len(desc.Replicas))
	// Every cluster has the raw key/value table.
	if _, err := c.createTable(ctx, &pdpb.CreateTableRequest{Name: kvTableName, Families: []*metapb.FamilySchema{{Name: "v", MaxVersions: 1}}}, kvTableID); err != nil {
		return nil, err
	}
	return desc, nil
}

// pickSpread chooses n stores, preferring ones that differ in the location
// labels (most general first), then lower IDs.
func pickSpread(stores []*pdpb.StoreInfo, n int, labels []string) []*pdpb.StoreInfo {
	sort.Slice(stores, func(i, j int) bool { return stores[i].Store.StoreId < stores[j].Store.StoreId })
	var chosen []*pdpb.StoreInfo
	used := map[string]bool{}
	for _, level := range labels {
		for _, si := range stores {
			if len(chosen) == n {
				return chosen
			}
			v := si.Store.Labels[level]
			if v == "" || used[level+"="+v] || contains(chosen, si) {
				continue
			}
			used[level+"="+v] = true
			chosen = append(chosen, si)
		}
	}
	for _, si := range stores {
		if len(chosen) == n {
			break
		}
		if !contains(chosen, si) {
			chosen = append(chosen, si)
		}
	}
	return chosen
}

func contains(list []*pdpb.StoreInfo, si *pdpb.StoreInfo) bool {
	for _, x := range list {
		if x == si {
			return true
		}
	}
	return false
}

// tabletInfo returns the latest report of a tablet, or nil.
func (c *cluster) tabletInfo(id uint64) *pdpb.TabletInfo {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.infos[id]
}

// putTablet records a report in the view and the routing table. It returns
// the scheduler's tablet (nil for a stale report), whether the descriptor
// changed (so must be persisted), and the tablets it replaced. c.mu held.
func (c *cluster) putTablet(r *pdpb.TabletReport, now time.Time) (*schedule.Tablet, bool, []uint64) {
	id := r.Tablet.TabletId
	// Load-based split needs the load sustained for split-qps-window.
	// hotSince is updated only once the report is taken (a stale leader's
	// stats count for nothing).
	hot := 0
	st := r.Stats
	isHot := st != nil && st.ReadQps+st.WriteQps > c.config.SplitQPS
	hotStart, ok := c.hotSince[id]
	if !ok {
		hotStart = now
	}
	if isHot && now.Sub(hotStart) >= c.config.SplitQPSWindow {
		hot = c.coord.Config.SplitHotReports
	}
	t := schedule.TabletFromProto(r, hot)
	old := c.infos[id]
	since, ok := c.rangeSince[id]
	if !ok || (old != nil && old.Tablet.Epoch.GetVersion() != r.Tablet.Epoch.GetVersion()) {
		since = now
	}
	t.RangeAge = now.Sub(since)
	// Stale: an older epoch, or a leader with an older raft term (see
	// schedule.Cluster.PutTablet). The term is kept in the view's tablet,
	// so it goes with the tablet when a split or merge replaces it.
	removed, err := c.view.PutTablet(t)
	if err != nil {
		return nil, false, nil
	}
	if isHot {
		c.hotSince[id] = hotStart
	} else {
		delete(c.hotSince, id)
	}
	c.rangeSince[id] = since
	changed := old == nil || newer(r.Tablet, old.Tablet)
	c.infos[id] = &pdpb.TabletInfo{Tablet: r.Tablet, LeaderStoreId: r.LeaderStoreId, Stats: r.Stats, BadReplicaIds: r.BadReplicaIds, Inconsistent: r.Inconsistent}
	var gone []uint64
	for _, x := range removed {
		if x.ID != id {
			delete(c.infos, x.ID)
			delete(c.hotSince, x.ID)
			delete(c.rangeSince, x.ID)
			gone = append(gone, x.ID)
		}
	}
	return t, changed, gone
}

// newer reports whether descriptor a has a later epoch than b.
func newer(a, b *metapb.TabletDescriptor) bool {
	if a.Epoch.GetVersion() != b.Epoch.GetVersion() {
		return a.Epoch.GetVersion() > b.Epoch.GetVersion()
	}
	return a.Epoch.GetConfVersion() > b.Epoch.GetConfVersion()
}

// tabletHeartbeat records leader reports and answers with commands.
func (c *cluster) tabletHeartbeat(ctx context.Context, req *pdpb.TabletHeartbeatRequest) (*pdpb.TabletHeartbeatResponse, error) {
	if err := c.ids.refill(ctx); err != nil {
		return nil, err
	}
	rows := map[string][]byte{}
	resp := &pdpb.TabletHeartbeatResponse{}
	now := time.Now()
	c.mu.Lock()
	for _, r := range req.Reports {
		if r.Tablet == nil || r.Tablet.Epoch == nil {
			continue
		}
		t, err := c.recordLocked(r, now, rows)
		if err != nil {
			c.mu.Unlock()
			return nil, err
		}
		if t == nil {
			continue // stale
		}
		c.s.cons.observe(r, now)
		if r.LeaderStoreId != req.StoreId {
			continue
		}
		// Every table gets tablets of its own, before anything else.
		ctl := c.coord.Controller
		if key := c.boundaryInsideLocked(r.Tablet); key != nil && !ctl.HasOperator(t.ID) {
			_ = ctl.AddOperator(schedule.NewSplitOperator(t, &c.ids, schedule.KindSplit, key, "table boundary"), now)
		}
		if cmd := ctl.Dispatch(t, now); cmd != nil {
			resp.Commands = append(resp.Commands, cmd)
		}
	}
	c.mu.Unlock()
	if err := c.meta.put(ctx, rows); err != nil {
		return nil, err
	}
	return resp, nil
}

// boundaryInside returns the first table boundary strictly inside the
// tablet: every table gets tablets of its own.
func (c *cluster) boundaryInsideLocked(d *metapb.TabletDescriptor) []byte {
	var best []byte
	consider := func(k []byte) {
		if bytes.Compare(k, d.StartKey) <= 0 || (len(d.EndKey) != 0 && bytes.Compare(k, d.EndKey) >= 0) {
			return
		}
		if best == nil || bytes.Compare(k, best) < 0 {
			best = k
		}
	}
	for id, t := range c.tables {
		consider(keys.TablePrefix(id))
		consider(keys.TablePrefix(id + 1))
		for _, row := range tableSplitRows(t) {
			consider(keys.RowKey(id, row))
		}
	}
	return best
}

// tableSplitRows are the extra split points a table was created with.
func tableSplitRows(t *metapb.TableSchema) [][]byte { return t.SplitRows }
