package placementdriver

import (
	"context"
	"encoding/binary"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/shaledb/shale/proto/pdpb"
)

// GC safe points, TiKV's model (docs/decisions.md, "GC safe points").
//
// The cluster GC safe point S only moves forward. The tablet servers'
// version GC never removes a version whose timestamp is >= S (and below S
// keeps what a read at S sees: the newest versions the family's policy
// keeps), so a read or backup at any ts >= S finds every version it needs.
// The leader advances S every safePointInterval to
// min(now - Options.GCLifeTime, every live service safe point), persisted
// through the metadata raft group before any store hears of it, so a new
// PD leader never hands out a smaller value than one a store already used.
// A service (a backup, a long read) registers a safe point with a TTL and
// renews it; one below S is refused, since versions below S may be gone.
// Stores learn S from their heartbeat responses.
const (
	rowGCSafePoint         = "gc_safe_point"
	prefixServiceSafePoint = "service_safe_point/"
	safePointInterval      = time.Second
	// maxServiceSafePointTTL bounds a registration (a typo must not pin
	// every version for years).
	maxServiceSafePointTTL = 7 * 24 * time.Hour
)

// safePoints is the leader's safe-point state. mu serializes the
// read-check-write of registrations against the advance.
type safePoints struct {
	mu      sync.Mutex
	loaded  bool
	current atomic.Int64 // the persisted cluster GC safe point
}

// loadLocked reads the persisted GC safe point once per leadership.
func (c *cluster) loadSafePointLocked(ctx context.Context) error {
	if c.safePoints.loaded {
		return nil
	}
	v, ok, err := c.meta.get(ctx, rowGCSafePoint)
	if err != nil {
		return err
	}
	if ok {
		if len(v) != 8 {
			return status.Error(codes.DataLoss, "pd: corrupt gc safe point in metadata")
		}
		c.safePoints.current.Store(int64(binary.BigEndian.Uint64(v)))
	}
	c.safePoints.loaded = true
	return nil
}

// gcSafePoint is the value heartbeats hand to stores (0: not loaded yet,
// which a store treats as "no GC").
func (c *cluster) gcSafePoint() int64 { return c.safePoints.current.Load() }

// serviceSafePoints returns the live registrations and deletes expired ones.
func (c *cluster) serviceSafePointsLocked(ctx context.Context, now time.Time) ([]*pdpb.ServiceSafePoint, error) {
	rows, err := c.meta.scan(ctx, prefixServiceSafePoint)
	if err != nil {
		return nil, err
	}
	var live []*pdpb.ServiceSafePoint
	expired := map[string][]byte{}
	for row, v := range rows {
		sp := &pdpb.ServiceSafePoint{}
		if err := proto.Unmarshal(v, sp); err != nil || sp.ExpiresUnixMs <= now.UnixMilli() {
			expired[row] = nil
			continue
		}
		live = append(live, sp)
	}
	if len(expired) > 0 {
		if err := c.meta.put(ctx, expired); err != nil {
			return nil, err
		}
	}
	return live, nil
}

// advanceSafePoint moves the cluster GC safe point forward as far as the
// GC life time and the live service safe points allow.
func (c *cluster) advanceSafePoint(ctx context.Context) {
	sp := &c.safePoints
	sp.mu.Lock()
	defer sp.mu.Unlock()
	if err := c.loadSafePointLocked(ctx); err != nil {
		return
	}
	now := time.Now()
	live, err := c.serviceSafePointsLocked(ctx, now)
	if err != nil {
		return
	}
	target := now.Add(-c.s.opts.GCLifeTime).UnixMicro()
	for _, s := range live {
		target = min(target, s.SafePoint)
	}
	if target <= sp.current.Load() {
		return
	}
	if err := c.meta.put(ctx, map[string][]byte{rowGCSafePoint: u64(uint64(target))}); err != nil {
		c.s.log.Debug("persisting the gc safe point failed", "err", err)
		return
	}
	sp.current.Store(target)
}

// startSafePoints runs the advance on the leader until ctx ends.
func (c *cluster) startSafePoints(ctx context.Context) error {
	return c.s.stopper.Every(ctx, "pd.gc-safe-point", safePointInterval, c.advanceSafePoint)
}

func (v *service) GetGCSafePoint(ctx context.Context, req *pdpb.GetGCSafePointRequest) (*pdpb.GetGCSafePointResponse, error) {
	c, err := v.leader(req.Header)
	if err != nil {
		return nil, err
	}
	c.safePoints.mu.Lock()
	defer c.safePoints.mu.Unlock()
	if err := c.loadSafePointLocked(ctx); err != nil {
		return nil, err
	}
	live, err := c.serviceSafePointsLocked(ctx, time.Now())
	if err != nil {
		return nil, err
	}
	return &pdpb.GetGCSafePointResponse{GcSafePoint: c.gcSafePoint(), Services: live}, nil
}

func (v *service) UpdateServiceSafePoint(ctx context.Context, req *pdpb.UpdateServiceSafePointRequest) (*pdpb.UpdateServiceSafePointResponse, error) {
	c, err := v.leader(req.Header)
	if err != nil {
		return nil, err
	}
	id := strings.TrimSpace(req.ServiceId)
	if id == "" || len(id) > 256 {
		return nil, status.Error(codes.InvalidArgument, "a service safe point needs a service id of 1 to 256 characters")
	}
	ttl := time.Duration(req.TtlSeconds) * time.Second
	if req.TtlSeconds > 0 && ttl > maxServiceSafePointTTL {
		return nil, status.Errorf(codes.InvalidArgument, "ttl %v is longer than the limit of %v", ttl, maxServiceSafePointTTL)
	}
	sp := &c.safePoints
	sp.mu.Lock()
	defer sp.mu.Unlock()
	if err := c.loadSafePointLocked(ctx); err != nil {
		return nil, err
	}
	row := prefixServiceSafePoint + id
	now := time.Now()
	if req.TtlSeconds <= 0 {
		if err := c.meta.put(ctx, map[string][]byte{row: nil}); err != nil {
			return nil, err
		}
	} else {
		if cur := sp.current.Load(); req.SafePoint < cur {
			return nil, status.Errorf(codes.FailedPrecondition,
				"safe point %d is below the cluster's GC safe point %d: versions below it may already be collected", req.SafePoint, cur)
		}
		v, err := proto.Marshal(&pdpb.ServiceSafePoint{ServiceId: id, SafePoint: req.SafePoint, ExpiresUnixMs: now.Add(ttl).UnixMilli()})
		if err != nil {
			return nil, err
		}
		if err := c.meta.put(ctx, map[string][]byte{row: v}); err != nil {
			return nil, err
		}
	}
	live, err := c.serviceSafePointsLocked(ctx, now)
	if err != nil {
		return nil, err
	}
	resp := &pdpb.UpdateServiceSafePointResponse{GcSafePoint: sp.current.Load()}
	for _, s := range live {
		if resp.MinServiceSafePoint == 0 || s.SafePoint < resp.MinServiceSafePoint {
			resp.MinServiceSafePoint = s.SafePoint
		}
	}
	return resp, nil
}
