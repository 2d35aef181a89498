package kvclient

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/shaledb/shale/internal/admission"
	"github.com/shaledb/shale/internal/keys"
	"github.com/shaledb/shale/proto/kvpb"
)

// ScanOptions describe a range scan.
type ScanOptions struct {
	// Start and End bound the rows: [Start, End). Nil Start: from the
	// table's first row; nil End: to its last.
	Start, End []byte
	// Reverse returns rows in descending key order.
	Reverse bool
	// Limit stops after this many rows (0: no limit).
	Limit int
	// PageRows is the page size asked from servers (0: Options.PageRows).
	PageRows int
	// Read restricts the cells returned, as for Get.
	Read []ReadOption
	// BulkRead marks the scan as bulk background work, such as an
	// importer's verification: tablet servers pace it with their own
	// background work (docs/qos.md) instead of admitting it as a
	// foreground request, so it yields to the user's reads and writes
	// and may run slower.
	BulkRead bool
}

// Scanner iterates over a scan's rows:
//
//	sc := tbl.Scan(ctx, kvclient.ScanOptions{Start: a, End: b})
//	defer sc.Close()
//	for sc.Next() {
//		use(sc.Row())
//	}
//	if err := sc.Err(); err != nil { ... }
//
// Rows arrive exactly once and in order even while tablets split, merge or
// change leaders. A background goroutine fetches one page ahead of the
// caller. A Scanner is not safe for concurrent use.
type Scanner struct {
	pages  chan []*Row
	cancel context.CancelFunc
	cur    []*Row
	idx    int
	row    *Row

	mu struct {
		sync.Mutex
		err    error
		closed bool
	}
}

// Scan starts a scan. Errors surface through the Scanner's Err.
func (t *Table) Scan(ctx context.Context, o ScanOptions) *Scanner {
	if o.BulkRead {
		ctx = admission.WithBulkRead(ctx)
	}
	sctx, cancel := context.WithCancel(ctx)
	s := &Scanner{pages: make(chan []*Row), cancel: cancel}
	go func() {
		err := t.scan(sctx, o, func(rows []*Row) error {
			select {
			case s.pages <- rows:
				return nil
			case <-sctx.Done():
				return sctx.Err()
			}
		})
		s.mu.Lock()
		s.mu.err = err
		s.mu.Unlock()
		close(s.pages)
	}()
	return s
}

// Next advances to the next row; false at the end or on error.
func (s *Scanner) Next() bool {
	for s.idx >= len(s.cur) {
		page, ok := <-s.pages
		if !ok {
			s.row, s.cur = nil, nil
			return false
		}
		s.cur, s.idx = page, 0
	}
	s.row = s.cur[s.idx]
	s.idx++
	return true
}

// Row returns the current row.
func (s *Scanner) Row() *Row { return s.row }

// Err returns the error that ended the scan, if any. Call it after Next
// returned false.
func (s *Scanner) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mu.closed && errors.Is(s.mu.err, context.Canceled) {
		return nil
	}
	return s.mu.err
}

// Close stops the scan and releases its resources. It is safe to call
// more than once.
func (s *Scanner) Close() error {
	s.mu.Lock()
	s.mu.closed = true
	s.mu.Unlock()
	s.cancel()
	for range s.pages {
	}
	return nil
}

// scanRange is the resumable state of a scan, in row keys.
type scanRange struct {
	tableID    uint64
	start, end []byte // current bounds; nil: open
	reverse    bool
	remaining  int // rows still wanted; -1: no limit
	last       []byte
	haveLast   bool
}

func (r *scanRange) startKey() []byte { return keys.RowKey(r.tableID, r.start) }

func (r *scanRange) endKey() []byte {
	if r.end == nil {
		return keys.PrefixEnd(keys.TablePrefix(r.tableID))
	}
	return keys.RowKey(r.tableID, r.end)
}

// rowOf returns the row of a tablet boundary inside the table, or false
// when the boundary is outside it (a bare table prefix or another table).
func rowOf(tableID uint64, boundary []byte) ([]byte, bool) {
	if len(boundary) <= 8 {
		return nil, false
	}
	id, row, err := keys.DecodeRowKey(boundary)
	if err != nil || id != tableID {
		return nil, false
	}
	return row, true
}

// scan runs the scan, handing pages to emit.
func (t *Table) scan(ctx context.Context, o ScanOptions, emit func([]*Row) error) error {
	if t.c.closed.Load() {
		return ErrClosed
	}
	if o.Limit < 0 || o.PageRows < 0 {
		return invalidArgf("scan: negative limit or page size")
	}
	r := &scanRange{tableID: t.info.ID, start: o.Start, end: o.End, reverse: o.Reverse, remaining: -1}
	if o.Limit > 0 {
		r.remaining = o.Limit
	}
	if len(r.end) == 0 {
		r.end = nil
	}
	if r.end != nil && bytes.Compare(r.startKey(), r.endKey()) >= 0 {
		return nil
	}
	pageRows := o.PageRows
	if pageRows == 0 {
		pageRows = t.c.opts.PageRows
	}
	ro := readOptions(o.Read)
	if err := checkReadOptions(ro); err != nil {
		return err
	}
	// Fill the routing cache for the range in a few PD round trips; the
	// per-tablet lookups below then hit the cache.
	if err := t.c.cache.prefetch(ctx, r.startKey(), r.endKey(), 1024); err != nil && ctx.Err() != nil {
		return ctx.Err()
	}

	_, hasDeadline := ctx.Deadline()
	newRetry := func() (*retrier, context.Context, context.CancelFunc) {
		rctx, cancel := ctx, context.CancelFunc(func() {})
		if !hasDeadline {
			rctx, cancel = context.WithTimeout(ctx, t.c.opts.RequestTimeout)
		}
		return t.c.newRetrier(t, false, "scan"), rctx, cancel
	}
	g := &readGuard{}
	rt, rctx, rcancel := newRetry()
	defer func() { rcancel() }()
	progress := func() {
		rcancel()
		rt, rctx, rcancel = newRetry()
	}

	for {
		var loc location
		var err error
		if r.reverse {
			loc, err = t.c.cache.locateBefore(rctx, r.endKey())
		} else {
			loc, err = t.c.cache.locate(rctx, r.startKey())
		}
		if err != nil {
			if err := rt.handlePD(rctx, err); err != nil {
				return err
			}
			continue
		}
		exhausted, done, served, store, err := t.scanTablet(ctx, loc, r, ro, g, pageRows, emit, progress)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if errors.Is(err, errReadElsewhere) {
				continue // from the last row returned, on another replica
			}
			if err := rt.handle(rctx, loc, store, err); err != nil {
				return err
			}
			continue
		}
		if done || r.remaining == 0 || !exhausted {
			return nil
		}
		progress()
		// Continue in the next tablet, from the boundary of the tablet that
		// served the scan as the server reported it (the cached descriptor
		// may be older: the tablet may have split meanwhile).
		if r.reverse {
			if bytes.Compare(served.start, r.startKey()) <= 0 {
				return nil
			}
			row, ok := rowOf(r.tableID, served.start)
			if !ok {
				return nil
			}
			r.end = row
		} else {
			if len(served.end) == 0 || bytes.Compare(served.end, r.endKey()) >= 0 {
				return nil
			}
			row, ok := rowOf(r.tableID, served.end)
			if !ok {
				return nil
			}
			r.start = row
		}
	}
}

// servedRange is the key range of the tablet that served a scan.
type servedRange struct{ start, end []byte }

// scanTablet streams one tablet's part of the range. It narrows r past
// every row handed to emit, so an error at any point can resume after the
// last row returned. exhausted: the tablet's part is done; done: the
// scan's limit was reached; served: the serving tablet's range.
func (t *Table) scanTablet(ctx context.Context, loc location, r *scanRange, ro *kvpb.ReadOptions, g *readGuard, pageRows int,
	emit func([]*Row) error, progress func()) (exhausted, done bool, served servedRange, store uint64, err error) {
	served = servedRange{loc.desc.StartKey, loc.desc.EndKey}
	req := &kvpb.ScanRequest{TableId: r.tableID, StartRow: r.start, EndRow: r.end, Reverse: r.reverse, Options: ro, PageRows: uint32(pageRows)}
	if r.remaining > 0 {
		req.Limit = uint64(r.remaining)
	}
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var stream kvpb.Tablet_ScanClient
	store, err = t.c.attemptRead(sctx, loc, ro, g, func(ctx context.Context, cl kvpb.TabletClient, h *kvpb.RequestHeader) error {
		req.Header = h
		var err error
		stream, err = cl.Scan(ctx, req)
		return err
	})
	if err != nil {
		return false, false, served, store, err
	}
	for {
		resp, err := stream.Recv()
		if err == io.EOF {
			// The server ends every scan with a Last page; a bare EOF means
			// the stream was cut.
			return false, false, served, store, fmt.Errorf("kvclient: scan stream of tablet %d ended without a last page", loc.tabletID())
		}
		if err != nil {
			return false, false, served, store, err
		}
		if err := verifyRows(resp.Rows...); err != nil {
			t.c.badAnswer(loc, store, ro, g, err)
			return false, false, served, store, errReadElsewhere
		}
		rows := make([]*Row, 0, len(resp.Rows))
		for _, p := range resp.Rows {
			if r.haveLast && !after(p.Key, r.last, r.reverse) {
				continue // never return a row twice or out of order
			}
			rows = append(rows, rowFromProto(p))
			r.last, r.haveLast = p.Key, true
			if r.remaining > 0 {
				r.remaining--
				if r.remaining == 0 {
					break
				}
			}
		}
		if len(rows) > 0 {
			// Resume point: right after the last row returned.
			if r.reverse {
				r.end = r.last
			} else {
				r.start = append(append(make([]byte, 0, len(r.last)+1), r.last...), 0)
			}
			if err := emit(rows); err != nil {
				return false, false, served, store, err
			}
			progress()
		}
		if r.remaining == 0 {
			return true, true, served, store, nil
		}
		if resp.Last {
			if resp.TabletStartKey != nil || resp.TabletEndKey != nil {
				served = servedRange{resp.TabletStartKey, resp.TabletEndKey}
			}
			return resp.TabletExhausted, !resp.TabletExhausted, served, store, nil
		}
	}
}

// after reports whether key comes after last in scan order.
func after(key, last []byte, reverse bool) bool {
	c := bytes.Compare(key, last)
	if reverse {
		return c < 0
	}
	return c > 0
}
