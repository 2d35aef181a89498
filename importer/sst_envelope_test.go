package importer

import (
	"testing"

	"github.com/cockroachdb/pebble/v2/sstable"
	"github.com/stretchr/testify/require"

	"github.com/shaledb/shale/internal/cellvalue"
	"github.com/shaledb/shale/internal/keys"
)

// The builder stores values in the stores' envelope, with their CRC-32C,
// so that ingested cells read like cells the stores wrote themselves.
func TestSSTBuilderWritesEnvelope(t *testing.T) {
	b := NewSSTBuilder()
	want := map[string]string{}
	for i, v := range []string{"", "one", "two"} {
		k := keys.CellKey(7, []byte{'r', byte('0' + i)}, "f", []byte("q"), 5)
		require.NoError(t, b.Add(k, []byte(v), 5))
		want[string(keys.DataKey(k))] = v
	}
	sst, err := b.Finish()
	require.NoError(t, err)
	rd, err := sstable.NewMemReader(sst.Data, sstable.ReaderOptions{})
	require.NoError(t, err)
	defer rd.Close()
	it, err := rd.NewIter(sstable.NoTransforms, nil, nil, sstable.TableBlobContext{})
	require.NoError(t, err)
	defer it.Close()
	n := 0
	for kv := it.First(); kv != nil; kv = it.Next() {
		v, _, err := kv.Value(nil)
		require.NoError(t, err)
		payload, crc, tomb, err := cellvalue.DecodeVerified(v)
		require.NoError(t, err)
		require.False(t, tomb)
		require.Equal(t, want[string(kv.K.UserKey)], string(payload))
		require.Equal(t, cellvalue.Checksum(payload), crc)
		n++
	}
	require.Equal(t, 3, n)
}
