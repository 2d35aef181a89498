package kvclient

import (
	"context"
	"encoding/binary"
	"fmt"

	"github.com/shaledb/shale/internal/keys"
	"github.com/shaledb/shale/proto/kvpb"
)

// Table reads and writes one table. It is cheap and safe for concurrent
// use.
type Table struct {
	c    *Client
	info *TableInfo
}

// Info returns the table's schema as cached when the handle was made.
func (t *Table) Info() *TableInfo { return t.info }

func (t *Table) key(row []byte) []byte { return keys.RowKey(t.info.ID, row) }

func checkRow(row []byte) error {
	if len(row) == 0 {
		return invalidArgf("row key must not be empty")
	}
	return nil
}

// Get reads one row. It returns a nil Row (and no error) when the row has
// no cells matching the options.
func (t *Table) Get(ctx context.Context, row []byte, opts ...ReadOption) (*Row, error) {
	if err := checkRow(row); err != nil {
		return nil, err
	}
	ro := readOptions(opts)
	if err := checkReadOptions(ro); err != nil {
		return nil, err
	}
	var out *Row
	err := t.c.runRead(ctx, t, t.key(row), ro, func(ctx context.Context, cl kvpb.TabletClient, h *kvpb.RequestHeader) error {
		resp, err := cl.Get(ctx, &kvpb.GetRequest{Header: h, TableId: t.info.ID, RowKey: row, Options: ro})
		if err != nil {
			return err
		}
		if err := verifyRows(resp.Row); err != nil {
			return err
		}
		out = rowFromProto(resp.Row)
		return nil
	})
	return out, err
}

// MutateRow applies the mutations to one row atomically and returns the
// commit timestamp. On ErrAmbiguous the write may or may not have applied.
func (t *Table) MutateRow(ctx context.Context, row []byte, muts ...Mutation) (int64, error) {
	if err := checkRow(row); err != nil {
		return 0, err
	}
	if len(muts) == 0 {
		return 0, invalidArgf("row %q: no mutations", row)
	}
	req := &kvpb.MutateRowRequest{TableId: t.info.ID, RowKey: row, Mutations: mutationsToProto(row, muts), RequestId: t.c.nextRequestID()}
	var ts int64
	err := t.c.runKey(ctx, t, t.key(row), true, "mutate row", func(ctx context.Context, cl kvpb.TabletClient, h *kvpb.RequestHeader) error {
		req.Header = h
		resp, err := cl.MutateRow(ctx, req)
		if err != nil {
			return err
		}
		ts = resp.Timestamp
		t.c.observe(ts)
		return nil
	})
	return ts, err
}

// CheckAndMutateRow atomically tests cond on the row and applies trueMuts
// if it holds, falseMuts otherwise. It reports whether cond held.
func (t *Table) CheckAndMutateRow(ctx context.Context, row []byte, cond Condition, trueMuts, falseMuts []Mutation) (bool, error) {
	if err := checkRow(row); err != nil {
		return false, err
	}
	req := &kvpb.CheckAndMutateRowRequest{TableId: t.info.ID, RowKey: row, Condition: cond.proto(),
		TrueMutations: mutationsToProto(row, trueMuts), FalseMutations: mutationsToProto(row, falseMuts), RequestId: t.c.nextRequestID()}
	var matched bool
	err := t.c.runKey(ctx, t, t.key(row), true, "check and mutate row", func(ctx context.Context, cl kvpb.TabletClient, h *kvpb.RequestHeader) error {
		req.Header = h
		resp, err := cl.CheckAndMutateRow(ctx, req)
		if err != nil {
			return err
		}
		matched = resp.PredicateMatched
		t.c.observe(resp.Timestamp)
		return nil
	})
	return matched, err
}

// ReadModifyWriteRow applies the rules atomically and returns the new
// values of the modified cells.
func (t *Table) ReadModifyWriteRow(ctx context.Context, row []byte, rules ...Rule) (*Row, error) {
	if err := checkRow(row); err != nil {
		return nil, err
	}
	if len(rules) == 0 {
		return nil, invalidArgf("row %q: no read-modify-write rules", row)
	}
	req := &kvpb.ReadModifyWriteRowRequest{TableId: t.info.ID, RowKey: row, RequestId: t.c.nextRequestID()}
	for _, r := range rules {
		req.Rules = append(req.Rules, r.pb)
	}
	var out *Row
	err := t.c.runKey(ctx, t, t.key(row), true, "read-modify-write row", func(ctx context.Context, cl kvpb.TabletClient, h *kvpb.RequestHeader) error {
		req.Header = h
		resp, err := cl.ReadModifyWriteRow(ctx, req)
		if err != nil {
			return err
		}
		out = rowFromProto(resp.Row)
		for _, c := range resp.GetRow().GetCells() {
			t.c.observe(c.Timestamp)
		}
		return nil
	})
	return out, err
}

// Increment adds delta to a 64-bit big-endian counter cell (missing: 0)
// and returns the new value.
func (t *Table) Increment(ctx context.Context, row []byte, family string, qualifier []byte, delta int64) (int64, error) {
	r, err := t.ReadModifyWriteRow(ctx, row, IncrementRule(family, qualifier, delta))
	if err != nil {
		return 0, err
	}
	v, ok := r.Value(family, qualifier)
	if !ok || len(v) != 8 {
		return 0, fmt.Errorf("kvclient: increment of %s:%q returned %d bytes, want 8", family, qualifier, len(v))
	}
	return int64(binary.BigEndian.Uint64(v)), nil
}

// Append appends value to a cell and returns the new value.
func (t *Table) Append(ctx context.Context, row []byte, family string, qualifier, value []byte) ([]byte, error) {
	r, err := t.ReadModifyWriteRow(ctx, row, AppendRule(family, qualifier, value))
	if err != nil {
		return nil, err
	}
	v, _ := r.Value(family, qualifier)
	return v, nil
}
