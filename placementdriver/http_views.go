package placementdriver

import (
	"google.golang.org/protobuf/proto"

	"github.com/shaledb/shale/placementdriver/ctl"
	"github.com/shaledb/shale/proto/metapb"
	"github.com/shaledb/shale/proto/pdpb"
)

// Read-only snapshots of the leader's state for the HTTP API. Each locks
// c.mu only to copy, so the caller can encode the copies at leisure while
// heartbeats keep mutating the originals.

// storesView returns copies of every store and, per store ID, the number
// of replicas and leaders it holds according to the leader's tablet index
// (the tablets routing answers with), not the stores' own reports.
func (c *cluster) storesView() ([]*pdpb.StoreInfo, map[uint64]ctl.Counts) {
	c.mu.Lock()
	defer c.mu.Unlock()
	stores := make([]*pdpb.StoreInfo, 0, len(c.stores))
	for _, si := range c.stores {
		stores = append(stores, proto.Clone(si).(*pdpb.StoreInfo))
	}
	sortStores(stores)
	return stores, ctl.CountTablets(c.scanTabletsLocked(nil, nil, 0))
}

// tabletsView returns copies of up to limit tablets overlapping
// [start, end) in key order (limit <= 0: all of them).
func (c *cluster) tabletsView(start, end []byte, limit int) []*pdpb.TabletInfo {
	c.mu.Lock()
	defer c.mu.Unlock()
	found := c.scanTabletsLocked(start, end, limit)
	out := make([]*pdpb.TabletInfo, len(found))
	for i, t := range found {
		out[i] = proto.Clone(t).(*pdpb.TabletInfo)
	}
	return out
}

// tablesView returns copies of the catalog's tables sorted by name.
func (c *cluster) tablesView() []*metapb.TableSchema {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]*metapb.TableSchema, 0, len(c.tables))
	for _, t := range c.tables {
		out = append(out, proto.Clone(t).(*metapb.TableSchema))
	}
	sortTables(out)
	return out
}

// configView returns the scheduling configuration as SetConfig accepts it.
func (c *cluster) configView() map[string]string {
	c.mu.Lock()
	defer c.mu.Unlock()
	cfg := c.config
	return cfg.Map()
}

// leaderView returns the metadata group's leader as this member sees it
// (ID 0 and name "" while none is known) and the cluster ID when this
// member leads and has loaded the cluster (else 0).
func (s *Server) leaderView() (leaderID uint64, leaderName string, clusterID uint64) {
	s.mu.Lock()
	leaderID, c := s.mu.leaderID, s.mu.cluster
	s.mu.Unlock()
	if c != nil {
		clusterID = c.clusterID
	}
	return leaderID, s.names[leaderID], clusterID
}
