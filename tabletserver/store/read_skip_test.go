package store

import (
	"fmt"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/stretchr/testify/require"

	"github.com/shaledb/shale/internal/cellvalue"
	"github.com/shaledb/shale/internal/keys"
	"github.com/shaledb/shale/proto/kvpb"
	"github.com/shaledb/shale/proto/metapb"
)

// A read of a row whose columns hold many versions (a hot row overwritten
// until GC) returns the newest ones and seeks past the rest of each
// column instead of stepping over every version: its iterator steps are
// bounded by the versions it wants, not by the versions stored. A row
// filter still sees each column's newest version, not an older one.
func TestRowReadSeeksPastVersionsItDoesNotWant(t *testing.T) {
	db, err := pebble.Open("", &pebble.Options{FS: vfs.NewMem()})
	require.NoError(t, err)
	defer db.Close()
	const tableID, columns, versions = 7, 3, 200
	row := []byte("hot")
	b := db.NewBatch()
	for q := 0; q < columns; q++ {
		for ts := 1; ts <= versions; ts++ {
			k := keys.DataKey(keys.CellKey(tableID, row, "f", []byte(fmt.Sprint("q", q)), int64(ts)))
			require.NoError(t, b.Set(k, cellvalue.Encode([]byte(fmt.Sprint(ts))), nil))
		}
	}
	require.NoError(t, b.Commit(pebble.Sync))

	schema := &metapb.TableSchema{TableId: tableID, Families: []*metapb.FamilySchema{{Name: "f"}}}
	q0Equals := func(v string) *compiledFilter {
		cf, err := compileFilter(schema, &kvpb.RowFilter{Filter: &kvpb.RowFilter_Column{Column: &kvpb.Condition{
			Family: "f", Qualifier: []byte("q0"), Op: kvpb.Condition_EQUAL, Value: []byte(v)}}})
		require.NoError(t, err)
		return cf
	}
	q1Only := map[string]map[string]bool{"f": {"q1": true}}
	for _, tc := range []struct {
		name     string
		f        rowFilter
		wantCols int
		matches  bool
	}{
		{"newest", rowFilter{maxVersions: 1}, columns, true},
		{"two versions", rowFilter{maxVersions: 2}, columns, true},
		{"one column", rowFilter{maxVersions: 1, columns: q1Only}, 1, true},
		{"filter on an unprojected column's newest version", rowFilter{maxVersions: 1, columns: q1Only, filter: q0Equals(fmt.Sprint(versions))}, 1, true},
		{"filter never sees an older version", rowFilter{maxVersions: 1, columns: q1Only, filter: q0Equals(fmt.Sprint(versions - 1))}, 1, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := tc.f
			f.policy, f.maxRowBytes = map[string]*metapb.FamilySchema{}, 1<<20
			rk := keys.RowKey(tableID, row)
			it, err := db.NewIter(&pebble.IterOptions{LowerBound: keys.DataKey(rk), UpperBound: keys.DataKey(keys.PrefixEnd(rk))})
			require.NoError(t, err)
			defer it.Close()
			rb := &rowBuilder{f: &f}
			require.NoError(t, rb.addAll(it, nil))
			require.Equal(t, tc.matches, rb.matches())

			require.Len(t, rb.row.Cells, tc.wantCols*f.maxVersions)
			for i, c := range rb.row.Cells {
				want := versions - i%f.maxVersions
				require.Equal(t, int64(want), c.Timestamp, "cell %d (%s:%s)", i, c.Family, c.Qualifier)
				require.Equal(t, fmt.Sprint(want), string(c.Value))
			}
			st := it.Stats()
			steps := st.ForwardStepCount[pebble.InterfaceCall]
			bound := columns * (f.maxVersions + skipAfter + 2)
			require.LessOrEqual(t, steps, bound, "iterator steps over %d stored versions (seeks %d)", columns*versions, st.ForwardSeekCount[pebble.InterfaceCall])
		})
	}
}
