package kvclient

import (
	"context"
	"math"
	"slices"
	"sync"

	"github.com/shaledb/shale/internal/errs"
	"github.com/shaledb/shale/internal/retry"
	"github.com/shaledb/shale/proto/kvpb"
)

// BatchGet reads many rows: grouped by tablet, the groups read in
// parallel. The result has one entry per input row, in input order (nil
// where the row is absent). The first error fails the whole call.
func (t *Table) BatchGet(ctx context.Context, rows [][]byte, opts ...ReadOption) ([]*Row, error) {
	if t.c.closed.Load() {
		return nil, ErrClosed
	}
	for _, r := range rows {
		if err := checkRow(r); err != nil {
			return nil, err
		}
	}
	ctx, cancel := t.c.opContext(ctx)
	defer cancel()
	groups := map[uint64][]int{}
	var order []uint64
	for i, row := range rows {
		id := uint64(0) // unknown tablet: its own group, routed by Get
		if loc, ok := t.c.cache.cached(t.key(row)); ok {
			id = loc.tabletID()
		} else if loc, err := t.c.cache.locate(ctx, t.key(row)); err == nil {
			id = loc.tabletID()
		}
		if _, ok := groups[id]; !ok {
			order = append(order, id)
		}
		groups[id] = append(groups[id], i)
	}
	out := make([]*Row, len(rows))
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
	)
	gctx, gcancel := context.WithCancel(ctx)
	defer gcancel()
	for _, id := range order {
		idxs := groups[id]
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, i := range idxs {
				r, err := t.Get(gctx, rows[i], opts...)
				if err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
						gcancel()
					}
					mu.Unlock()
					return
				}
				out[i] = r
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return nil, firstErr
	}
	return out, nil
}

// BatchMutate applies many rows' mutations: grouped by tablet, one
// BatchMutate RPC per tablet, the tablets in parallel. Each row is atomic
// on its own; rows are not atomic with each other. It returns one error per
// entry, in input order (nil: applied). Rows that failed in a way that
// guarantees nothing was applied (routing errors) are re-routed and
// retried; an ambiguous outcome is reported as ErrAmbiguous for every row
// of that RPC.
func (t *Table) BatchMutate(ctx context.Context, entries []RowMutation) []error {
	out := make([]error, len(entries))
	if t.c.closed.Load() {
		for i := range out {
			out[i] = ErrClosed
		}
		return out
	}
	if len(entries) > math.MaxUint32 {
		for i := range out {
			out[i] = invalidArgf("batch has %d entries; at most %d fit one request", len(entries), uint64(math.MaxUint32))
		}
		return out
	}
	ctx, cancel := t.c.opContext(ctx)
	defer cancel()
	var pending []int
	for i, e := range entries {
		if err := checkRow(e.Row); err != nil {
			out[i] = err
		} else if len(e.Mutations) == 0 {
			out[i] = invalidArgf("row %q: no mutations", e.Row)
		} else {
			pending = append(pending, i)
		}
	}
	retriers := map[uint64]*retrier{}
	pdRetrier := t.c.newRetrier(t, true, "batch mutate")
	// One request ID for the whole call, and each entry numbered by its
	// input position: tablets remember (row, request ID, index), so an
	// entry resent in a regrouped RPC (after a split) is still applied
	// once, and two entries of one row are two writes.
	reqID := t.c.nextRequestID()
	for len(pending) > 0 {
		// Input order, so that a row's entries apply in order.
		slices.Sort(pending)
		type group struct {
			loc  location
			idxs []int
			r    *retrier
		}
		groups := map[uint64]*group{}
		var order []uint64
		var next []int
		var fatal error
		// Each row is located once per round, so all its entries travel
		// in one RPC, in input order.
		rowLoc := map[string]*location{} // nil: the lookup failed
		for _, i := range pending {
			row := string(entries[i].Row)
			lp, done := rowLoc[row]
			if !done {
				if loc, err := t.c.cache.locate(ctx, t.key(entries[i].Row)); err == nil {
					lp = &loc
				} else if fatal == nil {
					fatal = pdRetrier.handlePD(ctx, err)
				}
				rowLoc[row] = lp
			}
			if lp == nil {
				if fatal != nil {
					out[i] = fatal
				} else {
					next = append(next, i)
				}
				continue
			}
			loc := *lp
			g := groups[loc.tabletID()]
			if g == nil {
				r := retriers[loc.tabletID()]
				if r == nil {
					r = t.c.newRetrier(t, true, "batch mutate")
					r.started = pdRetrier.started // the request ID's first use
					retriers[loc.tabletID()] = r
				}
				g = &group{loc: loc, r: r}
				groups[loc.tabletID()] = g
				order = append(order, loc.tabletID())
			}
			g.idxs = append(g.idxs, i)
		}
		var (
			wg sync.WaitGroup
			mu sync.Mutex
		)
		for _, id := range order {
			g := groups[id]
			wg.Add(1)
			go func() {
				defer wg.Done()
				retry := t.sendBatch(ctx, g.loc, g.r, reqID, entries, g.idxs, out)
				mu.Lock()
				next = append(next, retry...)
				mu.Unlock()
			}()
		}
		wg.Wait()
		pending = next
	}
	return out
}

// sendBatch sends one tablet's share of a BatchMutate. It fills out for
// the rows that are done and returns the rows to retry.
func (t *Table) sendBatch(ctx context.Context, loc location, r *retrier, id *kvpb.RequestID, entries []RowMutation, idxs []int, out []error) []int {
	req := &kvpb.BatchMutateRequest{TableId: t.info.ID, RequestId: id}
	for _, i := range idxs {
		req.Entries = append(req.Entries, &kvpb.BatchMutateRequest_Entry{Index: uint32(i), RowKey: entries[i].Row, Mutations: mutationsToProto(entries[i].Row, entries[i].Mutations)})
	}
	var resp *kvpb.BatchMutateResponse
	store, err := t.c.attempt(ctx, loc, true, func(ctx context.Context, cl kvpb.TabletClient, h *kvpb.RequestHeader) error {
		req.Header = h
		var err error
		resp, err = cl.BatchMutate(ctx, req)
		return err
	})
	if err == nil && len(resp.Results) != len(idxs) {
		err = ambiguous(nil, "batch mutate: server returned a result count that does not match the request")
	}
	if err != nil {
		if ferr := r.handle(ctx, loc, store, err); ferr != nil {
			for _, i := range idxs {
				out[i] = ferr
			}
			return nil
		}
		return idxs
	}
	var again []int
	var routeErr error
	for k, res := range resp.Results {
		i := idxs[k]
		if res.Error == nil {
			out[i] = nil
			t.c.observe(res.Timestamp)
			continue
		}
		e := errs.FromProto(res.Error)
		if retry.Classify(e).NotApplied() {
			again = append(again, i)
			if routeErr == nil {
				routeErr = e
			}
			continue
		}
		out[i] = userError(e, true, "batch mutate")
	}
	if routeErr != nil {
		// One routing fix (and backoff) for the whole group.
		if ferr := r.handle(ctx, loc, store, routeErr); ferr != nil {
			for _, i := range again {
				out[i] = ferr
			}
			return nil
		}
	}
	return again
}
