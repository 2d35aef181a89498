package kvclient

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/shaledb/shale/internal/errs"
	"github.com/shaledb/shale/proto/errorpb"
	"github.com/shaledb/shale/proto/kvpb"
	"github.com/shaledb/shale/proto/metapb"
)

const (
	backoffStart = 10 * time.Millisecond
	backoffMax   = time.Second
	// maxConnectWait bounds how long a write waits for a connection to a
	// store before trying another replica.
	maxConnectWait = time.Second
)

// resendWindow bounds how long after its first attempt a write that may
// have applied is resent: tablets remember a request ID for 10 minutes of
// their own time (store.DedupRetention), and a resend after the record
// expired would apply a second time. Half of it leaves room for clock
// drift. A variable for tests.
var resendWindow = 5 * time.Minute

// errNotSent marks a failure to reach a store before anything was sent;
// it is always safe to retry.
var errNotSent = errors.New("kvclient: store unreachable, request not sent")

// retrier carries the retry state of one operation: backoff, the replicas
// already tried per tablet, and the last error.
type retrier struct {
	c       *Client
	t       *Table // nil for requests outside a table
	write   bool
	what    string
	attempt int
	backoff time.Duration
	tried   map[uint64]map[uint64]bool // tablet → stores that answered "not leader, no hint" or were unreachable
	lastErr error
	// mayHaveApplied: an earlier attempt of this write reached a store
	// and failed without a verdict (connection lost, result unknown), so
	// giving up later must report ErrAmbiguous, not "not applied".
	mayHaveApplied bool
	started        time.Time // when the operation's request ID was first sent
}

func (c *Client) newRetrier(t *Table, write bool, what string) *retrier {
	return &retrier{c: c, t: t, write: write, what: what, backoff: backoffStart, started: time.Now()}
}

// sleep waits for the next backoff step (at least min), full jitter.
func (r *retrier) sleep(ctx context.Context, min time.Duration) error {
	d := r.backoff/2 + rand.N(r.backoff/2+1)
	if d < min {
		d = min
	}
	r.backoff = minDur(r.backoff*2, backoffMax)
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

func minDur(a, b time.Duration) time.Duration {
	if a < b {
		return a
	}
	return b
}

// giveUp builds the final error after ctx ended between attempts. For a
// write, any attempt that may have been applied makes the outcome unknown
// (ErrAmbiguous) however the later attempts failed; otherwise every attempt
// was refused with a verdict, and the write was not applied.
func (r *retrier) giveUp(ctx context.Context) error {
	if r.write && r.mayHaveApplied {
		cause := ctx.Err()
		if r.lastErr != nil {
			cause = fmt.Errorf("%w (last error: %v)", ctx.Err(), r.lastErr)
		}
		return ambiguous(cause, r.what)
	}
	if r.lastErr != nil {
		return fmt.Errorf("%s: %w (last error: %v)", r.what, ctx.Err(), r.lastErr)
	}
	return fmt.Errorf("%s: %w", r.what, ctx.Err())
}

// mayHaveApplied reports whether a failed write attempt may still have been
// applied: it was sent and failed without the tablet's verdict (a typed
// error such as NotLeader or EpochMismatch is a verdict: nothing applied).
func mayHaveApplied(err error) bool {
	if errors.Is(err, errNotSent) || errs.Detail(err) != nil {
		return false
	}
	switch status.Code(err) {
	case codes.Unavailable, codes.Unknown, codes.DeadlineExceeded, codes.Canceled:
		return true
	}
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled)
}

// tryNextReplica marks store as tried for the tablet and points the cache
// at another voter not tried yet. With none left it drops the entry, so
// the next attempt asks the PD.
func (r *retrier) tryNextReplica(loc location, store uint64) {
	id := loc.tabletID()
	if r.tried == nil {
		r.tried = map[uint64]map[uint64]bool{}
	}
	if r.tried[id] == nil {
		r.tried[id] = map[uint64]bool{}
	}
	r.tried[id][store] = true
	for _, rep := range loc.desc.Replicas {
		if isVoter(rep) && !r.tried[id][rep.StoreId] {
			r.c.cache.setLeader(id, rep.StoreId)
			return
		}
	}
	delete(r.tried, id)
	r.c.cache.drop(id)
}

// handle decides what to do after a request for loc sent to store failed
// with err. It fixes the routing state and backs off; it returns nil to
// retry or the error to give the caller.
func (r *retrier) handle(ctx context.Context, loc location, store uint64, err error) error {
	r.attempt++
	if errors.Is(err, ErrClosed) {
		return err
	}
	if r.write && mayHaveApplied(err) {
		r.mayHaveApplied = true
	}
	if r.write && r.mayHaveApplied && time.Since(r.started) > resendWindow {
		r.lastErr = err
		return ambiguous(fmt.Errorf("not resent %v after the first attempt (the tablets may have forgotten its request ID): %w", resendWindow, err), r.what)
	}
	if ctx.Err() != nil {
		if errors.Is(err, errNotSent) || errs.IsRetryable(err) || (r.write && r.mayHaveApplied) {
			r.lastErr = err
			return r.giveUp(ctx)
		}
		return userError(err, r.write, r.what)
	}
	r.lastErr = err
	var minWait time.Duration
	noSleep := false
	if errors.Is(err, errNotSent) {
		r.c.pool.forget(store)
		r.tryNextReplica(loc, store)
	} else if nl, ok := errs.As[*errorpb.NotLeader](err); ok {
		if nl.LeaderStoreId != 0 && nl.LeaderStoreId != store && hasReplicaOn(loc.desc, nl.LeaderStoreId) {
			r.c.pool.learnAddr(nl.LeaderStoreId, nl.LeaderAddr)
			r.c.cache.setLeader(loc.tabletID(), nl.LeaderStoreId)
			noSleep = r.attempt < 4
		} else if nl.LeaderStoreId != 0 && !hasReplicaOn(loc.desc, nl.LeaderStoreId) {
			// The leader is on a store our descriptor does not know:
			// the membership changed. Refetch.
			r.c.pool.learnAddr(nl.LeaderStoreId, nl.LeaderAddr)
			r.c.cache.drop(loc.tabletID())
		} else {
			r.tryNextReplica(loc, store)
		}
	} else if em, ok := errs.As[*errorpb.EpochMismatch](err); ok {
		if len(em.Current) == 0 {
			r.c.cache.drop(loc.tabletID())
		} else {
			r.c.cache.onEpochMismatch(loc.tabletID(), em.Current)
		}
		noSleep = r.attempt < 3
	} else if kn, ok := errs.As[*errorpb.KeyNotInTablet](err); ok {
		r.c.cache.drop(loc.tabletID())
		if kn.Tablet != nil {
			r.c.cache.onEpochMismatch(loc.tabletID(), []*metapb.TabletDescriptor{kn.Tablet})
		}
	} else if _, ok := errs.As[*errorpb.TabletNotFound](err); ok {
		r.c.cache.drop(loc.tabletID())
	} else if sb, ok := errs.As[*errorpb.ServerBusy](err); ok {
		minWait = time.Duration(sb.RetryAfterMs) * time.Millisecond
	} else if _, ok := errs.As[*errorpb.TableNotFound](err); ok {
		// A store learns schemas from PD heartbeats and may lag behind a
		// CreateTable. Keep trying while the PD still has the table.
		if r.t == nil || !r.c.tableStillExists(ctx, r.t) {
			return userError(err, r.write, r.what)
		}
	} else if st, ok := status.FromError(err); ok && st.Code() == codes.Unavailable && errs.Detail(err) == nil {
		// Connection failure: the store may be down. For a write the
		// outcome is unknown, but the retry carries the same request ID
		// and the tablet applies a request at most once (it answers a
		// repeat with the first result), so resending is safe.
		r.c.pool.forget(store)
		r.tryNextReplica(loc, store)
	} else if ok && st.Code() == codes.Unimplemented {
		// Another server now listens on the store's old address (the store
		// moved or is gone, and its port was reused): nothing was applied.
		// Forget the address and re-route.
		r.c.pool.forget(store)
		r.c.cache.drop(loc.tabletID())
	} else if ok && st.Code() == codes.Unknown && r.write {
		// "Result unknown" (the tablet timed out waiting for the entry, or
		// lost its leadership): resend with the same request ID; see above.
		r.tryNextReplica(loc, store)
	} else {
		return userError(err, r.write, r.what)
	}
	r.c.log.Debug("kvclient: retrying", "op", r.what, "tablet", loc.tabletID(), "store", store, "attempt", r.attempt, "err", errs.Code(err))
	if noSleep {
		return nil
	}
	if err := r.sleep(ctx, minWait); err != nil {
		return r.giveUp(ctx)
	}
	return nil
}

// handlePD decides whether to retry after a failed routing lookup.
func (r *retrier) handlePD(ctx context.Context, err error) error {
	r.attempt++
	if ctx.Err() != nil {
		r.lastErr = err
		return r.giveUp(ctx)
	}
	switch status.Code(err) {
	case codes.Unavailable, codes.NotFound, codes.DeadlineExceeded:
	default:
		if errors.Is(err, ErrClosed) {
			return err
		}
		return fmt.Errorf("%s: routing: %w", r.what, err)
	}
	r.lastErr = err
	if err := r.sleep(ctx, 0); err != nil {
		return r.giveUp(ctx)
	}
	return nil
}

// header builds the request header for a location.
func header(loc location) *kvpb.RequestHeader {
	return &kvpb.RequestHeader{TabletId: loc.tabletID(), Epoch: loc.desc.Epoch}
}

// sendFunc sends one attempt to a tablet's store.
type sendFunc func(ctx context.Context, cl kvpb.TabletClient, h *kvpb.RequestHeader) error

// runKey sends a single-row request to the tablet holding the encoded key,
// retrying as the rules in handle allow.
func (c *Client) runKey(ctx context.Context, t *Table, key []byte, write bool, what string, f sendFunc) error {
	if c.closed.Load() {
		return ErrClosed
	}
	ctx, cancel := c.opContext(ctx)
	defer cancel()
	r := c.newRetrier(t, write, what)
	for {
		loc, err := c.cache.locate(ctx, key)
		if err != nil {
			if err := r.handlePD(ctx, err); err != nil {
				return err
			}
			continue
		}
		store, err := c.attempt(ctx, loc, write, f)
		if err == nil {
			return nil
		}
		if err := r.handle(ctx, loc, store, err); err != nil {
			return err
		}
	}
}

// attempt sends one request to the location's target store. Writes are
// sent only over a connected channel, so an unreachable store yields
// errNotSent instead of an ambiguous outcome.
func (c *Client) attempt(ctx context.Context, loc location, write bool, f sendFunc) (uint64, error) {
	store := loc.target()
	cl, cc, err := c.pool.tablet(ctx, store)
	if err != nil {
		if errors.Is(err, ErrClosed) {
			return store, err
		}
		return store, fmt.Errorf("%w: %v", errNotSent, err)
	}
	if write && !waitReady(ctx, cc, maxConnectWait) {
		return store, fmt.Errorf("%w: store %d", errNotSent, store)
	}
	return store, f(ctx, cl, header(loc))
}
