package kvclient

import (
	"bytes"
	"time"

	"github.com/shaledb/shale/proto/kvpb"
	"github.com/shaledb/shale/proto/metapb"
)

// Family describes a column family and its garbage-collection policy.
type Family struct {
	Name string
	// MaxVersions keeps at most this many versions per column (0: unlimited).
	MaxVersions uint32
	// MaxAge drops versions older than this (0: unlimited). Millisecond
	// granularity.
	MaxAge time.Duration
}

// TableInfo is a table's schema as the placement driver holds it.
type TableInfo struct {
	ID       uint64
	Name     string
	Families []Family
	// SplitRows are the row keys the table was pre-split at.
	SplitRows [][]byte
	// Version grows on every schema change.
	Version uint64
	// SQLSchema is the SQL layer's schema (opaque here; empty for tables
	// not made by SQL).
	SQLSchema []byte
}

func tableInfoFromProto(s *metapb.TableSchema) *TableInfo {
	ti := &TableInfo{ID: s.TableId, Name: s.Name, Version: s.Version, SplitRows: s.SplitRows, SQLSchema: s.SqlSchema}
	for _, f := range s.Families {
		ti.Families = append(ti.Families, Family{Name: f.Name, MaxVersions: f.MaxVersions, MaxAge: time.Duration(f.MaxAgeMs) * time.Millisecond})
	}
	return ti
}

func familiesToProto(fs []Family) []*metapb.FamilySchema {
	out := make([]*metapb.FamilySchema, 0, len(fs))
	for _, f := range fs {
		out = append(out, &metapb.FamilySchema{Name: f.Name, MaxVersions: f.MaxVersions, MaxAgeMs: f.MaxAge.Milliseconds()})
	}
	return out
}

// Cell is one version of one column. Timestamps are microseconds from the
// tablet leader's hybrid logical clock.
type Cell struct {
	Family    string
	Qualifier []byte
	Timestamp int64
	Value     []byte
}

// Row is a row's cells in storage order: by family, qualifier, then newest
// version first.
type Row struct {
	Key   []byte
	Cells []Cell
	// With the Digest read option: the row's cell count and
	// keys.CellDigest sum (Cells is then empty).
	CellCount  uint32
	CellDigest uint64
}

// Value returns the newest value of a column and whether it exists.
func (r *Row) Value(family string, qualifier []byte) ([]byte, bool) {
	c := r.Cell(family, qualifier)
	if c == nil {
		return nil, false
	}
	return c.Value, true
}

// Cell returns the newest version of a column, or nil.
func (r *Row) Cell(family string, qualifier []byte) *Cell {
	if r == nil {
		return nil
	}
	for i := range r.Cells {
		c := &r.Cells[i]
		if c.Family == family && bytes.Equal(c.Qualifier, qualifier) {
			return c
		}
	}
	return nil
}

func rowFromProto(p *kvpb.Row) *Row {
	if p == nil {
		return nil
	}
	r := &Row{Key: p.Key, Cells: make([]Cell, len(p.Cells)), CellCount: p.CellCount, CellDigest: p.CellDigest}
	for i, c := range p.Cells {
		r.Cells[i] = Cell{Family: c.Family, Qualifier: c.Qualifier, Timestamp: c.Timestamp, Value: c.Value}
	}
	return r
}

// Column names one column.
type Column struct {
	Family    string
	Qualifier []byte
}

// ReadOption restricts what a read returns.
type ReadOption func(*kvpb.ReadOptions)

// Families restricts a read to these column families.
func Families(families ...string) ReadOption {
	return func(o *kvpb.ReadOptions) { o.Families = append(o.Families, families...) }
}

// Columns restricts a read to these columns (in addition to any Families).
func Columns(cols ...Column) ReadOption {
	return func(o *kvpb.ReadOptions) {
		for _, c := range cols {
			o.Columns = append(o.Columns, &kvpb.Column{Family: c.Family, Qualifier: c.Qualifier})
		}
	}
}

// MaxVersions returns up to n versions per column (default 1: the newest).
func MaxVersions(n uint32) ReadOption {
	return func(o *kvpb.ReadOptions) { o.MaxVersions = n }
}

// TimeRange returns only versions with start <= timestamp < end (end 0:
// unbounded). Timestamps are microseconds.
func TimeRange(start, end int64) ReadOption {
	return func(o *kvpb.ReadOptions) { o.TimeRange = &kvpb.TimeRange{StartTs: start, EndTs: end} }
}

// Digest makes reads return, for each row, the count and digest of the
// cells they select (Row.CellCount, Row.CellDigest: the sum of
// keys.CellDigest over the cells) instead of the cells, so data can be
// checked without shipping it.
func Digest() ReadOption {
	return func(o *kvpb.ReadOptions) { o.Digest = true }
}

// readOptions builds a read's options; never nil: a read whose answer
// fails its checksums is pinned to a timestamp in them (checksum.go).
func readOptions(opts []ReadOption) *kvpb.ReadOptions {
	o := &kvpb.ReadOptions{}
	for _, f := range opts {
		f(o)
	}
	return o
}

// Mutation is one change to a row. Build it with SetCell, SetCellAt,
// DeleteColumn, DeleteColumnRange, DeleteFamily or DeleteRow.
type Mutation struct{ pb *kvpb.Mutation }

// SetCell writes a value at the row's commit timestamp (assigned by the
// server).
func SetCell(family string, qualifier, value []byte) Mutation {
	return SetCellAt(family, qualifier, value, 0)
}

// SetCellAt writes a value at an explicit timestamp (microseconds; 0: the
// commit timestamp). The server refuses (InvalidArgument) a negative one
// or one more than its maximum clock offset, 500 ms by default, ahead of
// its clock (docs/limits.md).
func SetCellAt(family string, qualifier, value []byte, ts int64) Mutation {
	return Mutation{&kvpb.Mutation{Mutation: &kvpb.Mutation_SetCell_{SetCell: &kvpb.Mutation_SetCell{Family: family, Qualifier: qualifier, Timestamp: ts, Value: value}}}}
}

// DeleteColumn deletes every version of a column.
func DeleteColumn(family string, qualifier []byte) Mutation {
	return Mutation{&kvpb.Mutation{Mutation: &kvpb.Mutation_DeleteFromColumn_{DeleteFromColumn: &kvpb.Mutation_DeleteFromColumn{Family: family, Qualifier: qualifier}}}}
}

// DeleteColumnRange deletes the versions of a column with start <=
// timestamp < end (end 0: unbounded).
func DeleteColumnRange(family string, qualifier []byte, start, end int64) Mutation {
	return Mutation{&kvpb.Mutation{Mutation: &kvpb.Mutation_DeleteFromColumn_{DeleteFromColumn: &kvpb.Mutation_DeleteFromColumn{Family: family, Qualifier: qualifier, TimeRange: &kvpb.TimeRange{StartTs: start, EndTs: end}}}}}
}

// DeleteFamily deletes every cell of a family in the row.
func DeleteFamily(family string) Mutation {
	return Mutation{&kvpb.Mutation{Mutation: &kvpb.Mutation_DeleteFromFamily_{DeleteFromFamily: &kvpb.Mutation_DeleteFromFamily{Family: family}}}}
}

// DeleteRow deletes every cell of the row.
func DeleteRow() Mutation {
	return Mutation{&kvpb.Mutation{Mutation: &kvpb.Mutation_DeleteFromRow_{DeleteFromRow: &kvpb.Mutation_DeleteFromRow{}}}}
}

// mutationsToProto returns row's mutations for the wire, each cell set
// with its checksum (a copy: a Mutation may be reused for other rows).
func mutationsToProto(row []byte, ms []Mutation) []*kvpb.Mutation {
	out := make([]*kvpb.Mutation, 0, len(ms))
	for _, m := range ms {
		if m.pb != nil {
			out = append(out, withCellSum(row, m.pb))
		}
	}
	return out
}

// RowMutation is one row's mutations in a BatchMutate.
type RowMutation struct {
	Row       []byte
	Mutations []Mutation
}

// CompareOp is the comparison of a Condition.
type CompareOp int32

// Comparison operators: the newest version of the cell OP the value,
// compared bytewise. A missing cell fails every comparison except NotExists.
const (
	Exists         = CompareOp(kvpb.Condition_EXISTS)
	NotExists      = CompareOp(kvpb.Condition_NOT_EXISTS)
	Equal          = CompareOp(kvpb.Condition_EQUAL)
	NotEqual       = CompareOp(kvpb.Condition_NOT_EQUAL)
	Less           = CompareOp(kvpb.Condition_LESS)
	LessOrEqual    = CompareOp(kvpb.Condition_LESS_OR_EQUAL)
	Greater        = CompareOp(kvpb.Condition_GREATER)
	GreaterOrEqual = CompareOp(kvpb.Condition_GREATER_OR_EQUAL)
)

// Condition tests the newest version of one cell in CheckAndMutateRow.
type Condition struct {
	Family    string
	Qualifier []byte
	Op        CompareOp
	Value     []byte
}

func (c Condition) proto() *kvpb.Condition {
	return &kvpb.Condition{Family: c.Family, Qualifier: c.Qualifier, Op: kvpb.Condition_Op(c.Op), Value: c.Value}
}

// Rule is one read-modify-write step. Build it with IncrementRule or
// AppendRule.
type Rule struct{ pb *kvpb.ReadModifyWriteRule }

// IncrementRule adds delta to a cell holding a 64-bit big-endian signed
// integer (a missing cell counts as 0).
func IncrementRule(family string, qualifier []byte, delta int64) Rule {
	return Rule{&kvpb.ReadModifyWriteRule{Family: family, Qualifier: qualifier, Rule: &kvpb.ReadModifyWriteRule_IncrementAmount{IncrementAmount: delta}}}
}

// AppendRule appends value to a cell (a missing cell counts as empty).
func AppendRule(family string, qualifier, value []byte) Rule {
	return Rule{&kvpb.ReadModifyWriteRule{Family: family, Qualifier: qualifier, Rule: &kvpb.ReadModifyWriteRule_AppendValue{AppendValue: value}}}
}

// KV is one key/value pair of the raw key/value API.
type KV struct {
	Key, Value []byte
}
