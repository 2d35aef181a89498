package placementdriver

import (
	"context"
	"sort"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/shaledb/shale/placementdriver/schedule"
	"github.com/shaledb/shale/proto/metapb"
	"github.com/shaledb/shale/proto/pdpb"
)

// The operator RPCs behind shale ctl's store label|limit, scheduler
// show|pause|resume and operator remove.

// maxSchedulerPause bounds a pause (a typo of a few zeros should not
// silence balancing for years).
const maxSchedulerPause = 7 * 24 * time.Hour

func (v *service) SetStoreLabels(ctx context.Context, req *pdpb.SetStoreLabelsRequest) (*pdpb.SetStoreLabelsResponse, error) {
	c, err := v.leader(req.Header)
	if err != nil {
		return nil, err
	}
	if len(req.Labels) == 0 {
		return nil, status.Error(codes.InvalidArgument, "no labels given")
	}
	for k := range req.Labels {
		if k == "" {
			return nil, status.Error(codes.InvalidArgument, "a label key must not be empty")
		}
	}
	st, err := c.updateStore(ctx, req.StoreId, func(si *pdpb.StoreInfo) {
		labels := map[string]string{}
		for k, v := range si.Store.GetLabels() {
			labels[k] = v
		}
		for k, v := range req.Labels {
			if v == "" {
				delete(labels, k)
			} else {
				labels[k] = v
			}
		}
		store := proto.Clone(si.Store).(*metapb.Store)
		store.Labels = labels
		si.Store = store
	})
	if err != nil {
		return nil, err
	}
	return &pdpb.SetStoreLabelsResponse{Store: st.Store}, nil
}

func (v *service) SetStoreLimit(ctx context.Context, req *pdpb.SetStoreLimitRequest) (*pdpb.SetStoreLimitResponse, error) {
	c, err := v.leader(req.Header)
	if err != nil {
		return nil, err
	}
	if req.SnapshotLimit > 1024 {
		return nil, status.Errorf(codes.InvalidArgument, "snapshot limit %d is too large (at most 1024; 0 resets to max-snapshots-per-store)", req.SnapshotLimit)
	}
	_, err = c.updateStore(ctx, req.StoreId, func(si *pdpb.StoreInfo) { si.SnapshotLimit = req.SnapshotLimit })
	return &pdpb.SetStoreLimitResponse{}, err
}

// updateStore changes a store (not a tombstone) with f, feeds the change
// to the scheduler and persists it. It returns a copy of the result.
func (c *cluster) updateStore(ctx context.Context, id uint64, f func(*pdpb.StoreInfo)) (*pdpb.StoreInfo, error) {
	c.mu.Lock()
	si, ok := c.stores[id]
	if !ok {
		c.mu.Unlock()
		return nil, status.Errorf(codes.NotFound, "store %d not found", id)
	}
	if si.State == pdpb.StoreState_TOMBSTONE {
		c.mu.Unlock()
		return nil, status.Errorf(codes.FailedPrecondition, "store %d is a tombstone", id)
	}
	f(si)
	c.view.PutStore(schedule.StoreFromProto(si, time.Since(c.lastHeartbeat[id])))
	snapshot := proto.Clone(si).(*pdpb.StoreInfo)
	c.mu.Unlock()
	return snapshot, c.persistStore(ctx, snapshot)
}

// storeLimitsLocked is the per-store snapshot limits for the Controller.
func (c *cluster) storeLimitsLocked() map[uint64]int {
	var out map[uint64]int
	for id, si := range c.stores {
		if si.SnapshotLimit > 0 {
			if out == nil {
				out = map[uint64]int{}
			}
			out[id] = int(si.SnapshotLimit)
		}
	}
	return out
}

func (v *service) ListSchedulers(ctx context.Context, req *pdpb.ListSchedulersRequest) (*pdpb.ListSchedulersResponse, error) {
	c, err := v.leader(req.Header)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	now := time.Now()
	resp := &pdpb.ListSchedulersResponse{}
	for _, s := range c.coord.Schedulers {
		resp.Schedulers = append(resp.Schedulers, c.schedulerInfoLocked(s.Name(), now))
	}
	sort.Slice(resp.Schedulers, func(i, j int) bool { return resp.Schedulers[i].Name < resp.Schedulers[j].Name })
	return resp, nil
}

func (c *cluster) schedulerInfoLocked(name string, now time.Time) *pdpb.SchedulerInfo {
	info := &pdpb.SchedulerInfo{Name: name}
	if c.coord.IsPaused(name, now) {
		info.PausedUntilUnixMs = c.coord.Paused[name].UnixMilli()
	}
	return info
}

func (v *service) PauseScheduler(ctx context.Context, req *pdpb.PauseSchedulerRequest) (*pdpb.PauseSchedulerResponse, error) {
	c, err := v.leader(req.Header)
	if err != nil {
		return nil, err
	}
	pause := time.Duration(req.PauseMs) * time.Millisecond
	if req.PauseMs < 0 || pause > maxSchedulerPause {
		return nil, status.Errorf(codes.InvalidArgument, "pause %s: want 0 (resume) up to %s", pause, maxSchedulerPause)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.coord.Scheduler(req.Name) == nil {
		var names []string
		for _, s := range c.coord.Schedulers {
			names = append(names, s.Name())
		}
		sort.Strings(names)
		return nil, status.Errorf(codes.NotFound, "no scheduler %q; the schedulers are %v", req.Name, names)
	}
	now := time.Now()
	if pause == 0 {
		delete(c.coord.Paused, req.Name)
		c.s.log.Info("scheduler resumed", "scheduler", req.Name)
	} else {
		c.coord.Paused[req.Name] = now.Add(pause)
		c.s.log.Info("scheduler paused", "scheduler", req.Name, "for", pause)
	}
	return &pdpb.PauseSchedulerResponse{Scheduler: c.schedulerInfoLocked(req.Name, now)}, nil
}

func (v *service) RemoveOperator(ctx context.Context, req *pdpb.RemoveOperatorRequest) (*pdpb.RemoveOperatorResponse, error) {
	c, err := v.leader(req.Header)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	op := c.coord.Controller.Operator(req.TabletId)
	if op == nil {
		return nil, status.Errorf(codes.NotFound, "tablet %d has no running operator", req.TabletId)
	}
	info := operatorInfo(op)
	c.coord.Controller.Cancel(req.TabletId, time.Now())
	c.s.log.Info("operator removed", "op", op.String())
	return &pdpb.RemoveOperatorResponse{Operator: info}, nil
}
