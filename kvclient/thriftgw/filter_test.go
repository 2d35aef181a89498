package thriftgw_test

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/shaledb/shale/kvclient/thriftgw"
	"github.com/shaledb/shale/proto/hbase"
)

// The filter language is checked filter by filter against a table whose
// expected results a model computes here, directly from the data, without
// filterlang.

type mcell struct {
	fam, qual string
	ts        int64 // ms
	val       string
}

type mrow struct {
	key   string
	cells []mcell // storage order: family, qualifier, newest first
}

// filterTable is the data: versions, several families, rows without
// some columns.
var filterTable = []mrow{
	{"a1", []mcell{{"f", "q1", 1000, "v1"}, {"f", "q2", 1000, "apple"}, {"g", "x1", 1000, "10"}}},
	{"a2", []mcell{{"f", "q1", 1000, "v2"}, {"f", "q1", 500, "old"}, {"g", "x1", 1000, "20"}}},
	{"b1", []mcell{{"f", "q1", 1000, "v3"}, {"f", "x1", 1000, "banana"}, {"g", "q2", 1000, "30"}}},
	{"b2", []mcell{{"f", "q2", 1000, "cherry"}, {"g", "x1", 2000, "40"}, {"g", "x1", 500, "39"}}},
	{"b3", []mcell{{"f", "q1", 1000, "v1"}, {"f", "q2", 2000, "Apple pie"}}},
	{"c1", []mcell{{"g", "q1", 1000, "v9"}, {"g", "x1", 1000, "50"}}},
}

// Model helpers.
func rowsWhere(pred func(r mrow) bool) func([]mrow) []mrow {
	return func(in []mrow) []mrow {
		var out []mrow
		for _, r := range in {
			if pred(r) {
				out = append(out, r)
			}
		}
		return out
	}
}

func cellsWhere(pred func(r mrow, c mcell) bool) func([]mrow) []mrow {
	return func(in []mrow) []mrow {
		var out []mrow
		for _, r := range in {
			var cs []mcell
			for _, c := range r.cells {
				if pred(r, c) {
					cs = append(cs, c)
				}
			}
			if len(cs) > 0 {
				out = append(out, mrow{r.key, cs})
			}
		}
		return out
	}
}

// newest returns the newest version of a column, or false.
func newest(r mrow, fam, qual string) (mcell, bool) {
	for _, c := range r.cells {
		if c.fam == fam && c.qual == qual {
			return c, true
		}
	}
	return mcell{}, false
}

// columnsNewest keeps, per row, the newest version of the columns
// numbered [from, to).
func columnsNewest(from, to int) func([]mrow) []mrow {
	return func(in []mrow) []mrow {
		var out []mrow
		for _, r := range in {
			var cs []mcell
			seen := map[string]bool{}
			n := 0
			for _, c := range r.cells {
				k := c.fam + ":" + c.qual
				if seen[k] {
					continue
				}
				seen[k] = true
				if n >= from && n < to {
					cs = append(cs, c)
				}
				n++
			}
			if len(cs) > 0 {
				out = append(out, mrow{r.key, cs})
			}
		}
		return out
	}
}

func mapValues(f func(string) string) func([]mrow) []mrow {
	return func(in []mrow) []mrow {
		var out []mrow
		for _, r := range in {
			cs := make([]mcell, len(r.cells))
			for i, c := range r.cells {
				cs[i] = c
				cs[i].val = f(c.val)
			}
			out = append(out, mrow{r.key, cs})
		}
		return out
	}
}

func then(fs ...func([]mrow) []mrow) func([]mrow) []mrow {
	return func(in []mrow) []mrow {
		for _, f := range fs {
			in = f(in)
		}
		return in
	}
}

// rowsWhile keeps rows up to the first for which pred fails.
func rowsWhile(pred func(r mrow) bool) func([]mrow) []mrow {
	return func(in []mrow) []mrow {
		for i, r := range in {
			if !pred(r) {
				return in[:i]
			}
		}
		return in
	}
}

func firstN(n int) func([]mrow) []mrow {
	return func(in []mrow) []mrow { return in[:min(n, len(in))] }
}

// union merges two results of the same table: a row's cells are those
// either kept, in storage order.
func union(a, b func([]mrow) []mrow) func([]mrow) []mrow {
	return func(in []mrow) []mrow {
		ra, rb := map[string]mrow{}, map[string]mrow{}
		for _, r := range a(in) {
			ra[r.key] = r
		}
		for _, r := range b(in) {
			rb[r.key] = r
		}
		return cellsWhere(func(r mrow, c mcell) bool {
			has := func(m map[string]mrow) bool {
				for _, x := range m[r.key].cells {
					if x == c {
						return true
					}
				}
				return false
			}
			return has(ra) || has(rb)
		})(in)
	}
}

func filterCases() []struct {
	filter string
	want   func([]mrow) []mrow
} {
	scv := func(fam, qual, op, v string, ifMissing, latest, exclude bool) func([]mrow) []mrow {
		cmp := func(s string) bool {
			switch op {
			case "=":
				return s == v
			case ">":
				return s > v
			}
			panic(op)
		}
		return func(in []mrow) []mrow {
			var out []mrow
			for _, r := range in {
				found, ok := false, false
				for _, c := range r.cells {
					if c.fam == fam && c.qual == qual {
						if found && latest {
							break
						}
						found = true
						ok = ok || cmp(c.val)
					}
				}
				if (found && !ok) || (!found && ifMissing) {
					continue
				}
				if exclude {
					r = cellsWhere(func(_ mrow, c mcell) bool { return c.fam != fam || c.qual != qual })([]mrow{r})[0]
				}
				out = append(out, r)
			}
			return out
		}
	}
	return []struct {
		filter string
		want   func([]mrow) []mrow
	}{
		{"PrefixFilter('b')", rowsWhere(func(r mrow) bool { return strings.HasPrefix(r.key, "b") })},
		{"PrefixFilter('')", rowsWhere(func(mrow) bool { return true })},
		{"RowFilter(>=, 'binary:b2')", rowsWhere(func(r mrow) bool { return r.key >= "b2" })},
		{"RowFilter(<, 'binary:b')", rowsWhere(func(r mrow) bool { return r.key < "b" })},
		{"RowFilter(=, 'binaryprefix:a')", rowsWhere(func(r mrow) bool { return r.key[0] == 'a' })},
		{"RowFilter(>, 'binaryprefix:a')", rowsWhere(func(r mrow) bool { return r.key[0] > 'a' })},
		{"RowFilter(=, 'regexstring:^[ac]')", rowsWhere(func(r mrow) bool { return r.key[0] == 'a' || r.key[0] == 'c' })},
		{"RowFilter(!=, 'substring:B')", rowsWhere(func(r mrow) bool { return !strings.Contains(r.key, "b") })},
		{"RowFilter(=, 'binary:\\x62\\x31')", rowsWhere(func(r mrow) bool { return r.key == "b1" })},
		{"ValueFilter(=, 'binaryprefix:v')", cellsWhere(func(_ mrow, c mcell) bool { return strings.HasPrefix(c.val, "v") })},
		{"ValueFilter(=, 'substring:APPLE')", cellsWhere(func(_ mrow, c mcell) bool { return strings.Contains(strings.ToLower(c.val), "apple") })},
		{"ValueFilter(<=, 'binary:30')", cellsWhere(func(_ mrow, c mcell) bool { return c.val <= "30" })},
		{"SingleColumnValueFilter('f', 'q1', =, 'binary:v1')", scv("f", "q1", "=", "v1", false, true, false)},
		{"SingleColumnValueFilter('f', 'q1', =, 'binary:v1', true, true)", scv("f", "q1", "=", "v1", true, true, false)},
		{"SingleColumnValueFilter('f', 'q1', =, 'binary:old', true, false)", scv("f", "q1", "=", "old", true, false, false)},
		{"SingleColumnValueFilter('f', 'q1', =, 'binary:old', true, true)", scv("f", "q1", "=", "old", true, true, false)},
		{"SingleColumnValueFilter('g', 'x1', >, 'binary:25')", scv("g", "x1", ">", "25", false, true, false)},
		{"SingleColumnValueExcludeFilter('f', 'q1', =, 'binary:v1', true, true)", scv("f", "q1", "=", "v1", true, true, true)},
		{"KeyOnlyFilter()", mapValues(func(string) string { return "" })},
		{"KeyOnlyFilter(true)", mapValues(func(v string) string { return string(binary.BigEndian.AppendUint32(nil, uint32(len(v)))) })},
		{"FirstKeyOnlyFilter()", columnsNewest(0, 1)},
		{"PageFilter(3)", firstN(3)},
		{"PageFilter(0)", firstN(0)},
		{"ColumnPrefixFilter('q')", cellsWhere(func(_ mrow, c mcell) bool { return c.qual[0] == 'q' })},
		{"MultipleColumnPrefixFilter('x', 'q2')", cellsWhere(func(_ mrow, c mcell) bool { return c.qual == "x1" || c.qual == "q2" })},
		{"ColumnRangeFilter('q1', false, 'x1', true)", cellsWhere(func(_ mrow, c mcell) bool { return c.qual > "q1" && c.qual <= "x1" })},
		{"ColumnRangeFilter('', true, 'q2', false)", cellsWhere(func(_ mrow, c mcell) bool { return c.qual < "q2" })},
		{"QualifierFilter(<, 'binary:q2')", cellsWhere(func(_ mrow, c mcell) bool { return c.qual < "q2" })},
		{"FamilyFilter(=, 'binary:g')", cellsWhere(func(_ mrow, c mcell) bool { return c.fam == "g" })},
		{"FamilyFilter(!=, 'binary:g')", cellsWhere(func(_ mrow, c mcell) bool { return c.fam != "g" })},
		{"TimestampsFilter(500, 2000)", cellsWhere(func(_ mrow, c mcell) bool { return c.ts == 500 || c.ts == 2000 })},
		{"InclusiveStopFilter('b2')", rowsWhere(func(r mrow) bool { return r.key <= "b2" })},
		{"ColumnCountGetFilter(2)", columnsNewest(0, 2)},
		{"ColumnPaginationFilter(1, 1)", columnsNewest(1, 2)},
		{"ColumnPaginationFilter(2, 0)", columnsNewest(0, 2)},
		// The grammar.
		{"PrefixFilter('b') AND ValueFilter(=, 'substring:AN')", then(
			rowsWhere(func(r mrow) bool { return r.key[0] == 'b' }),
			cellsWhere(func(_ mrow, c mcell) bool { return strings.Contains(c.val, "an") }))},
		{"PrefixFilter('a') OR FamilyFilter(=, 'binary:g')", union(
			rowsWhere(func(r mrow) bool { return r.key[0] == 'a' }),
			cellsWhere(func(_ mrow, c mcell) bool { return c.fam == "g" }))},
		{"SKIP ValueFilter(!=, 'binary:v1')", rowsWhere(func(r mrow) bool {
			for _, c := range r.cells {
				if c.val == "v1" {
					return false
				}
			}
			return true
		})},
		{"WHILE RowFilter(!=, 'binary:b2')", rowsWhile(func(r mrow) bool { return r.key != "b2" })},
		{"WHILE ValueFilter(!=, 'binary:banana')", rowsWhile(func(r mrow) bool {
			for _, c := range r.cells {
				if c.val == "banana" {
					return false
				}
			}
			return true
		})},
		{"(PrefixFilter('a') OR PrefixFilter('c')) AND KeyOnlyFilter()", then(
			rowsWhere(func(r mrow) bool { return r.key[0] != 'b' }),
			mapValues(func(string) string { return "" }))},
		{"PageFilter(2) AND FamilyFilter(=, 'binary:g')", then(firstN(2),
			cellsWhere(func(_ mrow, c mcell) bool { return c.fam == "g" }))},
		{"FamilyFilter(=, 'binary:g') AND PageFilter(2)", then(
			cellsWhere(func(_ mrow, c mcell) bool { return c.fam == "g" }), firstN(2))},
		{"SingleColumnValueFilter('g', 'x1', >, 'binary:25') AND FamilyFilter(=, 'binary:f')", then(
			scv("g", "x1", ">", "25", false, true, false),
			cellsWhere(func(_ mrow, c mcell) bool { return c.fam == "f" }))},
		{"ColumnPrefixFilter('x') AND SingleColumnValueFilter('f', 'q1', =, 'binary:v1')", then(
			cellsWhere(func(_ mrow, c mcell) bool { return c.qual[0] == 'x' }),
			scv("f", "q1", "=", "v1", false, true, false))},
		{"PrefixFilter('b') AND PageFilter(1) OR RowFilter(=, 'binary:c1')", union(
			then(rowsWhere(func(r mrow) bool { return r.key[0] == 'b' }), firstN(1)),
			rowsWhere(func(r mrow) bool { return r.key == "c1" }))},
	}
}

func TestFilterLanguage(t *testing.T) {
	e := startEnv(t)
	srv := e.gateway(t, thriftgw.Options{})
	c := dial(t, srv.Addr().String(), false, false)
	ctx := ctxT(t)
	require.NoError(t, c.CreateTable(ctx, &hbase.TTableDescriptor{
		TableName: tn("flt"),
		Columns:   []*hbase.TColumnFamilyDescriptor{{Name: []byte("f")}, {Name: []byte("g")}},
	}, [][]byte{[]byte("b2")})) // two tablets: filtered scans cross a boundary
	table := []byte("flt")
	for _, r := range filterTable {
		for _, cl := range r.cells {
			require.NoError(t, c.Put(ctx, table, &hbase.TPut{Row: []byte(r.key), ColumnValues: []*hbase.TColumnValue{
				{Family: []byte(cl.fam), Qualifier: []byte(cl.qual), Value: []byte(cl.val), Timestamp: i64(cl.ts)}}}))
		}
	}
	got := func(rs []*hbase.TResult_) []mrow {
		var out []mrow
		for _, r := range rs {
			m := mrow{key: string(r.Row)}
			for _, cv := range r.ColumnValues {
				m.cells = append(m.cells, mcell{string(cv.Family), string(cv.Qualifier), cv.GetTimestamp(), string(cv.Value)})
			}
			out = append(out, m)
		}
		return out
	}
	addr := srv.Addr().String()
	for _, tc := range filterCases() {
		t.Run(tc.filter, func(t *testing.T) {
			// The cases only read: they run in parallel, each on its own
			// connection (a Thrift client is not safe for concurrent use).
			t.Parallel()
			c := dial(t, addr, false, false)
			want := tc.want(filterTable)
			// A scanner, read in pages of 2 rows.
			id, err := c.OpenScanner(ctx, table, &hbase.TScan{FilterString: []byte(tc.filter), MaxVersions: 5, Caching: i32(2)})
			require.NoError(t, err)
			var rows []*hbase.TResult_
			for {
				page, err := c.GetScannerRows(ctx, id, 2)
				require.NoError(t, err)
				if len(page) == 0 {
					break
				}
				rows = append(rows, page...)
			}
			require.NoError(t, c.CloseScanner(ctx, id))
			require.Equal(t, fmtRows(want), fmtRows(got(rows)), "openScanner")
			// getScannerResults.
			rows, err = c.GetScannerResults(ctx, table, &hbase.TScan{FilterString: []byte(tc.filter), MaxVersions: 5}, 100)
			require.NoError(t, err)
			require.Equal(t, fmtRows(want), fmtRows(got(rows)), "getScannerResults")
			// A get of each row: the filter on that row alone (a fresh
			// PageFilter count and WHILE for each get).
			for _, r := range filterTable {
				res, err := c.Get(ctx, table, &hbase.TGet{Row: []byte(r.key), FilterString: []byte(tc.filter), MaxVersions: i32(5)})
				require.NoError(t, err)
				w := tc.want([]mrow{r})
				var g []mrow
				if len(res.ColumnValues) > 0 {
					g = got([]*hbase.TResult_{res})
				}
				require.Equal(t, fmtRows(w), fmtRows(g), "get %s", r.key)
			}
		})
	}

	t.Run("ReversedInclusiveStop", func(t *testing.T) {
		rev := true
		rows, err := c.GetScannerResults(ctx, table, &hbase.TScan{FilterString: []byte("InclusiveStopFilter('b2')"), Reversed: &rev}, 100)
		require.NoError(t, err)
		var keys []string
		for _, r := range rows {
			keys = append(keys, string(r.Row))
		}
		require.Equal(t, []string{"c1", "b3", "b2"}, keys)
	})
	t.Run("LimitCountsFilteredRows", func(t *testing.T) {
		rows, err := c.GetScannerResults(ctx, table, &hbase.TScan{FilterString: []byte("FamilyFilter(=, 'binary:f')"), Limit: i32(2)}, 100)
		require.NoError(t, err)
		require.Len(t, rows, 2)
		require.Equal(t, []string{"a1", "a2"}, []string{string(rows[0].Row), string(rows[1].Row)})
	})
	t.Run("Errors", func(t *testing.T) {
		for _, tc := range []struct{ filter, want string }{
			{"NoSuchFilter('x')", `unknown filter "NoSuchFilter"`},
			{"PrefixFilter('x'", `expected "," or ")"`},
			{"PrefixFilter('x) AND", "unterminated quoted string"},
			{"PrefixFilter(1)", "PrefixFilter: prefix must be a quoted string"},
			{"RowFilter(=, 'nope:x')", `unknown comparator type "nope"`},
			{"RowFilter(<, 'regexstring:a')", "regexstring comparators take only = and !="},
			{"RowFilter(=, 'regexstring:(')", "regexstring"},
			{"PageFilter(-1)", "must not be negative"},
			{"PrefixFilter('a') XOR PrefixFilter('b')", `unexpected "XOR"`},
			{"AND", "expected \"(\" after filter name \"AND\""},
			{strings.Repeat("(", 100) + "KeyOnlyFilter()" + strings.Repeat(")", 100), "nested deeper"},
		} {
			_, err := c.Get(ctx, table, &hbase.TGet{Row: []byte("a1"), FilterString: []byte(tc.filter)})
			requireIOError(t, err, "IllegalArgumentException: bad filter string")
			requireIOError(t, err, tc.want)
			_, err = c.OpenScanner(ctx, table, &hbase.TScan{FilterString: []byte(tc.filter)})
			requireIOError(t, err, tc.want)
		}
		_, err := c.OpenScanner(ctx, table, &hbase.TScan{FilterBytes: []byte{1}})
		requireIOError(t, err, "filterBytes")
	})
}

func i32(v int32) *int32 { return &v }

// fmtRows prints rows one cell a line, for readable diffs.
func fmtRows(rs []mrow) string {
	var b bytes.Buffer
	for _, r := range rs {
		for _, c := range r.cells {
			fmt.Fprintf(&b, "%s %s:%s @%d = %q\n", r.key, c.fam, c.qual, c.ts, c.val)
		}
	}
	return b.String()
}
