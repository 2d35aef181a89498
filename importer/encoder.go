package importer

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/shaledb/shale/internal/keys"
	"github.com/shaledb/shale/internal/limits"
	"github.com/shaledb/shale/proto/metapb"
)

// Encoder turns input records into cells of one table. RawEncoder maps
// columns to family:qualifier (`--raw`); a SQL-table encoder built on the
// sql-lite catalog plugs in here by implementing the same interface.
type Encoder interface {
	// Bind resolves the encoder's column references against the column
	// names of one input file; it is called before that file's records.
	Bind(columns []string) error
	// Encode calls emit for every cell of rec, with its cell key
	// (keys.CellKey) and value. A problem with one field is a *FieldError.
	// rec is reused after Encode returns; emit must copy what it keeps.
	Encode(rec *Record, emit func(cellKey, value []byte) error) error
}

// Mapping maps one input column to a cell column.
type Mapping struct {
	Column    string // column name, or 1-based index
	Family    string
	Qualifier string
}

// ParseMappings parses "col=fam:qual,col2=fam:qual2".
func ParseMappings(s string) ([]Mapping, error) {
	var out []Mapping
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		col, fq, ok := strings.Cut(part, "=")
		fam, qual, ok2 := strings.Cut(fq, ":")
		if !ok || !ok2 || col == "" || fam == "" {
			return nil, fmt.Errorf("importer: mapping %q: want column=family:qualifier", part)
		}
		out = append(out, Mapping{Column: col, Family: fam, Qualifier: qual})
	}
	if len(out) == 0 {
		return nil, errors.New("importer: --map names no column")
	}
	return out, nil
}

// Limits the stores enforce on cells (internal/limits). Encoders check
// them per record so a bad row is rejected with its file, line and column
// instead of failing its whole SST at ingest.
const (
	MaxRowKeyBytes = limits.MaxRowKeyBytes
	MaxValueBytes  = limits.MaxValueBytes
)

// RawEncoder writes each mapped column of a record as one cell of the row
// named by the row-key column, all at one timestamp. NULL fields write no
// cell.
type RawEncoder struct {
	tableID  uint64
	rowKey   string
	mappings []Mapping
	ts       int64

	rowIdx int
	cols   []boundCol
}

type boundCol struct {
	idx      int
	family   string
	qual     []byte
	colIdent []byte // keys.ColumnPrefix is rebuilt per row; family+qual cached
}

// NewRawEncoder checks the mapping against the table's families.
func NewRawEncoder(schema *metapb.TableSchema, rowKey string, mappings []Mapping, ts int64) (*RawEncoder, error) {
	if rowKey == "" {
		return nil, errors.New("importer: --row-key names no column")
	}
	fams := map[string]bool{}
	for _, f := range schema.Families {
		fams[f.Name] = true
	}
	seen := map[string]string{}
	for _, m := range mappings {
		if !fams[m.Family] {
			return nil, fmt.Errorf("importer: table %q has no column family %q (mapping of %s)", schema.Name, m.Family, m.Column)
		}
		k := m.Family + ":" + m.Qualifier
		if prev, ok := seen[k]; ok {
			return nil, fmt.Errorf("importer: columns %s and %s both map to %s", prev, m.Column, k)
		}
		seen[k] = m.Column
	}
	return &RawEncoder{tableID: schema.TableId, rowKey: rowKey, mappings: mappings, ts: ts}, nil
}

func columnIndex(columns []string, ref string) (int, error) {
	for i, c := range columns {
		if c == ref {
			return i, nil
		}
	}
	if n, err := strconv.Atoi(ref); err == nil && n >= 1 && n <= len(columns) {
		return n - 1, nil
	}
	return 0, fmt.Errorf("importer: no input column %q (columns: %s)", ref, strings.Join(columns, ","))
}

// Bind implements Encoder.
func (e *RawEncoder) Bind(columns []string) error {
	var err error
	if e.rowIdx, err = columnIndex(columns, e.rowKey); err != nil {
		return err
	}
	e.cols = e.cols[:0]
	for _, m := range e.mappings {
		i, err := columnIndex(columns, m.Column)
		if err != nil {
			return err
		}
		e.cols = append(e.cols, boundCol{idx: i, family: m.Family, qual: []byte(m.Qualifier)})
	}
	return nil
}

// Encode implements Encoder.
func (e *RawEncoder) Encode(rec *Record, emit func(cellKey, value []byte) error) error {
	rk := rec.Values[e.rowIdx]
	switch {
	case rk.Null || len(rk.Bytes) == 0:
		return &FieldError{Field: e.rowIdx, Err: errors.New("row key is empty")}
	case len(rk.Bytes) > MaxRowKeyBytes:
		return &FieldError{Field: e.rowIdx, Err: fmt.Errorf("row key is %d bytes; the limit is %d", len(rk.Bytes), MaxRowKeyBytes)}
	}
	for _, c := range e.cols {
		v := rec.Values[c.idx]
		if v.Null {
			continue
		}
		if len(v.Bytes) > MaxValueBytes {
			return &FieldError{Field: c.idx, Err: fmt.Errorf("value is %d bytes; the limit is %d", len(v.Bytes), MaxValueBytes)}
		}
	}
	var buf []byte
	for _, c := range e.cols {
		v := rec.Values[c.idx]
		if v.Null {
			continue
		}
		buf = keys.AppendCellKey(buf[:0], e.tableID, rk.Bytes, c.family, c.qual, e.ts)
		if err := emit(buf, v.Bytes); err != nil {
			return err
		}
	}
	return nil
}
