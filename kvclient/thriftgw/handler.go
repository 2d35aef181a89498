package thriftgw

import (
	"context"
	"errors"
	"net"
	"regexp"
	"strconv"
	"strings"
	"sync"

	"github.com/shaledb/shale/internal/limits"
	"github.com/shaledb/shale/kvclient"
	"github.com/shaledb/shale/kvclient/thriftgw/filterlang"
	"github.com/shaledb/shale/proto/hbase"
)

// handler implements hbase.THBaseService on a kvclient.Client.
type handler struct {
	s        *Server
	c        *kvclient.Client
	scanners *registry
	// adminMu keeps two truncateTable calls from interleaving their drop
	// and create.
	adminMu sync.Mutex
}

// connHandler is the service one connection sees: the shared handler,
// with the scanner methods bound to the connection's scanners.
type connHandler struct {
	*handler
	owner *owner
	ident *connIdentity
	// conn is the client's connection (nil in tests that call the handler
	// directly); its PeerCertificate is the caller's identity over TLS.
	conn *trackedConn
}

var _ hbase.THBaseService = (*connHandler)(nil)

func newHandler(s *Server) *handler {
	return &handler{s: s, c: s.opts.Client, scanners: newRegistry(s.opts.MaxScanners)}
}

func (h *handler) ctx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, h.s.opts.RequestTimeout)
}

func (h *handler) table(ctx context.Context, name []byte) (*kvclient.Table, error) {
	n, err := tableName(name)
	if err != nil {
		return nil, err
	}
	t, err := h.c.Table(ctx, n)
	if err != nil {
		return nil, err
	}
	if err := h.authorizeTable(ctx, t); err != nil {
		return nil, err
	}
	return t, nil
}

// ---- reads ----

func (h *handler) get(ctx context.Context, table []byte, g *hbase.TGet) (*kvclient.Row, error) {
	ctx, cancel := h.ctx(ctx)
	defer cancel()
	opts, f, err := getReadOpts(g)
	if err != nil {
		return nil, err
	}
	t, err := h.table(ctx, table)
	if err != nil {
		return nil, err
	}
	r, err := t.Get(ctx, g.Row, opts...)
	if err != nil {
		return nil, err
	}
	return filterRow(f, r), nil
}

func (h *handler) Exists(ctx context.Context, table []byte, g *hbase.TGet) (bool, error) {
	r, err := h.get(ctx, table, g)
	if err != nil {
		return false, ioError(err)
	}
	return r != nil && len(r.Cells) > 0, nil
}

func (h *handler) ExistsAll(ctx context.Context, table []byte, gets []*hbase.TGet) ([]bool, error) {
	rows, err := h.getMultiple(ctx, table, gets)
	if err != nil {
		return nil, ioError(err)
	}
	out := make([]bool, len(rows))
	for i, r := range rows {
		out[i] = r != nil && len(r.Cells) > 0
	}
	return out, nil
}

func (h *handler) Get(ctx context.Context, table []byte, g *hbase.TGet) (*hbase.TResult_, error) {
	r, err := h.get(ctx, table, g)
	if err != nil {
		return nil, ioError(err)
	}
	return toTResult(r), nil
}

func (h *handler) getMultiple(ctx context.Context, table []byte, gets []*hbase.TGet) ([]*kvclient.Row, error) {
	ctx, cancel := h.ctx(ctx)
	defer cancel()
	t, err := h.table(ctx, table)
	if err != nil {
		return nil, err
	}
	out := make([]*kvclient.Row, len(gets))
	if len(gets) == 0 {
		return out, nil
	}
	// Gets with identical read options go in one BatchGet; in practice
	// clients send one shape, so group by the first and fall back to
	// single Gets for the others.
	var firstOpts []kvclient.ReadOption
	var firstFilter *filterlang.Filter
	var batchRows [][]byte
	var batchIdx []int
	for i, g := range gets {
		opts, f, err := getReadOpts(g)
		if err != nil {
			return nil, err
		}
		if i == 0 || sameReadShape(gets[0], g) {
			if i == 0 {
				firstOpts, firstFilter = opts, f
			}
			batchRows = append(batchRows, g.Row)
			batchIdx = append(batchIdx, i)
			continue
		}
		r, err := t.Get(ctx, g.Row, opts...)
		if err != nil {
			return nil, err
		}
		out[i] = filterRow(f, r)
	}
	rows, err := t.BatchGet(ctx, batchRows, firstOpts...)
	if err != nil {
		return nil, err
	}
	for j, i := range batchIdx {
		if j < len(rows) {
			out[i] = filterRow(firstFilter, rows[j])
		}
	}
	return out, nil
}

// sameReadShape reports whether two TGets ask for the same cells of their
// rows.
func sameReadShape(a, b *hbase.TGet) bool {
	ac, bc := *a, *b
	ac.Row, bc.Row = nil, nil
	return ac.Equals(&bc)
}

func (h *handler) GetMultiple(ctx context.Context, table []byte, gets []*hbase.TGet) ([]*hbase.TResult_, error) {
	rows, err := h.getMultiple(ctx, table, gets)
	if err != nil {
		return nil, ioError(err)
	}
	out := make([]*hbase.TResult_, len(rows))
	for i, r := range rows {
		out[i] = toTResult(r)
	}
	return out, nil
}

// ---- writes ----

func (h *handler) Put(ctx context.Context, table []byte, p *hbase.TPut) error {
	ctx, cancel := h.ctx(ctx)
	defer cancel()
	muts, err := putMutations(p)
	if err != nil {
		return ioError(err)
	}
	t, err := h.table(ctx, table)
	if err != nil {
		return ioError(err)
	}
	_, err = t.MutateRow(ctx, p.Row, muts...)
	return ioError(err)
}

func (h *handler) PutMultiple(ctx context.Context, table []byte, puts []*hbase.TPut) error {
	ctx, cancel := h.ctx(ctx)
	defer cancel()
	entries := make([]kvclient.RowMutation, 0, len(puts))
	for _, p := range puts {
		muts, err := putMutations(p)
		if err != nil {
			return ioError(err)
		}
		entries = append(entries, kvclient.RowMutation{Row: p.Row, Mutations: muts})
	}
	if len(entries) == 0 {
		return nil
	}
	t, err := h.table(ctx, table)
	if err != nil {
		return ioError(err)
	}
	return ioError(firstBatchError(t.BatchMutate(ctx, entries)))
}

func firstBatchError(errs []error) error {
	n := 0
	var first error
	for _, e := range errs {
		if e != nil {
			n++
			if first == nil {
				first = e
			}
		}
	}
	if first == nil {
		return nil
	}
	if n > 1 {
		return errors.New(strconv.Itoa(n) + " of " + strconv.Itoa(len(errs)) + " rows failed; first: " + first.Error())
	}
	return first
}

// deleteMuts converts a TDelete, reading the row when a DELETE_COLUMN
// without timestamp needs the newest version's timestamp.
func (h *handler) deleteMuts(ctx context.Context, t *kvclient.Table, d *hbase.TDelete) ([]kvclient.Mutation, error) {
	if d == nil {
		return nil, illegalf("missing TDelete")
	}
	var row *kvclient.Row
	if cols := deleteNeedsNewest(d); len(cols) > 0 && len(d.Row) > 0 {
		var err error
		if row, err = t.Get(ctx, d.Row, kvclient.Columns(cols...)); err != nil {
			return nil, err
		}
	}
	return deleteMutations(d, func(f string, q []byte) (int64, bool) {
		c := row.Cell(f, q)
		if c == nil {
			return 0, false
		}
		return c.Timestamp, true
	})
}

func (h *handler) DeleteSingle(ctx context.Context, table []byte, d *hbase.TDelete) error {
	ctx, cancel := h.ctx(ctx)
	defer cancel()
	t, err := h.table(ctx, table)
	if err != nil {
		return ioError(err)
	}
	muts, err := h.deleteMuts(ctx, t, d)
	if err != nil {
		return ioError(err)
	}
	if len(muts) == 0 {
		return nil
	}
	_, err = t.MutateRow(ctx, d.Row, muts...)
	return ioError(err)
}

func (h *handler) DeleteMultiple(ctx context.Context, table []byte, dels []*hbase.TDelete) ([]*hbase.TDelete, error) {
	ctx, cancel := h.ctx(ctx)
	defer cancel()
	t, err := h.table(ctx, table)
	if err != nil {
		return nil, ioError(err)
	}
	entries := make([]kvclient.RowMutation, 0, len(dels))
	for _, d := range dels {
		muts, err := h.deleteMuts(ctx, t, d)
		if err != nil {
			return nil, ioError(err)
		}
		if len(muts) > 0 {
			entries = append(entries, kvclient.RowMutation{Row: d.Row, Mutations: muts})
		}
	}
	if len(entries) > 0 {
		if err := firstBatchError(t.BatchMutate(ctx, entries)); err != nil {
			return nil, ioError(err)
		}
	}
	return []*hbase.TDelete{}, nil
}

func (h *handler) checkAndMutate(ctx context.Context, table, row, family, qualifier []byte, op hbase.TCompareOperator, value []byte, muts func(t *kvclient.Table) ([]kvclient.Mutation, error)) (bool, error) {
	ctx, cancel := h.ctx(ctx)
	defer cancel()
	if len(row) == 0 {
		return false, ioError(illegalf("empty row key"))
	}
	cond, err := condition(family, qualifier, op, value)
	if err != nil {
		return false, ioError(err)
	}
	t, err := h.table(ctx, table)
	if err != nil {
		return false, ioError(err)
	}
	ms, err := muts(t)
	if err != nil {
		return false, ioError(err)
	}
	ok, err := t.CheckAndMutateRow(ctx, row, cond, ms, nil)
	if err != nil {
		return false, ioError(err)
	}
	return ok, nil
}

func sameRow(what string, check, mut []byte) error {
	if string(check) != string(mut) {
		return illegalf("%s row %q does not match the checked row %q", what, mut, check)
	}
	return nil
}

func (h *handler) CheckAndPut(ctx context.Context, table, row, family, qualifier, value []byte, p *hbase.TPut) (bool, error) {
	return h.checkAndMutate(ctx, table, row, family, qualifier, hbase.TCompareOperator_EQUAL, value, func(*kvclient.Table) ([]kvclient.Mutation, error) {
		muts, err := putMutations(p)
		if err != nil {
			return nil, err
		}
		return muts, sameRow("TPut", row, p.Row)
	})
}

func (h *handler) CheckAndDelete(ctx context.Context, table, row, family, qualifier, value []byte, d *hbase.TDelete) (bool, error) {
	return h.checkAndMutate(ctx, table, row, family, qualifier, hbase.TCompareOperator_EQUAL, value, func(t *kvclient.Table) ([]kvclient.Mutation, error) {
		if d == nil {
			return nil, illegalf("missing TDelete")
		}
		if err := sameRow("TDelete", row, d.Row); err != nil {
			return nil, err
		}
		if len(deleteNeedsNewest(d)) > 0 {
			return nil, unsupportedf("DELETE_COLUMN without a timestamp in checkAndDelete (it needs a read); give a timestamp or use DELETE_COLUMNS")
		}
		return deleteMutations(d, nil)
	})
}

func (h *handler) CheckAndMutate(ctx context.Context, table, row, family, qualifier []byte, op hbase.TCompareOperator, value []byte, rm *hbase.TRowMutations) (bool, error) {
	return h.checkAndMutate(ctx, table, row, family, qualifier, op, value, func(t *kvclient.Table) ([]kvclient.Mutation, error) {
		if rm == nil {
			return nil, illegalf("missing TRowMutations")
		}
		if err := sameRow("TRowMutations", row, rm.Row); err != nil {
			return nil, err
		}
		return rowMutations(rm, true)
	})
}

// rowMutations converts a TRowMutations (all on rm.Row).
func rowMutations(rm *hbase.TRowMutations, noReads bool) ([]kvclient.Mutation, error) {
	var out []kvclient.Mutation
	for _, m := range rm.Mutations {
		switch {
		case m == nil:
			return nil, illegalf("empty TMutation")
		case m.Put != nil:
			if err := sameRow("TPut", rm.Row, m.Put.Row); err != nil {
				return nil, err
			}
			ms, err := putMutations(m.Put)
			if err != nil {
				return nil, err
			}
			out = append(out, ms...)
		case m.DeleteSingle != nil:
			if err := sameRow("TDelete", rm.Row, m.DeleteSingle.Row); err != nil {
				return nil, err
			}
			if noReads && len(deleteNeedsNewest(m.DeleteSingle)) > 0 {
				return nil, unsupportedf("DELETE_COLUMN without a timestamp in a row mutation (it needs a read); give a timestamp or use DELETE_COLUMNS")
			}
			ms, err := deleteMutations(m.DeleteSingle, nil)
			if err != nil {
				return nil, err
			}
			out = append(out, ms...)
		default:
			return nil, illegalf("TMutation sets neither put nor deleteSingle")
		}
	}
	if len(out) == 0 {
		return nil, illegalf("TRowMutations for row %q has no mutations", rm.Row)
	}
	return out, nil
}

func (h *handler) MutateRow(ctx context.Context, table []byte, rm *hbase.TRowMutations) error {
	ctx, cancel := h.ctx(ctx)
	defer cancel()
	if rm == nil || len(rm.Row) == 0 {
		return ioError(illegalf("missing row in TRowMutations"))
	}
	muts, err := rowMutations(rm, true)
	if err != nil {
		return ioError(err)
	}
	t, err := h.table(ctx, table)
	if err != nil {
		return ioError(err)
	}
	_, err = t.MutateRow(ctx, rm.Row, muts...)
	return ioError(err)
}

func (h *handler) Increment(ctx context.Context, table []byte, inc *hbase.TIncrement) (*hbase.TResult_, error) {
	ctx, cancel := h.ctx(ctx)
	defer cancel()
	if inc == nil || len(inc.Row) == 0 {
		return nil, ioError(illegalf("TIncrement: empty row key"))
	}
	if len(inc.Columns) == 0 {
		return nil, ioError(illegalf("TIncrement for row %q has no columns", inc.Row))
	}
	rules := make([]kvclient.Rule, 0, len(inc.Columns))
	for _, c := range inc.Columns {
		if c == nil || len(c.Family) == 0 {
			return nil, ioError(illegalf("TIncrement: column without a family"))
		}
		rules = append(rules, kvclient.IncrementRule(string(c.Family), c.Qualifier, c.Amount))
	}
	t, err := h.table(ctx, table)
	if err != nil {
		return nil, ioError(err)
	}
	r, err := t.ReadModifyWriteRow(ctx, inc.Row, rules...)
	if err != nil {
		return nil, ioError(err)
	}
	if inc.ReturnResults != nil && !*inc.ReturnResults {
		return toTResult(nil), nil
	}
	return toTResult(r), nil
}

func (h *handler) Append(ctx context.Context, table []byte, ap *hbase.TAppend) (*hbase.TResult_, error) {
	ctx, cancel := h.ctx(ctx)
	defer cancel()
	if ap == nil || len(ap.Row) == 0 {
		return nil, ioError(illegalf("TAppend: empty row key"))
	}
	if len(ap.Columns) == 0 {
		return nil, ioError(illegalf("TAppend for row %q has no columns", ap.Row))
	}
	rules := make([]kvclient.Rule, 0, len(ap.Columns))
	for _, c := range ap.Columns {
		if c == nil || len(c.Family) == 0 {
			return nil, ioError(illegalf("TAppend: column without a family"))
		}
		rules = append(rules, kvclient.AppendRule(string(c.Family), c.Qualifier, c.Value))
	}
	t, err := h.table(ctx, table)
	if err != nil {
		return nil, ioError(err)
	}
	r, err := t.ReadModifyWriteRow(ctx, ap.Row, rules...)
	if err != nil {
		return nil, ioError(err)
	}
	if ap.ReturnResults != nil && !*ap.ReturnResults {
		return toTResult(nil), nil
	}
	return toTResult(r), nil
}

// ---- scanners ----

// scanPlan is a TScan converted: the scan to run, and the filter and row
// limit the gateway applies to its rows.
type scanPlan struct {
	o      kvclient.ScanOptions
	filter *filterlang.Filter
	// limit bounds the rows returned (0: none). With a filter the gateway
	// counts them; without, the scan's Limit does.
	limit int
	// empty: the filter's row range excludes every row.
	empty bool
}

func scanOptions(sc *hbase.TScan) (scanPlan, error) {
	var p scanPlan
	o := &p.o
	if sc == nil {
		return p, illegalf("missing TScan")
	}
	f, err := parseFilter(sc.FilterString, sc.FilterBytes)
	if err != nil {
		return p, err
	}
	if len(sc.ColFamTimeRangeMap) > 0 {
		return p, unsupportedf("per-family time ranges (colFamTimeRangeMap) in TScan")
	}
	mv := sc.MaxVersions
	if mv == 0 {
		mv = 1
	}
	read, rd, err := readOpts(sc.Columns, nil, sc.TimeRange, mv)
	if err != nil {
		return p, err
	}
	o.Read = read
	if sc.Reversed != nil && *sc.Reversed {
		// HBase: startRow is the inclusive upper bound, stopRow the
		// exclusive lower bound. Shale: [Start, End) with Reverse.
		o.Reverse = true
		if len(sc.StopRow) > 0 {
			o.Start = after(sc.StopRow)
		}
		if len(sc.StartRow) > 0 {
			o.End = after(sc.StartRow)
		}
	} else {
		o.Start = sc.StartRow
		if len(sc.StopRow) > 0 {
			o.End = sc.StopRow
		}
	}
	if sc.Limit != nil {
		if *sc.Limit < 0 {
			return p, illegalf("negative scan limit %d", *sc.Limit)
		}
		p.limit = int(*sc.Limit)
	}
	if sc.Caching != nil && *sc.Caching > 0 {
		o.PageRows = int(min(*sc.Caching, 10000))
	}
	p.setFilter(f, rd)
	return p, nil
}

// setFilter adds a filter to the plan, with its push-down.
func (p *scanPlan) setFilter(f *filterlang.Filter, rd readShape) {
	p.filter = f
	if f == nil {
		p.o.Limit = p.limit
		return
	}
	rd.Reverse = p.o.Reverse
	push, opts := pushReadOpts(f, rd)
	p.o.Read = append(p.o.Read, opts...)
	p.empty = !narrowScan(&p.o, push)
}

// open starts the plan's scan on t.
func (p scanPlan) open(ctx context.Context, t *kvclient.Table, cancel context.CancelFunc) *scanner {
	s := &scanner{cancel: cancel, limit: p.limit}
	if p.filter != nil {
		s.filter = p.filter.NewScan(p.o.Reverse)
	}
	if p.empty {
		s.ended = true // and no scan to run
		return s
	}
	s.sc = t.Scan(ctx, p.o)
	return s
}

func (h *connHandler) OpenScanner(ctx context.Context, table []byte, sc *hbase.TScan) (int32, error) {
	p, err := scanOptions(sc)
	if err != nil {
		return 0, ioError(err)
	}
	tctx, cancel := h.ctx(ctx)
	t, err := h.table(tctx, table)
	cancel()
	if err != nil {
		return 0, ioError(err)
	}
	if err := h.scanners.full(h.owner); err != nil {
		return 0, ioError(err)
	}
	// The scan outlives this request: it runs until closeScanner, expiry
	// or gateway shutdown.
	sctx, scancel := context.WithCancel(context.Background())
	s := p.open(sctx, t, scancel)
	id, err := h.scanners.add(h.owner, s)
	if err != nil {
		s.close()
		return 0, ioError(err)
	}
	return id, nil
}

// next returns up to n rows of s, fewer once they take maxBytes (at least
// one row, so a reply is at most maxBytes or one row: a numRows of 2^31-1
// buffers no more). cut reports that maxBytes ended the call.
func (s *scanner) next(n, maxBytes int) (out []*hbase.TResult_, cut bool, err error) {
	rows, cut, err := s.nextRows(n, maxBytes)
	if err != nil {
		return nil, false, err
	}
	out = make([]*hbase.TResult_, len(rows))
	for i, r := range rows {
		out[i] = toTResult(r)
	}
	return out, cut, nil
}

// nextRows is next for either protocol.
func (s *scanner) nextRows(n, maxBytes int) (out []*kvclient.Row, cut bool, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, false, illegalf("scanner is closed")
	}
	size := 0
	for len(out) < n && !cut {
		row, ok := s.fetch()
		if !ok {
			break
		}
		out = append(out, row)
		size += rowBytes(row)
		cut = size >= maxBytes && len(out) < n
	}
	if len(out) < n && !cut && s.sc != nil {
		if err := s.sc.Err(); err != nil {
			return nil, false, err
		}
	}
	return out, cut, nil
}

// more reports whether s has another row.
func (s *scanner) more() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	_, ok := s.fetch()
	return ok
}

// rowBytes is an upper bound of a row's size in a reply.
func rowBytes(r *kvclient.Row) int {
	n := len(r.Key) + limits.CellOverheadBytes
	for _, c := range r.Cells {
		n += len(c.Family) + len(c.Qualifier) + len(c.Value) + limits.CellOverheadBytes
	}
	return n
}

func (h *connHandler) GetScannerRows(ctx context.Context, id int32, numRows int32) ([]*hbase.TResult_, error) {
	s, ok := h.scanners.acquire(h.owner, id)
	if !ok {
		return nil, illegalArg(illegalf("invalid scanner id %d: unknown on this connection, closed or expired (scanners idle for %v are closed; a scanner belongs to the connection that opened it)", id, h.s.opts.ScannerIdleTimeout))
	}
	defer h.scanners.release(s)
	if numRows < 0 {
		return nil, illegalArg(illegalf("numRows %d must not be negative", numRows))
	}
	rows, _, err := s.next(int(numRows), h.s.opts.MaxResultBytes)
	if err != nil {
		return nil, ioError(err)
	}
	return rows, nil
}

func (h *connHandler) CloseScanner(ctx context.Context, id int32) error {
	s, ok := h.scanners.remove(h.owner, id)
	if !ok {
		return illegalArg(illegalf("invalid scanner id %d: unknown on this connection, closed or expired", id))
	}
	s.close()
	return nil
}

func (h *handler) GetScannerResults(ctx context.Context, table []byte, sc *hbase.TScan, numRows int32) ([]*hbase.TResult_, error) {
	p, err := scanOptions(sc)
	if err != nil {
		return nil, ioError(err)
	}
	if numRows < 0 {
		return nil, ioError(illegalf("numRows %d must not be negative", numRows))
	}
	if numRows == 0 {
		return []*hbase.TResult_{}, nil
	}
	if p.limit == 0 || p.limit > int(numRows) {
		p.limit = int(numRows)
		if p.filter == nil {
			p.o.Limit = p.limit
		}
	}
	ctx, cancel := h.ctx(ctx)
	defer cancel()
	t, err := h.table(ctx, table)
	if err != nil {
		return nil, ioError(err)
	}
	sctx, scancel := context.WithCancel(ctx)
	s := p.open(sctx, t, scancel)
	defer s.close()
	rows, cut, err := s.next(int(numRows), h.s.opts.MaxResultBytes)
	if err != nil {
		return nil, ioError(err)
	}
	if cut && s.more() {
		// Fewer rows than asked would read as the end of the scan.
		return nil, ioError(illegalf("getScannerResults: the first %d rows exceed %d bytes, the limit of one reply; ask for fewer rows or use openScanner and getScannerRows", len(rows), h.s.opts.MaxResultBytes))
	}
	return rows, nil
}

// ---- region locations: a region is a tablet ----

// locTable returns a handle on the table with its schema read afresh, so
// that a dropped and re-created table is located by its current ID.
func (h *handler) locTable(ctx context.Context, table []byte) (*kvclient.Table, error) {
	name, err := tableName(table)
	if err != nil {
		return nil, err
	}
	if _, err := h.c.DescribeTable(ctx, name); err != nil {
		return nil, err
	}
	return h.c.Table(ctx, name)
}

// regionLocation describes a tablet as an HBase region: region ID = tablet
// ID, start and end keys = the tablet's rows within the table, server = the
// tablet's leader (the gateway itself while no leader is known).
func (h *handler) regionLocation(t *kvclient.Table, l kvclient.TabletLocation) *hbase.THRegionLocation {
	addr := l.LeaderAddr
	if addr == "" {
		addr = h.s.Addr().String()
	}
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		host, portStr = addr, "0"
	}
	port, _ := strconv.Atoi(portStr)
	p32 := int32(port)
	return &hbase.THRegionLocation{
		ServerName: &hbase.TServerName{HostName: host, Port: &p32},
		RegionInfo: &hbase.THRegionInfo{
			RegionId: int64(l.TabletID), TableName: []byte(t.Info().Name),
			StartKey: append([]byte{}, l.StartRow...), EndKey: append([]byte{}, l.EndRow...),
		},
	}
}

func (h *handler) GetRegionLocation(ctx context.Context, table, row []byte, reload bool) (*hbase.THRegionLocation, error) {
	ctx, cancel := h.ctx(ctx)
	defer cancel()
	t, err := h.locTable(ctx, table)
	if err != nil {
		return nil, ioError(err)
	}
	l, err := t.Locate(ctx, row, reload)
	if err != nil {
		return nil, ioError(err)
	}
	return h.regionLocation(t, l), nil
}

func (h *handler) GetAllRegionLocations(ctx context.Context, table []byte) ([]*hbase.THRegionLocation, error) {
	ctx, cancel := h.ctx(ctx)
	defer cancel()
	t, err := h.locTable(ctx, table)
	if err != nil {
		return nil, ioError(err)
	}
	ls, err := t.Tablets(ctx)
	if err != nil {
		return nil, ioError(err)
	}
	out := make([]*hbase.THRegionLocation, 0, len(ls))
	for _, l := range ls {
		out = append(out, h.regionLocation(t, l))
	}
	return out, nil
}

// ---- admin ----

func (h *handler) GetTableDescriptor(ctx context.Context, tn *hbase.TTableName) (*hbase.TTableDescriptor, error) {
	ctx, cancel := h.ctx(ctx)
	defer cancel()
	name, err := tTableName(tn)
	if err != nil {
		return nil, ioError(err)
	}
	ti, err := h.c.DescribeTable(ctx, name)
	if err != nil {
		return nil, ioError(err)
	}
	set, err := h.namespaceSet(ctx)
	if err != nil {
		return nil, ioError(err)
	}
	return toTDescriptor(ti, set), nil
}

func (h *handler) GetTableDescriptors(ctx context.Context, tns []*hbase.TTableName) ([]*hbase.TTableDescriptor, error) {
	out := make([]*hbase.TTableDescriptor, 0, len(tns))
	for _, tn := range tns {
		d, err := h.GetTableDescriptor(ctx, tn)
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, nil
}

func (h *handler) TableExists(ctx context.Context, tn *hbase.TTableName) (bool, error) {
	ctx, cancel := h.ctx(ctx)
	defer cancel()
	name, err := tTableName(tn)
	if err != nil {
		return false, ioError(err)
	}
	_, err = h.c.DescribeTable(ctx, name)
	if errors.Is(err, kvclient.ErrTableNotFound) {
		return false, nil
	}
	if err != nil {
		return false, ioError(err)
	}
	return true, nil
}

// listTables returns the tables whose HBase name ("t" or "ns:t") match
// accepts, and the namespaces.
func (h *handler) listTables(ctx context.Context, match func(string) bool) ([]*kvclient.TableInfo, nsSet, error) {
	ctx, cancel := h.ctx(ctx)
	defer cancel()
	all, err := h.c.ListTables(ctx)
	if err != nil {
		return nil, nil, err
	}
	set, err := h.namespaceSet(ctx)
	if err != nil {
		return nil, nil, err
	}
	var out []*kvclient.TableInfo
	for _, ti := range all {
		if ti.Name != nsTable && match(set.hbaseName(ti.Name)) {
			out = append(out, ti)
		}
	}
	return out, set, nil
}

func patternMatcher(regex string) (func(string) bool, error) {
	if regex == "" {
		return func(string) bool { return true }, nil
	}
	re, err := regexp.Compile("^(?:" + regex + ")$")
	if err != nil {
		return nil, illegalf("bad table name pattern %q: %v", regex, err)
	}
	return func(n string) bool {
		return re.MatchString(n) || (!strings.Contains(n, ":") && re.MatchString("default:"+n))
	}, nil
}

func namespaceMatcher(ns string) (func(string) bool, error) {
	if ns == "" || ns == builtinNamespace {
		return func(n string) bool { return !strings.Contains(n, ":") }, nil
	}
	if err := validNamespace(ns); err != nil {
		return nil, err
	}
	return func(n string) bool { return strings.HasPrefix(n, ns+":") }, nil
}

func (h *handler) names(ctx context.Context, match func(string) bool, err error) ([]*hbase.TTableName, error) {
	if err != nil {
		return nil, ioError(err)
	}
	tis, set, err := h.listTables(ctx, match)
	if err != nil {
		return nil, ioError(err)
	}
	out := make([]*hbase.TTableName, 0, len(tis))
	for _, ti := range tis {
		out = append(out, set.tTableName(ti.Name))
	}
	return out, nil
}

func (h *handler) descriptors(ctx context.Context, match func(string) bool, err error) ([]*hbase.TTableDescriptor, error) {
	if err != nil {
		return nil, ioError(err)
	}
	tis, set, err := h.listTables(ctx, match)
	if err != nil {
		return nil, ioError(err)
	}
	out := make([]*hbase.TTableDescriptor, 0, len(tis))
	for _, ti := range tis {
		out = append(out, toTDescriptor(ti, set))
	}
	return out, nil
}

func (h *handler) GetTableDescriptorsByPattern(ctx context.Context, regex string, _ bool) ([]*hbase.TTableDescriptor, error) {
	m, err := patternMatcher(regex)
	return h.descriptors(ctx, m, err)
}

func (h *handler) GetTableDescriptorsByNamespace(ctx context.Context, name string) ([]*hbase.TTableDescriptor, error) {
	m, err := namespaceMatcher(name)
	return h.descriptors(ctx, m, err)
}

func (h *handler) GetTableNamesByPattern(ctx context.Context, regex string, _ bool) ([]*hbase.TTableName, error) {
	m, err := patternMatcher(regex)
	return h.names(ctx, m, err)
}

func (h *handler) GetTableNamesByNamespace(ctx context.Context, name string) ([]*hbase.TTableName, error) {
	m, err := namespaceMatcher(name)
	return h.names(ctx, m, err)
}

func (h *handler) CreateTable(ctx context.Context, desc *hbase.TTableDescriptor, splitKeys [][]byte) error {
	ctx, cancel := h.ctx(ctx)
	defer cancel()
	name, fams, err := fromTDescriptor(desc)
	if err != nil {
		return ioError(err)
	}
	if len(fams) == 0 {
		return ioError(illegalf("table %q must have at least one column family", name))
	}
	if err := h.checkCreate(ctx, string(desc.TableName.Ns), string(desc.TableName.Qualifier)); err != nil {
		return ioError(err)
	}
	_, err = h.c.CreateTable(ctx, name, fams, splitKeys...)
	return ioError(err)
}

func (h *handler) DeleteTable(ctx context.Context, tn *hbase.TTableName) error {
	ctx, cancel := h.ctx(ctx)
	defer cancel()
	name, err := tTableName(tn)
	if err != nil {
		return ioError(err)
	}
	return ioError(h.c.DropTable(ctx, name))
}

func (h *handler) TruncateTable(ctx context.Context, tn *hbase.TTableName, preserveSplits bool) error {
	ctx, cancel := h.ctx(ctx)
	defer cancel()
	name, err := tTableName(tn)
	if err != nil {
		return ioError(err)
	}
	h.adminMu.Lock()
	defer h.adminMu.Unlock()
	ti, err := h.c.DescribeTable(ctx, name)
	if err != nil {
		return ioError(err)
	}
	if err := h.c.DropTable(ctx, name); err != nil {
		return ioError(err)
	}
	var splits [][]byte
	if preserveSplits {
		splits = ti.SplitRows
	}
	_, err = h.c.CreateTable(ctx, name, ti.Families, splits...)
	return ioError(err)
}

func (h *handler) EnableTable(ctx context.Context, tn *hbase.TTableName) error {
	ok, err := h.TableExists(ctx, tn)
	if err == nil && !ok {
		err = ioError(illegalf("TableNotFoundException: %s", tn.GetQualifier()))
	}
	return err
}

func (h *handler) DisableTable(ctx context.Context, tn *hbase.TTableName) error {
	return ioError(unsupportedf("disableTable: Shale tables are always enabled"))
}

func (h *handler) IsTableEnabled(ctx context.Context, tn *hbase.TTableName) (bool, error) {
	ok, err := h.TableExists(ctx, tn)
	if err == nil && !ok {
		err = ioError(illegalf("TableNotFoundException: %s", tn.GetQualifier()))
	}
	return ok, err
}

func (h *handler) IsTableDisabled(ctx context.Context, tn *hbase.TTableName) (bool, error) {
	_, err := h.IsTableEnabled(ctx, tn)
	return false, err
}

func (h *handler) IsTableAvailable(ctx context.Context, tn *hbase.TTableName) (bool, error) {
	return h.TableExists(ctx, tn)
}

func (h *handler) GetThriftServerType(context.Context) (hbase.TThriftServerType, error) {
	return hbase.TThriftServerType_TWO, nil
}
