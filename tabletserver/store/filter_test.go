package store_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/shaledb/shale/proto/kvpb"
	"github.com/shaledb/shale/tabletserver/storetest"
)

func cmp(qual string, op kvpb.Condition_Op, value string) *kvpb.RowFilter {
	return &kvpb.RowFilter{Filter: &kvpb.RowFilter_Column{Column: &kvpb.Condition{Family: "f", Qualifier: []byte(qual), Op: op, Value: []byte(value)}}}
}
func and(fs ...*kvpb.RowFilter) *kvpb.RowFilter {
	return &kvpb.RowFilter{Filter: &kvpb.RowFilter_And{And: &kvpb.RowFilterList{Filters: fs}}}
}
func or(fs ...*kvpb.RowFilter) *kvpb.RowFilter {
	return &kvpb.RowFilter{Filter: &kvpb.RowFilter_Or{Or: &kvpb.RowFilterList{Filters: fs}}}
}
func not(f *kvpb.RowFilter) *kvpb.RowFilter {
	return &kvpb.RowFilter{Filter: &kvpb.RowFilter_Not{Not: f}}
}

// scanKeys returns the keys of the rows a scan returns.
func scanKeys(ctx context.Context, cl kvpb.TabletClient, req *kvpb.ScanRequest) ([]string, error) {
	stream, err := cl.Scan(ctx, req)
	if err != nil {
		return nil, err
	}
	var keys []string
	for {
		resp, err := stream.Recv()
		if err != nil {
			return nil, err
		}
		for _, r := range resp.Rows {
			keys = append(keys, string(r.Key))
		}
		if resp.Last {
			return keys, nil
		}
	}
}

// Pushed-down filters return exactly the rows SQL's three-valued logic
// accepts, see the newest visible version of columns that are not
// projected, and count towards the limit only the rows that pass.
func TestScanFilter(t *testing.T) {
	c, tab := startTablet(t, 1)
	ctx := ctxT(t, 20*time.Second)
	table := storetest.TestTable.TableId
	cl := c.Nodes[1].Client
	// Row rN: a = N (one digit, so bytewise order is numeric), b set on
	// even rows only; r4's a was 9 before it became 4.
	for i := 0; i < 8; i++ {
		muts := []*kvpb.Mutation{storetest.SetCell("f", "a", fmt.Sprint(i))}
		if i == 4 {
			muts = []*kvpb.Mutation{storetest.SetCell("f", "a", "9")}
		}
		if i%2 == 0 {
			muts = append(muts, storetest.SetCell("f", "b", "x"))
		}
		if _, err := cl.MutateRow(ctx, &kvpb.MutateRowRequest{Header: &kvpb.RequestHeader{TabletId: tab}, TableId: table, RowKey: []byte(fmt.Sprintf("r%d", i)), Mutations: muts}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := cl.MutateRow(ctx, &kvpb.MutateRowRequest{Header: &kvpb.RequestHeader{TabletId: tab}, TableId: table, RowKey: []byte("r4"), Mutations: []*kvpb.Mutation{storetest.SetCell("f", "a", "4")}}); err != nil {
		t.Fatal(err)
	}
	b := func(op kvpb.Condition_Op) *kvpb.RowFilter { return cmp("b", op, "x") }
	cases := []struct {
		name   string
		filter *kvpb.RowFilter
		opts   *kvpb.ReadOptions
		limit  uint64
		want   []string
	}{
		{name: "greater", filter: cmp("a", kvpb.Condition_GREATER, "5"), want: []string{"r6", "r7"}},
		{name: "newest version only", filter: cmp("a", kvpb.Condition_EQUAL, "9"), want: nil},
		{name: "and", filter: and(cmp("a", kvpb.Condition_GREATER_OR_EQUAL, "2"), b(kvpb.Condition_EQUAL)), want: []string{"r2", "r4", "r6"}},
		{name: "or", filter: or(cmp("a", kvpb.Condition_LESS, "2"), cmp("a", kvpb.Condition_EQUAL, "7")), want: []string{"r0", "r1", "r7"}},
		// b = 'x' is UNKNOWN on odd rows, so NOT(b = 'x') is UNKNOWN there.
		{name: "not unknown stays unknown", filter: not(b(kvpb.Condition_EQUAL)), want: nil},
		{name: "not exists", filter: b(kvpb.Condition_NOT_EXISTS), want: []string{"r1", "r3", "r5", "r7"}},
		// FALSE OR UNKNOWN is UNKNOWN; TRUE OR UNKNOWN is TRUE.
		{name: "or with unknown", filter: or(cmp("a", kvpb.Condition_EQUAL, "3"), b(kvpb.Condition_NOT_EQUAL)), want: []string{"r3"}},
		// FALSE AND UNKNOWN is FALSE, so its negation is TRUE.
		{name: "not of false and unknown", filter: not(and(cmp("a", kvpb.Condition_LESS, "0"), b(kvpb.Condition_EQUAL))), want: []string{"r0", "r1", "r2", "r3", "r4", "r5", "r6", "r7"}},
		{name: "unprojected column", filter: b(kvpb.Condition_EXISTS), opts: &kvpb.ReadOptions{Columns: []*kvpb.Column{{Family: "f", Qualifier: []byte("a")}}}, want: []string{"r0", "r2", "r4", "r6"}},
		{name: "limit counts passing rows", filter: b(kvpb.Condition_EXISTS), limit: 3, want: []string{"r0", "r2", "r4"}},
		{name: "and of nothing is true", filter: and(), limit: 2, want: []string{"r0", "r1"}},
		{name: "or of nothing is false", filter: or(), want: nil},
	}
	for _, tc := range cases {
		for _, reverse := range []bool{false, true} {
			o := &kvpb.ReadOptions{}
			if tc.opts != nil {
				o = tc.opts
			}
			o.Filter = tc.filter
			got, err := scanKeys(ctx, cl, &kvpb.ScanRequest{Header: &kvpb.RequestHeader{TabletId: tab}, TableId: table, Options: o, Reverse: reverse, Limit: tc.limit, PageRows: 2})
			if err != nil {
				t.Fatalf("%s: %v", tc.name, err)
			}
			want := slices.Clone(tc.want)
			if reverse {
				if tc.limit > 0 {
					continue // a reverse limit takes other rows
				}
				slices.Reverse(want)
			}
			if !slices.Equal(got, want) {
				t.Errorf("%s (reverse=%v): got %v, want %v", tc.name, reverse, got, want)
			}
		}
	}
	// Get applies the filter too.
	for _, tc := range []struct {
		filter *kvpb.RowFilter
		found  bool
	}{{cmp("a", kvpb.Condition_EQUAL, "3"), true}, {cmp("a", kvpb.Condition_EQUAL, "4"), false}, {b(kvpb.Condition_EQUAL), false}} {
		resp, err := cl.Get(ctx, &kvpb.GetRequest{Header: &kvpb.RequestHeader{TabletId: tab}, TableId: table, RowKey: []byte("r3"), Options: &kvpb.ReadOptions{Filter: tc.filter}})
		if err != nil {
			t.Fatal(err)
		}
		if (resp.Row != nil) != tc.found {
			t.Errorf("get r3 with filter %v: found=%v, want %v", tc.filter, resp.Row != nil, tc.found)
		}
	}
}

// Malformed filters are refused with InvalidArgument before any work.
func TestScanFilterInvalid(t *testing.T) {
	c, tab := startTablet(t, 1)
	ctx := ctxT(t, 20*time.Second)
	deep := cmp("a", kvpb.Condition_EXISTS, "")
	for i := 0; i < 20; i++ {
		deep = not(deep)
	}
	var many []*kvpb.RowFilter
	for i := 0; i < 300; i++ {
		many = append(many, cmp(fmt.Sprint(i), kvpb.Condition_EXISTS, ""))
	}
	for _, tc := range []struct {
		filter *kvpb.RowFilter
		msg    string
	}{
		{&kvpb.RowFilter{}, "empty"},
		{not(nil), "empty"},
		{&kvpb.RowFilter{Filter: &kvpb.RowFilter_Column{Column: &kvpb.Condition{Family: "nope", Op: kvpb.Condition_EXISTS}}}, `"nope"`},
		{&kvpb.RowFilter{Filter: &kvpb.RowFilter_Column{Column: &kvpb.Condition{Family: "f", Op: 99}}}, "unknown comparison"},
		{deep, "deeper than 16"},
		{and(many...), "more than 256"},
	} {
		_, err := scanKeys(ctx, c.Nodes[1].Client, &kvpb.ScanRequest{Header: &kvpb.RequestHeader{TabletId: tab}, TableId: storetest.TestTable.TableId, Options: &kvpb.ReadOptions{Filter: tc.filter}})
		apiWantCode(t, err, codes.InvalidArgument, tc.msg)
	}
}
