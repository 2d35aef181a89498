package placementdriver

import (
	"context"
	"encoding/json"
	"sort"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/protoadapt"

	"github.com/shaledb/shale/internal/keys"
	"github.com/shaledb/shale/proto/metapb"
	"github.com/shaledb/shale/proto/pdpb"
)

// notLeaderLocked builds the redirect answer of a follower.
func (s *Server) notLeaderLocked() error {
	detail := &pdpb.NotPDLeader{}
	msg := "this pd member is not the leader"
	if name, ok := s.names[s.mu.leaderID]; ok {
		detail.LeaderName = name
		detail.LeaderClientAddr = s.clientAddr(name)
		msg += "; the leader is " + name
		if detail.LeaderClientAddr != "" {
			msg += " at " + detail.LeaderClientAddr
		}
	} else {
		msg += "; no leader is elected yet"
	}
	st := status.New(codes.Unavailable, msg)
	if d, err := st.WithDetails(protoadapt.MessageV1Of(detail)); err == nil {
		st = d
	}
	return st.Err()
}

// service implements pdpb.PDServer on the leader.
type service struct {
	pdpb.UnimplementedPDServer
	s *Server
}

var _ pdpb.PDServer = (*service)(nil)

func (v *service) leader(h *pdpb.Header) (*cluster, error) {
	c, err := v.s.leader()
	if err != nil {
		return nil, err
	}
	return c, c.checkHeader(h)
}

func (v *service) GetMembers(ctx context.Context, _ *pdpb.GetMembersRequest) (*pdpb.GetMembersResponse, error) {
	resp := &pdpb.GetMembersResponse{Members: v.s.members()}
	v.s.mu.Lock()
	leaderID, c := v.s.mu.leaderID, v.s.mu.cluster
	v.s.mu.Unlock()
	for _, m := range resp.Members {
		if m.MemberId == leaderID {
			resp.Leader = m
		}
	}
	if c != nil {
		resp.ClusterId = c.clusterID
	} else {
		resp.ClusterId = v.s.localClusterID()
	}
	return resp, nil
}

func (v *service) RegisterStore(ctx context.Context, req *pdpb.RegisterStoreRequest) (*pdpb.RegisterStoreResponse, error) {
	c, err := v.leader(req.Header)
	if err != nil {
		return nil, err
	}
	if req.Store == nil {
		return nil, status.Error(codes.InvalidArgument, "no store given")
	}
	if err := c.checkStoreIdentity(ctx, req.Store); err != nil {
		v.s.log.Warn("refused a store registration", "store", req.Store.StoreId, "address", req.Store.Address, "err", err)
		return nil, err
	}
	id, err := c.registerStore(ctx, req.Store)
	if err != nil {
		return nil, err
	}
	return &pdpb.RegisterStoreResponse{ClusterId: c.clusterID, StoreId: id}, nil
}

func (v *service) StoreHeartbeat(ctx context.Context, req *pdpb.StoreHeartbeatRequest) (*pdpb.StoreHeartbeatResponse, error) {
	c, err := v.leader(req.Header)
	if err != nil {
		return nil, err
	}
	return c.storeHeartbeat(ctx, req)
}

func (v *service) TabletHeartbeat(ctx context.Context, req *pdpb.TabletHeartbeatRequest) (*pdpb.TabletHeartbeatResponse, error) {
	c, err := v.leader(req.Header)
	if err != nil {
		return nil, err
	}
	return c.tabletHeartbeat(ctx, req)
}

func (v *service) GetTablet(ctx context.Context, req *pdpb.GetTabletRequest) (*pdpb.GetTabletResponse, error) {
	c, err := v.leader(req.Header)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	var t *pdpb.TabletInfo
	if st := c.view.TabletForKey(req.Key); st != nil {
		t = c.infos[st.ID]
	}
	if t == nil {
		return nil, status.Errorf(codes.NotFound, "no tablet covers key %x (the cluster may not be bootstrapped yet)", req.Key)
	}
	return &pdpb.GetTabletResponse{Tablet: t}, nil
}

func (v *service) GetTabletByID(ctx context.Context, req *pdpb.GetTabletByIDRequest) (*pdpb.GetTabletResponse, error) {
	c, err := v.leader(req.Header)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	t := c.infos[req.TabletId]
	if t == nil {
		return nil, status.Errorf(codes.NotFound, "tablet %d not found", req.TabletId)
	}
	return &pdpb.GetTabletResponse{Tablet: t}, nil
}

const maxScanTablets = 1000

func (v *service) ScanTablets(ctx context.Context, req *pdpb.ScanTabletsRequest) (*pdpb.ScanTabletsResponse, error) {
	c, err := v.leader(req.Header)
	if err != nil {
		return nil, err
	}
	limit := int(req.Limit)
	if limit <= 0 || limit > maxScanTablets {
		limit = maxScanTablets
	}
	return &pdpb.ScanTabletsResponse{Tablets: c.scanTablets(req.StartKey, req.EndKey, limit)}, nil
}

func (v *service) GetStore(ctx context.Context, req *pdpb.GetStoreRequest) (*pdpb.GetStoreResponse, error) {
	c, err := v.leader(req.Header)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	si, ok := c.stores[req.StoreId]
	if !ok {
		return nil, status.Errorf(codes.NotFound, "store %d not found", req.StoreId)
	}
	// Copies: gRPC marshals after the lock is released.
	return &pdpb.GetStoreResponse{Store: proto.Clone(si).(*pdpb.StoreInfo)}, nil
}

func (v *service) ListStores(ctx context.Context, req *pdpb.ListStoresRequest) (*pdpb.ListStoresResponse, error) {
	c, err := v.leader(req.Header)
	if err != nil {
		return nil, err
	}
	return &pdpb.ListStoresResponse{Stores: c.storeList()}, nil
}

func (v *service) AllocID(ctx context.Context, req *pdpb.AllocIDRequest) (*pdpb.AllocIDResponse, error) {
	c, err := v.leader(req.Header)
	if err != nil {
		return nil, err
	}
	n := max(req.Count, 1)
	if n > 100000 {
		return nil, status.Error(codes.InvalidArgument, "at most 100000 IDs per call")
	}
	first, err := c.alloc.alloc(ctx, n)
	if err != nil {
		return nil, err
	}
	return &pdpb.AllocIDResponse{First: first, Count: n}, nil
}

func (v *service) GetTimestamp(ctx context.Context, req *pdpb.GetTimestampRequest) (*pdpb.GetTimestampResponse, error) {
	c, err := v.leader(req.Header)
	if err != nil {
		return nil, err
	}
	n := max(req.Count, 1)
	if n > 100000 {
		return nil, status.Error(codes.InvalidArgument, "at most 100000 timestamps per call")
	}
	first, err := c.tso.get(ctx, n)
	if err != nil {
		return nil, err
	}
	return &pdpb.GetTimestampResponse{First: first, Count: n}, nil
}

func (v *service) CreateTable(ctx context.Context, req *pdpb.CreateTableRequest) (*pdpb.CreateTableResponse, error) {
	c, err := v.leader(req.Header)
	if err != nil {
		return nil, err
	}
	t, err := c.createTable(ctx, req, 0)
	if err != nil {
		return nil, err
	}
	// Return once the stores know the table and its tablets exist and are
	// routable, so it can be used at once: the schema goes to every store
	// directly and each tablet in the way is split at all the table's
	// boundaries in one raft command, not one boundary per heartbeat.
	c.waitCatalog(ctx, t.Version, c.pushSchema(ctx, t))
	sctx, cancel := splitContext(ctx)
	defer cancel()
	if err := c.splitKeys(sctx, tableBoundaries(t)); err != nil {
		// The table exists; the boundary checker finishes the splits from
		// heartbeats, and the client reports which tablets are not ready.
		c.s.log.Warn("splitting a new table's tablets", "table", t.Name, "err", err)
	}
	return &pdpb.CreateTableResponse{Table: t}, nil
}

// splitContext bounds the splits of CreateTable so that the answer still
// reaches a client with a deadline: half a second before it, or 30s.
func splitContext(ctx context.Context) (context.Context, context.CancelFunc) {
	if d, ok := ctx.Deadline(); ok {
		return context.WithDeadline(ctx, d.Add(-500*time.Millisecond))
	}
	return context.WithTimeout(ctx, 30*time.Second)
}

// ReportSplit records every tablet a split produced, from the report of
// the store that led it.
func (v *service) ReportSplit(ctx context.Context, req *pdpb.ReportSplitRequest) (*pdpb.ReportSplitResponse, error) {
	c, err := v.leader(req.Header)
	if err != nil {
		return nil, err
	}
	if len(req.Reports) == 0 {
		return nil, status.Error(codes.InvalidArgument, "a split report needs the resulting tablets")
	}
	return &pdpb.ReportSplitResponse{}, c.recordReports(ctx, req.Reports)
}

// SplitTablets splits the tablets covering the keys so that each key
// starts a tablet, one batch split per tablet, and returns once PD routes
// them all.
func (v *service) SplitTablets(ctx context.Context, req *pdpb.SplitTabletsRequest) (*pdpb.SplitTabletsResponse, error) {
	c, err := v.leader(req.Header)
	if err != nil {
		return nil, err
	}
	if len(req.SplitKeys) > maxSplitKeys {
		return nil, status.Errorf(codes.InvalidArgument, "%d split keys; at most %d per request", len(req.SplitKeys), maxSplitKeys)
	}
	for _, k := range req.SplitKeys {
		if !keys.IsValidSplitKey(k) {
			return nil, status.Errorf(codes.InvalidArgument, "split key %x is not a table prefix or row key", k)
		}
	}
	return &pdpb.SplitTabletsResponse{}, splitStatus(c.splitKeys(ctx, req.SplitKeys))
}

func (v *service) DropTable(ctx context.Context, req *pdpb.DropTableRequest) (*pdpb.DropTableResponse, error) {
	c, err := v.leader(req.Header)
	if err != nil {
		return nil, err
	}
	return &pdpb.DropTableResponse{}, c.dropTable(ctx, req.Name)
}

func (v *service) GetTable(ctx context.Context, req *pdpb.GetTableRequest) (*pdpb.GetTableResponse, error) {
	c, err := v.leader(req.Header)
	if err != nil {
		return nil, err
	}
	t, err := c.table(req.Name)
	if err != nil {
		return nil, err
	}
	return &pdpb.GetTableResponse{Table: t}, nil
}

func (v *service) SetSQLSchema(ctx context.Context, req *pdpb.SetSQLSchemaRequest) (*pdpb.SetSQLSchemaResponse, error) {
	c, err := v.leader(req.Header)
	if err != nil {
		return nil, err
	}
	t, err := c.setSQLSchema(ctx, req)
	if err != nil {
		return nil, err
	}
	c.waitCatalog(ctx, t.Version, c.pushSchema(ctx, t))
	return &pdpb.SetSQLSchemaResponse{Table: t}, nil
}

func (v *service) ListTables(ctx context.Context, req *pdpb.ListTablesRequest) (*pdpb.ListTablesResponse, error) {
	c, err := v.leader(req.Header)
	if err != nil {
		return nil, err
	}
	return &pdpb.ListTablesResponse{Tables: c.tableList()}, nil
}

func (v *service) GetConfig(ctx context.Context, req *pdpb.GetConfigRequest) (*pdpb.GetConfigResponse, error) {
	c, err := v.leader(req.Header)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return &pdpb.GetConfigResponse{Config: c.config.Map()}, nil
}

func (v *service) SetConfig(ctx context.Context, req *pdpb.SetConfigRequest) (*pdpb.SetConfigResponse, error) {
	c, err := v.leader(req.Header)
	if err != nil {
		return nil, err
	}
	return &pdpb.SetConfigResponse{}, c.setConfig(ctx, req.Key, req.Value)
}

// setConfig validates, persists and applies one config change.
func (c *cluster) setConfig(ctx context.Context, key, value string) error {
	c.mu.Lock()
	next := c.config
	c.mu.Unlock()
	next.LocationLabels = append([]string(nil), next.LocationLabels...)
	if err := next.Set(key, value); err != nil {
		return status.Error(codes.InvalidArgument, err.Error())
	}
	v, err := json.Marshal(next)
	if err != nil {
		return err
	}
	if err := c.meta.put(ctx, map[string][]byte{rowConfig: v}); err != nil {
		return err
	}
	c.mu.Lock()
	c.config = next
	c.applyConfigLocked(time.Now())
	c.mu.Unlock()
	c.s.log.Info("pd config changed", "key", key, "value", value)
	return nil
}

func (c *cluster) storeList() []*pdpb.StoreInfo {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]*pdpb.StoreInfo, 0, len(c.stores))
	for _, si := range c.stores {
		out = append(out, proto.Clone(si).(*pdpb.StoreInfo))
	}
	sortStores(out)
	return out
}

func (c *cluster) tableList() []*metapb.TableSchema {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]*metapb.TableSchema, 0, len(c.tables))
	for _, t := range c.tables {
		out = append(out, t)
	}
	sortTables(out)
	return out
}

func (v *service) ListOperators(ctx context.Context, req *pdpb.ListOperatorsRequest) (*pdpb.ListOperatorsResponse, error) {
	c, err := v.leader(req.Header)
	if err != nil {
		return nil, err
	}
	return &pdpb.ListOperatorsResponse{Operators: c.listOperators()}, nil
}

func (v *service) AddOperator(ctx context.Context, req *pdpb.AddOperatorRequest) (*pdpb.AddOperatorResponse, error) {
	c, err := v.leader(req.Header)
	if err != nil {
		return nil, err
	}
	op, err := c.addOperator(ctx, req)
	if err != nil {
		return nil, err
	}
	return &pdpb.AddOperatorResponse{Operator: op}, nil
}

func (v *service) DrainStore(ctx context.Context, req *pdpb.DrainStoreRequest) (*pdpb.DrainStoreResponse, error) {
	c, err := v.leader(req.Header)
	if err != nil {
		return nil, err
	}
	return &pdpb.DrainStoreResponse{}, c.drainStore(ctx, req.StoreId)
}

// scanTablets returns up to limit tablets overlapping [start, end), in key
// order.
func (c *cluster) scanTablets(start, end []byte, limit int) []*pdpb.TabletInfo {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.scanTabletsLocked(start, end, limit)
}

func (c *cluster) scanTabletsLocked(start, end []byte, limit int) []*pdpb.TabletInfo {
	if limit <= 0 {
		limit = int(^uint(0) >> 1)
	}
	all := c.view.Tablets()
	i := sort.Search(len(all), func(i int) bool {
		return len(all[i].EndKey) == 0 || string(all[i].EndKey) > string(start)
	})
	var out []*pdpb.TabletInfo
	for ; i < len(all) && len(out) < limit; i++ {
		if len(end) != 0 && string(all[i].StartKey) >= string(end) {
			break
		}
		if info := c.infos[all[i].ID]; info != nil {
			out = append(out, info)
		}
	}
	return out
}
