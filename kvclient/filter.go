package kvclient

import "github.com/shaledb/shale/proto/kvpb"

// RowFilter is a predicate the tablet servers evaluate on each row's newest
// visible cell values, so that rows failing it never cross the network.
// Build one with Compare, And, Or and Not and pass it with WithFilter.
//
// It uses SQL's three-valued logic: a comparison with a missing cell is
// UNKNOWN (Exists and NotExists are never UNKNOWN), NOT UNKNOWN is UNKNOWN,
// AND and OR follow Kleene's tables, and a row is returned only when the
// filter is TRUE. Values compare bytewise, so encode them order-preservingly.
// A filter may name columns the read does not return.
type RowFilter struct{ pb *kvpb.RowFilter }

// Compare is true when the newest visible version of a cell compares to
// value as op says (for Exists and NotExists, value is ignored).
func Compare(family string, qualifier []byte, op CompareOp, value []byte) RowFilter {
	return RowFilter{&kvpb.RowFilter{Filter: &kvpb.RowFilter_Column{Column: Condition{Family: family, Qualifier: qualifier, Op: op, Value: value}.proto()}}}
}

// And is true when every filter is true (And() is true).
func And(filters ...RowFilter) RowFilter {
	return RowFilter{&kvpb.RowFilter{Filter: &kvpb.RowFilter_And{And: &kvpb.RowFilterList{Filters: protos(filters)}}}}
}

// Or is true when any filter is true (Or() is false).
func Or(filters ...RowFilter) RowFilter {
	return RowFilter{&kvpb.RowFilter{Filter: &kvpb.RowFilter_Or{Or: &kvpb.RowFilterList{Filters: protos(filters)}}}}
}

// Not negates a filter (NOT UNKNOWN stays UNKNOWN).
func Not(f RowFilter) RowFilter {
	return RowFilter{&kvpb.RowFilter{Filter: &kvpb.RowFilter_Not{Not: f.pb}}}
}

// Proto returns the filter's wire form.
func (f RowFilter) Proto() *kvpb.RowFilter { return f.pb }

func protos(fs []RowFilter) []*kvpb.RowFilter {
	out := make([]*kvpb.RowFilter, len(fs))
	for i, f := range fs {
		out[i] = f.pb
	}
	return out
}

// WithFilter returns only the rows for which f is TRUE. For scans, Limit
// counts the rows that pass.
func WithFilter(f RowFilter) ReadOption {
	return func(o *kvpb.ReadOptions) { o.Filter = f.pb }
}
