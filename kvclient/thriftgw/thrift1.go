package thriftgw

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/shaledb/shale/kvclient"
	"github.com/shaledb/shale/proto/hbase"
	"github.com/shaledb/shale/proto/hbase1"
)

// thrift1 serves HBase's Thrift1 service Hbase (proto/hbase1.thrift) on
// the same handler, scanners and checks as Thrift2. Columns are
// "family:qualifier" (a name without ':' is a whole family, as HBase's
// CellUtil.parseColumn); results carry each column's newest version.
type thrift1 struct{ *connHandler }

var _ hbase1.Hbase = (*thrift1)(nil)

// ---- errors ----

// io1 converts an error to Thrift1's IOError, with ioError's message.
func io1(err error) error {
	if err == nil {
		return nil
	}
	var ia *hbase1.IllegalArgument
	var ae *hbase1.AlreadyExists
	var ioe *hbase1.IOError
	if errors.As(err, &ia) || errors.As(err, &ae) || errors.As(err, &ioe) {
		return err
	}
	msg := ioError(err).Error()
	var te interface{ GetMessage() string }
	if errors.As(ioError(err), &te) {
		msg = te.GetMessage()
	}
	return &hbase1.IOError{Message: msg}
}

// ia1 is io1, but a bad request is an IllegalArgument (for the methods
// that declare it).
func ia1(err error) error {
	var ie *errIllegal
	if errors.As(err, &ie) {
		return &hbase1.IllegalArgument{Message: ie.msg}
	}
	return io1(err)
}

// ---- conversions ----

// parseColumn splits "family:qualifier"; without ':' the column is the
// whole family (qualifier nil). "f:" is family f, empty qualifier.
func parseColumn(b []byte) (fam string, qual []byte, err error) {
	f, q, ok := bytes.Cut(b, []byte(":"))
	if len(f) == 0 {
		return "", nil, illegalf("column %q has no family", b)
	}
	if !ok {
		return string(f), nil, nil
	}
	return string(f), append([]byte{}, q...), nil
}

// readOpts1 converts Thrift1 columns, an exclusive upper timestamp (ms;
// nil: none) and a version count.
func readOpts1(cols [][]byte, beforeMs *int64, versions int32) ([]kvclient.ReadOption, readShape, error) {
	var opts []kvclient.ReadOption
	var rd readShape
	for _, c := range cols {
		f, q, err := parseColumn(c)
		if err != nil {
			return nil, rd, err
		}
		if q == nil {
			rd.Families = append(rd.Families, f)
		} else {
			rd.Columns = append(rd.Columns, kvclient.Column{Family: f, Qualifier: q})
		}
	}
	if len(rd.Families) > 0 {
		opts = append(opts, kvclient.Families(rd.Families...))
	}
	if len(rd.Columns) > 0 {
		opts = append(opts, kvclient.Columns(rd.Columns...))
	}
	if beforeMs != nil {
		// HBase's Thrift1 reads "at" a timestamp with setTimeRange(0, ts):
		// versions strictly older.
		start, end, err := rangeMsToMicros(0, *beforeMs)
		if err != nil {
			return nil, rd, err
		}
		if end == 0 && *beforeMs == 0 {
			return nil, rd, illegalf("timestamp 0 selects nothing")
		}
		opts = append(opts, kvclient.TimeRange(start, end))
		rd.TimeBounded = true
	}
	if versions < 0 {
		return nil, rd, illegalf("numVersions %d must not be negative", versions)
	}
	if versions > 1 {
		opts = append(opts, kvclient.MaxVersions(uint32(versions)))
	}
	return opts, rd, nil
}

func columnName(c *kvclient.Cell) []byte {
	return append(append([]byte(c.Family), ':'), c.Qualifier...)
}

// rowResult is a row as Thrift1's TRowResult: each column's newest
// version, as a map or (sorted) a list in storage order.
func rowResult(r *kvclient.Row, sorted bool) *hbase1.TRowResult_ {
	out := &hbase1.TRowResult_{Row: r.Key}
	if sorted {
		out.SortedColumns = []*hbase1.TColumn{}
	} else {
		out.Columns = map[string]*hbase1.TCell{}
	}
	for i := range r.Cells {
		c := &r.Cells[i]
		if i > 0 && c.Family == r.Cells[i-1].Family && bytes.Equal(c.Qualifier, r.Cells[i-1].Qualifier) {
			continue // an older version
		}
		cell := &hbase1.TCell{Value: c.Value, Timestamp: microsToMs(c.Timestamp)}
		if sorted {
			out.SortedColumns = append(out.SortedColumns, &hbase1.TColumn{ColumnName: columnName(c), Cell: cell})
		} else {
			out.Columns[string(columnName(c))] = cell
		}
	}
	return out
}

// rowResults is HBase's rowResultFromHBase: rows without cells are left out.
func rowResults(rows []*kvclient.Row, sorted bool) []*hbase1.TRowResult_ {
	out := []*hbase1.TRowResult_{}
	for _, r := range rows {
		if r != nil && len(r.Cells) > 0 {
			out = append(out, rowResult(r, sorted))
		}
	}
	return out
}

func cells1(r *kvclient.Row) []*hbase1.TCell {
	out := []*hbase1.TCell{}
	if r == nil {
		return out
	}
	for _, c := range r.Cells {
		out = append(out, &hbase1.TCell{Value: c.Value, Timestamp: microsToMs(c.Timestamp)})
	}
	return out
}

// mutations1 converts Thrift1 mutations at an optional timestamp (ms),
// deletes first, as HBase applies them.
func mutations1(ms []*hbase1.Mutation, ts *int64) ([]kvclient.Mutation, error) {
	var dels, puts []kvclient.Mutation
	if ts != nil && *ts < 0 {
		return nil, illegalf("negative timestamp %d", *ts)
	}
	for _, m := range ms {
		if m == nil {
			return nil, illegalf("empty Mutation")
		}
		f, q, err := parseColumn(m.Column)
		if err != nil {
			return nil, err
		}
		if m.IsDelete {
			d, err := deleteColumn1(f, q, ts)
			if err != nil {
				return nil, err
			}
			dels = append(dels, d)
			continue
		}
		if q == nil {
			q = []byte{} // HBase: a put on "f" is the empty qualifier
		}
		if ts == nil {
			puts = append(puts, kvclient.SetCell(f, q, m.Value))
		} else {
			puts = append(puts, kvclient.SetCellAt(f, q, m.Value, max(msToMicros(*ts), 1)))
		}
	}
	if len(dels)+len(puts) == 0 {
		return nil, illegalf("no mutations")
	}
	return append(dels, puts...), nil
}

// deleteColumn1 deletes a column's versions (those <= ts, in ms, if
// given) or a family's.
func deleteColumn1(f string, q []byte, ts *int64) (kvclient.Mutation, error) {
	switch {
	case q == nil && ts == nil:
		return kvclient.DeleteFamily(f), nil
	case q == nil:
		return kvclient.Mutation{}, unsupportedf("deleting a column family up to a timestamp")
	case ts == nil:
		return kvclient.DeleteColumn(f, q), nil
	default:
		_, end, _ := exactMsToMicros(*ts)
		return kvclient.DeleteColumnRange(f, q, 0, end), nil
	}
}

// ---- admin ----

func (h *thrift1) EnableTable(ctx context.Context, name hbase1.Bytes) error {
	_, err := h.describe(ctx, name)
	return io1(err)
}

func (h *thrift1) DisableTable(context.Context, hbase1.Bytes) error {
	return io1(unsupportedf("disableTable: Shale tables are always enabled"))
}

func (h *thrift1) IsTableEnabled(ctx context.Context, name hbase1.Bytes) (bool, error) {
	_, err := h.describe(ctx, name)
	return err == nil, io1(err)
}

func (h *thrift1) describe(ctx context.Context, name []byte) (*kvclient.TableInfo, error) {
	ctx, cancel := h.ctx(ctx)
	defer cancel()
	n, err := tableName(name)
	if err != nil {
		return nil, err
	}
	return h.c.DescribeTable(ctx, n)
}

func (h *thrift1) GetTableNames(ctx context.Context) ([]hbase1.Text, error) {
	tis, set, err := h.listTables(ctx, func(string) bool { return true })
	if err != nil {
		return nil, io1(err)
	}
	out := []hbase1.Text{}
	for _, ti := range tis {
		out = append(out, hbase1.Text(set.hbaseName(ti.Name)))
	}
	return out, nil
}

func (h *thrift1) GetTableNamesWithIsTableEnabled(ctx context.Context) (map[string]bool, error) {
	names, err := h.GetTableNames(ctx)
	if err != nil {
		return nil, err
	}
	out := map[string]bool{}
	for _, n := range names {
		out[string(n)] = true
	}
	return out, nil
}

func (h *thrift1) GetColumnDescriptors(ctx context.Context, name hbase1.Text) (map[string]*hbase1.ColumnDescriptor, error) {
	ti, err := h.describe(ctx, name)
	if err != nil {
		return nil, io1(err)
	}
	out := map[string]*hbase1.ColumnDescriptor{}
	for _, f := range ti.Families {
		d := hbase1.NewColumnDescriptor() // HBase's defaults
		d.Name = []byte(f.Name + ":")
		d.MaxVersions = math.MaxInt32
		if f.MaxVersions > 0 && f.MaxVersions < math.MaxInt32 {
			d.MaxVersions = int32(f.MaxVersions)
		}
		if f.MaxAge > 0 && f.MaxAge/time.Second < math.MaxInt32 {
			d.TimeToLive = int32(max(1, f.MaxAge/time.Second))
		}
		out[f.Name+":"] = d
	}
	return out, nil
}

func (h *thrift1) GetTableRegions(ctx context.Context, name hbase1.Text) ([]*hbase1.TRegionInfo, error) {
	locs, err := h.GetAllRegionLocations(ctx, name)
	if err != nil {
		return nil, io1(err)
	}
	out := []*hbase1.TRegionInfo{}
	for _, l := range locs {
		ri := l.RegionInfo
		out = append(out, &hbase1.TRegionInfo{
			StartKey: ri.StartKey, EndKey: ri.EndKey, ID: ri.RegionId, Version: 1,
			Name:       []byte(fmt.Sprintf("%s,%s,%d", name, ri.StartKey, ri.RegionId)),
			ServerName: []byte(l.ServerName.HostName), Port: l.ServerName.GetPort(),
		})
	}
	return out, nil
}

func (h *thrift1) CreateTable(ctx context.Context, name hbase1.Text, cds []*hbase1.ColumnDescriptor) error {
	ctx, cancel := h.ctx(ctx)
	defer cancel()
	n, err := tableName(name)
	if err != nil {
		return ia1(err)
	}
	if len(cds) == 0 {
		return ia1(illegalf("table %q must have at least one column family", name))
	}
	var fams []kvclient.Family
	for _, cd := range cds {
		if cd == nil {
			return ia1(illegalf("empty ColumnDescriptor"))
		}
		f, _, err := parseColumn(cd.Name)
		if err != nil {
			return ia1(err)
		}
		fam := kvclient.Family{Name: f}
		if cd.MaxVersions > 0 && cd.MaxVersions != math.MaxInt32 {
			fam.MaxVersions = uint32(cd.MaxVersions)
		}
		if cd.TimeToLive > 0 && cd.TimeToLive != math.MaxInt32 {
			fam.MaxAge = time.Duration(cd.TimeToLive) * time.Second
		}
		fams = append(fams, fam)
	}
	if err := h.checkNamespaceOf(ctx, name); err != nil {
		return io1(err)
	}
	_, err = h.c.CreateTable(ctx, n, fams)
	if errors.Is(err, kvclient.ErrTableExists) {
		return &hbase1.AlreadyExists{Message: "table " + string(name) + " exists"}
	}
	if errors.Is(err, kvclient.ErrInvalidArgument) {
		return &hbase1.IllegalArgument{Message: err.Error()}
	}
	return io1(err)
}

func (h *thrift1) DeleteTable(ctx context.Context, name hbase1.Text) error {
	ctx, cancel := h.ctx(ctx)
	defer cancel()
	n, err := tableName(name)
	if err != nil {
		return io1(err)
	}
	return io1(h.c.DropTable(ctx, n))
}

// ---- reads ----

// getRow reads one row of table.
func (h *thrift1) getRow(ctx context.Context, table, row []byte, opts []kvclient.ReadOption) (*kvclient.Row, error) {
	ctx, cancel := h.ctx(ctx)
	defer cancel()
	if len(row) == 0 {
		return nil, illegalf("empty row key")
	}
	t, err := h.table(ctx, table)
	if err != nil {
		return nil, err
	}
	return t.Get(ctx, row, opts...)
}

func (h *thrift1) cells(ctx context.Context, table, row, column []byte, beforeMs *int64, versions int32) ([]*hbase1.TCell, error) {
	opts, _, err := readOpts1([][]byte{column}, beforeMs, versions)
	if err != nil {
		return nil, io1(err)
	}
	r, err := h.getRow(ctx, table, row, opts)
	if err != nil {
		return nil, io1(err)
	}
	return cells1(r), nil
}

func (h *thrift1) Get(ctx context.Context, table, row, column hbase1.Text, _ map[string]hbase1.Text) ([]*hbase1.TCell, error) {
	return h.cells(ctx, table, row, column, nil, 1)
}

func (h *thrift1) GetVer(ctx context.Context, table, row, column hbase1.Text, n int32, _ map[string]hbase1.Text) ([]*hbase1.TCell, error) {
	return h.cells(ctx, table, row, column, nil, n)
}

func (h *thrift1) GetVerTs(ctx context.Context, table, row, column hbase1.Text, ts int64, n int32, _ map[string]hbase1.Text) ([]*hbase1.TCell, error) {
	return h.cells(ctx, table, row, column, &ts, n)
}

func (h *thrift1) rows(ctx context.Context, table []byte, rows []hbase1.Text, cols []hbase1.Text, beforeMs *int64) ([]*hbase1.TRowResult_, error) {
	opts, _, err := readOpts1(texts(cols), beforeMs, 1)
	if err != nil {
		return nil, io1(err)
	}
	if len(rows) == 0 {
		return []*hbase1.TRowResult_{}, nil
	}
	if len(rows) == 1 {
		r, err := h.getRow(ctx, table, rows[0], opts)
		if err != nil {
			return nil, io1(err)
		}
		return rowResults([]*kvclient.Row{r}, false), nil
	}
	ctx, cancel := h.ctx(ctx)
	defer cancel()
	t, err := h.table(ctx, table)
	if err != nil {
		return nil, io1(err)
	}
	got, err := t.BatchGet(ctx, texts(rows), opts...)
	if err != nil {
		return nil, io1(err)
	}
	return rowResults(got, false), nil
}

func texts(ts []hbase1.Text) [][]byte {
	out := make([][]byte, len(ts))
	for i, t := range ts {
		out[i] = t
	}
	return out
}

func (h *thrift1) GetRow(ctx context.Context, table, row hbase1.Text, _ map[string]hbase1.Text) ([]*hbase1.TRowResult_, error) {
	return h.rows(ctx, table, []hbase1.Text{row}, nil, nil)
}

func (h *thrift1) GetRowWithColumns(ctx context.Context, table, row hbase1.Text, cols []hbase1.Text, _ map[string]hbase1.Text) ([]*hbase1.TRowResult_, error) {
	return h.rows(ctx, table, []hbase1.Text{row}, cols, nil)
}

func (h *thrift1) GetRowTs(ctx context.Context, table, row hbase1.Text, ts int64, _ map[string]hbase1.Text) ([]*hbase1.TRowResult_, error) {
	return h.rows(ctx, table, []hbase1.Text{row}, nil, &ts)
}

func (h *thrift1) GetRowWithColumnsTs(ctx context.Context, table, row hbase1.Text, cols []hbase1.Text, ts int64, _ map[string]hbase1.Text) ([]*hbase1.TRowResult_, error) {
	return h.rows(ctx, table, []hbase1.Text{row}, cols, &ts)
}

func (h *thrift1) GetRows(ctx context.Context, table hbase1.Text, rows []hbase1.Text, _ map[string]hbase1.Text) ([]*hbase1.TRowResult_, error) {
	return h.rows(ctx, table, rows, nil, nil)
}

func (h *thrift1) GetRowsWithColumns(ctx context.Context, table hbase1.Text, rows, cols []hbase1.Text, _ map[string]hbase1.Text) ([]*hbase1.TRowResult_, error) {
	return h.rows(ctx, table, rows, cols, nil)
}

func (h *thrift1) GetRowsTs(ctx context.Context, table hbase1.Text, rows []hbase1.Text, ts int64, _ map[string]hbase1.Text) ([]*hbase1.TRowResult_, error) {
	return h.rows(ctx, table, rows, nil, &ts)
}

func (h *thrift1) GetRowsWithColumnsTs(ctx context.Context, table hbase1.Text, rows, cols []hbase1.Text, ts int64, _ map[string]hbase1.Text) ([]*hbase1.TRowResult_, error) {
	return h.rows(ctx, table, rows, cols, &ts)
}

// ---- writes ----

func (h *thrift1) mutate(ctx context.Context, table []byte, batches []*hbase1.BatchMutation, ts *int64) error {
	ctx, cancel := h.ctx(ctx)
	defer cancel()
	entries := make([]kvclient.RowMutation, 0, len(batches))
	for _, b := range batches {
		if b == nil || len(b.Row) == 0 {
			return ia1(illegalf("BatchMutation without a row"))
		}
		muts, err := mutations1(b.Mutations, ts)
		if err != nil {
			return ia1(err)
		}
		entries = append(entries, kvclient.RowMutation{Row: b.Row, Mutations: muts})
	}
	if len(entries) == 0 {
		return nil
	}
	t, err := h.table(ctx, table)
	if err != nil {
		return io1(err)
	}
	if len(entries) == 1 {
		_, err = t.MutateRow(ctx, entries[0].Row, entries[0].Mutations...)
		return io1(err)
	}
	return io1(firstBatchError(t.BatchMutate(ctx, entries)))
}

func (h *thrift1) MutateRow(ctx context.Context, table, row hbase1.Text, ms []*hbase1.Mutation, _ map[string]hbase1.Text) error {
	return h.mutate(ctx, table, []*hbase1.BatchMutation{{Row: row, Mutations: ms}}, nil)
}

func (h *thrift1) MutateRowTs(ctx context.Context, table, row hbase1.Text, ms []*hbase1.Mutation, ts int64, _ map[string]hbase1.Text) error {
	return h.mutate(ctx, table, []*hbase1.BatchMutation{{Row: row, Mutations: ms}}, &ts)
}

func (h *thrift1) MutateRows(ctx context.Context, table hbase1.Text, bs []*hbase1.BatchMutation, _ map[string]hbase1.Text) error {
	return h.mutate(ctx, table, bs, nil)
}

func (h *thrift1) MutateRowsTs(ctx context.Context, table hbase1.Text, bs []*hbase1.BatchMutation, ts int64, _ map[string]hbase1.Text) error {
	return h.mutate(ctx, table, bs, &ts)
}

// increment adds amount to an 8-byte big-endian counter and returns it.
func (h *thrift1) increment(ctx context.Context, table, row, column []byte, amount int64) (int64, error) {
	ctx, cancel := h.ctx(ctx)
	defer cancel()
	f, q, err := parseColumn(column)
	if err != nil {
		return 0, err
	}
	if q == nil {
		q = []byte{}
	}
	if len(row) == 0 {
		return 0, illegalf("empty row key")
	}
	t, err := h.table(ctx, table)
	if err != nil {
		return 0, err
	}
	r, err := t.ReadModifyWriteRow(ctx, row, kvclient.IncrementRule(f, q, amount))
	if err != nil {
		return 0, err
	}
	v, ok := r.Value(f, q)
	if !ok || len(v) != 8 {
		return 0, fmt.Errorf("increment of %s returned no 8-byte counter", column)
	}
	return int64(binary.BigEndian.Uint64(v)), nil
}

func (h *thrift1) AtomicIncrement(ctx context.Context, table, row, column hbase1.Text, value int64) (int64, error) {
	v, err := h.increment(ctx, table, row, column, value)
	return v, ia1(err)
}

func (h *thrift1) Increment(ctx context.Context, inc *hbase1.TIncrement) error {
	if inc == nil {
		return io1(illegalf("missing TIncrement"))
	}
	_, err := h.increment(ctx, inc.Table, inc.Row, inc.Column, inc.Ammount)
	return io1(err)
}

func (h *thrift1) IncrementRows(ctx context.Context, incs []*hbase1.TIncrement) error {
	for _, inc := range incs {
		if err := h.Increment(ctx, inc); err != nil {
			return err
		}
	}
	return nil
}

func (h *thrift1) Append(ctx context.Context, ap *hbase1.TAppend) ([]*hbase1.TCell, error) {
	ctx, cancel := h.ctx(ctx)
	defer cancel()
	if ap == nil || len(ap.Row) == 0 {
		return nil, io1(illegalf("TAppend without a row"))
	}
	if len(ap.Columns) != len(ap.Values) || len(ap.Columns) == 0 {
		return nil, io1(illegalf("TAppend needs as many values as columns, at least one (got %d and %d)", len(ap.Columns), len(ap.Values)))
	}
	rules := make([]kvclient.Rule, len(ap.Columns))
	for i, c := range ap.Columns {
		f, q, err := parseColumn(c)
		if err != nil {
			return nil, io1(err)
		}
		if q == nil {
			q = []byte{}
		}
		rules[i] = kvclient.AppendRule(f, q, ap.Values[i])
	}
	t, err := h.table(ctx, ap.Table)
	if err != nil {
		return nil, io1(err)
	}
	r, err := t.ReadModifyWriteRow(ctx, ap.Row, rules...)
	if err != nil {
		return nil, io1(err)
	}
	return cells1(r), nil
}

func (h *thrift1) CheckAndPut(ctx context.Context, table, row, column, value hbase1.Text, m *hbase1.Mutation, _ map[string]hbase1.Text) (bool, error) {
	f, q, err := parseColumn(column)
	if err != nil {
		return false, ia1(err)
	}
	if q == nil {
		q = []byte{}
	}
	if m == nil {
		return false, ia1(illegalf("missing mput"))
	}
	ok, err := h.checkAndMutate(ctx, table, row, []byte(f), q, hbase.TCompareOperator_EQUAL, value, func(*kvclient.Table) ([]kvclient.Mutation, error) {
		return mutations1([]*hbase1.Mutation{m}, nil)
	})
	if err != nil {
		var te interface{ GetMessage() string }
		if errors.As(err, &te) {
			return false, &hbase1.IOError{Message: te.GetMessage()}
		}
		return false, io1(err)
	}
	return ok, nil
}

// ---- deletes ----

func (h *thrift1) DeleteAll(ctx context.Context, table, row, column hbase1.Text, _ map[string]hbase1.Text) error {
	return h.deleteUpTo(ctx, table, row, column, nil)
}

func (h *thrift1) DeleteAllTs(ctx context.Context, table, row, column hbase1.Text, ts int64, _ map[string]hbase1.Text) error {
	return h.deleteUpTo(ctx, table, row, column, &ts)
}

func (h *thrift1) DeleteAllRow(ctx context.Context, table, row hbase1.Text, _ map[string]hbase1.Text) error {
	return h.deleteUpTo(ctx, table, row, nil, nil)
}

func (h *thrift1) DeleteAllRowTs(ctx context.Context, table, row hbase1.Text, ts int64, _ map[string]hbase1.Text) error {
	return h.deleteUpTo(ctx, table, row, nil, &ts)
}

// deleteUpTo deletes a row's column, family (column without ':') or, with
// no column, every cell, all versions or those <= ts (ms). A family or row
// up to a timestamp is read first, then its columns deleted: not atomic
// with writers adding columns meanwhile.
func (h *thrift1) deleteUpTo(ctx context.Context, table, row, column []byte, ts *int64) error {
	ctx, cancel := h.ctx(ctx)
	defer cancel()
	if len(row) == 0 {
		return io1(illegalf("empty row key"))
	}
	if ts != nil && *ts < 0 {
		return io1(illegalf("negative timestamp %d", *ts))
	}
	t, err := h.table(ctx, table)
	if err != nil {
		return io1(err)
	}
	var muts []kvclient.Mutation
	var fam string
	var qual []byte
	if column != nil {
		if fam, qual, err = parseColumn(column); err != nil {
			return io1(err)
		}
	}
	switch {
	case column == nil && ts == nil:
		muts = []kvclient.Mutation{kvclient.DeleteRow()}
	case qual != nil || ts == nil:
		m, err := deleteColumn1(fam, qual, ts)
		if err != nil {
			return io1(err)
		}
		muts = []kvclient.Mutation{m}
	default: // a family or the row, up to ts
		_, end, _ := exactMsToMicros(*ts)
		opts := []kvclient.ReadOption{kvclient.TimeRange(0, end)}
		if fam != "" {
			opts = append(opts, kvclient.Families(fam))
		}
		r, err := t.Get(ctx, row, opts...)
		if err != nil {
			return io1(err)
		}
		if r == nil {
			return nil
		}
		for i, c := range r.Cells {
			if i > 0 && c.Family == r.Cells[i-1].Family && bytes.Equal(c.Qualifier, r.Cells[i-1].Qualifier) {
				continue
			}
			muts = append(muts, kvclient.DeleteColumnRange(c.Family, c.Qualifier, 0, end))
		}
	}
	if len(muts) == 0 {
		return nil
	}
	_, err = t.MutateRow(ctx, row, muts...)
	return io1(err)
}

// ---- scanners ----

func (h *thrift1) open(ctx context.Context, table []byte, sc *hbase1.TScan) (hbase1.ScannerID, error) {
	p, sorted, err := scanPlan1(sc)
	if err != nil {
		return 0, io1(err)
	}
	tctx, cancel := h.ctx(ctx)
	t, err := h.table(tctx, table)
	cancel()
	if err != nil {
		return 0, io1(err)
	}
	if err := h.scanners.full(h.owner); err != nil {
		return 0, io1(err)
	}
	sctx, scancel := context.WithCancel(context.Background())
	s := p.open(sctx, t, scancel)
	s.sorted = sorted
	id, err := h.scanners.add(h.owner, s)
	if err != nil {
		s.close()
		return 0, io1(err)
	}
	return hbase1.ScannerID(id), nil
}

// scanPlan1 converts a Thrift1 TScan.
func scanPlan1(sc *hbase1.TScan) (p scanPlan, sorted bool, err error) {
	if sc == nil {
		return p, false, illegalf("missing TScan")
	}
	if sc.GetBatchSize() > 0 {
		return p, false, unsupportedf("TScan.batchSize (rows split into batches of columns)")
	}
	f, err := parseFilter(sc.FilterString, nil)
	if err != nil {
		return p, false, err
	}
	read, rd, err := readOpts1(texts(sc.Columns), sc.Timestamp, 1)
	if err != nil {
		return p, false, err
	}
	p.o.Read = read
	if sc.GetReversed() {
		p.o.Reverse = true
		if len(sc.StopRow) > 0 {
			p.o.Start = after(sc.StopRow)
		}
		if len(sc.StartRow) > 0 {
			p.o.End = after(sc.StartRow)
		}
	} else {
		p.o.Start = sc.StartRow
		if len(sc.StopRow) > 0 {
			p.o.End = sc.StopRow
		}
	}
	if c := sc.GetCaching(); c > 0 {
		p.o.PageRows = int(min(c, 10000))
	}
	p.setFilter(f, rd)
	return p, sc.GetSortColumns(), nil
}

func (h *thrift1) ScannerOpenWithScan(ctx context.Context, table hbase1.Text, sc *hbase1.TScan, _ map[string]hbase1.Text) (hbase1.ScannerID, error) {
	return h.open(ctx, table, sc)
}

func (h *thrift1) ScannerOpen(ctx context.Context, table, start hbase1.Text, cols []hbase1.Text, _ map[string]hbase1.Text) (hbase1.ScannerID, error) {
	return h.open(ctx, table, &hbase1.TScan{StartRow: start, Columns: cols})
}

func (h *thrift1) ScannerOpenWithStop(ctx context.Context, table, start, stop hbase1.Text, cols []hbase1.Text, _ map[string]hbase1.Text) (hbase1.ScannerID, error) {
	return h.open(ctx, table, &hbase1.TScan{StartRow: start, StopRow: stop, Columns: cols})
}

func (h *thrift1) ScannerOpenWithPrefix(ctx context.Context, table, prefix hbase1.Text, cols []hbase1.Text, _ map[string]hbase1.Text) (hbase1.ScannerID, error) {
	sc := &hbase1.TScan{StartRow: prefix, Columns: cols}
	if len(prefix) > 0 {
		// HBase: a PrefixFilter from the prefix on.
		sc.FilterString = []byte("PrefixFilter('" + string(bytes.ReplaceAll(prefix, []byte("'"), []byte("''"))) + "')")
	}
	return h.open(ctx, table, sc)
}

func (h *thrift1) ScannerOpenTs(ctx context.Context, table, start hbase1.Text, cols []hbase1.Text, ts int64, _ map[string]hbase1.Text) (hbase1.ScannerID, error) {
	return h.open(ctx, table, &hbase1.TScan{StartRow: start, Columns: cols, Timestamp: &ts})
}

func (h *thrift1) ScannerOpenWithStopTs(ctx context.Context, table, start, stop hbase1.Text, cols []hbase1.Text, ts int64, _ map[string]hbase1.Text) (hbase1.ScannerID, error) {
	return h.open(ctx, table, &hbase1.TScan{StartRow: start, StopRow: stop, Columns: cols, Timestamp: &ts})
}

func (h *thrift1) ScannerGet(ctx context.Context, id hbase1.ScannerID) ([]*hbase1.TRowResult_, error) {
	return h.ScannerGetList(ctx, id, 1)
}

func (h *thrift1) ScannerGetList(ctx context.Context, id hbase1.ScannerID, n int32) ([]*hbase1.TRowResult_, error) {
	s, ok := h.scanners.acquire(h.owner, int32(id))
	if !ok {
		return nil, &hbase1.IllegalArgument{Message: fmt.Sprintf("invalid scanner id %d: unknown on this connection, closed or expired (scanners idle for %v are closed; a scanner belongs to the connection that opened it)", id, h.s.opts.ScannerIdleTimeout)}
	}
	defer h.scanners.release(s)
	if n < 0 {
		return nil, &hbase1.IllegalArgument{Message: "nbRows " + strconv.Itoa(int(n)) + " must not be negative"}
	}
	rows, _, err := s.nextRows(int(n), h.s.opts.MaxResultBytes)
	if err != nil {
		return nil, io1(err)
	}
	return rowResults(rows, s.sorted), nil
}

func (h *thrift1) ScannerClose(ctx context.Context, id hbase1.ScannerID) error {
	s, ok := h.scanners.remove(h.owner, int32(id))
	if !ok {
		return &hbase1.IllegalArgument{Message: fmt.Sprintf("invalid scanner id %d: unknown on this connection, closed or expired", id)}
	}
	s.close()
	return nil
}

func (h *thrift1) GetThriftServerType(context.Context) (hbase1.TThriftServerType, error) {
	return hbase1.TThriftServerType_ONE, nil
}
