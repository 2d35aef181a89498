package store

import (
	"bytes"
	"context"
	"fmt"

	"github.com/cockroachdb/pebble/v2"
	"google.golang.org/protobuf/proto"

	"github.com/shaledb/shale/internal/cellvalue"
	"github.com/shaledb/shale/internal/errs"
	"github.com/shaledb/shale/internal/keys"
	"github.com/shaledb/shale/internal/limits"
	"github.com/shaledb/shale/proto/kvpb"
	"github.com/shaledb/shale/proto/metapb"
)

// rowFilter decides which cell versions a read returns: the request's
// families, columns, time range and version count, and the families' GC
// policies (garbage not yet collected is never returned).
type rowFilter struct {
	families    map[string]bool
	columns     map[string]map[string]bool
	maxVersions int
	start, end  int64 // [start, end), end 0 unbounded
	policy      map[string]*metapb.FamilySchema
	dropped     map[string]bool // deleted families: hidden until GC removes them
	nowMicros   int64
	filter      *compiledFilter // nil: every row
	digest      bool            // rows carry a count and digest of their cells
	maxRowBytes int             // Limits.MaxReadRowBytes
	// readTS: read as of this timestamp (0: the latest). Versions above
	// it are invisible and do not count towards the families' max
	// versions: the read sees the row as it was at readTS.
	readTS int64
}

func (s *Store) newRowFilter(schema *metapb.TableSchema, o *kvpb.ReadOptions) (*rowFilter, error) {
	f := &rowFilter{maxVersions: 1, policy: map[string]*metapb.FamilySchema{}, nowMicros: s.opts.WallClock().UnixMicro(), maxRowBytes: s.opts.Limits.MaxReadRowBytes}
	for _, fam := range schema.Families {
		f.policy[fam.Name] = fam
	}
	for _, fam := range schema.DroppedFamilies {
		if f.dropped == nil {
			f.dropped = map[string]bool{}
		}
		f.dropped[fam] = true
	}
	if o == nil {
		return f, nil
	}
	if o.MaxVersions > 0 {
		f.maxVersions = int(o.MaxVersions)
	}
	f.digest = o.Digest
	if o.ReadTimestamp < 0 {
		return nil, errs.InvalidArgument("read timestamp %d is negative", o.ReadTimestamp)
	}
	f.readTS = o.ReadTimestamp
	if tr := o.TimeRange; tr != nil {
		f.start, f.end = tr.StartTs, tr.EndTs
		if f.end > 0 && f.end <= f.start {
			return nil, errs.InvalidArgument("time range [%d, %d) is empty", f.start, f.end)
		}
	}
	for _, fam := range o.Families {
		if f.policy[fam] == nil {
			return nil, errs.InvalidArgument("table %d has no column family %q", schema.TableId, fam)
		}
		if f.families == nil {
			f.families = map[string]bool{}
		}
		f.families[fam] = true
	}
	for _, c := range o.Columns {
		if f.policy[c.Family] == nil {
			return nil, errs.InvalidArgument("table %d has no column family %q", schema.TableId, c.Family)
		}
		if f.columns == nil {
			f.columns = map[string]map[string]bool{}
		}
		if f.columns[c.Family] == nil {
			f.columns[c.Family] = map[string]bool{}
		}
		f.columns[c.Family][string(c.Qualifier)] = true
	}
	if o.Filter != nil {
		cf, err := compileFilter(schema, o.Filter)
		if err != nil {
			return nil, err
		}
		f.filter = cf
	}
	return f, nil
}

func (f *rowFilter) wantColumn(family string, qualifier []byte) bool {
	if f.families == nil && f.columns == nil {
		return true
	}
	if f.families[family] {
		return true
	}
	return f.columns[family][string(qualifier)]
}

// rowBuilder accumulates the cells of one row while iterating in key order.
type rowBuilder struct {
	f        *rowFilter
	row      *kvpb.Row
	lastFam  string
	lastQual []byte
	versions int  // versions seen of the current column (before filtering)
	returned int  // versions returned of the current column
	observed bool // the current column's newest visible version went to the filter
	masked   bool // the current column has a tombstone at or below readTS: older versions are deleted
	// skipRun counts the versions of a done column (columnDone) stepped
	// over in a row; past skipAfter the reader seeks to the next column
	// (skipDoneColumn).
	skipRun  int
	seekKey  []byte // skipDoneColumn's buffer
	digester keys.CellDigester
	// bytes estimates the row's cells in a reply; over: they exceed
	// f.maxRowBytes, and the cells past it were dropped (memory stays
	// bounded) and the row cannot be returned.
	bytes int
	over  bool
}

// add considers one stored cell: c decoded from the engine key k, value
// the engine value. Cells must arrive in key order. A tombstone hides
// itself and every older version of its column, a masking value the older
// versions; the time range does not bring deleted versions back.
func (b *rowBuilder) add(c keys.Cell, k, value []byte) error {
	if b.row == nil || !bytes.Equal(b.row.Key, c.Row) {
		b.row = &kvpb.Row{Key: c.Row}
		b.lastFam, b.lastQual = "", nil
		b.bytes, b.over = 0, false
		if b.f.filter != nil {
			b.f.filter.startRow()
		}
	}
	if c.Family != b.lastFam || !bytes.Equal(c.Qualifier, b.lastQual) {
		// Family names are never empty, so a new row always lands here.
		b.versions, b.returned, b.observed, b.masked, b.skipRun = 0, 0, false, false, 0
		b.lastFam, b.lastQual = c.Family, c.Qualifier
	}
	if b.columnDone() {
		b.skipRun++
		return nil // deleted, or nothing older can change the reply
	}
	if b.f.readTS > 0 && c.Timestamp > b.f.readTS {
		return nil // written after the read's timestamp
	}
	if c.Family == dedupFamily || b.f.dropped[c.Family] {
		return nil // not cells (dedupFamily values have no envelope)
	}
	x, err := cellvalue.Decode(value)
	if err != nil {
		return fmt.Errorf("store: cell %x: %w (%w)", k, err, pebble.ErrCorruption)
	}
	if x.MasksOlder {
		b.masked = true // older versions are deleted; a masking value itself is not
		if x.Tombstone {
			return nil
		}
	}
	b.versions++
	if p := b.f.policy[c.Family]; p != nil {
		if p.MaxVersions > 0 && b.versions > int(p.MaxVersions) {
			return nil
		}
		if p.MaxAgeMs > 0 && c.Timestamp < b.f.nowMicros-p.MaxAgeMs*1000 {
			return nil
		}
	}
	if c.Timestamp < b.f.start || (b.f.end > 0 && c.Timestamp >= b.f.end) {
		return nil
	}
	wanted := b.f.wantColumn(c.Family, c.Qualifier) && b.returned < b.f.maxVersions
	if !wanted && (b.f.filter == nil || b.observed) {
		return nil
	}
	if err := x.Verify(); err != nil {
		return fmt.Errorf("store: cell %x: %w (%w)", k, err, pebble.ErrCorruption)
	}
	value = x.Payload
	// Visible: the filter sees the newest such version, projected or not.
	if b.f.filter != nil && !b.observed {
		b.observed = true
		b.f.filter.observe(c.Family, c.Qualifier, value)
	}
	if !wanted {
		return nil
	}
	b.returned++
	if b.f.digest {
		b.row.CellCount++
		b.row.CellDigest += b.digester.CellDigest(c.Row, c.Family, c.Qualifier, value)
		return nil
	}
	if b.bytes += cellBytes(c.Family, c.Qualifier, value); b.bytes > b.f.maxRowBytes {
		b.over = true
		return nil
	}
	b.row.Cells = append(b.row.Cells, &kvpb.Cell{Family: c.Family, Qualifier: c.Qualifier, Timestamp: c.Timestamp, Value: bytes.Clone(value), Crc32C: cellChecksum(x)})
	return nil
}

// columnDone reports whether no older version of the current column can
// change the reply: the column is deleted (masked), or the read has all
// the versions of it that it wants (none, if it does not want the column)
// and the row filter has seen its newest visible one. Versions sort newest
// first, so what follows are older versions of a done column until the
// next column.
func (b *rowBuilder) columnDone() bool {
	if b.masked {
		return true
	}
	if b.f.filter != nil && !b.observed {
		return false
	}
	return b.returned >= b.f.maxVersions || !b.f.wantColumn(b.lastFam, b.lastQual)
}

// skipAfter is how many versions of a done column a read steps over
// before it seeks past the rest: a seek costs more than a few steps, and
// a hot column overwritten many times (YCSB's zipfian rows) or deleted
// and written again has many versions until GC removes them.
const skipAfter = 4

// skipDoneColumn moves it to the oldest possible version of the current
// column (the iterator's key with timestamp 0, which sorts last) when the
// builder has stepped over enough versions of the done column, and
// reports whether it did; it.Valid() then says whether there is more.
func (b *rowBuilder) skipDoneColumn(it *pebble.Iterator) bool {
	if b.skipRun <= skipAfter {
		return false
	}
	b.skipRun = 0
	k := it.Key()
	b.seekKey = append(append(b.seekKey[:0], k[:len(k)-keys.TimestampLen]...), oldestTS[:]...)
	it.SeekGE(b.seekKey)
	return true
}

// oldestTS is the encoding of timestamp 0 in a cell key (keys.CellKey).
var oldestTS = [keys.TimestampLen]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}

// matches reports whether the row built so far passes the request's filter.
func (b *rowBuilder) matches() bool { return b.f.filter == nil || b.f.filter.matches() }

// tooBig is the error for a row whose cells exceed the read limit.
func (b *rowBuilder) tooBig() error {
	key := b.row.Key
	if len(key) > 64 {
		key = key[:64]
	}
	return errs.InvalidArgument("row %q has more than %d bytes of cells to return, the limit of one read (MaxReadRowBytes, docs/limits.md); read fewer columns or versions", key, b.f.maxRowBytes)
}

// cellBytes is an upper bound of what a cell adds to a reply.
func cellBytes(family string, qualifier, value []byte) int {
	return len(family) + len(qualifier) + len(value) + limits.CellOverheadBytes
}

// rowBytes is an upper bound of what a row adds to a reply.
func rowBytes(row *kvpb.Row) int {
	n := len(row.Key) + limits.CellOverheadBytes
	for _, c := range row.Cells {
		n += cellBytes(c.Family, c.Qualifier, c.Value)
	}
	return n
}

// hasCells reports whether a built row has cells to return.
func hasCells(row *kvpb.Row) bool { return len(row.Cells) > 0 || row.CellCount > 0 }

// readLeader resolves the replica, confirms a linearizable read point and
// returns the replica for reading.
func (s *Store) readLeader(ctx context.Context, h *kvpb.RequestHeader) (*replica, error) {
	if err := s.disk.refuseRead(h.GetTabletId()); err != nil {
		return nil, err
	}
	r, err := s.replicaForRequest(h.GetTabletId())
	if err != nil {
		return nil, err
	}
	if err := s.checkEpoch(r.descriptor(), h); err != nil {
		return nil, err
	}
	if err := r.refuseBlocked(); err != nil {
		return nil, err
	}
	if err := r.readIndex(ctx); err != nil {
		return nil, err
	}
	if err := r.refuseFrozenRead(); err != nil {
		return nil, err
	}
	if err := r.refuseIfBad(); err != nil {
		return nil, err
	}
	return r, nil
}

// refuseFrozenRead fails a read of a tablet frozen for a merge, checked
// after the read point was applied. Even a ReadIndex round is not enough
// then: the merge's target may have applied CommitMerge on another store
// and taken writes in this range while this tablet's quorum, on stores
// that have not applied it yet, still answers. The client retries and
// finds the merged tablet (or this one again, after a rollback).
func (r *replica) refuseFrozenRead() error {
	r.mu.Lock()
	merging := r.mu.mergingInto
	r.mu.Unlock()
	if merging != 0 {
		return errs.ServerBusy(fmt.Sprintf("tablet %d is being merged into tablet %d; read from the merged tablet", r.tabletID, merging), 200)
	}
	return nil
}

// pinnedRead returns an engine snapshot and the descriptor valid for it.
// The request's epoch (if any) is checked again here: the tablet may have
// split since the request was accepted.
// A read at a timestamp (ts > 0) below the history floor fails here, where
// the floor and the snapshot agree: a delete applied after the read was
// found readable may have removed versions it needs.
func (s *Store) pinnedRead(r *replica, h *kvpb.RequestHeader, ts int64) (*pebble.Snapshot, *metapb.TabletDescriptor, error) {
	r.installMu.RLock()
	defer r.installMu.RUnlock()
	s.applyMu.RLock()
	defer s.applyMu.RUnlock()
	r.mu.Lock()
	desc, destroyed, floor := r.mu.desc, r.mu.destroyed, r.mu.floor
	r.mu.Unlock()
	if destroyed || desc == nil {
		return nil, nil, errs.TabletNotFound(r.tabletID, s.opts.StoreID)
	}
	if ts > 0 && ts < floor {
		return nil, nil, errs.ReadTooOld(r.tabletID, ts, floor)
	}
	if err := s.checkEpoch(desc, h); err != nil {
		return nil, nil, err
	}
	return s.db.NewSnapshot(), desc, nil
}

// Get reads one row.
func (s *Store) Get(ctx context.Context, req *kvpb.GetRequest) (*kvpb.GetResponse, error) {
	resp, err := s.get(ctx, req, false)
	if err != nil {
		return nil, s.checkCorruption(s.getReplica(req.Header.GetTabletId()), err)
	}
	return resp, nil
}

// ReadLocal reads one row from this store's replica as far as it has
// applied, without a lease or ReadIndex: the answer may be stale, and it
// is served by a follower too. It is for state that never changes once
// written (PD's cluster ID) and for diagnostics; the data path uses Get.
func (s *Store) ReadLocal(ctx context.Context, req *kvpb.GetRequest) (*kvpb.GetResponse, error) {
	if r := s.getReplica(req.Header.GetTabletId()); r != nil {
		if err := r.refuseIfBad(); err != nil {
			return nil, err
		}
	}
	resp, err := s.get(ctx, req, true)
	if err != nil {
		return nil, s.checkCorruption(s.getReplica(req.Header.GetTabletId()), err)
	}
	return resp, nil
}

func (s *Store) get(ctx context.Context, req *kvpb.GetRequest, local bool) (*kvpb.GetResponse, error) {
	if err := s.enter(); err != nil {
		return nil, err
	}
	defer s.exit()
	schema, err := s.schema(req.TableId)
	if err != nil {
		return nil, err
	}
	if err := s.checkRowKey(req.RowKey); err != nil {
		return nil, err
	}
	f, err := s.newRowFilter(schema, req.Options)
	if err != nil {
		return nil, err
	}
	var r *replica
	if local {
		r, err = s.replicaForRequest(req.Header.GetTabletId())
	} else {
		r, err = s.readReplica(ctx, req.Header, f.readTS)
	}
	if err != nil {
		return nil, err
	}
	snap, desc, err := s.pinnedRead(r, req.Header, f.readTS)
	if err != nil {
		return nil, err
	}
	defer snap.Close()
	resp, err := readRow(snap, desc, req, f)
	if err != nil || local {
		return resp, err
	}
	r.record(false, req.TableId, req.RowKey, proto.Size(resp))
	s.metrics.reads.Inc()
	return resp, nil
}

// readRow reads req's row from an engine snapshot of the tablet desc.
func readRow(snap *pebble.Snapshot, desc *metapb.TabletDescriptor, req *kvpb.GetRequest, f *rowFilter) (*kvpb.GetResponse, error) {
	rowKey := keys.RowKey(req.TableId, req.RowKey)
	if !containsKey(desc, rowKey) {
		return nil, errs.KeyNotInTablet(rowKey, desc)
	}
	// The row's request-ID records sort first (dedupFamily); start after
	// them, a hot row can have thousands.
	lower := keys.DataKey(keys.PrefixEnd(keys.FamilyPrefix(req.TableId, req.RowKey, dedupFamily)))
	it, err := snap.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: keys.DataKey(keys.PrefixEnd(rowKey))})
	if err != nil {
		return nil, err
	}
	defer it.Close()
	b := &rowBuilder{f: f}
	if err := b.addAll(it, nil); err != nil {
		return nil, err
	}
	resp := &kvpb.GetResponse{}
	if b.row != nil && b.over && b.matches() {
		return nil, b.tooBig()
	}
	if b.row != nil && hasCells(b.row) && b.matches() {
		resp.Row = b.row
	}
	return resp, nil
}

// addAll adds every cell it holds, in order, stepping over (or seeking
// past) the versions of done columns. step, if not nil, runs after each
// cell (a bulk read's pacing).
func (b *rowBuilder) addAll(it *pebble.Iterator, step func(*pebble.Iterator) error) error {
	var dec keys.CellDecoder
	for valid := it.First(); valid; {
		c, err := decodeDataKey(&dec, it.Key())
		if err != nil {
			return err
		}
		if err := b.add(c, it.Key(), it.Value()); err != nil {
			return err
		}
		if step != nil {
			if err := step(it); err != nil {
				return err
			}
		}
		if b.skipDoneColumn(it) {
			valid = it.Valid()
		} else {
			valid = it.Next()
		}
	}
	return it.Error()
}

func decodeDataKey(dec *keys.CellDecoder, k []byte) (keys.Cell, error) {
	ck, err := keys.StripDataKey(k)
	if err != nil {
		return keys.Cell{}, err
	}
	return dec.Decode(ck)
}

// dedupSkipAfter is how many request-ID records of one row a scan steps
// over before it seeks past the rest: a seek costs more than a few steps.
const dedupSkipAfter = 4

const defaultPageRows = 256

// Scan streams the rows of the request's range that lie in the tablet, from
// one consistent engine snapshot taken after a read-index.
// Pages already sent came from blocks that passed their checksums; a
// corrupt block fails the scan there, and the client resumes elsewhere.
func (s *Store) Scan(ctx context.Context, req *kvpb.ScanRequest, send func(*kvpb.ScanResponse) error) error {
	if err := s.scan(ctx, req, send); err != nil {
		return s.checkCorruption(s.getReplica(req.Header.GetTabletId()), err)
	}
	return nil
}

func (s *Store) scan(ctx context.Context, req *kvpb.ScanRequest, send func(*kvpb.ScanResponse) error) error {
	if err := s.enter(); err != nil {
		return err
	}
	defer s.exit()
	release, err := s.admitBulkRead(ctx)
	if err != nil {
		return err
	}
	defer release()
	schema, err := s.schema(req.TableId)
	if err != nil {
		return err
	}
	f, err := s.newRowFilter(schema, req.Options)
	if err != nil {
		return err
	}
	r, err := s.readReplica(ctx, req.Header, f.readTS)
	if err != nil {
		return err
	}
	snap, desc, err := s.pinnedRead(r, req.Header, f.readTS)
	if err != nil {
		return err
	}
	defer snap.Close()

	lo := keys.RowKey(req.TableId, req.StartRow)
	hi := keys.PrefixEnd(keys.TablePrefix(req.TableId))
	if len(req.EndRow) > 0 {
		hi = keys.RowKey(req.TableId, req.EndRow)
	}
	// Clip to the tablet.
	if bytes.Compare(lo, desc.StartKey) < 0 {
		lo = desc.StartKey
	}
	if len(desc.EndKey) > 0 && bytes.Compare(hi, desc.EndKey) > 0 {
		hi = desc.EndKey
	}
	// The request must overlap the tablet at its near end, or the client
	// routed it wrongly.
	probe := lo
	if req.Reverse {
		probe = hi
	}
	if !containsKey(desc, probe) && !(req.Reverse && bytes.Equal(probe, desc.EndKey)) {
		return errs.KeyNotInTablet(probe, desc)
	}
	pageRows := int(req.PageRows)
	if pageRows <= 0 {
		pageRows = defaultPageRows
	}
	it, err := snap.NewIter(&pebble.IterOptions{LowerBound: keys.DataKey(lo), UpperBound: keys.DataKey(hi)})
	if err != nil {
		return err
	}
	defer it.Close()

	pageBytes := s.opts.Limits.ScanPageBytes
	var (
		page     []*kvpb.Row
		pageSize int // rowBytes of page's rows
		sent     uint64
		b        = &rowBuilder{f: f}
		pending  *kvpb.Row
	)
	// flush sends the page so far, unless it is empty.
	flush := func() error {
		if len(page) == 0 {
			return nil
		}
		err := send(&kvpb.ScanResponse{Rows: page})
		page, pageSize = nil, 0
		return err
	}
	emit := func(row *kvpb.Row, rb *rowBuilder) error {
		if row == nil || !rb.matches() {
			return nil
		}
		if rb.over {
			return rb.tooBig()
		}
		if !hasCells(row) {
			return nil
		}
		if req.Reverse {
			// Cells were gathered newest-key-last; restore key order.
			for i, j := 0, len(row.Cells)-1; i < j; i, j = i+1, j-1 {
				row.Cells[i], row.Cells[j] = row.Cells[j], row.Cells[i]
			}
		}
		// A page ends before the row that would take it past pageBytes,
		// so it is at most pageBytes or one row (which is bounded by
		// MaxReadRowBytes): the client's message limit holds either.
		size := rowBytes(row)
		if pageSize+size > pageBytes {
			if err := flush(); err != nil {
				return err
			}
		}
		page = append(page, row)
		pageSize += size
		sent++
		if len(page) >= pageRows {
			return flush()
		}
		return nil
	}
	limitHit := func() bool { return req.Limit > 0 && sent >= req.Limit }

	bulk := s.newBulkReadPacer(ctx)
	var dec keys.CellDecoder
	if !req.Reverse {
		dedupRun := 0
		// moved: the body left the iterator on the next key already
		// (skipDoneColumn).
		moved := false
		advance := func() bool {
			if moved {
				moved = false
				return it.Valid()
			}
			return it.Next()
		}
		for valid := it.First(); valid && !limitHit(); valid = advance() {
			if err := bulk.step(it); err != nil {
				return err
			}
			c, err := decodeDataKey(&dec, it.Key())
			if err != nil {
				return err
			}
			if c.Family == dedupFamily {
				if dedupRun++; dedupRun > dedupSkipAfter {
					dedupRun = 0
					it.SeekGE(keys.DataKey(keys.PrefixEnd(keys.FamilyPrefix(c.TableID, c.Row, dedupFamily))))
					if !it.Valid() {
						break
					}
					if c, err = decodeDataKey(&dec, it.Key()); err != nil {
						return err
					}
				} else {
					continue
				}
			} else {
				dedupRun = 0
			}
			if pending != nil && !bytes.Equal(pending.Key, c.Row) {
				if err := emit(pending, b); err != nil {
					return err
				}
				pending = nil
			}
			if err := b.add(c, it.Key(), it.Value()); err != nil {
				return err
			}
			pending = b.row
			moved = b.skipDoneColumn(it)
		}
	} else {
		// Walk rows backwards; within a row gather cells forwards.
		for valid := it.Last(); valid && !limitHit(); {
			c, err := decodeDataKey(&dec, it.Key())
			if err != nil {
				return err
			}
			rowKey := keys.RowKey(c.TableID, c.Row)
			rit, err := snap.NewIter(&pebble.IterOptions{LowerBound: keys.DataKey(rowKey), UpperBound: keys.DataKey(keys.PrefixEnd(rowKey))})
			if err != nil {
				return err
			}
			rb := &rowBuilder{f: f}
			err = rb.addAll(rit, bulk.step)
			rit.Close()
			if err != nil {
				return err
			}
			if rb.row != nil {
				// emit reverses cells for reverse scans; pre-reverse so
				// the final order is key order.
				for i, j := 0, len(rb.row.Cells)-1; i < j; i, j = i+1, j-1 {
					rb.row.Cells[i], rb.row.Cells[j] = rb.row.Cells[j], rb.row.Cells[i]
				}
			}
			if err := emit(rb.row, rb); err != nil {
				return err
			}
			valid = it.SeekLT(keys.DataKey(rowKey))
		}
	}
	if pending != nil && !limitHit() {
		if err := emit(pending, b); err != nil {
			return err
		}
	}
	if err := it.Error(); err != nil {
		return err
	}
	s.metrics.reads.Inc()
	r.record(false, req.TableId, req.StartRow, int(sent))
	return send(&kvpb.ScanResponse{Rows: page, Last: true, TabletExhausted: !limitHit(), TabletStartKey: desc.StartKey, TabletEndKey: desc.EndKey})
}
