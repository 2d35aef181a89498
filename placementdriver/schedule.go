package placementdriver

import (
	"bytes"
	"context"
	"fmt"
	"math/rand"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/shaledb/shale/internal/stop"
	"github.com/shaledb/shale/placementdriver/schedule"
	"github.com/shaledb/shale/proto/pdpb"
)

// scheduleConfig maps the runtime config onto the scheduling library's.
func (c Config) scheduleConfig() schedule.Config {
	return schedule.Config{
		MaxReplicas:          c.MaxReplicas,
		LocationLabels:       c.LocationLabels,
		SplitSize:            c.SplitSize,
		SplitQPS:             c.SplitQPS,
		MergeSize:            c.MergeSize,
		SplitMergeInterval:   c.SplitMergeInterval,
		MaxSnapshotsPerStore: c.MaxSnapshotsPerStore,
		TabletScheduleLimit:  c.TabletScheduleLimit,
		LeaderScheduleLimit:  c.LeaderScheduleLimit,
		BalanceTolerance:     c.BalanceTolerance,
		HotTolerance:         c.HotTolerance,
		LeaderMoveCooldown:   c.LeaderMoveCooldown,
		MaxStoreDownTime:     c.MaxStoreDownTime,
	}.EnsureDefaults()
}

// idReserve hands the scheduling library IDs from the allocator's
// persisted window: the library runs under the cluster lock and cannot
// wait on a raft write, so refill keeps the window ahead of need first.
type idReserve struct{ c *cluster }

func (r *idReserve) refill(ctx context.Context) error { return r.c.alloc.keepRoom(ctx) }

// AllocID implements schedule.IDAllocator. When the window runs dry (a
// burst bigger than refill's headroom) it allocates synchronously.
func (r *idReserve) AllocID() uint64 {
	if id, ok := r.c.alloc.tryAlloc(1); ok {
		return id
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	id, err := r.c.alloc.alloc(ctx, 1)
	if err != nil {
		panic(fmt.Sprintf("pd: cannot allocate an id while scheduling: %v", err))
	}
	return id
}

// startScheduling runs the leader's periodic work (scheduleRound) until
// ctx ends, every ScheduleInterval (re-read after each round).
func (c *cluster) startScheduling(ctx context.Context) error {
	return c.s.stopper.Every(ctx, "pd.schedule", c.scheduleInterval(), c.scheduleRound, stop.IntervalFunc(c.scheduleInterval))
}

func (c *cluster) scheduleInterval() time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.config.ScheduleInterval
}

// scheduleRound updates store states, then runs one scheduling round.
func (c *cluster) scheduleRound(ctx context.Context) {
	if err := c.ids.refill(ctx); err != nil {
		return
	}
	now := time.Now()
	defer c.s.metrics.observeRound(now)
	tombstones := c.updateStoreStates(now)
	for _, si := range tombstones {
		if err := c.persistStore(ctx, si); err != nil {
			c.s.log.Warn("persisting tombstone failed", "store", si.Store.StoreId, "err", err)
		}
	}
	// Operators are described under c.mu: heartbeats advance them
	// (Controller.Dispatch) concurrently.
	type logged struct{ op, epoch string }
	c.mu.Lock()
	c.coord.Controller.SetStoreLimits(c.storeLimitsLocked())
	res := c.coord.Round(c.view, now)
	var added, ended []logged
	for _, op := range c.coord.Controller.Operators() {
		if op.Created.Equal(now) {
			c.s.metrics.operatorCreated(op)
			added = append(added, logged{op.String(), fmt.Sprintf("%d/%d", op.OriginVersion, op.OriginConfVersion)})
		}
	}
	for _, op := range c.coord.Controller.TakeEnded() {
		c.s.metrics.operatorEnded(op)
		ended = append(ended, logged{op: op.String()})
		c.s.cons.operatorEnded(op)
	}
	c.mu.Unlock()
	if n := res.Total(); n > 0 {
		c.s.log.Debug("scheduling round", "operators", n, "rejected", res.Rejected, "expired", res.Expired)
	}
	// Operator lifecycles at Info: they are rare and are what an
	// operator reads first when a tablet is in trouble.
	for _, op := range added {
		c.s.log.Info("operator added", "op", op.op, "epoch", op.epoch)
	}
	for _, op := range ended {
		c.s.log.Info("operator ended", "op", op.op)
	}
}

// updateStoreStates derives Up/Disconnected/Down from heartbeat ages,
// feeds the states to the scheduler, and turns drained Offline stores into
// Tombstones (returned for persisting).
func (c *cluster) updateStoreStates(now time.Time) []*pdpb.StoreInfo {
	c.mu.Lock()
	defer c.mu.Unlock()
	var tombstones []*pdpb.StoreInfo
	for id, si := range c.stores {
		age := now.Sub(c.lastHeartbeat[id])
		switch si.State {
		case pdpb.StoreState_TOMBSTONE:
		case pdpb.StoreState_OFFLINE:
			if c.view.StoreTabletCount(id) == 0 {
				si.State = pdpb.StoreState_TOMBSTONE
				tombstones = append(tombstones, proto.Clone(si).(*pdpb.StoreInfo))
				c.s.log.Info("store drained; now a tombstone", "store", id)
			}
		default:
			switch {
			case age > c.config.MaxStoreDownTime:
				si.State = pdpb.StoreState_DOWN
			case age > c.s.opts.StoreHeartbeatTimeout:
				si.State = pdpb.StoreState_DISCONNECTED
			default:
				si.State = pdpb.StoreState_UP
			}
		}
		c.view.PutStore(schedule.StoreFromProto(si, age))
	}
	return tombstones
}

// applyConfig rebuilds the scheduling pipeline for a new config, keeping
// the operators in flight. c.mu held.
func (c *cluster) applyConfigLocked(now time.Time) {
	old, paused := c.coord.Controller.Operators(), c.coord.Paused
	c.coord = schedule.NewCoordinator(c.config.scheduleConfig(), &c.ids, rand.New(rand.NewSource(now.UnixNano())))
	c.coord.Paused = paused
	for _, op := range old {
		if op.Status() == schedule.OpRunning {
			_ = c.coord.Controller.AddOperator(op, now)
		}
	}
}

func operatorInfo(op *schedule.Operator) *pdpb.OperatorInfo {
	step := ""
	if s := op.Step(); s != nil {
		step = s.String()
	}
	return &pdpb.OperatorInfo{TabletId: op.TabletID, Kind: op.Kind.String(), Description: op.Desc, Step: step, CreatedUnixMs: op.Created.UnixMilli()}
}

func (c *cluster) listOperators() []*pdpb.OperatorInfo {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []*pdpb.OperatorInfo
	for _, op := range c.coord.Controller.Operators() {
		out = append(out, operatorInfo(op))
	}
	return out
}

// addOperator builds and starts an administrative operator.
func (c *cluster) addOperator(ctx context.Context, req *pdpb.AddOperatorRequest) (*pdpb.OperatorInfo, error) {
	if err := c.ids.refill(ctx); err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	t := c.view.Tablet(req.TabletId)
	if t == nil {
		return nil, status.Errorf(codes.NotFound, "tablet %d not found", req.TabletId)
	}
	var op *schedule.Operator
	switch x := req.Op.(type) {
	case *pdpb.AddOperatorRequest_SplitKey:
		// Strictly inside: a split at the start key would make an empty
		// left half, which the leader refuses (the operator would then be
		// re-sent with every heartbeat until it timed out).
		if len(x.SplitKey) > 0 && (!t.ContainsKey(x.SplitKey) || bytes.Equal(x.SplitKey, t.StartKey)) {
			return nil, status.Errorf(codes.InvalidArgument, "split key %x is not strictly inside tablet %d", x.SplitKey, t.ID)
		}
		op = schedule.NewSplitOperator(t, &c.ids, schedule.KindAdmin, x.SplitKey, "admin split")
	case *pdpb.AddOperatorRequest_SplitMiddle:
		op = schedule.NewSplitOperator(t, &c.ids, schedule.KindAdmin, nil, "admin split at the middle")
	case *pdpb.AddOperatorRequest_TransferLeaderTo:
		if !t.HasStore(x.TransferLeaderTo) {
			return nil, status.Errorf(codes.InvalidArgument, "tablet %d has no replica on store %d", t.ID, x.TransferLeaderTo)
		}
		op = schedule.NewTransferLeaderOperator(t, schedule.KindAdmin, x.TransferLeaderTo)
	case *pdpb.AddOperatorRequest_Move:
		if !t.HasStore(x.Move.FromStore) {
			return nil, status.Errorf(codes.InvalidArgument, "tablet %d has no replica on store %d", t.ID, x.Move.FromStore)
		}
		if t.HasStore(x.Move.ToStore) {
			return nil, status.Errorf(codes.InvalidArgument, "tablet %d already has a replica on store %d", t.ID, x.Move.ToStore)
		}
		if s := c.view.Store(x.Move.ToStore); s == nil || s.State != schedule.StoreUp {
			return nil, status.Errorf(codes.FailedPrecondition, "store %d is not up", x.Move.ToStore)
		}
		op = c.adminMove(t, x.Move.FromStore, x.Move.ToStore)
	default:
		return nil, status.Error(codes.InvalidArgument, "no operator given")
	}
	if err := c.coord.Controller.AddOperator(op, time.Now()); err != nil {
		return nil, status.Errorf(codes.FailedPrecondition, "tablet %d: %v", t.ID, err)
	}
	return operatorInfo(op), nil
}

// adminMove plans an administrator's replica move from store from to
// store to, and plans it again if it ends stale: admitting it cancelled
// the tablet's running operator, whose step in flight may still land and
// make the plan stale (a learner on to, which PD then removes as a
// stray). The request stands until the move can be planned afresh.
func (c *cluster) adminMove(t *schedule.Tablet, from, to uint64) *schedule.Operator {
	op := schedule.NewMoveOperator(c.view, t, &c.ids, schedule.KindAdmin, from, to)
	if op == nil {
		return nil
	}
	op.Replan = func(t *schedule.Tablet) *schedule.Operator {
		if !t.HasStore(from) || t.HasStore(to) || t.Joint {
			return nil // not now (a stray learner on to, a change under way) or no longer
		}
		if s := c.view.Store(to); s == nil || s.State != schedule.StoreUp {
			return nil
		}
		return schedule.NewMoveOperator(c.view, t, &c.ids, schedule.KindAdmin, from, to)
	}
	return op
}

// drainStore marks a store Offline: its replicas move elsewhere, then it
// becomes a Tombstone.
func (c *cluster) drainStore(ctx context.Context, id uint64) error {
	c.mu.Lock()
	si, ok := c.stores[id]
	if !ok {
		c.mu.Unlock()
		return status.Errorf(codes.NotFound, "store %d not found", id)
	}
	if si.State == pdpb.StoreState_TOMBSTONE {
		c.mu.Unlock()
		return status.Errorf(codes.FailedPrecondition, "store %d is already a tombstone", id)
	}
	si.State = pdpb.StoreState_OFFLINE
	c.view.PutStore(schedule.StoreFromProto(si, 0))
	snapshot := proto.Clone(si).(*pdpb.StoreInfo)
	c.mu.Unlock()
	c.s.log.Info("store draining", "store", id)
	return c.persistStore(ctx, snapshot)
}
