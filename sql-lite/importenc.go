package sqllite

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/shaledb/shale/importer"
	"github.com/shaledb/shale/internal/keys"
	"github.com/shaledb/shale/proto/metapb"
)

// NewImportEncoder returns the bulk importer's encoder for a SQL table:
// input columns are matched to table columns by name (case-insensitive),
// each field is converted to its column's type with the same checked
// conversions as INSERT, absent columns take their DEFAULT, and each row
// is written as INSERT writes it (its cells plus a fresh version cell), at
// the import's one timestamp. An imported row replaces the columns it
// sets of a row that already exists; a NULL field writes no cell, so it
// leaves an existing row's older value of that column in place
// (docs/sql.md, "Bulk import").
func NewImportEncoder(schema *metapb.TableSchema, ts int64) (importer.Encoder, error) {
	if len(schema.GetSqlSchema()) == 0 {
		return nil, fmt.Errorf("table %s is not a SQL table (it has no SQL schema): import it with --raw", schema.GetName())
	}
	var s tableSchema
	if err := json.Unmarshal(schema.GetSqlSchema(), &s); err != nil {
		return nil, errf(CodeStorage, "table %s has an unreadable SQL schema: %v", schema.GetName(), err)
	}
	return &importEncoder{t: tableFromSchema(schema.GetName(), s), tableID: schema.GetTableId(), ts: ts}, nil
}

type importEncoder struct {
	t       *table
	tableID uint64
	ts      int64
	field   []int // input field per table column; -1: absent
	vals    []Datum
	pkVals  []Datum
	encoded [][]byte // per column; nil: no cell
}

// Bind implements importer.Encoder.
func (e *importEncoder) Bind(columns []string) error {
	e.field = make([]int, len(e.t.cols))
	for i := range e.field {
		e.field[i] = -1
	}
	for fi, name := range columns {
		ci, ok := e.t.col(strings.TrimSpace(name))
		if !ok {
			return errf(CodeUnknownColumn, "table %s has no column %q (input columns: %s)", e.t.name, name, strings.Join(columns, ","))
		}
		if e.field[ci] >= 0 {
			return errf(CodeConstraint, "input column %q appears twice", name)
		}
		e.field[ci] = fi
	}
	for _, ci := range e.t.pk {
		if e.field[ci] < 0 {
			return errf(CodeConstraint, "the input has no column for primary key column %s", e.t.cols[ci].Name)
		}
	}
	return nil
}

// Encode implements importer.Encoder.
func (e *importEncoder) Encode(rec *importer.Record, emit func(cellKey, value []byte) error) error {
	t := e.t
	e.vals = e.vals[:0]
	for ci, col := range t.cols {
		fi := e.field[ci]
		v := col.defaultValue()
		if fi >= 0 {
			v = nullDatum
			if f := rec.Values[fi]; !f.Null {
				var err error
				if v, err = convert(strDatum(string(f.Bytes)), col.Type, col.Name); err != nil {
					return &importer.FieldError{Field: fi, Err: err}
				}
			}
		}
		if v.IsNull() && col.NotNull {
			return &importer.FieldError{Field: max(fi, 0), Err: errf(CodeConstraint, "column %s must not be NULL", col.Name)}
		}
		e.vals = append(e.vals, v)
	}
	e.pkVals = e.pkVals[:0]
	for _, ci := range t.pk {
		e.pkVals = append(e.pkVals, e.vals[ci])
	}
	key, err := t.encodeKey(e.pkVals)
	if err != nil {
		return &importer.FieldError{Field: e.field[t.pk[0]], Err: err}
	}
	if len(key) > importer.MaxRowKeyBytes {
		return &importer.FieldError{Field: e.field[t.pk[0]], Err: errf(CodeConstraint, "primary key encodes to %d bytes; the limit is %d", len(key), importer.MaxRowKeyBytes)}
	}
	// Encode every value first: a row with one bad field emits nothing.
	e.encoded = e.encoded[:0]
	for ci, col := range t.cols {
		var v []byte
		if !t.isPK[ci] && !e.vals[ci].IsNull() {
			v = encodeValue([]byte{}, e.vals[ci], col.Type, false) // non-nil, also for ''
			if len(v) > importer.MaxValueBytes {
				return &importer.FieldError{Field: max(e.field[ci], 0), Err: errf(CodeConstraint, "column %s: value is %d bytes; the limit is %d", col.Name, len(v), importer.MaxValueBytes)}
			}
		}
		e.encoded = append(e.encoded, v)
	}
	var buf []byte
	for ci, v := range e.encoded {
		if v == nil {
			continue
		}
		buf = keys.AppendCellKey(buf[:0], e.tableID, key, family, t.quals[ci], e.ts)
		if err := emit(buf, v); err != nil {
			return err
		}
	}
	buf = keys.AppendCellKey(buf[:0], e.tableID, key, family, versionQual, e.ts)
	return emit(buf, versionBytes(newVersion(t.schema.NextID)))
}
