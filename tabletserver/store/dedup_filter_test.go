package store

import (
	"fmt"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/stretchr/testify/require"
)

// rowKey is the i-th of openL6Rows' rows.
func rowKey(i int) []byte { return fmt.Appendf(nil, "row%06d", i) }

// openL6Rows opens an in-memory engine with the store's filter policy and
// 20,000 rows of 100 bytes (rowKey(0..19999)) compacted into L6.
func openL6Rows(tb testing.TB) *pebble.DB {
	opts := &pebble.Options{FS: vfs.NewMem(), CacheSize: 64 << 20}
	opts.Levels[0].FilterPolicy = filterPolicy // as the store opens its engine
	db, err := pebble.Open("", opts)
	require.NoError(tb, err)
	tb.Cleanup(func() { _ = db.Close() })
	b := db.NewBatch()
	for i := 0; i < 20000; i++ {
		require.NoError(tb, b.Set(rowKey(i), make([]byte, 100), nil))
	}
	require.NoError(tb, b.Commit(pebble.Sync))
	require.NoError(tb, db.Compact(tb.Context(), rowKey(0), rowKey(20000), false))
	return db
}

// A request-ID lookup of an absent record reads no data block once the
// table's filter and index are cached, even in L6: every write makes one,
// on the raft worker of every replica. A plain Get skips L6's bloom
// filters and read the row's data block each time.
func TestAbsentRequestIDReadsNoDataBlock(t *testing.T) {
	db := openL6Rows(t)
	require.Positive(t, db.Metrics().Levels[6].TablesCount, "the rows are in L6")

	misses := func() int64 { return db.Metrics().BlockCache.Misses }
	absent := func(i int) []byte { return append(rowKey(i), 'x') } // sorts within the rows
	ib := db.NewIndexedBatch()
	defer ib.Close()
	_, found, err := getLikelyAbsent(ib, absent(100)) // caches the table's index and filter
	require.NoError(t, err)
	require.False(t, found)
	before := misses()
	for _, i := range []int{5000, 10000, 15000, 19990} { // other data blocks
		_, found, err := getLikelyAbsent(ib, absent(i))
		require.NoError(t, err)
		require.False(t, found)
	}
	require.Equal(t, before, misses(), "absent records read data blocks")

	// Present keys are found, in the engine and in the batch alone.
	v, found, err := getLikelyAbsent(ib, rowKey(12345))
	require.NoError(t, err)
	require.True(t, found)
	require.Len(t, v, 100)
	require.NoError(t, ib.Set([]byte("row012345y"), []byte("batch"), nil))
	v, found, err = getLikelyAbsent(ib, []byte("row012345y"))
	require.NoError(t, err)
	require.True(t, found)
	require.Equal(t, "batch", string(v))
	_, found, err = getLikelyAbsent(ib, []byte("row01234"))
	require.NoError(t, err)
	require.False(t, found, "a prefix of a present key is not the key")
}

// BenchmarkRequestIDLookup compares a plain Get with getLikelyAbsent for
// an absent record over rows in L6, every block cached (the plain Get's
// best case: no disk read to save).
func BenchmarkRequestIDLookup(b *testing.B) {
	db := openL6Rows(b)
	ib := db.NewIndexedBatch()
	defer ib.Close()
	b.Run("Get", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			if _, closer, err := ib.Get(append(rowKey(i%20000), 'x')); err == nil {
				closer.Close()
			}
		}
	})
	b.Run("getLikelyAbsent", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			_, _, _ = getLikelyAbsent(ib, append(rowKey(i%20000), 'x'))
		}
	})
}
