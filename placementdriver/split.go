package placementdriver

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/shaledb/shale/internal/errs"
	"github.com/shaledb/shale/internal/grpcutil"
	"github.com/shaledb/shale/internal/keys"
	"github.com/shaledb/shale/internal/retry"
	"github.com/shaledb/shale/internal/security"
	"github.com/shaledb/shale/placementdriver/schedule"
	"github.com/shaledb/shale/proto/errorpb"
	"github.com/shaledb/shale/proto/kvpb"
	"github.com/shaledb/shale/proto/metapb"
	"github.com/shaledb/shale/proto/pdpb"
)

// maxSplitKeys bounds one SplitTablets request.
const maxSplitKeys = 10000

// recordReports records tablet reports in the routing table and persists
// the changed descriptors, without dispatching operators (a split report:
// the left tablet first, then the new ones, so the range never has a gap).
// A report without stats keeps the tablet's last known ones.
func (c *cluster) recordReports(ctx context.Context, reports []*pdpb.TabletReport) error {
	rows := map[string][]byte{}
	now := time.Now()
	c.mu.Lock()
	for _, r := range reports {
		if r.GetTablet().GetEpoch() == nil {
			continue
		}
		if r.Stats == nil {
			r.Stats = &pdpb.TabletStats{}
			if old := c.infos[r.Tablet.TabletId]; old != nil && old.Stats != nil {
				r.Stats = old.Stats
			}
		}
		if _, err := c.recordLocked(r, now, rows); err != nil {
			c.mu.Unlock()
			return err
		}
	}
	c.mu.Unlock()
	return c.meta.put(ctx, rows)
}

// recordLocked puts one report into the view and routing table and adds
// the rows to persist. It returns the scheduler's tablet, nil for a stale
// report. c.mu held.
func (c *cluster) recordLocked(r *pdpb.TabletReport, now time.Time, rows map[string][]byte) (*schedule.Tablet, error) {
	t, changed, removed := c.putTablet(r, now)
	if t == nil {
		return nil, nil
	}
	if changed {
		v, err := proto.Marshal(r.Tablet)
		if err != nil {
			return nil, err
		}
		rows[idRow(prefixTablet, r.Tablet.TabletId)] = v
	}
	for _, id := range removed {
		rows[idRow(prefixTablet, id)] = nil
	}
	return t, nil
}

// tableBoundaries are the keys that must start a tablet of table t: its
// prefix, its split rows and the next table's prefix.
func tableBoundaries(t *metapb.TableSchema) [][]byte {
	out := [][]byte{keys.TablePrefix(t.TableId)}
	for _, r := range t.SplitRows {
		out = append(out, keys.RowKey(t.TableId, r))
	}
	return append(out, keys.TablePrefix(t.TableId+1))
}

// SplitTimeoutError says which split keys did not start a tablet before
// the deadline, and why the last attempt failed.
type SplitTimeoutError struct {
	Pending [][]byte
	Total   int
	Last    error
}

func (e *SplitTimeoutError) Error() string {
	return fmt.Sprintf("pd: splitting tablets timed out: %d of %d split keys (first %x) do not start a tablet yet; last error: %v",
		len(e.Pending), e.Total, e.Pending[0], e.Last)
}

// splitPlanEntry is one tablet to split and the keys strictly inside it.
type splitPlanEntry struct {
	info *pdpb.TabletInfo
	keys [][]byte
}

// splitPlan groups the keys that do not start a tablet yet by the tablet
// covering them, in key order. keys are sorted.
func (c *cluster) splitPlan(ks [][]byte) (plan []splitPlanEntry, pending [][]byte, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, k := range ks {
		t := c.view.TabletForKey(k)
		if t == nil || c.infos[t.ID] == nil {
			return nil, ks, fmt.Errorf("no tablet covers key %x (the cluster may not be bootstrapped yet)", k)
		}
		if bytes.Equal(t.StartKey, k) {
			continue
		}
		pending = append(pending, k)
		if n := len(plan); n > 0 && plan[n-1].info.Tablet.TabletId == t.ID {
			plan[n-1].keys = append(plan[n-1].keys, k)
			continue
		}
		plan = append(plan, splitPlanEntry{info: c.infos[t.ID], keys: [][]byte{k}})
	}
	return plan, pending, nil
}

// splitKeys makes every key start a tablet: each tablet with keys inside
// is split at all of them by one batch split (one raft command) that PD
// asks its leader for directly, and the resulting tablets are recorded
// from the answer at once, so they are routable when splitKeys returns.
// Tablets split in parallel. A stale view (the tablet changed), a moved
// leader or a busy tablet is retried until ctx ends.
func (c *cluster) splitKeys(ctx context.Context, ks [][]byte) error {
	ks = slices.Clone(ks)
	slices.SortFunc(ks, bytes.Compare)
	ks = slices.CompactFunc(ks, bytes.Equal)
	bo := retry.NewExponential(20*time.Millisecond, 500*time.Millisecond)
	for {
		plan, pending, err := c.splitPlan(ks)
		if err == nil && len(plan) == 0 {
			return nil
		}
		if err == nil {
			err = c.splitAll(ctx, plan)
		}
		if ctx.Err() != nil {
			return &SplitTimeoutError{Pending: pending, Total: len(ks), Last: err}
		}
		if err == nil {
			continue // verify against the recorded tablets
		}
		c.s.log.Debug("split attempt failed; retrying", "err", err)
		_ = bo.Wait(ctx, 0) // ctx's end is reported at the top of the loop
	}
}

// splitAll splits every planned tablet in parallel and returns one of the
// errors.
func (c *cluster) splitAll(ctx context.Context, plan []splitPlanEntry) error {
	var (
		mu      sync.Mutex
		lastErr error
	)
	g := c.s.stopper.NewGroup()
	for _, p := range plan {
		g.Go(ctx, "pd.split-tablet", func(ctx context.Context) {
			if err := c.splitTablet(ctx, p.info, p.keys); err != nil {
				mu.Lock()
				lastErr = fmt.Errorf("tablet %d: %w", p.info.Tablet.TabletId, err)
				mu.Unlock()
			}
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	return lastErr
}

// splitTablet asks the tablet's leader for one batch split at ks and
// records every resulting tablet, led by the store that answered.
func (c *cluster) splitTablet(ctx context.Context, info *pdpb.TabletInfo, ks [][]byte) error {
	d := info.Tablet
	n, reps := len(ks), len(d.Replicas)
	first, err := c.alloc.alloc(ctx, uint32(n*(1+reps)))
	if err != nil {
		return err
	}
	req := &kvpb.SplitTabletRequest{Header: &kvpb.RequestHeader{TabletId: d.TabletId, Epoch: d.Epoch}, SplitKeys: ks}
	for i := 0; i < n; i++ {
		req.NewTabletIds = append(req.NewTabletIds, first+uint64(i))
	}
	for i := n; i < n*(1+reps); i++ {
		req.NewReplicaIds = append(req.NewReplicaIds, first+uint64(i))
	}
	// The leader PD knows first, then a leader a store names, then the
	// other replicas.
	tried := map[uint64]bool{}
	next := info.LeaderStoreId
	for {
		if next == 0 || tried[next] {
			next = 0
			for _, r := range d.Replicas {
				if !tried[r.StoreId] {
					next = r.StoreId
					break
				}
			}
			if next == 0 {
				return err
			}
		}
		tried[next] = true
		store := next
		var resp *kvpb.SplitTabletResponse
		resp, err = c.splitOn(ctx, store, req)
		if err == nil {
			reports := make([]*pdpb.TabletReport, len(resp.Tablets))
			for i, t := range resp.Tablets {
				reports[i] = &pdpb.TabletReport{Tablet: t, LeaderStoreId: store}
			}
			return c.recordReports(ctx, reports)
		}
		nl, ok := errs.As[*errorpb.NotLeader](err)
		if !ok {
			return err
		}
		next = nl.LeaderStoreId
	}
}

// splitOn sends a split request to one store.
func (c *cluster) splitOn(ctx context.Context, storeID uint64, req *kvpb.SplitTabletRequest) (*kvpb.SplitTabletResponse, error) {
	c.mu.Lock()
	si := c.stores[storeID]
	c.mu.Unlock()
	if si == nil || si.Store.GetAddress() == "" {
		return nil, fmt.Errorf("store %d is unknown", storeID)
	}
	cl, err := c.s.conns.get(si.Store.Address)
	if err != nil {
		return nil, err
	}
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	return cl.SplitTablet(cctx, req)
}

// pushSchema installs a new table schema on every Up store directly, so
// the table is usable as soon as its creation returns without waiting for
// store heartbeats. It returns the stores that installed it.
func (c *cluster) pushSchema(ctx context.Context, t *metapb.TableSchema) map[uint64]bool {
	c.mu.Lock()
	addrs := map[uint64]string{}
	for id, si := range c.stores {
		if si.State == pdpb.StoreState_UP {
			addrs[id] = si.Store.GetAddress()
		}
	}
	c.mu.Unlock()
	var (
		mu    sync.Mutex
		acked = map[uint64]bool{}
	)
	g := c.s.stopper.NewGroup()
	for id, addr := range addrs {
		g.Go(ctx, "pd.push-schema", func(ctx context.Context) {
			cl, err := c.s.conns.get(addr)
			if err != nil {
				return
			}
			cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			defer cancel()
			if _, err := cl.PutTableSchema(cctx, &kvpb.PutTableSchemaRequest{Schema: t}); err != nil {
				c.s.log.Debug("pushing a table schema failed; the store learns it from its heartbeat", "store", id, "err", err)
				return
			}
			mu.Lock()
			acked[id] = true
			mu.Unlock()
		})
	}
	_ = g.Wait() // a refused push (shutting down) is a store not acked
	return acked
}

// storeConns caches gRPC connections to tablet servers by address.
type storeConns struct {
	tls   *security.Reloader // PD's identity towards the stores; nil: plaintext
	mu    sync.Mutex
	conns map[string]*grpc.ClientConn
}

func (s *storeConns) get(addr string) (kvpb.TabletClient, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conns == nil {
		s.conns = map[string]*grpc.ClientConn{}
	}
	cc, ok := s.conns[addr]
	if !ok {
		var err error
		if cc, err = grpc.NewClient(addr, grpcutil.DialOptions(s.tls)...); err != nil {
			return nil, err
		}
		s.conns[addr] = cc
	}
	return kvpb.NewTabletClient(cc), nil
}

func (s *storeConns) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, cc := range s.conns {
		cc.Close()
	}
	s.conns = nil
}

// splitStatus converts a split error into a gRPC status naming what timed
// out.
func splitStatus(err error) error {
	var te *SplitTimeoutError
	if errors.As(err, &te) {
		return status.Error(codes.DeadlineExceeded, te.Error())
	}
	return err
}
