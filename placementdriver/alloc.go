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

// idAllocator hands out cluster-unique IDs in increasing order. It
// reserves windows of idWindow IDs by persisting the window's end through
// raft before serving from it; a new leader starts after the last
// persisted end, so no ID is ever handed out twice, even across leader
// changes (some are skipped).
//
// One counter serves every caller, the scheduling library included, so IDs
// are handed out in the order they are asked for. Stores rely on that: a
// replica's tombstone refuses every replica ID of the tablet below the
// removed one, so a replica added back to a store must get a larger ID
// than the one it replaced. (A separate block reserved ahead for the
// scheduler once gave a re-added learner an older ID than the table's own
// replicas; the store refused it for good and PD promoted it anyway.)
type idAllocator struct {
	// extend serializes window extensions (a raft write); mu guards the
	// counter only, so an in-window grab never waits on raft.
	extend sync.Mutex
	mu     sync.Mutex
	meta   metadata
	next   uint64
	limit  uint64 // exclusive; persisted
	known  bool   // the limit row exists
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
	a.mu.Lock()
	defer a.mu.Unlock()
	a.next, a.limit, a.known = firstID, firstID, ok
	if ok {
		if a.limit, err = decodeU64(v); err != nil {
			return err
		}
		a.next = a.limit
	}
	return nil
}

// tryAlloc hands out n IDs from the persisted window without waiting on
// raft; it fails when the window has fewer than n left.
func (a *idAllocator) tryAlloc(n uint32) (uint64, bool) {
	n = max(n, 1)
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.next+uint64(n) > a.limit {
		return 0, false
	}
	first := a.next
	a.next += uint64(n)
	return first, true
}

// alloc hands out n consecutive IDs, extending the window if needed.
func (a *idAllocator) alloc(ctx context.Context, n uint32) (uint64, error) {
	for {
		if first, ok := a.tryAlloc(n); ok {
			return first, nil
		}
		if err := a.ensureRoom(ctx, uint64(max(n, 1))); err != nil {
			return 0, err
		}
	}
}

// ensureRoom extends the persisted window until at least n IDs are left.
func (a *idAllocator) ensureRoom(ctx context.Context, n uint64) error {
	a.extend.Lock()
	defer a.extend.Unlock()
	a.mu.Lock()
	next, limit, known := a.next, a.limit, a.known
	a.mu.Unlock()
	if next+n <= limit {
		return nil // another caller extended it
	}
	newLimit := next + n + idWindow
	var old []byte
	if known {
		old = u64(limit)
	}
	ok, err := a.meta.cas(ctx, rowAllocID, old, u64(newLimit))
	if err != nil {
		return err
	}
	if !ok {
		// Another leader moved the window: we are not the leader any
		// more (or were not when we loaded).
		return errNotLeaderAnymore
	}
	a.mu.Lock()
	a.limit, a.known = newLimit, true
	a.mu.Unlock()
	return nil
}

// keepRoom extends the window ahead of need, outside any lock the
// scheduler holds, so that its grabs (tryAlloc) do not run dry.
func (a *idAllocator) keepRoom(ctx context.Context) error {
	return a.ensureRoom(ctx, idWindow/2)
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
