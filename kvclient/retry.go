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
	"github.com/shaledb/shale/internal/retry"
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

// retrier carries the retry state of one operation: backoff, the replicas
// already tried per tablet, and the last error. What to do after an error
// is internal/retry's classification; the routing fixes are reroute's.
type retrier struct {
	c       *Client
	t       *Table // nil for requests outside a table
	write   bool
	what    string
	attempt int
	bo      *retry.Exponential
	tried   map[uint64]map[uint64]bool // tablet → stores that answered "not leader, no hint" or were unreachable
	lastErr error
	// mayHaveApplied: an earlier attempt of this write reached a store
	// and failed without a verdict (retry.Ambiguous), so giving up later
	// must report ErrAmbiguous, not "not applied".
	mayHaveApplied bool
	started        time.Time // when the operation's request ID was first sent
}

func (c *Client) newRetrier(t *Table, write bool, what string) *retrier {
	return &retrier{c: c, t: t, write: write, what: what, bo: retry.NewExponential(backoffStart, backoffMax), started: time.Now()}
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
	if _, ok := errs.As[*errorpb.DiskFull](r.lastErr); ok {
		// Refused until the deadline: nothing applied, and the reason
		// is the disk, not the deadline.
		return newError(ErrDiskFull, r.lastErr, "%s: gave up after %v: %s", r.what, ctx.Err(), status.Convert(r.lastErr).Message())
	}
	if _, ok := errs.As[*errorpb.QuotaExceeded](r.lastErr); ok {
		return newError(ErrQuotaExceeded, r.lastErr, "%s: gave up after %v: %s", r.what, ctx.Err(), status.Convert(r.lastErr).Message())
	}
	if _, ok := errs.As[*errorpb.ServerBusy](r.lastErr); ok {
		return newError(ErrServerBusy, r.lastErr, "%s: gave up after %v: %s", r.what, ctx.Err(), status.Convert(r.lastErr).Message())
	}
	if r.lastErr != nil {
		return fmt.Errorf("%s: %w (last error: %v)", r.what, ctx.Err(), r.lastErr)
	}
	return fmt.Errorf("%s: %w", r.what, ctx.Err())
}

// tooBusy gives up on a store that asked to be left alone past the
// deadline: nothing was applied, unless an earlier attempt may have been.
func (r *retrier) tooBusy(err error) error {
	if r.write && r.mayHaveApplied {
		return ambiguous(fmt.Errorf("gave up before the deadline, the store asking for %v: %w", RetryAfter(err), err), r.what)
	}
	return newError(ErrServerBusy, err, "%s: %s (retry after %v, beyond the deadline)", r.what, status.Convert(err).Message(), RetryAfter(err))
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

// grpcCode is err's gRPC code; ok is false for an error that is not a
// gRPC status (status.Code would call it Unknown, "result unknown").
func grpcCode(err error) (codes.Code, bool) {
	st, ok := status.FromError(err)
	return st.Code(), ok
}

// reroute fixes the routing cache and connection pool after a request for
// loc sent to store failed with err, classified as act. hinted: the error
// named the tablet's leader, now in the cache (worth retrying at once).
// elsewhere: the caller should move on to another replica.
func (c *Client) reroute(act retry.Action, loc location, store uint64, err error) (hinted, elsewhere bool) {
	id := loc.tabletID()
	switch act {
	case retry.RefreshRoute:
		if em, ok := errs.As[*errorpb.EpochMismatch](err); ok && len(em.Current) > 0 {
			if !c.cache.onEpochMismatch(id, em.Current) {
				// The replica is older than what we know: it lags (or
				// was removed and not yet collected). Ask another one;
				// asking it again would get the same answer.
				return false, true
			}
			return false, false
		}
		c.cache.drop(id)
		if kn, ok := errs.As[*errorpb.KeyNotInTablet](err); ok && kn.Tablet != nil {
			c.cache.onEpochMismatch(id, []*metapb.TabletDescriptor{kn.Tablet})
		}
		if code, ok := grpcCode(err); ok && code == codes.Unimplemented {
			// Another server now listens on the store's old address
			// (the store moved or is gone, its port reused).
			c.pool.forget(store)
		}
	case retry.RetryElsewhere:
		nl, ok := errs.As[*errorpb.NotLeader](err)
		switch {
		case !ok: // not sent: the store is unreachable
			c.pool.forget(store)
			return false, true
		case nl.LeaderStoreId != 0 && nl.LeaderStoreId != store && hasReplicaOn(loc.desc, nl.LeaderStoreId):
			c.pool.learnAddr(nl.LeaderStoreId, nl.LeaderAddr)
			c.cache.setLeader(id, nl.LeaderStoreId)
			return true, false
		case nl.LeaderStoreId != 0 && !hasReplicaOn(loc.desc, nl.LeaderStoreId):
			// The leader is on a store our descriptor does not know:
			// the membership changed. Refetch.
			c.pool.learnAddr(nl.LeaderStoreId, nl.LeaderAddr)
			c.cache.drop(id)
		default:
			return false, true
		}
	case retry.Ambiguous:
		if code, ok := grpcCode(err); ok && code == codes.Unavailable {
			c.pool.forget(store) // the store may be down or moved
		}
		return false, true
	}
	return false, false
}

// handle decides what to do after a request for loc sent to store failed
// with err (retry.Classify). It fixes the routing state and backs off; it
// returns nil to retry or the error to give the caller.
func (r *retrier) handle(ctx context.Context, loc location, store uint64, err error) error {
	r.attempt++
	if errors.Is(err, ErrClosed) {
		return err
	}
	act := retry.Classify(err)
	r.c.metrics.retried(act)
	_, tableGone := errs.As[*errorpb.TableNotFound](err)
	if r.write && act == retry.Ambiguous {
		r.mayHaveApplied = true
	}
	if r.write && r.mayHaveApplied && time.Since(r.started) > resendWindow {
		r.lastErr = err
		return ambiguous(fmt.Errorf("not resent %v after the first attempt (the tablets may have forgotten its request ID): %w", resendWindow, err), r.what)
	}
	if ctx.Err() != nil {
		if (act.NotApplied() && !tableGone) || (r.write && r.mayHaveApplied) {
			r.lastErr = err
			return r.giveUp(ctx)
		}
		return r.final(err)
	}
	r.lastErr = err
	var minWait time.Duration
	switch act {
	case retry.Fail:
		return r.final(err)
	case retry.Backoff:
		if qe, ok := errs.As[*errorpb.QuotaExceeded](err); ok {
			return r.waitQuota(ctx, qe, err)
		}
		if _, ok := errs.As[*errorpb.ServerBusy](err); ok {
			minWait = RetryAfter(err)
			if dl, ok := ctx.Deadline(); ok && time.Until(dl) < minWait {
				// The store asked for more time than is left: say so
				// now rather than sleep into the deadline.
				return r.tooBusy(err)
			}
		} else if _, ok := errs.As[*errorpb.DiskFull](err); ok {
			minWait = RetryAfter(err)
		} else if r.t == nil || !r.c.tableStillExists(ctx, r.t) {
			// A store learns schemas from PD heartbeats and may lag
			// behind a CreateTable: keep trying while the PD still has
			// the table.
			return r.final(err)
		}
	case retry.Ambiguous:
		// A lost connection is resent to another replica, reads and
		// writes alike; "result unknown" only for writes. A write's resend
		// carries the same request ID and the tablet applies a request at
		// most once (it answers a repeat with the first result), so it is
		// safe. Anything else (a deadline inside the server) is final.
		code, ok := grpcCode(err)
		if !ok || (code != codes.Unavailable && !(code == codes.Unknown && r.write)) {
			return r.final(err)
		}
	}
	hinted, elsewhere := r.c.reroute(act, loc, store, err)
	if elsewhere {
		r.tryNextReplica(loc, store)
	}
	r.c.log.Debug("kvclient: retrying", "op", r.what, "tablet", loc.tabletID(), "store", store, "attempt", r.attempt, "action", act, "err", errs.Code(err))
	_, epoch := errs.As[*errorpb.EpochMismatch](err)
	if (hinted && r.attempt < 4) || (epoch && r.attempt < 3) {
		return nil // the error said where to go: no wait
	}
	if err := r.bo.Wait(ctx, minWait); err != nil {
		return r.giveUp(ctx)
	}
	return nil
}

// final is the error a refused attempt ends the operation with: the
// refusal itself, unless an earlier attempt of this write may have
// applied. Then the result is unknown whatever the last attempt heard: a
// resend can be refused before its request ID is looked up (a timestamp
// checked against another leader's clock, say) although the first attempt
// applied (kvnemesis soak, seed 10889430638702782879).
func (r *retrier) final(err error) error {
	if r.write && r.mayHaveApplied {
		return ambiguous(fmt.Errorf("an earlier attempt may have applied; the last one was refused: %w", err), r.what)
	}
	return userError(err, r.write, r.what)
}

// waitQuota waits out a quota's refusal: the server's retry-after plus up
// to half more of jitter (so the refused callers do not all come back
// at once), not the exponential backoff, which would leave the quota
// unused. A wait the caller's deadline cannot cover fails at once.
func (r *retrier) waitQuota(ctx context.Context, qe *errorpb.QuotaExceeded, err error) error {
	wait := time.Duration(qe.RetryAfterMs) * time.Millisecond
	wait += rand.N(wait/2 + 1)
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) < wait {
		if r.write && r.mayHaveApplied { // an earlier attempt may have applied
			return ambiguous(fmt.Errorf("the quota's wait (%v) would pass the deadline: %w", wait, err), r.what)
		}
		return newError(ErrQuotaExceeded, err, "%s: the quota's wait (%v) would pass the deadline: %s", r.what, wait, status.Convert(err).Message())
	}
	if retry.Sleep(ctx, wait) != nil {
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
	if err := r.bo.Wait(ctx, 0); err != nil {
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
	return c.runLocated(ctx, t, key, write, what, func(ctx context.Context, loc location) (uint64, error) {
		return c.attempt(ctx, loc, write, f)
	})
}

// runLocated locates key's tablet and runs attempt on it, retrying as the
// rules in handle allow; attempt returns the store it asked.
func (c *Client) runLocated(ctx context.Context, t *Table, key []byte, write bool, what string, attempt func(context.Context, location) (uint64, error)) error {
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
		store, err := attempt(ctx, loc)
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
		return store, fmt.Errorf("%w: %v", retry.ErrNotSent, err)
	}
	if write && !waitReady(ctx, cc, maxConnectWait) {
		return store, fmt.Errorf("%w: store %d", retry.ErrNotSent, store)
	}
	return store, f(ctx, cl, header(loc))
}
