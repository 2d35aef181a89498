package placementdriver

import (
	"context"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// errNotLeaderAnymore: a compare-and-set on PD metadata failed, so another
// member wrote it; this member must stop serving.
var errNotLeaderAnymore = status.Error(codes.Unavailable, "pd: leadership changed; retry on the new leader")

// idAllocator hands out cluster-unique IDs. It reserves windows of
// idWindow IDs by persisting the window's end through raft before serving
// from it; a new leader starts after the last persisted end, so no ID is
// ever handed out twice, even across leader changes (some are skipped).
type idAllocator struct {
	mu    sync.Mutex
	meta  metadata
	next  uint64
	limit uint64 // exclusive; persisted
	known bool   // the limit row exists
}

const idWindow = 1000

// firstID: IDs below it are left for fixed uses (the bootstrap tablet,
// the raw key/value table).
const firstID = 1000

func (a *idAllocator) load(ctx context.Context) error {
	v, ok, err := a.meta.get(ctx, rowAllocID)
	if err != nil {
		return err
	}
	a.next, a.limit, a.known = firstID, firstID, ok
	if ok {
		if a.limit, err = decodeU64(v); err != nil {
			return err
		}
		a.next = a.limit
	}
	return nil
}

func (a *idAllocator) alloc(ctx context.Context, n uint32) (uint64, error) {
	if n == 0 {
		n = 1
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.next+uint64(n) > a.limit {
		newLimit := a.next + uint64(n) + idWindow
		var old []byte
		if a.known {
			old = u64(a.limit)
		}
		ok, err := a.meta.cas(ctx, rowAllocID, old, u64(newLimit))
		if err != nil {
			return 0, err
		}
		if !ok {
			// Another leader moved the window: we are not the leader
			// any more (or were not when we loaded).
			return 0, errNotLeaderAnymore
		}
		a.limit, a.known = newLimit, true
	}
	first := a.next
	a.next += uint64(n)
	return first, nil
}

// tsOracle hands out strictly increasing timestamps (microseconds of wall
// time, advanced logically when needed). It persists an upper bound
// tsWindow ahead and never serves past it; a new leader starts above the
// persisted bound, so timestamps never repeat or go back across leader
// changes or wall-clock jumps.
type tsOracle struct {
	mu    sync.Mutex
	meta  metadata
	now   func() time.Time
	last  int64
	limit int64 // persisted
	known bool  // limit row exists
}

const tsWindow = int64(3 * time.Second / time.Microsecond)

func (o *tsOracle) load(ctx context.Context) error {
	v, ok, err := o.meta.get(ctx, rowTSO)
	if err != nil {
		return err
	}
	if ok {
		l, err := decodeU64(v)
		if err != nil {
			return err
		}
		o.limit, o.last, o.known = int64(l), int64(l), true
	}
	return nil
}

func (o *tsOracle) get(ctx context.Context, n uint32) (int64, error) {
	if n == 0 {
		n = 1
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	first := max(o.now().UnixMicro(), o.last+1)
	end := first + int64(n) - 1
	if end > o.limit {
		newLimit := end + tsWindow
		var old []byte
		if o.known {
			old = u64(uint64(o.limit))
		}
		ok, err := o.meta.cas(ctx, rowTSO, old, u64(uint64(newLimit)))
		if err != nil {
			return 0, err
		}
		if !ok {
			return 0, errNotLeaderAnymore
		}
		o.limit, o.known = newLimit, true
	}
	o.last = end
	return first, nil
}
