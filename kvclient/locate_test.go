package kvclient

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/shaledb/shale/internal/keys"
)

// Locate and Tablets report a table's tablets with boundaries restricted
// to the table, from the cache or (refresh, Tablets) the placement driver,
// and survive a PD that is briefly unavailable.
func TestLocateAndTablets(t *testing.T) {
	f := &fakePD{}
	rk := func(row string) string { return string(keys.RowKey(5, []byte(row))) }
	f.set(
		td(1, "", rk("c"), 1, 1, 1, 2, 3), // starts in earlier tables
		td(2, rk("c"), rk("m"), 1, 2, 1, 2, 3),
		td(3, rk("m"), string(keys.TablePrefix(6)), 1, 0, 1, 2, 3), // no leader known
		td(4, string(keys.TablePrefix(6)), "", 1, 3, 1, 2, 3),      // the next table
	)
	c := testClient(f)
	tbl := &Table{c: c, info: &TableInfo{ID: 5, Name: "t"}}
	ctx := context.Background()

	f.failNext = 1 // a PD failover: retried
	ls, err := tbl.Tablets(ctx)
	require.NoError(t, err)
	require.Equal(t, []TabletLocation{
		{TabletID: 1, StartRow: nil, EndRow: []byte("c"), EpochVersion: 1, LeaderStoreID: 1, LeaderAddr: "unused"},
		{TabletID: 2, StartRow: []byte("c"), EndRow: []byte("m"), EpochVersion: 1, LeaderStoreID: 2, LeaderAddr: "unused"},
		{TabletID: 3, StartRow: []byte("m"), EndRow: nil, EpochVersion: 1},
	}, ls)

	// Tablets filled the cache: Locate answers without the PD ...
	calls := f.calls()
	l, err := tbl.Locate(ctx, []byte("d"), false)
	require.NoError(t, err)
	require.Equal(t, uint64(2), l.TabletID)
	require.Equal(t, calls, f.calls())
	// ... unless asked to refresh, which sees a split.
	f.set(
		td(1, "", rk("c"), 1, 1, 1, 2, 3),
		td(2, rk("c"), rk("f"), 2, 2, 1, 2, 3),
		td(5, rk("f"), rk("m"), 2, 3, 1, 2, 3),
		td(3, rk("m"), string(keys.TablePrefix(6)), 1, 0, 1, 2, 3),
	)
	l, err = tbl.Locate(ctx, []byte("g"), false)
	require.NoError(t, err)
	require.Equal(t, uint64(2), l.TabletID, "stale cache entry")
	l, err = tbl.Locate(ctx, []byte("g"), true)
	require.NoError(t, err)
	require.Equal(t, TabletLocation{TabletID: 5, StartRow: []byte("f"), EndRow: []byte("m"), EpochVersion: 2, LeaderStoreID: 3, LeaderAddr: "unused"}, l)

	c.closed.Store(true) // testClient has no PD connection to close
	_, err = tbl.Tablets(ctx)
	require.ErrorIs(t, err, ErrClosed)
}
