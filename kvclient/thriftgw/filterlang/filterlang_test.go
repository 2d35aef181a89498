package filterlang

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/shaledb/shale/kvclient"
	"github.com/shaledb/shale/proto/kvpb"
)

// The gateway tests (kvclient/thriftgw TestFilterLanguage) check every
// filter against a model over a real cluster; these check the parser's
// errors and that push-down never changes a result.

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", "empty filter string"},
		{"   ", "empty filter string"},
		{"Foo()", `unknown filter "Foo"`},
		{"PrefixFilter", `expected "(" after filter name "PrefixFilter"`},
		{"PrefixFilter('a'", `expected "," or ")"`},
		{"PrefixFilter('a", "unterminated quoted string"},
		{"PrefixFilter('a', 'b')", "PrefixFilter takes 1 arguments, got 2"},
		{"PrefixFilter(a)", "prefix must be a quoted string"},
		{"PageFilter('a')", "page size must be an integer"},
		{"PageFilter(99999999999999999999)", "page size must be an integer"},
		{"KeyOnlyFilter(maybe)", "lenAsVal must be true or false"},
		{"RowFilter(~, 'binary:a')", `unexpected character '~'`},
		{"RowFilter(!, 'binary:a')", `"!" is not an operator`},
		{"RowFilter('binary:a', =)", "expected a comparison operator"},
		{"RowFilter(=, 'a')", "lacks a type"},
		{"ValueFilter(>, 'substring:a')", "substring comparators take only = and !="},
		{"ValueFilter(=, 'regexstring:a(?=b)')", "regexstring"},
		{"SingleColumnValueFilter('f', 'q', =)", "takes 4 or 6 arguments, got 3"},
		{"PrefixFilter('a') PrefixFilter('b')", `unexpected "PrefixFilter" after a complete filter`},
		{"PrefixFilter('a') AND", `expected a filter, "(", SKIP or WHILE, got end of string`},
		{"(PrefixFilter('a')", `expected ")" or an operator`},
		{"SKIP", "expected a filter"},
		{strings.Repeat("SKIP ", 70) + "KeyOnlyFilter()", "nested deeper than 64"},
		{strings.Repeat("KeyOnlyFilter() AND ", maxFilters) + "KeyOnlyFilter()", "more than 10000 filters"},
	} {
		_, err := Parse(tc.in)
		var fe *Error
		if !errors.As(err, &fe) {
			t.Errorf("Parse(%.40q) = %v, want an *Error", tc.in, err)
			continue
		}
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Parse(%.40q) = %q, want it to contain %q", tc.in, err, tc.want)
		}
	}
}

func TestParseAccepts(t *testing.T) {
	for _, s := range []string{
		"KeyOnlyFilter ( ) AND\tFirstKeyOnlyFilter()",
		"PrefixFilter('it''s')",
		"SingleColumnValueFilter('f','q',>=,'binary:\\xff',TRUE,False)",
		"(SKIP ValueFilter(=,'binary:a') OR WHILE (RowFilter(<,'binaryprefix:z')))",
		"TimestampsFilter()", "MultipleColumnPrefixFilter('a','b','c')",
	} {
		if _, err := Parse(s); err != nil {
			t.Errorf("Parse(%q): %v", s, err)
		}
	}
	f, err := Parse("PrefixFilter('it''s')")
	if err != nil || !bytes.Equal(f.root.(*prefixFilter).prefix, []byte("it's")) {
		t.Fatalf("doubled quote: %v %v", f, err)
	}
	f, err = Parse("RowFilter(=,'binary:\\x00a\\x4')")
	if err != nil || !bytes.Equal(f.root.(*rowFilter).cmp.value, []byte("\x00a\\x4")) {
		t.Fatalf("\\xNN escape: %+v %v", f, err)
	}
}

func TestPushDown(t *testing.T) {
	for _, tc := range []struct {
		filter     string
		read       Read
		start, end string
		rowFilter  bool
		family     string
	}{
		{filter: "PrefixFilter('b')", start: "b", end: "c"},
		{filter: "PrefixFilter('b\xff')", start: "b\xff", end: "c"},
		{filter: "PrefixFilter('b') AND RowFilter(<, 'binary:bm')", start: "b", end: "bm"},
		{filter: "RowFilter(>, 'binary:k') AND InclusiveStopFilter('p')", start: "k\x00", end: "p\x00"},
		{filter: "InclusiveStopFilter('p')", read: Read{Reverse: true}, start: "p"},
		{filter: "PageFilter(1) AND PrefixFilter('b')"},
		{filter: "WHILE KeyOnlyFilter() AND PrefixFilter('b')"},
		{filter: "PrefixFilter('a') OR PrefixFilter('b')"},
		{filter: "KeyOnlyFilter() AND PrefixFilter('b')", start: "b", end: "c"},
		{filter: "SingleColumnValueFilter('f', 'q', =, 'binary:v')", rowFilter: true},
		{filter: "SingleColumnValueFilter('f', 'q', =, 'binary:v')", read: Read{TimeBounded: true}},
		{filter: "SingleColumnValueFilter('f', 'q', =, 'binary:v')", read: Read{Families: []string{"g"}}},
		{filter: "SingleColumnValueFilter('f', 'q', =, 'binary:v')", read: Read{Families: []string{"f"}}, rowFilter: true},
		{filter: "SingleColumnValueFilter('f', 'q', =, 'regexstring:v')"},
		{filter: "SingleColumnValueFilter('f', 'q', =, 'binary:v', false, false)"},
		{filter: "ColumnPrefixFilter('x') AND SingleColumnValueFilter('f', 'q', =, 'binary:v')"},
		{filter: "FamilyFilter(=, 'binary:f')", family: "f"},
		{filter: "FamilyFilter(=, 'binary:f')", read: Read{Families: []string{"f"}}},
		{filter: "SingleColumnValueFilter('g', 'q', =, 'binary:v') AND FamilyFilter(=, 'binary:f')", rowFilter: true},
		{filter: "SingleColumnValueFilter('f', 'q', =, 'binary:v') AND FamilyFilter(=, 'binary:f')", rowFilter: true, family: "f"},
		{filter: "FirstKeyOnlyFilter() AND FamilyFilter(=, 'binary:f')"},
	} {
		f, err := Parse(tc.filter)
		if err != nil {
			t.Fatal(err)
		}
		p := f.PushDown(tc.read)
		str := func(b []byte) string {
			if b == nil {
				return "<nil>"
			}
			return string(b)
		}
		want := func(s string) string {
			if s == "" {
				return "<nil>"
			}
			return s
		}
		if str(p.Start) != want(tc.start) || str(p.End) != want(tc.end) || (p.Filter != nil) != tc.rowFilter || p.Family != tc.family {
			t.Errorf("%s %+v: push-down [%q, %q) filter %v family %q; want [%q, %q) filter %v family %q",
				tc.filter, tc.read, str(p.Start), str(p.End), p.Filter != nil, p.Family, want(tc.start), want(tc.end), tc.rowFilter, tc.family)
		}
	}
}

// pushTable is a small table for the push-down property: a few keys,
// families, versions and values that the filters below compare with.
var pushTable = func() []*kvclient.Row {
	var rows []*kvclient.Row
	vals := []string{"a", "b", "v", "bm", ""}
	for i, k := range []string{"a", "b", "b\xff", "bm", "c", "k", "p", "p\x00", "z"} {
		r := &kvclient.Row{Key: []byte(k)}
		for j, fam := range []string{"f", "g"} {
			for qi, q := range []string{"q", "x"} {
				if (i+j+qi)%3 == 0 {
					continue // some rows lack some columns
				}
				for v := 2; v >= 1; v-- {
					r.Cells = append(r.Cells, kvclient.Cell{Family: fam, Qualifier: []byte(q),
						Timestamp: int64(v * 1000_000), Value: []byte(vals[(i*v+j+qi)%len(vals)])})
				}
			}
		}
		rows = append(rows, r)
	}
	return rows
}()

// evalRowFilter is the servers' row filter (three-valued, on the newest
// version), written here from kvpb's documentation.
func evalRowFilter(f *kvpb.RowFilter, r *kvclient.Row) int { // 1 true, 0 unknown, -1 false
	switch x := f.Filter.(type) {
	case *kvpb.RowFilter_And:
		res := 1
		for _, k := range x.And.Filters {
			res = min(res, evalRowFilter(k, r))
		}
		return res
	case *kvpb.RowFilter_Or:
		res := -1
		for _, k := range x.Or.Filters {
			res = max(res, evalRowFilter(k, r))
		}
		return res
	case *kvpb.RowFilter_Not:
		return -evalRowFilter(x.Not, r)
	case *kvpb.RowFilter_Column:
		c := x.Column
		v, ok := r.Value(c.Family, c.Qualifier)
		b := func(ok bool) int {
			if ok {
				return 1
			}
			return -1
		}
		switch c.Op {
		case kvpb.Condition_EXISTS:
			return b(ok)
		case kvpb.Condition_NOT_EXISTS:
			return b(!ok)
		}
		if !ok {
			return 0
		}
		cmp := bytes.Compare(v, c.Value)
		switch c.Op {
		case kvpb.Condition_EQUAL:
			return b(cmp == 0)
		case kvpb.Condition_NOT_EQUAL:
			return b(cmp != 0)
		case kvpb.Condition_LESS:
			return b(cmp < 0)
		case kvpb.Condition_LESS_OR_EQUAL:
			return b(cmp <= 0)
		case kvpb.Condition_GREATER:
			return b(cmp > 0)
		case kvpb.Condition_GREATER_OR_EQUAL:
			return b(cmp >= 0)
		}
	}
	panic(fmt.Sprintf("unknown row filter %v", f))
}

// run evaluates f over rows in order, as the gateway does.
func run(f *Filter, rows []*kvclient.Row, reverse bool) string {
	var b strings.Builder
	s := f.NewScan(reverse)
	for _, r := range rows {
		out, stop := s.Row(r)
		if stop {
			break
		}
		if out != nil {
			fmt.Fprintf(&b, "%q:", out.Key)
			for _, c := range out.Cells {
				fmt.Fprintf(&b, " %s:%s@%d=%q", c.Family, c.Qualifier, c.Timestamp, c.Value)
			}
			b.WriteByte('\n')
		}
	}
	return b.String()
}

// checkPushDown compares f on the whole table with f on what the servers
// would return with f's push-down.
func checkPushDown(t *testing.T, f *Filter) {
	for _, reverse := range []bool{false, true} {
		rows := pushTable
		if reverse {
			rows = make([]*kvclient.Row, len(pushTable))
			for i, r := range pushTable {
				rows[len(rows)-1-i] = r
			}
		}
		p := f.PushDown(Read{Reverse: reverse})
		var served []*kvclient.Row
		for _, r := range rows {
			if (p.Start != nil && bytes.Compare(r.Key, p.Start) < 0) || (p.End != nil && bytes.Compare(r.Key, p.End) >= 0) {
				continue
			}
			if p.Filter != nil && evalRowFilter(p.Filter.Proto(), r) != 1 {
				continue
			}
			if p.Family != "" {
				r = &kvclient.Row{Key: r.Key, Cells: keepFamily(r.Cells, p.Family)}
				if len(r.Cells) == 0 {
					continue
				}
			}
			served = append(served, r)
		}
		if all, pushed := run(f, rows, reverse), run(f, served, reverse); all != pushed {
			t.Fatalf("%s (reverse %v): push-down %+v changes the result:\nwithout:\n%s\nwith:\n%s", f, reverse, p, all, pushed)
		}
	}
}

func keepFamily(cs []kvclient.Cell, fam string) []kvclient.Cell {
	var out []kvclient.Cell
	for _, c := range cs {
		if c.Family == fam {
			out = append(out, c)
		}
	}
	return out
}

var leaves = []string{
	"PrefixFilter('b')", "PrefixFilter('p')", "RowFilter(<, 'binary:k')", "RowFilter(>=, 'binary:bm')",
	"RowFilter(=, 'binary:c')", "RowFilter(!=, 'binary:c')", "RowFilter(=, 'binaryprefix:b')",
	"InclusiveStopFilter('k')", "PageFilter(2)", "PageFilter(0)",
	"ValueFilter(=, 'binary:b')", "ValueFilter(>, 'binary:a')",
	"SingleColumnValueFilter('f', 'q', =, 'binary:b')", "SingleColumnValueFilter('g', 'x', <, 'binary:v', true, true)",
	"SingleColumnValueExcludeFilter('f', 'x', >=, 'binary:b')", "SingleColumnValueFilter('f', 'q', !=, 'binary:a', false, true)",
	"KeyOnlyFilter()", "FirstKeyOnlyFilter()", "ColumnPrefixFilter('x')", "FamilyFilter(=, 'binary:f')",
	"FamilyFilter(=, 'binary:g')", "QualifierFilter(=, 'binary:q')", "TimestampsFilter(1000)",
	"ColumnCountGetFilter(1)", "ColumnPaginationFilter(1, 1)", "ColumnRangeFilter('q', false, '', false)",
}

func randomFilter(r *rand.Rand, depth int) string {
	if depth > 2 || r.IntN(3) == 0 {
		return leaves[r.IntN(len(leaves))]
	}
	switch r.IntN(4) {
	case 0:
		return "SKIP " + randomFilter(r, depth+1)
	case 1:
		return "WHILE " + randomFilter(r, depth+1)
	case 2:
		return "(" + randomFilter(r, depth+1) + " OR " + randomFilter(r, depth+1) + ")"
	default:
		n := 2 + r.IntN(3)
		parts := make([]string, n)
		for i := range parts {
			parts[i] = randomFilter(r, depth+1)
		}
		return "(" + strings.Join(parts, " AND ") + ")"
	}
}

func TestPushDownNeverChangesResult(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	r := rand.New(rand.NewPCG(seed, 0))
	for _, l := range leaves {
		f, err := Parse(l)
		if err != nil {
			t.Fatal(err)
		}
		checkPushDown(t, f)
	}
	for range 3000 {
		// Top-level AND chains are where push-down happens.
		n := 1 + r.IntN(4)
		parts := make([]string, n)
		for i := range parts {
			parts[i] = randomFilter(r, 1)
		}
		s := strings.Join(parts, " AND ")
		f, err := Parse(s)
		if err != nil {
			t.Fatalf("%s: %v", s, err)
		}
		checkPushDown(t, f)
	}
}

// FuzzFilter: any string parses to a filter or an *Error, never a panic,
// and a filter evaluates and pushes down without changing its result.
func FuzzFilter(f *testing.F) {
	for _, l := range leaves {
		f.Add(l)
	}
	for _, s := range []string{
		"PrefixFilter('a') AND (SKIP ValueFilter(!=, 'binary:b') OR WHILE PageFilter(3))",
		"SingleColumnValueFilter('f','q',=,'binaryprefix:\\x62',true,false) AND KeyOnlyFilter(true)",
		"MultipleColumnPrefixFilter('q', 'x') OR RowFilter(=, 'regexstring:^[bk]') OR RowFilter(!=, 'substring:M')",
		"ColumnRangeFilter('', true, 'x', true) AND TimestampsFilter(1000, 2000)", "((((", "'''", "PrefixFilter(''",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		flt, err := Parse(s)
		if err != nil {
			var fe *Error
			if !errors.As(err, &fe) || fe.Pos < 0 || fe.Pos > len(s) {
				t.Fatalf("Parse(%q) = %v (%T), want an *Error within the string", s, err, err)
			}
			return
		}
		checkPushDown(t, flt)
	})
}
